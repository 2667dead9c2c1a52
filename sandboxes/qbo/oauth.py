"""OAuth 2.0 routes as Intuit serves them: authorize, token, revoke, discovery, userinfo.

The authorize step auto-approves (there is no user here). ``sandbox_realm_id`` is a sandbox-only
parameter choosing which existing company "the user picks"; without it a fresh company is created.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from sandboxes.qbo.state import SandboxState, sandbox

ACCOUNTING_SCOPE = "com.intuit.quickbooks.accounting"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status, headers=_NO_STORE)


def discovery_document(public_url: str) -> dict[str, Any]:
    base = public_url.rstrip("/")
    return {
        "issuer": f"{base}/op/v1",
        "authorization_endpoint": f"{base}/connect/oauth2",
        "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
        "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
        "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
        "jwks_uri": f"{base}/op/v1/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    }


async def openid_configuration(request: Request) -> Response:
    return JSONResponse(discovery_document(sandbox(request).settings.qbo_sandbox_public_url))


async def jwks(request: Request) -> Response:
    return JSONResponse({"keys": []})


async def authorize(request: Request) -> Response:
    state = sandbox(request)
    params = request.query_params
    redirect_uri = params.get("redirect_uri")
    if params.get("client_id") != state.settings.qbo_client_id:
        return PlainTextResponse("invalid client_id", 400)
    if not redirect_uri or params.get("response_type") != "code":
        return PlainTextResponse("redirect_uri and response_type=code are required", 400)
    chosen = params.get("sandbox_realm_id")
    if chosen:
        realm = state.store.get(chosen)
        if realm is None:
            return PlainTextResponse(f"no sandbox company {chosen}", 400)
    else:
        realm = state.create_realm(
            params.get("sandbox_company_name") or f"Sandbox Company_US_{len(state.store.realms)}"
        )
    answer: dict[str, str] = {"code": state.tokens.issue_code(realm.realm_id, redirect_uri)}
    if params.get("state") is not None:
        answer["state"] = params["state"]
    # realmId comes only with the accounting (or payments) scope.
    if ACCOUNTING_SCOPE in params.get("scope", "").split() or "payment" in params.get("scope", ""):
        answer["realmId"] = realm.realm_id
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(answer)}", 302)


def _client_ok(state: SandboxState, request: Request, form: Any) -> bool:
    header = request.headers.get("authorization", "")
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, _, secret = decoded.partition(":")
    expected = state.settings.qbo_client_secret.get_secret_value()
    return client_id == state.settings.qbo_client_id and hmac.compare_digest(
        str(secret or ""), expected
    )


async def token(request: Request) -> Response:
    state = sandbox(request)
    form = await request.form()
    if not _client_ok(state, request, form):
        return _oauth_error("invalid_client", "Client authentication failed", 401)
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        code, redirect_uri = form.get("code"), form.get("redirect_uri")
        issued = state.tokens.exchange_code(
            str(code or ""), str(redirect_uri) if redirect_uri else None
        )
    elif grant_type == "refresh_token":
        issued = state.tokens.refresh(str(form.get("refresh_token") or ""))
    else:
        return _oauth_error("unsupported_grant_type", f"grant_type {grant_type!r} not supported")
    if issued is None:
        return _oauth_error("invalid_grant", "Token has been expired or revoked.")
    return JSONResponse(issued, headers=_NO_STORE)


async def revoke(request: Request) -> Response:
    state = sandbox(request)
    raw = await request.body()
    try:
        body = json.loads(raw) if raw.strip().startswith(b"{") else {}
    except ValueError:
        body = {}
    form = await request.form() if not body else {}
    if not _client_ok(state, request, form):
        return _oauth_error("invalid_client", "Client authentication failed", 401)
    token_value = body.get("token") or form.get("token")
    if not token_value:
        return _oauth_error("invalid_request", "token is required")
    state.tokens.revoke(str(token_value))
    # RFC 7009: revoking an unknown token is not an error; Intuit answers 200 with no body.
    return Response(status_code=200)


async def userinfo(request: Request) -> Response:
    state = sandbox(request)
    header = request.headers.get("authorization", "")
    realm_id = state.tokens.realm_of(header.partition(" ")[2].strip())
    if realm_id is None:
        return _oauth_error("invalid_token", "Token invalid", 401)
    return JSONResponse(
        {
            "sub": f"sandbox-user-{realm_id}",
            "email": "sandbox.user@example.com",
            "emailVerified": True,
            "givenName": "Sandbox",
            "familyName": "User",
        }
    )


routes = [
    Route("/.well-known/openid_configuration", openid_configuration, methods=["GET"]),
    Route("/.well-known/openid_configuration/", openid_configuration, methods=["GET"]),
    Route("/.well-known/openid_sandbox_configuration/", openid_configuration, methods=["GET"]),
    Route("/op/v1/jwks", jwks, methods=["GET"]),
    Route("/connect/oauth2", authorize, methods=["GET"]),
    Route("/oauth2/v1/tokens/bearer", token, methods=["POST"]),
    Route("/oauth2/v1/tokens/revoke", revoke, methods=["POST"]),
    # The path Intuit's developer docs give for revoking (the discovery document names the one
    # above); both answer.
    Route("/v2/oauth2/tokens/revoke", revoke, methods=["POST"]),
    Route("/v1/openid_connect/userinfo", userinfo, methods=["GET"]),
]
