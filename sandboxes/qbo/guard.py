"""What stands between a client and the data API: token, limits, injected faults, the log."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from sandboxes.qbo import errors
from sandboxes.qbo.clock import response_time
from sandboxes.qbo.state import SandboxState, sandbox
from sandboxes.qbo.store import Realm, RequestRecord
from sandboxes.qbo.tokens import TokenCheck
from shared.infra.logging import get_logger

REQUESTS_PER_MINUTE = 500
MAX_CONCURRENT = 10
BATCHES_PER_MINUTE = 40
WINDOW_SECONDS = 60.0

log = get_logger("qbo_sandbox.api")

Handler = Callable[[SandboxState, Realm, Request], Awaitable[Response]]

_AUTH_DETAIL = {
    TokenCheck.MISSING: "Authorization header missing or not a Bearer token",
    TokenCheck.INVALID: "Token invalid",
    TokenCheck.EXPIRED: "Token expired",
    TokenCheck.REVOKED: "Token revoked",
}


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _over(window: deque[float], now: float, limit: int) -> bool:
    while window and window[0] <= now - WINDOW_SECONDS:
        window.popleft()
    return len(window) >= limit


def _throttle(state: SandboxState, realm: Realm, batch: bool) -> bool:
    """True when QBO would answer 429 (limits are real-time, not scaled)."""
    faults = realm.faults
    if faults.error_429_rate and state.rng.random() < faults.error_429_rate:
        return True
    if not state.config.rate_limits:
        return False
    now = state.clock.monotonic()
    if realm.in_flight >= MAX_CONCURRENT or _over(realm.recent, now, REQUESTS_PER_MINUTE):
        return True
    if batch and _over(realm.recent_batches, now, BATCHES_PER_MINUTE):
        return True
    realm.recent.append(now)
    if batch:
        realm.recent_batches.append(now)
    return False


async def guarded(request: Request, handler: Handler, *, batch: bool = False) -> Response:
    state = sandbox(request)
    request.state.started = time.perf_counter()
    realm_id = request.path_params["realm_id"]
    check = state.tokens.check(_bearer(request), realm_id)
    if check is TokenCheck.WRONG_REALM:
        return errors.authorization_failure_response(realm_id)
    if check is not TokenCheck.OK:
        return errors.auth_failure_response(_AUTH_DETAIL[check])
    realm = state.store.get(realm_id)
    if realm is None:
        return errors.authorization_failure_response(realm_id)
    if _throttle(state, realm, batch):
        return _finish(realm, request, errors.fault_response(errors.throttled()))
    realm.in_flight += 1
    try:
        response = await _run(state, realm, request, handler)
    finally:
        realm.in_flight -= 1
    return _finish(realm, request, response)


async def _run(state: SandboxState, realm: Realm, request: Request, handler: Handler) -> Response:
    faults = realm.faults
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    for status, rate in ((500, faults.error_500_rate), (503, faults.error_503_rate)):
        if rate and state.rng.random() < rate:
            return errors.fault_response(errors.injected_server_error(status))
    try:
        return await handler(state, realm, request)
    except errors.QboFault as fault:
        return errors.fault_response(fault)


def _finish(realm: Realm, request: Request, response: Response) -> Response:
    audit = getattr(request.state, "audit", None) or (None, request.method.lower(), False)
    entity, operation, write = audit
    realm.requests.append(
        RequestRecord(
            time=response_time(),
            method=request.method,
            path=request.url.path,
            entity=entity,
            operation=operation,
            request_id=request.query_params.get("requestid"),
            status=response.status_code,
            write=write and 200 <= response.status_code < 300,
        )
    )
    response.headers["intuit_tid"] = str(uuid.uuid4())
    # One canonical line per API request.
    log.info(
        "qbo_api_request",
        realm_id=realm.realm_id,
        method=request.method,
        entity=entity,
        operation=operation,
        status=response.status_code,
        latency_ms=round((time.perf_counter() - request.state.started) * 1000, 2),
    )
    return response


def audit(request: Request, entity: str | None, operation: str, write: bool) -> None:
    """Tell the request log what this request was (read by the control API)."""
    request.state.audit = (entity, operation, write)
