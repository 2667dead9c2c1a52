"""What the document handlers of both directions share: the date gate, links, writes, and the
restore when an edit would leave less than the money QBO has applied."""

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
from shared.infra.logging import get_logger
from shared.sync import steps
from shared.sync.company import company_prefs
from shared.sync.context import Result, SyncContext
from shared.sync.dependencies import released_ids
from shared.sync.documents.references import tax_code_for

log = get_logger("sync.documents")
LOCKED = ("PAID", "VOIDED")


def skip_before_sync_from(ctx: SyncContext, date: Any) -> Result | None:
    """A document dated before the connection's sync-from date is not synced (logged); None
    when it is not."""
    start = ctx.settings.sync_from_date
    if start is None or not date:
        return None
    if dt.date.fromisoformat(str(date)[:10]) >= start:
        return None
    log.info(
        "document_skipped",
        connection_id=str(ctx.connection.id),
        entity_id=ctx.event.entity_id,
        reason="before_sync_from",
    )
    return Result("ignored", "dated before the sync-from date")


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
    ids = await released_ids(ctx, references(whole))
    body = document_to_released(kind, changes, ids, whole)
    await keep_own_tracking(ctx, record, body)
    written: dict[str, Any] = await ctx.released.request(
        "PATCH",
        f"{kind.released_path}/{record['id']}",
        body=body,
        idempotency_key=ctx.request_id(purpose),
        if_match=record.get("version"),
    )
    return written


async def keep_own_tracking(ctx: SyncContext, record: dict[str, Any], body: dict[str, Any]) -> None:
    """A Re-Leased tracking option QBO cannot hold (one that is not a QBO class, e.g. a
    property's) is kept on its line when QBO's version of the lines is written back: QBO never
    saw it, so it has no say in it (line matched by position; docs/mapping.md)."""
    old = record.get("lines") or []
    for index, line in enumerate(body.get("lines") or []):
        if line.get("trackingOptionId") or index >= len(old):
            continue
        option = old[index].get("trackingOptionId")
        if option and not await ctx.links.class_of_option(ctx.connection.id, str(option)):
            line["trackingOptionId"] = option


async def write_qbo(
    ctx: SyncContext,
    kind: DocKind,
    current: dict[str, Any],
    changes: dict[str, Any],
    merged: dict[str, Any],
) -> dict[str, Any]:
    tax_code = await tax_code_for(ctx, tax_rates_of(merged))
    prefs = await company_prefs(ctx)
    body = document_to_qbo(kind, changes, tax_code, merged, global_tax=prefs.tax_inclusive)
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
    await steps.flag(ctx, kind.entity, link.id, fields, "qbo", detail)
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
