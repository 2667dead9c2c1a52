"""Sync results on the admin API: every record's last outcome, one record in full, resync.

``GET /api/connections/{id}/results`` filters by entity, outcome, error class, direction, a text
(either side's id, the number or the name) and a time range, and pages; the record routes answer
both ids with links to each side, the last outcome, why and the remedy, the history of outcomes
and the last-synced snapshot. Unlink and relink are the link routes (``/api/links/{id}/...``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from shared.admin.context import admin_state
from shared.admin.params import _int, error_response, guarded
from shared.ops import results
from shared.ops.results import InvalidFilter, ResultFilter

# Where a person opens a record in each product; {kind} is the record's type in lower case.
QBO_PAGES = {"customer": "customerdetail?nameId={id}", "vendor": "vendordetail?nameId={id}"}
QBO_TXN_PAGE = "{kind}?txnId={id}"


def _time(raw: str | None, name: str) -> datetime | None:
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidFilter(f"{name} is not an ISO-8601 time: {raw[:40]!r}") from exc


def parse_filter(params: Any) -> ResultFilter:
    """A ``ResultFilter`` from query parameters (``q`` is the text search)."""
    return ResultFilter(
        entity=params.get("entity") or None,
        outcome=params.get("outcome") or None,
        error_class=params.get("error_class") or None,
        text=(params.get("q") or "").strip() or None,
        since=_time(params.get("since"), "since"),
        until=_time(params.get("until"), "until"),
        direction=params.get("direction") or None,
    )


def connection_id_of(request: Request) -> UUID | None:
    try:
        return UUID(request.path_params["id"])
    except ValueError:
        return None


def record_links(qbo_app_url: str, released_app_url: str, record: dict[str, Any]) -> dict[str, Any]:
    """Where each side shows this record (None for a side it has no id on)."""
    qbo_id = record.get("qbo_id") or (
        record["source_id"] if record["source"] == "qbo" else record.get("target_id")
    )
    released_id = record.get("released_id") or (
        record["source_id"] if record["source"] == "released" else record.get("target_id")
    )
    kind = str(record.get("qbo_type") or record["entity"]).lower()
    page = QBO_PAGES.get(kind, QBO_TXN_PAGE)
    return {
        "qbo_id": qbo_id,
        "released_id": released_id,
        "qbo_url": f"{qbo_app_url.rstrip('/')}/{page.format(kind=kind, id=quote(qbo_id))}"
        if qbo_id
        else None,
        "released_url": f"{released_app_url.rstrip('/')}/{record['entity']}s/{quote(released_id)}"
        if released_id
        else None,
    }


def with_links(request: Request, record: dict[str, Any]) -> dict[str, Any]:
    settings = admin_state(request)["admin"].settings
    return {**record, **record_links(settings.qbo_app_url, settings.released_app_url, record)}


async def list_results(request: Request) -> Response:
    connection_id = connection_id_of(request)
    if connection_id is None:
        return error_response(404, "not_found", "no such connection")
    params = request.query_params
    where = parse_filter(params)
    limit = _int(params.get("limit"), 50, "limit")
    offset = _int(params.get("offset"), 0, "offset", low=0)
    async with admin_state(request)["ops"].pool.acquire() as conn:
        total, items = await results.list_results(
            conn, connection_id, where, limit=limit, offset=offset
        )
    return JSONResponse(
        {
            "count": total,
            "limit": min(max(limit, 1), results.MAX_PAGE),
            "offset": max(offset, 0),
            "items": [with_links(request, i) for i in items],
        }
    )


def _record_key(request: Request) -> tuple[UUID, str, str, str] | None:
    connection_id = connection_id_of(request)
    direction = request.path_params["direction"]
    if connection_id is None or direction not in results.DIRECTIONS:
        return None
    return connection_id, direction, request.path_params["entity"], request.path_params["source_id"]


async def show_record(request: Request) -> Response:
    key = _record_key(request)
    if key is None:
        return error_response(404, "not_found", "no such record")
    async with admin_state(request)["ops"].pool.acquire() as conn:
        found = await results.record_detail(conn, *key)
    if found is None:
        return error_response(404, "not_found", "no result recorded for this record")
    return JSONResponse(with_links(request, found))


async def resync_record(request: Request) -> Response:
    key = _record_key(request)
    if key is None:
        return error_response(404, "not_found", "no such record")
    ops = admin_state(request)["ops"]
    await ops.throttle.wait()
    async with ops.publisher() as publisher, ops.pool.acquire() as conn:
        event_id = await results.resync(conn, publisher, *key)
    if event_id is None:
        return error_response(404, "not_found", "no result recorded for this record")
    return JSONResponse({"event_id": event_id}, status_code=202)


def results_routes() -> list[BaseRoute]:
    base = "/api/connections/{id}/results"
    record = base + "/{direction}/{entity}/{source_id}"
    return [
        Route(base, guarded(list_results, InvalidFilter), methods=["GET"]),
        Route(record, guarded(show_record, InvalidFilter), methods=["GET"]),
        Route(record + "/resync", guarded(resync_record, InvalidFilter), methods=["POST"]),
    ]
