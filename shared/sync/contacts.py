"""Contacts, both ways (ownership.md: create/update both ways; archive only in QBO; QBO merge).

A Re-Leased contact that is both customer and supplier is two QBO records (Customer and Vendor),
so it has one link per QBO type. DisplayName is unique across Customer, Vendor and Employee: the
Vendor of such a pair carries the connection's clash suffix, stripped again when read back.
"""

from __future__ import annotations

from typing import Any

from shared.adapters.qbo.client import query_literal
from shared.domain.canonical import canonical_hash, normalise_name
from shared.domain.errors import DuplicateName, NotFound
from shared.domain.mapping.contacts import (
    contact_from_qbo,
    contact_from_released,
    contact_to_qbo,
    contact_to_released,
)
from shared.domain.merge import Winner, three_way_merge
from shared.domain.ownership import Op, Outcome
from shared.sync.context import Result, SyncContext

ROLE_FLAG = {"Customer": "isCustomer", "Vendor": "isSupplier"}


def _operation(fields: dict[str, Any], snapshot: dict[str, Any] | None) -> Op:
    was_active = True if snapshot is None else bool(snapshot.get("active", True))
    if was_active and not fields["active"]:
        return Op.ARCHIVE
    if not was_active and fields["active"]:
        return Op.UNARCHIVE
    return Op.UPSERT


def _winner(ctx: SyncContext, source_side: str) -> Winner:
    owner = ctx.settings.winners.get("contact", "released")
    return "source" if owner == source_side else "target"


# -- QBO -> Re-Leased --------------------------------------------------------------------------


async def from_qbo(ctx: SyncContext) -> Result:
    event = ctx.event
    qbo_type = "Vendor" if event.entity == "vendor" else "Customer"
    if event.operation == "merge" and event.related_id:
        return await _merge(ctx, qbo_type, event.entity_id, event.related_id)
    try:
        record = await ctx.qbo.get(qbo_type, event.entity_id)
    except NotFound:
        return Result("ignored", "gone from QBO (name lists are never deleted)")
    suffix = ctx.settings.clash_suffix if qbo_type == "Vendor" else ""
    fields = contact_from_qbo(record, suffix)
    link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, event.entity_id)
    if link is None:
        await ctx.lock("contact-name", normalise_name(fields["name"]))
        link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, event.entity_id)
    else:
        await ctx.lock("link", str(link.id))
    version = str(record.get("SyncToken"))
    if link is not None and (
        link.qbo_version == version or link.snapshot_hash == canonical_hash(fields)
    ):
        return Result("echo", "QBO holds what was last synced", link.released_id)
    op = _operation(fields, link.snapshot if link else None)
    decision = ctx.policy.decide("contact", op, "qbo")
    if decision.outcome is not Outcome.APPLY:
        return Result("ignored", decision.why)
    if link is None:
        return await _create_in_released(ctx, qbo_type, record, fields)
    released = await ctx.released.get(f"/contacts/{link.released_id}")
    merged = three_way_merge(
        link.snapshot, fields, contact_from_released(released), _winner(ctx, "qbo")
    )
    released = await _write_released(ctx, released, merged.target_changes, qbo_type)
    if merged.source_changes:
        record = await _write_qbo(ctx, qbo_type, merged.merged, record, "merge-back")
    await _record_conflicts(ctx, link.id, merged.conflicts)
    await ctx.links.save(
        ctx.connection.id,
        "contact",
        qbo_type,
        qbo=(event.entity_id, str(record.get("SyncToken"))),
        released=(str(released["id"]), str(released.get("version"))),
        snapshot=merged.merged,
    )
    reason = f"{len(merged.conflicts)} field conflict(s)" if merged.conflicts else op.value
    return Result("applied", reason, str(released["id"]))


async def _create_in_released(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], fields: dict[str, Any]
) -> Result:
    match = await _find_released(ctx, fields)
    if match is None:
        body = {**contact_to_released(fields), ROLE_FLAG[qbo_type]: True}
        match = await ctx.released.request(
            "POST", "/contacts", body=body, idempotency_key=ctx.create_key("rl-create", body)
        )
        reason = "created"
    else:
        reason = "matched existing contact"
        if not match.get(ROLE_FLAG[qbo_type]):
            match = await ctx.released.request(
                "PATCH",
                f"/contacts/{match['id']}",
                body={ROLE_FLAG[qbo_type]: True},
                idempotency_key=ctx.request_id("rl-role"),
                if_match=match.get("version"),
            )
    if not fields["active"]:
        match = await _set_archived(ctx, str(match["id"]), archived=True)
    await ctx.links.save(
        ctx.connection.id,
        "contact",
        qbo_type,
        qbo=(str(record["Id"]), str(record.get("SyncToken"))),
        released=(str(match["id"]), str(match.get("version"))),
        snapshot=fields,
    )
    return Result("applied", reason, str(match["id"]))


