"""QBO invoices, bills, credit memos and vendor credits to Re-Leased.

Create and update apply (three-way merge, QBO wins by default); a void voids, and a hard delete
voids too (Re-Leased has no delete for approved documents). A QBO document the engine made from a
Re-Leased one, or one carrying a Re-Leased document's number, is linked to it, never copied back.
"""

from __future__ import annotations

from typing import Any

from shared.domain.canonical import canonical_hash
from shared.domain.errors import NotFound, PermanentError, TransientError
from shared.domain.links import Link
from shared.domain.mapping.document_writes import document_to_released
from shared.domain.mapping.documents import (
    below_applied,
    is_qbo_void,
    references,
)
from shared.domain.mapping.kinds import BY_QBO_WORD, DocKind
from shared.domain.merge import three_way_merge
from shared.domain.ownership import Op
from shared.sync import steps
from shared.sync.company import company_prefs
from shared.sync.context import Result, SyncContext
from shared.sync.dependencies import released_ids
from shared.sync.documents.common import (
    LOCKED,
    link_twins,
    patch_released,
    restore_from_qbo,
    save_link,
    skip_before_sync_from,
    write_qbo,
)
from shared.sync.documents.references import fields_of_qbo, fields_of_released


async def from_qbo(ctx: SyncContext) -> Result:
    kind = BY_QBO_WORD[ctx.event.entity]
    link = await ctx.links.by_qbo(ctx.connection.id, kind.qbo_type, ctx.event.entity_id)
    try:
        record = await ctx.qbo.get(kind.qbo_type, ctx.event.entity_id)
    except NotFound:
        return await _void_in_released(ctx, kind, link, Op.DELETE)
    if link is not None and link.status == "voided":
        return Result("ignored", "document is voided", link.released_id)
    if is_qbo_void(record):
        return await _void_in_released(ctx, kind, link, Op.VOID)
    if link is not None and link.qbo_version == str(record.get("SyncToken")):
        return Result("echo", "Re-Leased already has this version", link.released_id)
    skipped = skip_before_sync_from(ctx, record.get("TxnDate")) if link is None else None
    if skipped is not None:
        return skipped
    fields = await fields_of_qbo(ctx, kind, record)
    if link is not None and link.snapshot_hash == canonical_hash(fields):
        released = {"id": link.released_id, "version": link.released_version}
        await save_link(ctx, kind, record, released, fields)
        return Result("echo", "no synced field changed", link.released_id)
    decision = ctx.policy.decide(kind.entity, Op.UPSERT, "qbo")
    stop = await steps.not_applied(ctx, kind.entity, decision, link.id if link else None)
    if stop is not None:
        return stop
    if link is None:
        return await _create_in_released(ctx, kind, record, fields)
    return await _update_released(ctx, kind, record, fields, link)


async def _find_released(ctx: SyncContext, kind: DocKind, number: str | None) -> Any:
    """Lookup before create: a Re-Leased document already carrying the QBO number (one synced
    to QBO moments ago, or made by an earlier attempt whose transaction then failed). One
    filtered read, whatever the size of the company."""
    if not number:
        return None
    for doc in await ctx.released.list_all(kind.released_path, numbers=number):
        if doc.get("number") != number or doc.get("type") != kind.released_type:
            continue
        # A number reused by an unrelated document that is linked elsewhere is not a match.
        if not await ctx.links.by_released(ctx.connection.id, kind.entity, str(doc["id"])):
            return doc
    return None


async def _create_in_released(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any], fields: dict[str, Any]
) -> Result:
    # A twin the engine made: this QBO document came from it, or an earlier attempt of this
    # create made it (its transaction failed, or lost a version race and was redone).
    twin = await ctx.made_by_us("qbo", kind.entity, str(record["Id"])) or (
        await ctx.twin_made_from("released", kind.entity, str(record["Id"]))
    )
    found = await _released_twin(ctx, kind, twin) if twin is not None else None
    if found is not None:  # (_released_twin took its lock before reading it)
        return await _adopt(ctx, kind, record, fields, found, "made_by_engine_link_lost")
    ids = await released_ids(ctx, references(fields))
    found = await _find_released(ctx, kind, fields.get("number"))
    if found is not None:
        return await _adopt(ctx, kind, record, fields, found, "same_number")
    body = {
        **document_to_released(kind, fields, ids),
        "type": kind.released_type,
        "status": "APPROVED",  # QBO documents are posted: nothing to approve
        # The document's currency: its own where foreign, else the QBO company's home currency.
        "currency": fields.get("currency") or (await company_prefs(ctx)).home_currency,
    }
    created = await ctx.released.request(
        "POST", kind.released_path, body=body, idempotency_key=ctx.create_key("rl-doc-create", body)
    )
    # Until this commits, Re-Leased's own notification of the create waits on this lock (taken
    # first: every statement before it widens the window in which the notification can win).
    await ctx.lock("released", kind.released_category, str(created["id"]))
    await ctx.created("released", kind.entity, str(created["id"]), str(record["Id"]))
    record, fields = await _number_to_qbo(ctx, kind, record, fields, created)
    await save_link(ctx, kind, record, created, fields)
    return Result("applied", "created", str(created["id"]))


