"""Re-Leased documents to QBO invoices, bills, credit memos and vendor credits.

Only the connection's synced statuses go out, never DRAFT; a synced document sent back to DRAFT is
flagged; a void voids an Invoice and deletes the types QBO cannot void through its API, keeping the
link marked ``voided``. A Re-Leased invoice or credit note takes the QBO number once synced.
"""

from __future__ import annotations

from typing import Any

from shared.domain.canonical import canonical_hash
from shared.domain.errors import NotFound
from shared.domain.links import Link
from shared.domain.mapping.document_writes import document_to_qbo
from shared.domain.mapping.documents import (
    below_applied,
    is_qbo_void,
    tax_rates_of,
)
from shared.domain.mapping.kinds import BY_RELEASED_TYPE, DocKind
from shared.domain.merge import three_way_merge
from shared.domain.ownership import Op, Outcome
from shared.sync import steps
from shared.sync.company import company_prefs
from shared.sync.context import Result, SyncContext
from shared.sync.documents.common import (
    LOCKED,
    link_twins,
    log,
    patch_released,
    restore_from_qbo,
    save_link,
    skip_before_sync_from,
    write_qbo,
)
from shared.sync.documents.references import fields_of_qbo, fields_of_released, tax_code_for


async def from_released(ctx: SyncContext) -> Result:
    path = "/invoices" if ctx.event.entity == "invoice" else "/credit-notes"
    try:
        record = await ctx.released.get(f"{path}/{ctx.event.entity_id}")
    except NotFound:
        return Result("ignored", "gone from Re-Leased")
    return await apply_released(ctx, record)


async def apply_released(ctx: SyncContext, record: dict[str, Any]) -> Result:
    """A Re-Leased document as just read, applied to QBO."""
    kind = BY_RELEASED_TYPE[str(record.get("type"))]
    links = await ctx.links.by_released(ctx.connection.id, kind.entity, ctx.event.entity_id)
    link = links[0] if links else None
    if link is not None:
        await ctx.lock("qbo", kind.qbo_word, str(link.qbo_id))
        link = await ctx.links.by_qbo(ctx.connection.id, kind.qbo_type, str(link.qbo_id))
    gated = await _gate_released(ctx, kind, record, link)
    if gated is not None:
        return gated
    fields = await fields_of_released(ctx, kind, record)
    if link is not None and link.snapshot_hash == canonical_hash(fields):
        await save_link(
            ctx, kind, {"Id": link.qbo_id, "SyncToken": link.qbo_version}, record, fields
        )
        return Result("echo", "no synced field changed", link.qbo_id)
    decision = ctx.policy.decide(kind.entity, Op.UPSERT, "released")
    stop = await steps.not_applied(ctx, kind.entity, decision, link.id if link else None)
    if stop is not None:
        return stop
    if link is None:
        return await _create_in_qbo(ctx, kind, record, fields)
    return await _update_qbo(ctx, kind, record, fields, link)


async def _gate_released(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any], link: Link | None
) -> Result | None:
    """Echo, voids, DRAFT and the status/date gates; None when the change should go out."""
    status = str(record.get("status"))
    if link is not None and link.released_version == str(record.get("version")):
        return Result("echo", "QBO already has this version", link.qbo_id)
    if link is not None and link.status == "voided":
        return Result("ignored", "document is voided", link.qbo_id)
    if status == "VOIDED":
        return await _void_in_qbo(ctx, kind, record, link)
    if status == "DRAFT":
        return await _back_to_draft(ctx, kind, record, link)
    if not ctx.settings.syncs_status(status):
        return Result("ignored", f"status {status} is not synced for this connection")
    if link is None:
        return skip_before_sync_from(ctx, record.get("date"))
    return None