async def _find_released(ctx: SyncContext, fields: dict[str, Any]) -> dict[str, Any] | None:
    """Lookup before create: same name, else same e-mail (natural keys)."""
    contacts = await ctx.released.list_all("/contacts", includeArchived="true")
    wanted = normalise_name(fields["name"])
    for contact in contacts:
        if normalise_name(str(contact.get("name", ""))) == wanted:
            return contact
    email = (fields.get("email") or "").casefold()
    for contact in contacts:
        if email and str(contact.get("email") or "").casefold() == email:
            return contact
    return None


async def _write_released(
    ctx: SyncContext, current: dict[str, Any], changes: dict[str, Any], qbo_type: str
) -> dict[str, Any]:
    body = contact_to_released({k: v for k, v in changes.items() if k != "active"})
    if not current.get(ROLE_FLAG[qbo_type]):
        body[ROLE_FLAG[qbo_type]] = True
    if body:
        current = await ctx.released.request(
            "PATCH",
            f"/contacts/{current['id']}",
            body=body,
            idempotency_key=ctx.request_id(f"rl-patch-{qbo_type}"),
            if_match=current.get("version"),
        )
    if "active" in changes:
        current = await _set_archived(ctx, str(current["id"]), archived=not changes["active"])
    return current


async def _set_archived(ctx: SyncContext, contact_id: str, *, archived: bool) -> dict[str, Any]:
    verb = "archive" if archived else "unarchive"
    result: dict[str, Any] = await ctx.released.accounting("POST", f"/contacts/{contact_id}/{verb}")
    return result


async def _merge(ctx: SyncContext, qbo_type: str, survivor_id: str, merged_id: str) -> Result:
    survivor = await ctx.links.by_qbo(ctx.connection.id, qbo_type, survivor_id)
    gone = await ctx.links.by_qbo(ctx.connection.id, qbo_type, merged_id)
    if survivor is None or gone is None or gone.released_id is None:
        return Result("ignored", "merge of contacts that are not both linked")
    await ctx.lock("link", str(gone.id))
    if gone.status == "unlinked":
        return Result("echo", "merge already applied", survivor.released_id)
    merged = await ctx.released.accounting(
        "POST",
        f"/contacts/{gone.released_id}/merge",
        body={"intoContactId": survivor.released_id},
    )
    # Record the version we produced, so the merge's own notification is seen as our echo.
    await ctx.links.save(
        ctx.connection.id,
        "contact",
        qbo_type,
        qbo=(merged_id, gone.qbo_version),
        released=(str(merged["id"]), str(merged.get("version"))),
        snapshot={**(gone.snapshot or {}), "active": False},
        status="unlinked",
    )
    return Result("applied", "merged-away contact archived in Re-Leased", survivor.released_id)


# -- Re-Leased -> QBO --------------------------------------------------------------------------


async def from_released(ctx: SyncContext) -> Result:
    event = ctx.event
    try:
        record = await ctx.released.get(f"/contacts/{event.entity_id}")
    except NotFound:
        return Result("ignored", "gone from Re-Leased")
    fields = contact_from_released(record)
    version = str(record.get("version"))
    links = await ctx.links.by_released(ctx.connection.id, "contact", event.entity_id)
    for link in links:
        await ctx.lock("link", str(link.id))
    if links and all(link.released_version == version for link in links):
        return Result("echo", "Re-Leased holds what was last synced", links[0].qbo_id)
    if links and all(link.status == "unlinked" for link in links):
        return Result("ignored", "contact was merged away in QBO")
    base = links[0].snapshot if links else None
    op = _operation(fields, base)
    decision = ctx.policy.decide("contact", op, "released")
    if decision.outcome is Outcome.REVERT_AND_FLAG:
        return await _revert_archive(ctx, record, links, op, decision.why)
    roles = [t for t, flag in ROLE_FLAG.items() if record.get(flag)] or ["Customer"]
    touched: list[str] = []
    for qbo_type in roles:
        role_link = next((lk for lk in links if lk.qbo_type == qbo_type), None)
        touched.append(await _sync_role(ctx, qbo_type, record, fields, role_link))
    return Result("applied", op.value, ",".join(touched))


