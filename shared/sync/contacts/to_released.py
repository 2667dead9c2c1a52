"""QBO Customers and Vendors to Re-Leased contacts (create, update, archive, merge)."""

from __future__ import annotations

from typing import Any

from shared.domain.canonical import canonical_hash, normalise_name
from shared.domain.errors import NotFound
from shared.domain.mapping.contacts import (
    contact_from_qbo,
    contact_from_released,
    contact_to_released,
)
from shared.domain.merge import three_way_merge
from shared.domain.ownership import Op
from shared.infra.logging import get_logger
from shared.sync import steps
from shared.sync.company import company_prefs
from shared.sync.contacts.common import (
    ROLE_FLAG,
    clash_suffix,
    display_name,
    operation,
    set_archived,
    write_qbo,
)
from shared.sync.context import Result, SyncContext

log = get_logger("sync.contacts")


async def from_qbo(ctx: SyncContext) -> Result:
    event = ctx.event
    qbo_type = "Vendor" if event.entity == "vendor" else "Customer"
    if event.operation == "merge" and event.related_id:
        return await _merge(ctx, qbo_type, event.entity_id, event.related_id)
    try:
        record = await ctx.qbo.get(qbo_type, event.entity_id)
    except NotFound:
        return Result("ignored", "gone from QBO (name lists are never deleted)")
    fields = contact_from_qbo(record, clash_suffix(ctx, qbo_type), await company_prefs(ctx))
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
    op = operation(fields, link.snapshot if link else None)
    decision = ctx.policy.decide("contact", op, "qbo")
    stop = await steps.not_applied(ctx, "contact", decision, link.id if link else None)
    if stop is not None:
        return stop
    if link is None:
        return await _create_in_released(ctx, qbo_type, record, fields)
    released = await ctx.released.get(f"/contacts/{link.released_id}")
    merged = three_way_merge(
        link.snapshot,
        fields,
        contact_from_released(released),
        steps.winner(ctx, "contact", "qbo"),
    )
    released = await _write_released(ctx, released, merged.target_changes, qbo_type)
    if merged.source_changes:
        display = display_name(ctx, qbo_type, merged.merged["name"], record)
        record = await write_qbo(ctx, qbo_type, merged.merged, record, "merge-back", display)
    await steps.record_conflicts(ctx, "contact", link.id, merged.conflicts)
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
        # Known as ours before this transaction commits the link: the create's notification
        # comes back later instead of reading the contact to learn it is an echo.
        await ctx.created("released", "contact", str(match["id"]), str(record["Id"]))
        ctx.listings.put(ctx.connection.id, "/contacts", match)
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
            ctx.listings.put(ctx.connection.id, "/contacts", match)
    if not fields["active"]:
        match = await set_archived(ctx, match, archived=True)
        ctx.listings.put(ctx.connection.id, "/contacts", match)
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
    """Lookup before create: same name, else the one contact with the same e-mail that no
    other QBO record is linked to. Several contacts sharing the e-mail (tenants whose mail goes
    to one property manager) are no match: a new contact is made, and the decision logged.
    The contacts come from the process's kept listing, refreshed with what changed (users edit
    contacts too): ``ListingCache.fresh_listing``; the caller holds the ``contact-name`` lock."""
    contacts = await ctx.listings.fresh_listing(ctx.released, ctx.connection.id, "/contacts")
    wanted = normalise_name(fields["name"])
    for contact in contacts:
        if normalise_name(str(contact.get("name", ""))) == wanted:
            return contact
    email = (fields.get("email") or "").casefold()
    if not email:
        return None
    same = [c for c in contacts if str(c.get("email") or "").casefold() == email]
    free = [
        c
        for c in same
        if not await ctx.links.by_released(ctx.connection.id, "contact", str(c["id"]))
    ]
    if len(same) == 1 and len(free) == 1:
        log.info(
            "contact_match_decided",
            connection_id=str(ctx.connection.id),
            entity_id=ctx.event.entity_id,
            released_id=str(free[0]["id"]),
            reason="same_email",
        )
        return free[0]
    if same:
        log.info(
            "contact_match_decided",
            connection_id=str(ctx.connection.id),
            entity_id=ctx.event.entity_id,
            released_id=None,
            candidates=len(same),
            reason="email_ambiguous" if len(same) > 1 else "email_contact_linked_elsewhere",
        )
    return None


async def _write_released(
    ctx: SyncContext, current: dict[str, Any], changes: dict[str, Any], qbo_type: str
) -> dict[str, Any]:
    body = contact_to_released({k: v for k, v in changes.items() if k != "active"}, current)
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
        current = await set_archived(ctx, current, archived=not changes["active"])
    return current


async def _merge(ctx: SyncContext, qbo_type: str, survivor_id: str, merged_id: str) -> Result:
    survivor = await ctx.links.by_qbo(ctx.connection.id, qbo_type, survivor_id)
    gone = await ctx.links.by_qbo(ctx.connection.id, qbo_type, merged_id)
    if survivor is None or gone is None or gone.released_id is None:
        return Result("ignored", "merge of contacts that are not both linked")
    await ctx.lock("link", str(gone.id))
    if gone.status == "unlinked":
        return Result("echo", "merge already applied", survivor.released_id)
    decision = ctx.policy.decide("contact", Op.MERGE, "qbo")
    stop = await steps.not_applied(ctx, "contact", decision, gone.id)
    if stop is not None:
        return stop
    merged = await ctx.released.accounting(
        "POST",
        f"/contacts/{gone.released_id}/merge",
        body={"intoContactId": survivor.released_id},
        idempotency_key=ctx.request_id(f"rl-merge-{gone.released_id}"),
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
