"""Re-Leased contacts to QBO Customers and Vendors (one per role); archiving there is reverted."""

from __future__ import annotations

from typing import Any

from shared.domain.canonical import normalise_name
from shared.domain.errors import DuplicateName, NotFound
from shared.domain.links import Link
from shared.domain.mapping.contacts import (
    contact_from_qbo,
    contact_from_released,
    contact_to_qbo,
    contact_to_released,
)
from shared.domain.merge import three_way_merge
from shared.domain.ownership import Op, Outcome
from shared.domain.qbo_query import query_literal
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

_REVERTS = (Outcome.REVERT, Outcome.REVERT_AND_FLAG)


async def from_released(ctx: SyncContext) -> Result:
    event = ctx.event
    if event.version is not None:
        # The notification names its version: one we wrote is our echo, known without a read
        # (at Re-Leased's 60 requests a minute, a batch of our creates must not cost one each).
        known = await ctx.links.by_released(ctx.connection.id, "contact", event.entity_id)
        if known and all(link.released_version == event.version for link in known):
            return Result("echo", "Re-Leased notified the version we wrote", known[0].qbo_id)
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
    op = operation(fields, links[0].snapshot if links else None)
    decision = ctx.policy.decide("contact", op, "released")
    if decision.outcome in _REVERTS and op in (Op.ARCHIVE, Op.UNARCHIVE):
        flagged = decision.outcome is Outcome.REVERT_AND_FLAG
        return await _revert_archive(ctx, record, links, op, decision.why, flagged=flagged)
    stop = await steps.not_applied(ctx, "contact", decision, links[0].id if links else None)
    if stop is not None:
        return stop
    roles = [t for t, flag in ROLE_FLAG.items() if record.get(flag)] or ["Customer"]
    touched: list[str] = []
    for qbo_type in roles:
        role_link = next((lk for lk in links if lk.qbo_type == qbo_type), None)
        touched.append(await _sync_role(ctx, qbo_type, record, fields, role_link))
    return Result("applied", op.value, ",".join(touched))


async def _sync_role(
    ctx: SyncContext,
    qbo_type: str,
    record: dict[str, Any],
    fields: dict[str, Any],
    link: Link | None,
) -> str:
    if link is None:
        await ctx.lock("contact-name", normalise_name(fields["name"]))
        found = await _find_qbo(ctx, qbo_type, fields)
        if found is None:
            found = await _create_qbo(ctx, qbo_type, fields)
        snapshot, qbo_record = fields, found
    else:
        snapshot, qbo_record, record = await _update_role(ctx, qbo_type, record, fields, link)
    await ctx.links.save(
        ctx.connection.id,
        "contact",
        qbo_type,
        qbo=(str(qbo_record["Id"]), str(qbo_record.get("SyncToken"))),
        released=(str(record["id"]), str(record.get("version"))),
        snapshot=snapshot,
    )
    return f"{qbo_type}:{qbo_record['Id']}"


async def _update_role(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], fields: dict[str, Any], link: Link
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Merge against the linked QBO record and write what differs to each side; returns the
    merged snapshot and both records as written."""
    qbo_record = await ctx.qbo.get(qbo_type, str(link.qbo_id))
    current = contact_from_qbo(qbo_record, clash_suffix(ctx, qbo_type), await company_prefs(ctx))
    display = display_name(ctx, qbo_type, fields["name"], qbo_record)
    merged = three_way_merge(
        link.snapshot, fields, current, steps.winner(ctx, "contact", "released")
    )
    if merged.target_changes:
        changes = {k: v for k, v in merged.merged.items() if k in merged.target_changes}
        qbo_record = await write_qbo(ctx, qbo_type, changes, qbo_record, "update", display)
    if merged.source_changes:
        record = await ctx.released.request(
            "PATCH",
            f"/contacts/{record['id']}",
            body=contact_to_released(
                {k: v for k, v in merged.source_changes.items() if k != "active"}, record
            ),
            idempotency_key=ctx.request_id(f"rl-mergeback-{qbo_type}"),
            if_match=record.get("version"),
        )
    await steps.record_conflicts(ctx, "contact", link.id, merged.conflicts)
    return merged.merged, qbo_record, record


async def _find_qbo(
    ctx: SyncContext, qbo_type: str, fields: dict[str, Any]
) -> dict[str, Any] | None:
    names = [fields["name"]]
    if qbo_type == "Vendor":
        names.append(fields["name"] + ctx.settings.contact_clash_suffix)
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
    body["DisplayName"] = fields["name"] + ctx.settings.contact_clash_suffix
    return await ctx.qbo.write(
        qbo_type, body, request_id=ctx.create_key(f"qbo-{qbo_type}-suffixed", body)
    )


async def _revert_archive(
    ctx: SyncContext,
    record: dict[str, Any],
    links: list[Link],
    op: Op,
    why: str,
    *,
    flagged: bool,
) -> Result:
    """Archiving is QBO's: put the contact back as QBO has it (and ask a person to look)."""
    restored = await set_archived(ctx, record, archived=op is Op.UNARCHIVE)
    for link in links:
        await ctx.links.save(
            ctx.connection.id,
            "contact",
            link.qbo_type,
            qbo=(str(link.qbo_id), link.qbo_version),
            released=(str(restored["id"]), str(restored.get("version"))),
            snapshot=link.snapshot or contact_from_released(restored),
        )
    if not flagged:
        return Result("reverted", f"{op.value} reverted: {why}", str(record["id"]))
    await steps.flag(
        ctx,
        "contact",
        links[0].id if links else None,
        {"status": record.get("status")},
        "qbo",
        f"{op.value} in Re-Leased reverted: {why}",
    )
    return Result("reverted", f"{op.value} reverted and flagged: {why}", str(record["id"]))
