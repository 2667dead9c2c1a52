"""ASGI middleware for the admin API: the bearer-token gate and one canonical line per request."""

from __future__ import annotations

import hmac
import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.infra.logging import bind_unit_of_work, get_logger

log = get_logger("admin.http")
PROTECTED_PREFIX = "/api/"


async def send_json(send: Send, status: int, body: dict[str, str]) -> None:
    raw = json.dumps(body).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="admin"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class RequireAdminToken:
    """Every ``/api/*`` request needs ``Authorization: Bearer <ADMIN_TOKEN>``."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PROTECTED_PREFIX):
            await self._app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization")
        if given is None:
            await send_json(send, 401, _unauthorized("missing Authorization: Bearer header"))
            return
        # Constant-time, so the token cannot be guessed byte by byte from response times.
        if not hmac.compare_digest(given, self._expected):
            await send_json(send, 401, _unauthorized("admin token does not match"))
            return
        await self._app(scope, receive, send)


def _unauthorized(reason: str) -> dict[str, str]:
    return {"error": "unauthorized", "reason": reason}


class RequestLog:
    """``admin_request`` with method, path, status and latency, once per request."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        bind_unit_of_work(method=scope["method"], path=scope["path"])

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, capture)
        except Exception:
            log.exception("admin_request_failed")
            raise
        finally:
            log.info(
                "admin_request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                latency_ms=round((time.perf_counter() - started) * 1000, 1),
            )