async def _number_to_qbo(
    ctx: SyncContext,
    kind: DocKind,
    record: dict[str, Any],
    fields: dict[str, Any],
    released: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """QBO gave the document no number (bills): both sides carry the one Re-Leased assigned."""
    if fields.get("number") or not released.get("number"):
        return record, fields
    fields = {**fields, "number": released["number"]}
    record = await ctx.qbo.write(
        kind.qbo_type,
        {
            "Id": record["Id"],
            "SyncToken": record["SyncToken"],
            "sparse": True,
            "DocNumber": fields["number"],
        },
        request_id=ctx.request_id("qbo-doc-number"),
    )
    return record, fields


async def _released_twin(ctx: SyncContext, kind: DocKind, released_id: str) -> Any:
    busy = f"Re-Leased document {released_id} is being synced; retry"
    await ctx.lock_or_retry(busy, "released", kind.released_category, released_id)
    try:
        found = await ctx.released.get(f"{kind.released_path}/{released_id}")
    except NotFound:
        return None
    return None if found.get("status") == "VOIDED" else found


async def _adopt(
    ctx: SyncContext,
    kind: DocKind,
    record: dict[str, Any],
    fields: dict[str, Any],
    found: dict[str, Any],
    reason: str,
) -> Result:
    """Link the QBO document to ``found``, a Re-Leased document that is already its twin (one
    the engine made from it, or one carrying its number), then merge whatever differs as an
    update would."""
    released_id = str(found["id"])
    busy = f"Re-Leased document {released_id} is being synced; retry"
    await ctx.lock_or_retry(busy, "released", kind.released_category, released_id)
    linked = await ctx.links.by_released(ctx.connection.id, kind.entity, released_id)
    if linked and reason == "same_number" and linked[0].qbo_id != str(record["Id"]):
        # Not a twin after all: another QBO document took it. The retry looks again.
        raise TransientError(f"Re-Leased document {released_id} was linked meanwhile; retry")
    if linked:
        return await _twin_taken(ctx, kind, record, linked[0])
    current = await fields_of_released(ctx, kind, found)
    record, fields = await _number_to_qbo(ctx, kind, record, fields, found)
    link = await link_twins(ctx, kind, record, found, current, reason)
    result = await _update_released(ctx, kind, record, fields, link)
    return Result("applied", f"matched existing document; {result.reason}", released_id)


async def _twin_taken(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any], link: Link
) -> Result:
    """The Re-Leased twin found for this QBO document is linked already: to it (another event
    got there first: nothing to do), or to another QBO document (this one is a duplicate the
    engine made; a person removes it, since money may already be on it)."""
    if link.qbo_id == str(record["Id"]):
        return Result("echo", "linked by another event meanwhile", link.released_id)
    detail = (
        f"QBO {kind.qbo_type} {record['Id']} duplicates QBO {kind.qbo_type} {link.qbo_id}, "
        f"the twin of Re-Leased {link.released_id}; void or delete {record['Id']} in QBO"
    )
    await steps.flag(ctx, kind.entity, link.id, {"duplicate": str(record["Id"])}, None, detail)
    return Result("flagged", detail, link.released_id)


async def _update_released(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any], fields: dict[str, Any], link: Link
) -> Result:
    released = await ctx.released.get(f"{kind.released_path}/{link.released_id}")
    current = await fields_of_released(ctx, kind, released)
    merged = three_way_merge(link.snapshot, fields, current, steps.winner(ctx, "document", "qbo"))
    if merged.source_changes and below_applied(record, merged.merged):
        return await restore_from_qbo(
            ctx, kind, (record, fields), (released, current), link, merged.merged
        )
    if merged.target_changes:
        if released.get("status") in LOCKED:
            raise PermanentError(
                f"the Re-Leased document is {released.get('status')} and cannot change",
                remedy="reverse its payments in QBO first, or void and re-create it",
            )
        released = await patch_released(
            ctx, kind, released, merged.target_changes, merged.merged, "rl-doc-patch"
        )
    if merged.source_changes:
        record = await write_qbo(ctx, kind, record, merged.source_changes, merged.merged)
    await steps.record_conflicts(ctx, kind.entity, link.id, merged.conflicts)
    await save_link(ctx, kind, record, released, merged.merged)
    return Result("applied", f"updated ({len(merged.conflicts)} conflict(s))", link.released_id)


async def _void_in_released(ctx: SyncContext, kind: DocKind, link: Link | None, op: Op) -> Result:
    if link is None or not link.released_id:
        return Result("ignored", f"{op.value} of a document that never synced")
    if link.status == "voided":
        return Result("echo", "already voided", link.released_id)
    decision = ctx.policy.decide(kind.entity, op, "qbo")
    stop = await steps.not_applied(ctx, kind.entity, decision, link.id)
    if stop is not None:
        return stop
    path = f"{kind.released_path}/{link.released_id}"
    released = await ctx.released.get(path)
    if released.get("status") in ("DRAFT", "AWAITING_APPROVAL"):
        # Re-Leased voids only approved documents; QBO had it posted, so approve, then void.
        released = await ctx.released.request(
            "POST", f"{path}/approve", idempotency_key=ctx.request_id("rl-doc-approve")
        )
    if released.get("status") != "VOIDED":
        released = await ctx.released.request(
            "POST", f"{path}/void", idempotency_key=ctx.request_id("rl-doc-void")
        )
    await ctx.links.save(
        ctx.connection.id,
        kind.entity,
        kind.qbo_type,
        qbo=(str(link.qbo_id), link.qbo_version),
        released=(str(released["id"]), str(released.get("version"))),
        snapshot=link.snapshot or {},
        status="voided",
    )
    return Result("applied", f"{op.value} in QBO voided in Re-Leased", link.released_id)
