"""What every public API call goes through: auth, faults, limits, idempotency, logging.

The same handlers are also mounted under the control API ("act as a Re-Leased user"); there the gate
skips auth, limits and faults, and the calls are not counted as the product's requests. Each call
knows its principal (``Call.client``): the API client its token was issued to, or None for a user.
The client that made the company's accounting connection is its accounting side
(``Call.accounting_side``); the routes only that side may use while connected ask
``Call.accounting_only``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandboxes.released.auth import authenticate
from sandboxes.released.errors import ApiError, conflict, not_found
from sandboxes.released.faults import inject_request_faults
from sandboxes.released.idempotency import StoredResponse, fingerprint
from sandboxes.released.sandbox import Sandbox
from sandboxes.released.store import CompanyState
from shared.infra.logging import bind_unit_of_work, get_logger

log = get_logger(__name__)
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_REQUEST_LOG_LIMIT = 10_000


@dataclass
class Call:
    request: Request
    state: CompanyState
    sandbox: Sandbox
    body: bytes
    # The API client the token speaks for; None: a Re-Leased user (control-API token, /as-user).
    client: str | None = None

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    @property
    def accounting_side(self) -> bool:
        """The caller is the client that made the company's accounting connection."""
        return self.client is not None and self.client == self.state.accounting_client

    @property
    def user_while_connected(self) -> bool:
        """A write only the accounting side may make is refused for this caller."""
        return self.state.connected and not self.accounting_side

    def accounting_only(self, code: str, message: str, ident: str = "request") -> None:
        """Refuse with 409 ``code`` unless the accounting side calls (or nothing is connected)."""
        if self.user_while_connected:
            raise conflict(code, message, ident)


Handler = Callable[[Call], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
Gate = Callable[[Handler], Endpoint]


def public_gate(sandbox: Sandbox) -> Gate:
    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            bind_unit_of_work(method=request.method, path=request.url.path)
            state: CompanyState | None = None
            try:
                state, client = authenticate(sandbox, request)
                state.request_total += 1
                response = await _limited(sandbox, state, client, request, handler)
            except ApiError as err:
                response = err.response()
            except Exception:
                log.exception("released_sandbox_unhandled")
                response = ApiError(500, "INTERNAL", "unexpected sandbox error").response()
            if state is not None and response.status_code == 429:
                state.rate_limited += 1
            if state is not None:
                into = state.requests if request.method in _WRITES else state.reads
                _record(sandbox, into, request, response)
            log.info(
                "released_sandbox_request",
                status=response.status_code,
                company_id=state.id if state else None,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            return response

        return endpoint

    return wrap


def user_gate(sandbox: Sandbox) -> Gate:
    """Control-API variant: the company comes from the path; no auth, limits or faults."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            company_id = str(request.path_params["companyId"])
            state = sandbox.store.companies.get(company_id)
            try:
                if state is None:
                    raise not_found("company", company_id)
                return await handler(Call(request, state, sandbox, await request.body()))
            except ApiError as err:
                return err.response()
            except Exception:
                log.exception("released_sandbox_unhandled")
                return ApiError(500, "INTERNAL", "unexpected sandbox error").response()

        return endpoint

    return wrap


async def _limited(
    sandbox: Sandbox, state: CompanyState, client: str | None, request: Request, handler: Handler
) -> Response:
    remaining = sandbox.limiter.acquire(state.id)
    try:
        # Inside the slot: a slow sandbox holds its concurrency slots, like a slow server does.
        await inject_request_faults(state.faults, sandbox.rng)
        body = await request.body()
        call = Call(request, state, sandbox, body, client)
        response = await _idempotent(sandbox, call, handler)
    except ApiError as err:
        # Refusals count against the limit too, so they carry the header as well.
        response = err.response()
    finally:
        sandbox.limiter.release(state.id)
    response.headers["X-MinLimit-Remaining"] = str(remaining)
    return response


async def _idempotent(sandbox: Sandbox, call: Call, handler: Handler) -> Response:
    key = call.request.headers.get("idempotency-key")
    if not key or call.request.method not in _WRITES:
        return await handler(call)
    company = call.state.id
    print_ = fingerprint(call.request.method, call.request.url.path, call.body)
    async with sandbox.idempotency.exclusive(company, key):
        now = sandbox.clock.now()
        stored = sandbox.idempotency.lookup(company, key, print_, now)
        if stored is not None:
            headers = {**stored.headers, "Idempotent-Replayed": "true"}
            return Response(stored.body, status_code=stored.status, headers=headers)
        response = await handler(call)
        # Only outcomes worth repeating are remembered: a 5xx or 429 must be retryable for real.
        if response.status_code < 500 and response.status_code != 429:
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            entry = StoredResponse(print_, response.status_code, bytes(response.body), headers, now)
            sandbox.idempotency.remember(company, key, entry)
        return response


def _record(sandbox: Sandbox, into: list[Any], request: Request, response: Response) -> None:
    into.append(
        {
            "time": sandbox.store.now(),
            "method": request.method,
            "path": request.url.path,
            "status": response.status_code,
            "idempotencyKey": request.headers.get("idempotency-key"),
            "replayed": response.headers.get("idempotent-replayed") == "true",
        }
    )
    if len(into) > _REQUEST_LOG_LIMIT:
        del into[: len(into) - _REQUEST_LOG_LIMIT]
