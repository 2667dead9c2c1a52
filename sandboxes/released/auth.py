"""OAuth client-credentials tokens: 30 minutes on the sandbox clock, revocable per company.

A token remembers who it speaks for: the API client whose credentials got it from
``POST /oauth/token``, or nobody (``None``) when the control API minted it to act as a Re-Leased
user. The client that made a company's accounting connection is that company's accounting side.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandboxes.released.errors import ApiError
from sandboxes.released.sandbox import Sandbox
from sandboxes.released.store import CompanyState, TokenEntry

TOKEN_LIFETIME = timedelta(minutes=30)


def mint_token(
    sandbox: Sandbox, company_id: str | None = None, client_id: str | None = None
) -> dict[str, object]:
    token = secrets.token_urlsafe(32)
    sandbox.store.tokens[token] = TokenEntry(company_id, sandbox.clock.now(), client_id)
    # expires_in is real seconds, so a client refreshing on its own clock stays in step.
    real = sandbox.clock.real_seconds(TOKEN_LIFETIME.total_seconds())
    return {"access_token": token, "token_type": "Bearer", "expires_in": max(1, int(real))}


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return user, password
    return form.get("client_id", ""), form.get("client_secret", "")


async def token_endpoint(sandbox: Sandbox, request: Request) -> Response:
    try:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    except (HTTPException, ValueError, KeyError, AssertionError):
        form = {}
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    client_id, secret = _client_credentials(request, form)
    settings = sandbox.settings
    clients = {
        settings.released_client_id: settings.released_client_secret.get_secret_value(),
        **sandbox.store.clients,
    }
    expected = clients.get(client_id)
    # Compared even for an unknown id, so the answer takes as long either way.
    good = secrets.compare_digest(secret.encode(), (expected or "\0").encode())
    if expected is None or not good:
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    body = mint_token(sandbox, client_id=client_id)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def authenticate(sandbox: Sandbox, request: Request) -> tuple[CompanyState, str | None]:
    """The company this call acts on and the client it speaks for (None: a user), or the
    400/401/404 that refuses it."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    entry = sandbox.store.tokens.get(token) if scheme.lower() == "bearer" else None
    if entry is None:
        raise _unauthorized("Unauthorized", "INVALID_TOKEN", "a valid bearer token is required")
    scope, issued_at, client = entry
    company_id = request.headers.get("x-company-id", "")
    if not company_id:
        raise ApiError(400, "COMPANY_REQUIRED", "the X-Company-Id header is required")
    state = sandbox.store.companies.get(company_id)
    if state is None:
        raise ApiError(404, "COMPANY_NOT_FOUND", "no such company", element_id=company_id)
    if scope is not None and scope != company_id:
        raise _unauthorized("Unauthorized", "WRONG_COMPANY", "the token is for another company")
    now = sandbox.clock.now()
    expired = now - issued_at > TOKEN_LIFETIME
    if expired or (state.tokens_valid_after is not None and issued_at <= state.tokens_valid_after):
        raise _unauthorized("TokenExpired", "TOKEN_EXPIRED", "the access token has expired")
    if state.revoked:
        raise _unauthorized("ConnectionRevoked", "CONNECTION_REVOKED", "the connection is revoked")
    return state, client


def _unauthorized(error_type: str, code: str, message: str) -> ApiError:
    return ApiError(
        401, code, message, error_type=error_type, headers={"WWW-Authenticate": "Bearer"}
    )
