"""The application factory: routes, the lifespan that owns the webhook dispatcher, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from sandboxes.released.attachments import all_attachment_routes
from sandboxes.released.auth import token_endpoint
from sandboxes.released.batch import batch_routes
from sandboxes.released.control import (
    company_control_routes,
    connection_routes,
    global_routes,
)
from sandboxes.released.errors import ApiError
from sandboxes.released.gate import Gate, public_gate, user_gate
from sandboxes.released.openapi import build_openapi
from sandboxes.released.routes_core import all_core_routes
from sandboxes.released.routes_documents import all_document_routes
from sandboxes.released.sandbox import Sandbox
from sandboxes.released.settings import SandboxSettings
from shared.infra.logging import get_logger
from shared.infra.request_limits import BodyLimit

CONTROL_MAX_BODY = 1024 * 1024

log = get_logger(__name__)


def api_routes(gate: Gate) -> list[BaseRoute]:
    return [
        *all_core_routes(gate),
        *all_document_routes(gate),
        *batch_routes(gate),
        *all_attachment_routes(gate),
    ]


def create_app(settings: SandboxSettings) -> Starlette:
    sandbox = Sandbox.build(settings)
    openapi = build_openapi()

    async def token(request: Request) -> Response:
        return await token_endpoint(sandbox, request)

    async def openapi_doc(request: Request) -> Response:
        return JSONResponse(openapi)

    public_api = [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/openapi.json", openapi_doc, methods=["GET"]),
        *api_routes(public_gate(sandbox)),
    ]
    user = user_gate(sandbox)
    per_company = [
        *company_control_routes(user),
        Mount("/accounting", routes=connection_routes(user)),
        Mount("/as-user", routes=api_routes(user)),
    ]
    control = [*global_routes(sandbox), Mount("/companies/{companyId}", routes=per_company)]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session, sandbox.dispatcher.running(session):
            log.info("released_sandbox_ready", api_base=settings.api_base)
            yield
        log.info("released_sandbox_stopped")

    app = Starlette(
        routes=[Mount("/api/v1", routes=public_api), Mount("/_sandbox", routes=control)],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error},
    )
    # Tests and the benchmark reach the state through here; nothing else does.
    app.state.sandbox = sandbox
    # Token and control bodies are small JSON or forms; nothing there needs more than this.
    app.add_middleware(BodyLimit, max_bytes=CONTROL_MAX_BODY, paths=("/api/v1/oauth/", "/_sandbox"))
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "HTTP_ERROR")
    return ApiError(status, code, str(getattr(exc, "detail", "error"))).response()
