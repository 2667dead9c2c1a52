"""What the document handlers of both directions share: settings gates, links, conflicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.links import Link
from shared.domain.mapping.document_writes import document_to_qbo, document_to_released
from shared.domain.mapping.documents import (
    applied_in_qbo,
    document_total,
    references,
    tax_rates_of,
)
from shared.domain.mapping.kinds import DocKind
from shared.domain.merge import Winner
from shared.infra.logging import get_logger
from shared.sync import document_refs as refs
from shared.sync.context import Result, SyncContext

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


async def link_twins(
    ctx: SyncContext,
    kind: DocKind,
    qbo: dict[str, Any],
    released: dict[str, Any],
    snapshot: dict[str, Any],
    reason: str,
) -> Link:
    """Link two documents found to be twins (``reason``); the caller merges what differs."""
    await save_link(ctx, kind, qbo, released, snapshot)
    link = await ctx.links.by_qbo(ctx.connection.id, kind.qbo_type, str(qbo["Id"]))
    if link is None:
        raise PermanentError("the link just saved cannot be read back")
    log.info(
        "document_matched",
        connection_id=str(ctx.connection.id),
        entity=kind.entity,
        qbo_id=str(qbo["Id"]),
        released_id=str(released["id"]),
        reason=reason,
    )
    return link


async def patch_released(
    ctx: SyncContext,
    kind: DocKind,
    record: dict[str, Any],
    changes: dict[str, Any],
    whole: dict[str, Any],
    purpose: str,
) -> dict[str, Any]:
    """Write ``changes`` (canonical; ``whole`` is the full document they belong to) to the
    Re-Leased document ``record``, at the version read. Returns the document as written."""
    ids = await refs.released_ids(ctx, references(whole))
    written: dict[str, Any] = await ctx.released.request(
        "PATCH",
        f"{kind.released_path}/{record['id']}",
        body=document_to_released(kind, changes, ids, whole),
        idempotency_key=ctx.request_id(purpose),
        if_match=record.get("version"),
    )
    return written


async def flag(
    ctx: SyncContext,
    kind: DocKind,
    link_id: int,
    fields: dict[str, Any],
    chosen: str | None,
    detail: str,
) -> None:
    """A policy flag on a linked document: something a person should know or decide."""
    await ctx.conflicts.record(
        ctx.connection.id,
        kind.entity,
        "policy_flag",
        link_id=link_id,
        event_id=ctx.event.event_id,
        fields=fields,
        winner=chosen,
        detail=detail,
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


async def restore_from_qbo(
    ctx: SyncContext,
    kind: DocKind,
    qbo: tuple[dict[str, Any], dict[str, Any]],
    released: tuple[dict[str, Any], dict[str, Any]],
    link: Link,
    wanted: dict[str, Any],
) -> Result:
    """A Re-Leased edit that would leave less than the money QBO has applied to the document
    cannot be taken (payments are QBO's): QBO's version goes back over it in Re-Leased and a
    person is told. ``qbo``/``released``: each side's record and canonical fields; ``wanted``:
    the merged document that QBO could not take."""
    qbo_record, qbo_fields = qbo
    released_record, released_fields = released
    changes = {k: v for k, v in qbo_fields.items() if released_fields.get(k) != v}
    if changes:
        released_record = await patch_released(
            ctx, kind, released_record, changes, qbo_fields, "rl-doc-restore"
        )
    total, applied = document_total(wanted), applied_in_qbo(qbo_record)
    detail = (
        f"the Re-Leased edit would make the total {total}, below the {applied} QBO has applied "
        "to it; QBO's version was restored in Re-Leased (reverse the payments or credit in QBO "
        "first, then edit again)"
    )
    fields = {"total": str(total), "applied": str(applied), "restored": sorted(changes)}
    await flag(ctx, kind, link.id, fields, "qbo", detail)
    log.warning(
        "document_edit_reverted",
        connection_id=str(ctx.connection.id),
        entity=kind.entity,
        qbo_id=str(qbo_record["Id"]),
        released_id=str(released_record["id"]),
        total=str(total),
        applied=str(applied),
        reason="below_money_applied_in_qbo",
    )
    await save_link(ctx, kind, qbo_record, released_record, qbo_fields)
    return Result("reverted", detail, str(released_record["id"]))
