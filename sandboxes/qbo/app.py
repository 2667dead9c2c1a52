"""``create_app(settings)``: the QBO sandbox as one Starlette app; no import-time work."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.qbo import api, attachments, control, errors, oauth
from sandboxes.qbo.errors import fault_response, injected_server_error
from sandboxes.qbo.settings import SandboxSettings
from sandboxes.qbo.state import SandboxState, build_state, sandbox
from shared.infra.logging import get_logger
from shared.infra.request_limits import BodyLimit

CONTROL_MAX_BODY = 1024 * 1024

log = get_logger("qbo_sandbox")


async def unexpected(request: Request, exc: Exception) -> Response:
    """The one catch-all: a sandbox bug answers like a QBO system fault, with a traceback logged."""
    log.exception("qbo_sandbox_unhandled_error", path=request.url.path)
    return fault_response(injected_server_error(500))


async def no_route(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in QBO's fault shape (a client parses it), not text."""
    return fault_response(errors.no_route(request.method, request.url.path))


async def health(request: Request) -> Response:
    state = sandbox(request)
    return JSONResponse({"status": "ok", "realms": len(state.store.realms)})


def create_app(settings: SandboxSettings) -> Starlette:
    state = build_state(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, SandboxState]]:
        async with state.dispatcher.running():
            log.info("qbo_sandbox_started", public_url=settings.qbo_sandbox_public_url)
            yield {"sandbox": state}
        log.info("qbo_sandbox_stopped")

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            *oauth.routes,
            *control.routes,
            *attachments.routes,
            *api.routes,
        ],
        lifespan=lifespan,
        exception_handlers={404: no_route, 405: no_route, Exception: unexpected},
    )
    # Handlers read the state from the app, so in-process tests work without a lifespan too.
    app.state.sandbox = state
    # Token and control bodies are a few hundred bytes; nothing there needs more than this.
    app.add_middleware(BodyLimit, max_bytes=CONTROL_MAX_BODY, paths=("/oauth2/", "/_sandbox"))
    return app