async def _engine_twin(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """A QBO twin the engine made: the QBO document this Re-Leased one was made from, or one an
    earlier attempt of this create made of it (its transaction failed, or lost a version race
    and was redone). Locked (try-lock, before reading QBO), with its canonical fields."""
    rl_id = str(record["id"])
    qbo_id = await ctx.made_by_us("released", kind.entity, rl_id) or (
        await ctx.twin_made_from("qbo", kind.entity, rl_id)
    )
    if qbo_id is None:
        return None
    busy = f"QBO {kind.qbo_type} {qbo_id} is being synced; retry"
    await ctx.lock_or_retry(busy, "qbo", kind.qbo_word, qbo_id)
    try:
        row = await ctx.qbo.get(kind.qbo_type, qbo_id)
    except NotFound:
        return None
    if is_qbo_void(row):
        return None
    return row, await fields_of_qbo(ctx, kind, row)


async def _adopt(
    ctx: SyncContext,
    kind: DocKind,
    record: dict[str, Any],
    found: tuple[dict[str, Any], dict[str, Any]],
) -> Result | None:
    """Link the Re-Leased document to the QBO twin the engine made (locked by the caller), then
    merge whatever differs as an update would. None when that QBO document is linked to
    another Re-Leased one."""
    row, theirs = found
    mine = await ctx.links.by_released(ctx.connection.id, kind.entity, str(record["id"]))
    if mine:  # QBO's own event (retried) linked the two while we waited
        return Result("echo", "linked by QBO's event meanwhile", mine[0].qbo_id)
    if await ctx.links.by_qbo(ctx.connection.id, kind.qbo_type, str(row["Id"])):
        return None
    reason = "made_by_engine_link_lost"
    link = await link_twins(ctx, kind, row, {"id": record["id"], "version": None}, theirs, reason)
    fields = await fields_of_released(ctx, kind, record)
    result = await _update_qbo(ctx, kind, record, fields, link)
    return Result("applied", f"matched existing document; {result.reason}", str(row["Id"]))


async def _create_in_qbo(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any], fields: dict[str, Any]
) -> Result:
    found = await _engine_twin(ctx, kind, record)
    adopted = await _adopt(ctx, kind, record, found) if found is not None else None
    if adopted is not None:
        return adopted
    # Invoices and credit memos take QBO's number; bills have none there, so they keep ours. A
    # document Re-Leased no longer lets anyone edit (paid before it first synced) keeps its own
    # number too, and QBO takes it: nothing can be written back.
    locked = record.get("status") in LOCKED
    keep_ours = locked or not kind.sales
    outgoing = {**fields, "number": fields["number"] if keep_ours else None}
    tax_code = await tax_code_for(ctx, tax_rates_of(fields))
    global_tax = (await company_prefs(ctx)).tax_inclusive
    body = document_to_qbo(kind, outgoing, tax_code, global_tax=global_tax)
    created = await ctx.qbo.write(kind.qbo_type, body, request_id=ctx.create_key("qbo-doc", body))
    # QBO's notification of this create waits on this lock until the link is committed (taken
    # first: every statement before it widens the window in which the notification can win).
    await ctx.lock("qbo", kind.qbo_word, str(created["Id"]))
    await ctx.created("qbo", kind.entity, str(created["Id"]), str(record["id"]))
    # What QBO filled in (its number, a default due date) goes back to Re-Leased, so both
    # sides and the snapshot agree from the start.
    theirs = await fields_of_qbo(ctx, kind, created)
    filled = {k: v for k, v in theirs.items() if v != fields.get(k) and k != "lines"}
    if filled and locked:
        log.info(
            "document_fill_skipped",
            connection_id=str(ctx.connection.id),
            entity_id=ctx.event.entity_id,
            fields=sorted(filled),
            reason="released_document_locked",
        )
    elif filled:
        whole = {**fields, **filled}
        record = await patch_released(ctx, kind, record, filled, whole, "rl-doc-filled")
    await save_link(ctx, kind, created, record, {**fields, **filled})
    return Result("applied", "created", str(created["Id"]))


async def _update_qbo(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any], fields: dict[str, Any], link: Link
) -> Result:
    current = await ctx.qbo.get(kind.qbo_type, str(link.qbo_id))
    theirs = await fields_of_qbo(ctx, kind, current)
    merged = three_way_merge(
        link.snapshot, fields, theirs, steps.winner(ctx, "document", "released")
    )
    if merged.target_changes and below_applied(current, merged.merged):
        return await restore_from_qbo(
            ctx, kind, (current, theirs), (record, fields), link, merged.merged
        )
    if merged.target_changes:
        current = await write_qbo(ctx, kind, current, merged.target_changes, merged.merged)
    if merged.source_changes:
        record = await patch_released(
            ctx, kind, record, merged.source_changes, merged.merged, "rl-doc-mergeback"
        )
    await steps.record_conflicts(ctx, kind.entity, link.id, merged.conflicts)
    await save_link(ctx, kind, current, record, merged.merged)
    return Result("applied", f"updated ({len(merged.conflicts)} conflict(s))", link.qbo_id)


async def _void_in_qbo(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any], link: Link | None
) -> Result:
    if link is None:
        return Result("ignored", "void of a document that never synced")
    decision = ctx.policy.decide(kind.entity, Op.VOID, "released")
    stop = await steps.not_applied(ctx, kind.entity, decision, link.id)
    if stop is not None:
        return stop
    try:
        current = await ctx.qbo.get(kind.qbo_type, str(link.qbo_id))
    except NotFound:
        current = {"Id": link.qbo_id, "SyncToken": link.qbo_version}
    else:
        ident = {"Id": current["Id"], "SyncToken": current["SyncToken"]}
        # Only Invoice has an API void; the others are deleted and the link kept as voided.
        operation = "void" if kind.api_void else "delete"
        if not is_qbo_void(current):
            written = await ctx.qbo.write(
                kind.qbo_type, ident, request_id=ctx.request_id("qbo-void"), operation=operation
            )
            current = written if kind.api_void else current
    await save_link(ctx, kind, current, record, link.snapshot or {}, status="voided")
    return Result("applied", "voided in QBO" if kind.api_void else "deleted in QBO", link.qbo_id)


async def _back_to_draft(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any], link: Link | None
) -> Result:
    if link is None:
        return Result("ignored", "DRAFT never syncs")
    decision = ctx.policy.decide(kind.entity, Op.BACK_TO_DRAFT, "released")
    if decision.outcome is not Outcome.FLAG:
        return await steps.not_carried_out(ctx, kind.entity, decision, link.id)
    detail = f"synced {kind.entity} sent back to DRAFT in Re-Leased: {decision.why}"
    await steps.flag(
        ctx, kind.entity, link.id, {"status": "DRAFT", "qbo_id": link.qbo_id}, None, detail
    )
    # Remember this version so the same DRAFT state is not flagged again by a duplicate event.
    await save_link(
        ctx, kind, {"Id": link.qbo_id, "SyncToken": link.qbo_version}, record, link.snapshot or {}
    )
    return Result("flagged", "synced document back to DRAFT", link.qbo_id)
