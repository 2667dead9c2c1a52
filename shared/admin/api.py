"""Route handlers for the admin API. Thin: parse, call the store or the connect flow, answer."""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from shared.admin.connect import ONE_TO_ONE, ConnectRefused, GrantRealmMismatch
from shared.admin.context import AdminContext, admin_state
from shared.admin.oauth_state import InvalidState
from shared.admin.ops_api import release_parked
from shared.admin.store import ConnectionRow
from shared.domain.connections import (
    ConnectionSettings,
    InvalidSettings,
    default_settings,
    effective_settings,
    merge_settings,
)
from shared.domain.errors import ConnectionRevoked, SyncError
from shared.infra.logging import get_logger

log = get_logger("admin.api")


def _ctx(request: Request) -> AdminContext:
    return admin_state(request)["admin"]


def error(status: int, code: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": code, "reason": reason}, status_code=status)


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


async def _connection(request: Request) -> ConnectionRow | JSONResponse:
    try:
        connection_id = UUID(request.path_params["id"])
    except ValueError:
        return error(404, "not_found", "no such connection")
    row = await _ctx(request).connections.get(connection_id)
    return row if row is not None else error(404, "not_found", "no such connection")


async def list_connections(request: Request) -> Response:
    rows = await _ctx(request).connections.list()
    return JSONResponse([row.summary() for row in rows])


def _new_settings(body: dict[str, Any]) -> ConnectionSettings:
    raw = body.get("sync_from_date")
    if raw is None:
        return default_settings()
    return merge_settings(default_settings().document(), {"sync_from_date": raw})


async def create_connection(request: Request) -> Response:
    body = await _json_body(request)
    company = body.get("released_company_id") if isinstance(body, dict) else None
    if not isinstance(company, str) or not company.strip():
        return error(400, "invalid_request", "released_company_id (a non-empty string) is required")
    try:
        settings = _new_settings(body)
    except InvalidSettings as exc:
        return error(400, "invalid_settings", str(exc))
    ctx = _ctx(request)
    row, created = await ctx.connections.create(company.strip(), settings)
    if created:
        log.info(
            "connection_created",
            connection_id=str(row.id),
            released_company_id=row.released_company_id,
        )
    answer = {"id": str(row.id), "authorize_url": ctx.flow.authorize_url(row.id)}
    return JSONResponse(answer, status_code=201 if created else 200)


async def get_connection(request: Request) -> Response:
    row = await _connection(request)
    if isinstance(row, Response):
        return row
    imported = await _ctx(request).connections.import_state(row.id)
    return JSONResponse({**row.details(), "import": imported})


async def authorize(request: Request) -> Response:
    row = await _connection(request)
    if isinstance(row, Response):
        return row
    return RedirectResponse(_ctx(request).flow.authorize_url(row.id), status_code=302)


async def oauth_callback(request: Request) -> Response:
    params = request.query_params
    if params.get("error"):
        return error(400, "authorization_denied", f"QuickBooks answered {params['error']}")
    code, state, realm = params.get("code"), params.get("state"), params.get("realmId")
    if not code or not state or not realm:
        return error(400, "invalid_callback", "code, state and realmId are required")
    try:
        result = await _ctx(request).flow.complete(code, state, realm)
    except InvalidState as exc:
        return error(400, "invalid_state", str(exc))
    except GrantRealmMismatch as exc:
        return error(400, "invalid_callback", f"{exc}; start the connect flow again")
    except ConnectRefused as exc:
        body = {"error": ONE_TO_ONE, "reason": exc.reason, "message": exc.message}
        return JSONResponse(body, status_code=409)
    except ConnectionRevoked as exc:
        return error(400, "grant_refused", f"{exc}; start the connect flow again")
    except SyncError as exc:
        log.warning("connect_failed", error=str(exc))
        return error(502, "upstream_unavailable", f"{exc}; nothing was changed, try again")
    # A reconnect resumes the connection: what waited for the new grant runs now.
    parked = await release_parked(request, result.connection.id)
    return JSONResponse({**result.document(), **parked})


async def get_settings(request: Request) -> Response:
    row = await _connection(request)
    if isinstance(row, Response):
        return row
    return JSONResponse(effective_settings(row.settings).document())


async def patch_settings(request: Request) -> Response:
    row = await _connection(request)
    if isinstance(row, Response):
        return row
    try:
        settings = merge_settings(row.settings, await _json_body(request))
    except InvalidSettings as exc:
        return error(400, "invalid_settings", str(exc))
    await _ctx(request).connections.save_settings(row.id, settings)
    log.info("connection_settings_changed", connection_id=str(row.id), settings=settings.document())
    return JSONResponse(settings.document())


async def pause(request: Request) -> Response:
    row = await _connection(request)
    if isinstance(row, Response):
        return row
    reason = f"paused by an admin at {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}"
    await _ctx(request).connections.set_status(row.id, "paused", reason)
    log.info("connection_paused", connection_id=str(row.id))
    return JSONResponse({**row.summary(), "status": "paused"})


async def resume(request: Request) -> Response:
    row = await _connection(request)
    if isinstance(row, Response):
        return row
    if row.qbo_realm_id is None or not row.has_tokens:
        return error(409, "not_connected", "connect the company to QuickBooks first (authorize)")
    if row.status == "revoked":
        return error(409, "revoked", "the QuickBooks grant was revoked: reconnect (authorize)")
    await _ctx(request).connections.set_status(row.id, "active", None)
    # Parked work goes back on the bus only once the connection is active again, so it runs.
    parked = await release_parked(request, row.id)
    log.info("connection_resumed", connection_id=str(row.id), **parked)
    return JSONResponse({**row.summary(), "status": "active", **parked})


def routes() -> list[BaseRoute]:
    base = "/api/connections"
    return [
        Route("/oauth/qbo/callback", oauth_callback, methods=["GET"]),
        Route(base, list_connections, methods=["GET"]),
        Route(base, create_connection, methods=["POST"]),
        Route(base + "/{id}", get_connection, methods=["GET"]),
        Route(base + "/{id}/authorize", authorize, methods=["GET"]),
        Route(base + "/{id}/settings", get_settings, methods=["GET"]),
        Route(base + "/{id}/settings", patch_settings, methods=["PATCH"]),
        Route(base + "/{id}/pause", pause, methods=["POST"]),
        Route(base + "/{id}/resume", resume, methods=["POST"]),
    ]
