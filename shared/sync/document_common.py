"""What the document handlers of both directions share: settings gates, links, conflicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.domain.merge import Winner
from shared.infra.logging import get_logger
from shared.sync import document_refs as refs
from shared.sync.context import Result, SyncContext
from shared.sync.mapping_documents import DocKind, document_to_qbo, tax_rates_of

log = get_logger("sync.documents")
DEFAULT_STATUSES = ("AWAITING_APPROVAL", "APPROVED")
LOCKED = ("PAID", "VOIDED")


def synced_statuses(ctx: SyncContext) -> set[str]:
    found = dict(ctx.connection.settings or {}).get("synced_statuses")
    statuses = {str(s) for s in (found if isinstance(found, list) else DEFAULT_STATUSES)}
    # PAID is APPROVED with the money in: it syncs whenever APPROVED does.
    return statuses | ({"PAID"} if "APPROVED" in statuses else set())


def skip_before_sync_from(ctx: SyncContext, date: Any) -> Result | None:
    """A document dated before the connection's sync-from date is not synced (logged); None
    when it is not."""
    start = dict(ctx.connection.settings or {}).get("sync_from_date")
    if not start or not date:
        return None
    if dt.date.fromisoformat(str(date)[:10]) >= dt.date.fromisoformat(str(start)[:10]):
        return None
    log.info(
        "document_skipped",
        connection_id=str(ctx.connection.id),
        entity_id=ctx.event.entity_id,
        reason="before_sync_from",
    )
    return Result("ignored", "dated before the sync-from date")


def winner(ctx: SyncContext, source_side: str) -> Winner:
    return "source" if ctx.settings.winners.get("document", "qbo") == source_side else "target"


async def save_link(
    ctx: SyncContext,
    kind: DocKind,
    qbo: dict[str, Any],
    released: dict[str, Any],
    snapshot: dict[str, Any],
    status: str = "linked",
) -> None:
    await ctx.links.save(
        ctx.connection.id,
        kind.entity,
        kind.qbo_type,
        qbo=(str(qbo["Id"]), str(qbo.get("SyncToken"))),
        released=(str(released["id"]), str(released.get("version"))),
        snapshot=snapshot,
        status=status,
    )


async def record_conflicts(ctx: SyncContext, kind: DocKind, link_id: int, items: list[Any]) -> None:
    for item in items:
        await ctx.conflicts.record(
            ctx.connection.id,
            kind.entity,
            "field_conflict",
            link_id=link_id,
            event_id=ctx.event.event_id,
            fields={"field": item.field, "base": item.base, "source": item.source},
            winner=str(item.chosen)[:200],
            detail=f"{item.field} changed on both sides",
        )


async def write_qbo(
    ctx: SyncContext,
    kind: DocKind,
    current: dict[str, Any],
    changes: dict[str, Any],
    merged: dict[str, Any],
) -> dict[str, Any]:
    tax_code = await refs.tax_code_for(ctx, tax_rates_of(merged))
    body = document_to_qbo(kind, changes, tax_code, merged)
    body.update({"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True})
    return await ctx.qbo.write(kind.qbo_type, body, request_id=ctx.request_id("qbo-doc-update"))
