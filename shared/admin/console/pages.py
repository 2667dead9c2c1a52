"""The console's pages (GET): connections with charts, sync results, one record, dead letters,
one dead letter, conflicts. Each reads through ``shared.ops`` and renders a template."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from shared.adapters.broker import connect_broker
from shared.admin.console.charts import bar_chart, line_chart
from shared.admin.console.render import page
from shared.admin.context import admin_state
from shared.admin.ops_api import parse_filter as parse_letter_filter
from shared.admin.params import BadRequest
from shared.admin.results_api import parse_filter, with_links
from shared.delivery.parking import NEEDS_REAUTH
from shared.infra.errors import InfraUnavailable
from shared.ops import backlog, conflict_view, dead_letters, records, results, status, timeline

PAGE_SIZE = 50


def not_found(request: Request, what: str) -> Response:
    return page(request, "message.html", 404, heading="Not found", text=f"No such {what}.")


def _uuid(raw: str) -> UUID | None:
    try:
        return UUID(raw)
    except ValueError:
        return None


async def _budget_use(request: Request, item: dict[str, Any]) -> tuple[float, float]:
    budgets = admin_state(request)["budgets"]
    qbo = released = 0.0
    if item.get("qbo_realm_id"):
        qbo, _ = await budgets["qbo"].usage(f"qbo:{item['qbo_realm_id']}")
    released, _ = await budgets["released"].usage(f"released:{item['released_company_id']}")
    return qbo, released


async def connections(request: Request) -> Response:
    ops = admin_state(request)["ops"]
    async with ops.pool.acquire() as conn:
        items = await status.connections_status(conn)
        per_minute = await timeline.events_per_minute(conn)
        latency = await timeline.latency_per_minute(conn)
    for item in items:
        reason = str(item.get("status_reason") or "")
        item["needs_reauth"] = item["status"] == "revoked" or reason.startswith(NEEDS_REAUTH)
        item["budget_qbo"], item["budget_released"] = await _budget_use(request, item)
        async with ops.pool.acquire() as conn:
            item["backlog"] = await backlog.backlog(conn, item["id"])
    queues: dict[str, int | None] | None
    try:
        async with connect_broker(ops.amqp_url, timeout=3.0) as broker:
            queues = await status.queue_depths(broker)
    except InfraUnavailable:
        queues = None
    return page(
        request,
        "connections.html",
        connections=items,
        queues=queues,
        events_chart=line_chart(
            "Events per minute",
            [
                ("applied", [m["applied"] for m in per_minute]),
                ("failed", [m["failed"] for m in per_minute]),
            ],
        ),
        latency_chart=line_chart(
            "Propagation latency",
            [("p50", [m["p50"] for m in latency]), ("p95", [m["p95"] for m in latency])],
            unit=" s",
        ),
        queues_chart=bar_chart("Queue depths", list((queues or {}).items())),
    )


async def _connection_row(request: Request) -> dict[str, Any] | None:
    connection_id = _uuid(request.path_params["id"])
    if connection_id is None:
        return None
    row = await admin_state(request)["admin"].connections.get(connection_id)
    return None if row is None else {"id": row.id, **row.summary()}


async def results_page(request: Request) -> Response:
    connection = await _connection_row(request)
    if connection is None:
        return not_found(request, "connection")
    params = request.query_params
    shown = {
        k: params.get(k, "") for k in ("q", "entity", "outcome", "error_class", "since", "until")
    }
    try:
        where = parse_filter(params)
        offset = max(int(params.get("offset") or 0), 0)
    except ValueError as exc:
        return page(
            request,
            "message.html",
            400,
            heading="Bad filter",
            text=str(exc),
            back=f"/console/connections/{connection['id']}/results",
        )
    async with admin_state(request)["ops"].pool.acquire() as conn:
        count, items = await results.list_results(
            conn, connection["id"], where, limit=PAGE_SIZE, offset=offset
        )

    def paging(to: int) -> str:
        return urlencode({**{k: v for k, v in shown.items() if v}, "offset": max(to, 0)})

    return page(
        request,
        "results.html",
        connection=connection,
        f=shown,
        outcomes=results.OUTCOMES,
        count=count,
        items=items,
        offset=offset,
        limit=PAGE_SIZE,
        paging=paging,
    )


async def record_page(request: Request) -> Response:
    connection_id = _uuid(request.path_params["id"])
    direction = request.path_params["direction"]
    if connection_id is None or direction not in results.DIRECTIONS:
        return not_found(request, "record")
    entity, source_id = request.path_params["entity"], request.path_params["source_id"]
    async with admin_state(request)["ops"].pool.acquire() as conn:
        found = await results.record_detail(conn, connection_id, direction, entity, source_id)
    if found is None:
        return not_found(request, "record")
    record_url = f"/console/connections/{connection_id}/results/{direction}/{entity}/{source_id}"
    return page(
        request,
        "record.html",
        r=with_links(request, found),
        connection_id=connection_id,
        record_url=record_url,
    )


LETTER_FIELDS = ("connection_id", "entity", "error_class", "status", "since", "until")


def letter_filter_fields(params: Any) -> dict[str, str]:
    shown = {k: str(params.get(k) or "") for k in LETTER_FIELDS}
    shown["status"] = shown["status"] or "dead"
    return shown


async def dead_letters_page(request: Request) -> Response:
    shown = letter_filter_fields(request.query_params)
    try:
        where = parse_letter_filter({k: v for k, v in shown.items() if v})
    except BadRequest as exc:
        return page(
            request,
            "message.html",
            400,
            heading="Bad filter",
            text=str(exc),
            back="/console/dead-letters",
        )
    async with admin_state(request)["ops"].pool.acquire() as conn:
        count = await dead_letters.count(conn, where)
        items = await dead_letters.select(conn, where, limit=200)
    return page(request, "dead_letters.html", f=shown, count=count, items=items)


async def dead_letter_page(request: Request) -> Response:
    async with admin_state(request)["ops"].pool.acquire() as conn:
        found = await dead_letters.show(conn, int(request.path_params["id"]))
    if found is None:
        return not_found(request, "dead letter")
    event_json = json.dumps(found.get("event"), indent=2, default=str)
    return page(request, "dead_letter.html", d=found, event_json=event_json)


async def conflicts_page(request: Request) -> Response:
    connection_id = _uuid(request.query_params.get("connection_id") or "")
    async with admin_state(request)["ops"].pool.acquire() as conn:
        items = await records.list_conflicts(conn, connection_id, limit=200)
        shown = await conflict_view.side_by_side(conn, items)
    return page(request, "conflicts.html", items=shown)