async def _sync_role(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], fields: dict[str, Any], link: Any
) -> str:
    display = fields["name"]
    if link is None:
        await ctx.lock("contact-name", normalise_name(fields["name"]))
        found = await _find_qbo(ctx, qbo_type, fields)
        if found is None:
            found = await _create_qbo(ctx, qbo_type, fields)
        snapshot, qbo_record = fields, found
    else:
        qbo_record = await ctx.qbo.get(qbo_type, str(link.qbo_id))
        suffix = ctx.settings.clash_suffix if qbo_type == "Vendor" else ""
        current = contact_from_qbo(qbo_record, suffix)
        if suffix and str(qbo_record.get("DisplayName", "")).endswith(suffix):
            display = fields["name"] + suffix  # keep the clash suffix the record was given
        merged = three_way_merge(link.snapshot, fields, current, _winner(ctx, "released"))
        if merged.target_changes:
            changes = {k: v for k, v in merged.merged.items() if k in merged.target_changes}
            qbo_record = await _write_qbo(ctx, qbo_type, changes, qbo_record, "update", display)
        if merged.source_changes:
            record = await ctx.released.request(
                "PATCH",
                f"/contacts/{record['id']}",
                body=contact_to_released(
                    {k: v for k, v in merged.source_changes.items() if k != "active"}
                ),
                idempotency_key=ctx.request_id(f"rl-mergeback-{qbo_type}"),
                if_match=record.get("version"),
            )
        await _record_conflicts(ctx, link.id, merged.conflicts)
        snapshot = merged.merged
    await ctx.links.save(
        ctx.connection.id,
        "contact",
        qbo_type,
        qbo=(str(qbo_record["Id"]), str(qbo_record.get("SyncToken"))),
        released=(str(record["id"]), str(record.get("version"))),
        snapshot=snapshot,
    )
    return f"{qbo_type}:{qbo_record['Id']}"


async def _find_qbo(
    ctx: SyncContext, qbo_type: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    names = [fields["name"]]
    if qbo_type == "Vendor":
        names.append(fields["name"] + ctx.settings.clash_suffix)
    for name in names:
        rows = await ctx.qbo.query_all(
            qbo_type, f"DisplayName = '{query_literal(name)}' and Active in (true, false)"
        )
        if rows:
            return rows[0]
    return None


async def _create_qbo(ctx: SyncContext, qbo_type: str, fields: dict[str, Any]) -> dict[str, Any]:
    body = contact_to_qbo(fields, fields["name"])
    try:
        return await ctx.qbo.write(
            qbo_type, body, request_id=ctx.create_key(f"qbo-{qbo_type}", body)
        )
    except DuplicateName:
        if qbo_type != "Vendor":
            raise
    # The name belongs to a Customer (or Employee): the Vendor takes the clash suffix.
    body["DisplayName"] = fields["name"] + ctx.settings.clash_suffix
    return await ctx.qbo.write(
        qbo_type, body, request_id=ctx.create_key(f"qbo-{qbo_type}-suffixed", body)
    )


async def _write_qbo(
    ctx: SyncContext,
    qbo_type: str,
    changes: dict[str, Any],
    current: dict[str, Any],
    purpose: str,
    display: str | None = None,
) -> dict[str, Any]:
    body = contact_to_qbo(changes, display or str(current.get("DisplayName")))
    body.update({"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True})
    return await ctx.qbo.write(qbo_type, body, request_id=ctx.request_id(f"qbo-{purpose}"))


async def _revert_archive(
    ctx: SyncContext, record: dict[str, Any], links: list[Any], op: Op, why: str
) -> Result:
    """Archiving is QBO's: put the contact back as QBO has it and ask a person to look."""
    restored = await _set_archived(ctx, str(record["id"]), archived=op is Op.UNARCHIVE)
    for link in links:
        await ctx.links.save(
            ctx.connection.id,
            "contact",
            link.qbo_type,
            qbo=(str(link.qbo_id), link.qbo_version),
            released=(str(restored["id"]), str(restored.get("version"))),
            snapshot=link.snapshot or contact_from_released(restored),
        )
    await ctx.conflicts.record(
        ctx.connection.id,
        "contact",
        "policy_flag",
        link_id=links[0].id if links else None,
        event_id=ctx.event.event_id,
        fields={"status": record.get("status")},
        winner="qbo",
        detail=f"{op.value} in Re-Leased reverted: {why}",
    )
    return Result("reverted", f"{op.value} reverted and flagged: {why}", str(record["id"]))


async def _record_conflicts(ctx: SyncContext, link_id: int, conflicts: list[Any]) -> None:
    for item in conflicts:
        await ctx.conflicts.record(
            ctx.connection.id,
            "contact",
            "field_conflict",
            link_id=link_id,
            event_id=ctx.event.event_id,
            fields={
                "field": item.field,
                "base": item.base,
                "source": item.source,
                "target": item.target,
            },
            winner=str(item.chosen),
            detail=f"{item.field} changed on both sides",
        )
