"""Operations on the admin API: status, dead letters, conflicts, links, parked events.

Each handler parses, calls ``shared.ops``, answers JSON. Operations that publish (replay, resume)
open a short-lived broker connection, so the admin service starts and serves reads while
RabbitMQ is down; they answer 503 then, with nothing changed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from shared.adapters.broker import connect_broker
from shared.admin.context import OpsContext, admin_state
from shared.admin.params import (
    BadRequest,
    _int,
    _limit,
    _text,
    _time,
    _uuid,
    error_response,
    guarded,
)
from shared.delivery import parking
from shared.domain.errors import SyncError
from shared.infra.errors import InfraUnavailable
from shared.infra.logging import get_logger
from shared.ops import absorb, conflict_resolution, dead_letters, records, replay, status
from shared.ops.dead_letters import DeadLetterFilter

log = get_logger("admin.ops")
# One request replays at most this many letters; the CLI sends bigger jobs in batches.
MAX_REPLAY_BATCH = 200


def _ops(request: Request) -> OpsContext:
    return admin_state(request)["ops"]


def parse_filter(params: dict[str, Any]) -> DeadLetterFilter:
    raw_ids = params.get("ids") or []
    if not isinstance(raw_ids, list):
        raise BadRequest("ids must be a list of dead-letter ids")
    status_value = params.get("status", "dead")
    return DeadLetterFilter(
        ids=tuple(_int(i, 0, "ids") for i in raw_ids),
        connection_id=_uuid(params.get("connection_id")),
        entity=_text(params.get("entity"), "entity"),
        error_class=_text(params.get("error_class"), "error_class"),
        since=_time(params.get("since")),
        until=_time(params.get("until")),
        status=None if status_value in ("any", "", None) else _text(status_value, "status"),
    )


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def _path_int(request: Request, name: str = "id") -> int:
    return _int(request.path_params[name], 0, name)


async def get_status(request: Request) -> Response:
    ops = _ops(request)
    async with ops.pool.acquire() as conn:
        connections = await status.connections_status(conn)
    try:
        async with connect_broker(ops.amqp_url, timeout=3.0) as broker:
            queues: dict[str, int | None] | None = await status.queue_depths(broker)
    except InfraUnavailable:
        queues = None  # the database half of the answer is still worth having
    return JSONResponse({"connections": connections, "queues": queues})


async def list_dead_letters(request: Request) -> Response:
    params = dict(request.query_params)
    where = parse_filter(params)
    limit = _limit(params.get("limit"))
    async with _ops(request).pool.acquire() as conn:
        total = await dead_letters.count(conn, where)
        items = await dead_letters.select(conn, where, limit=limit)
    return JSONResponse({"count": total, "items": items})


async def show_dead_letter(request: Request) -> Response:
    async with _ops(request).pool.acquire() as conn:
        found = await dead_letters.show(conn, _path_int(request))
    return JSONResponse(found) if found else error_response(404, "not_found", "no such dead letter")


async def replay_dead_letter(request: Request) -> Response:
    ops = _ops(request)
    try:
        async with ops.publisher() as publisher:
            replay_id = await replay.replay_one(ops.pool, publisher, _path_int(request))
    except replay.NotReplayable as exc:
        return error_response(409, "not_replayable", str(exc))
    if replay_id is None:
        return error_response(404, "not_found", "no such dead letter (or it was purged)")
    return JSONResponse({"replay_id": replay_id})


async def replay_dead_letters(request: Request) -> Response:
    """Bulk replay by filter; ``dry_run`` answers the count and ids and changes nothing."""
    body = await _body(request)
    where = parse_filter(body)
    limit = min(_limit(body.get("limit"), MAX_REPLAY_BATCH), MAX_REPLAY_BATCH)
    ops = _ops(request)
    async with ops.pool.acquire() as conn:
        matched = await dead_letters.count(conn, where)
        chosen = await dead_letters.ids(conn, where, limit=10_000 if body.get("dry_run") else limit)
    if body.get("dry_run"):
        return JSONResponse({"dry_run": True, "matched": matched, "ids": chosen})
    async with ops.publisher() as publisher:
        report = await replay.replay_many(
            ops.pool, publisher, chosen, ops.throttle, batched=ops.batched
        )
    return JSONResponse({"dry_run": False, **report.document(), "remaining": matched - len(chosen)})


async def purge_dead_letters(request: Request) -> Response:
    body = await _body(request)
    where = parse_filter(body)
    async with _ops(request).pool.acquire() as conn:
        if body.get("dry_run"):
            return JSONResponse({"dry_run": True, "matched": await dead_letters.count(conn, where)})
        purged = await dead_letters.purge(conn, where)
    return JSONResponse({"dry_run": False, "purged": purged})


async def absorb_dead_queue(request: Request) -> Response:
    """Give every message in ``sync.dead`` a ``dead_letters`` row (``shared.ops.absorb``)."""
    ops = _ops(request)
    async with ops.broker() as broker:
        channel = await broker.channel()
        try:
            created = await absorb.absorb(ops.pool, channel)
        finally:
            await channel.close()
    return JSONResponse({"created": created})


async def list_conflicts(request: Request) -> Response:
    params = request.query_params
    async with _ops(request).pool.acquire() as conn:
        items = await records.list_conflicts(
            conn,
            _uuid(params.get("connection_id")),
            include_resolved=params.get("all") in ("1", "true"),
            limit=_limit(params.get("limit")),
        )
    return JSONResponse({"items": items})


async def resolve_conflict(request: Request) -> Response:
    """With ``side`` (qbo or released) the engine makes both systems hold that side's value and
    then closes the conflict (202, queued; 409 with the reason when the ownership rules forbid
    it); without, the conflict is acknowledged as it stands."""
    body = await _body(request)
    by = _text(body.get("resolved_by"), "resolved_by") or "admin"
    side = _text(body.get("side"), "side")
    if side is not None:
        return await _resolve_by_side(request, _path_int(request), side, by)
    async with _ops(request).pool.acquire() as conn:
        done = await records.resolve_conflict(conn, _path_int(request), by)
    if not done:
        return error_response(404, "not_found", "no such open conflict")
    return JSONResponse({"id": _path_int(request), "resolved_by": by})


async def _resolve_by_side(request: Request, conflict_id: int, side: str, by: str) -> Response:
    ops = _ops(request)
    await ops.throttle.wait()
    try:
        async with ops.publisher() as publisher, ops.pool.acquire() as conn:
            queued = await conflict_resolution.request(conn, publisher, conflict_id, side, by)
    except conflict_resolution.Refused as exc:
        return error_response(409, "refused", str(exc))
    if queued is None:
        return error_response(404, "not_found", "no such open conflict")
    answer = {"id": conflict_id, "side": side, "field": queued.field, "status": "queued"}
    return JSONResponse({**answer, "event_id": queued.event_id}, status_code=202)


async def list_links(request: Request) -> Response:
    params = request.query_params
    connection_id = _uuid(request.path_params["id"])
    assert connection_id is not None  # the path segment is never empty
    async with _ops(request).pool.acquire() as conn:
        items = await records.find_links(
            conn,
            connection_id,
            record_id=_text(params.get("record_id"), "record_id"),
            entity=_text(params.get("entity"), "entity"),
            limit=_limit(params.get("limit")),
        )
    return JSONResponse({"items": items})


async def unlink(request: Request) -> Response:
    async with _ops(request).pool.acquire() as conn:
        link = await records.unlink(conn, _path_int(request))
    return JSONResponse(link) if link else error_response(404, "not_found", "no such link")


async def relink(request: Request) -> Response:
    body = await _body(request)
    async with _ops(request).pool.acquire() as conn:
        link = await records.relink(
            conn,
            _path_int(request),
            qbo_id=_text(body.get("qbo_id"), "qbo_id"),
            released_id=_text(body.get("released_id"), "released_id"),
        )
    return JSONResponse(link) if link else error_response(404, "not_found", "no such link")


async def list_parked(request: Request) -> Response:
    connection_id = _uuid(request.path_params["id"])
    assert connection_id is not None
    async with _ops(request).pool.acquire() as conn:
        items = await parking.listing(conn, connection_id)
    return JSONResponse({"items": items})


async def release_parked(request: Request, connection_id: UUID) -> dict[str, Any]:
    """Republish a resumed connection's parked events; never fails the resume itself."""
    ops = _ops(request)
    async with ops.pool.acquire() as conn:
        if await parking.count(conn, connection_id) == 0:
            return {"released": 0}  # the common case needs no broker at all
    try:
        async with ops.publisher() as publisher:
            released = await parking.release(ops.pool, publisher, connection_id)
    except (InfraUnavailable, SyncError) as exc:
        log.warning("parked_release_failed", connection_id=str(connection_id), error=str(exc))
        return {"released": None, "warning": f"parked events stay parked: {exc}; resume again"}
    return {"released": released}


def ops_routes() -> list[BaseRoute]:
    table: list[tuple[str, Any, str]] = [
        ("/api/status", get_status, "GET"),
        ("/api/dlq", list_dead_letters, "GET"),
        ("/api/dlq/replay", replay_dead_letters, "POST"),
        ("/api/dlq/purge", purge_dead_letters, "POST"),
        ("/api/dlq/absorb", absorb_dead_queue, "POST"),
        ("/api/dlq/{id:int}", show_dead_letter, "GET"),
        ("/api/dlq/{id:int}/replay", replay_dead_letter, "POST"),
        ("/api/conflicts", list_conflicts, "GET"),
        ("/api/conflicts/{id:int}/resolve", resolve_conflict, "POST"),
        ("/api/connections/{id}/links", list_links, "GET"),
        ("/api/connections/{id}/parked", list_parked, "GET"),
        ("/api/links/{id:int}/unlink", unlink, "POST"),
        ("/api/links/{id:int}/relink", relink, "POST"),
    ]
    return [Route(path, guarded(handler), methods=[method]) for path, handler, method in table]
