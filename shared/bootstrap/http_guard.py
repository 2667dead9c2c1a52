"""uvicorn as every HTTP service of ours runs it: connection limits and a header deadline.

uvicorn bounds idle keep-alive connections and, with ``limit_concurrency``, the connections and
requests it serves at once (more get 503), but it waits for a request's headers forever: a
client trickling one byte a second holds its connection and a slot for good. The protocol
below closes a connection whose request headers are not complete within ``header_timeout_s``
of the connection opening or of its previous response. Body deadlines belong to the route (the
receivers answer 408), which knows what a body is for.
"""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared.infra.settings import InfraSettings


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout_s: float = 10.0
    _deadline: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        waiting = bool(self.pipeline)
        super().on_response_complete()
        if not waiting and not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_config(app: ASGIApp, host: str, port: int, settings: InfraSettings) -> uvicorn.Config:
    protocol = type(
        "GuardedHttp",
        (HeaderDeadlineProtocol,),
        {"header_timeout_s": settings.http_header_timeout_s},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=20,
        http=protocol,
        limit_concurrency=settings.http_limit_concurrency,
        timeout_keep_alive=int(max(1, settings.http_keep_alive_s)),
    )
