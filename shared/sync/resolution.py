"""A field conflict resolved by choosing a side: the engine makes both sides hold that value.

The admin service publishes a change event for the chosen side's record (operation ``resolve``,
``related_id`` the conflict's id; ``shared.ops.conflict_resolution``). It is applied like every
other change: by the consumer of that side's direction, inside the API budgets, in the message's
transaction and under the record's lock. Each write carries an Idempotency-Key derived from the
event (the same on every retry) and the version read (SyncToken / If-Match); a lost race re-reads
and writes again (the engine's redo). When the engine met the clash it wrote the winner to both
sides, so keeping the side that lost writes its value to the other side and back to its own:
each side is written only where it differs. The link's snapshot takes the value (the two sides'
notifications of these writes are then echoes), and the conflict closes in the same transaction
as the outcome. A choice the ownership table does not allow, or a document that cannot change,
is not carried out: the conflict stays open with the reason.
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain.links import Link
from shared.domain.mapping.contacts import contact_from_qbo, contact_from_released
from shared.domain.mapping.contacts import contact_to_released as contact_body
from shared.domain.mapping.kinds import DocKind
from shared.domain.resolution import DOCUMENT_ENTITIES, SIDE_NAMES, OpenConflict, refusal
from shared.infra.logging import get_logger
from shared.sync.company import company_prefs
from shared.sync.contacts import common as contacts
from shared.sync.context import Result, SyncContext
from shared.sync.documents import common as documents
from shared.sync.documents.references import fields_of_qbo, fields_of_released

log = get_logger("sync.resolution")


class NotCarriedOut(Exception):
    """The chosen value cannot be written; the reason is kept on the conflict."""


def _same(a: Any, b: Any) -> bool:
    # Stored conflict values went through JSON (money and dates as text): compare them so.
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


async def resolve(ctx: SyncContext) -> Result:
    conflict_id = int(ctx.event.related_id or 0)
    conflict = await ctx.conflicts.open_conflict(conflict_id)
    if conflict is None:
        return Result("ignored", f"conflict {conflict_id} is resolved already")
    side = ctx.event.source
    link: Link | None = None
    try:
        why = refusal(ctx.policy, conflict, side)
        if why is None and conflict.link_id is not None:
            # Locked before it is read: the snapshot read is the one the writes move on from.
            await ctx.lock("link", str(conflict.link_id))
            link = await ctx.links.by_id(conflict.link_id)
        if why is None and (link is None or link.status != "linked"):
            why = "the conflict's records are no longer linked; relink them first"
        if why is not None or link is None:
            raise NotCarriedOut(why)
        written = await _write(ctx, conflict, link, side)
    except NotCarriedOut as exc:
        await ctx.conflicts.note(conflict.id, str(exc))
        log.warning(
            "conflict_resolution_refused",
            connection_id=str(ctx.connection.id),
            conflict_id=conflict.id,
            side=side,
            field=conflict.field,
            reason=str(exc),
        )
        return Result("ignored", f"conflict {conflict.id} not resolved: {exc}")
    where = " and ".join(SIDE_NAMES[s] for s in written) or "neither side (both held it)"
    text = f"kept {SIDE_NAMES[side]}'s {conflict.field}; written to {where}"
    await ctx.conflicts.close(conflict.id, conflict.requested_by or "engine", text)
    log.info(
        "conflict_resolution_applied",
        connection_id=str(ctx.connection.id),
        conflict_id=conflict.id,
        side=side,
        field=conflict.field,
        written=written,
    )
    other = link.released_id if side == "qbo" else link.qbo_id
    return Result("applied", f"conflict {conflict.id} resolved: {text}", other)


async def _write(ctx: SyncContext, conflict: OpenConflict, link: Link, side: str) -> list[str]:
    value = conflict.chosen(side)
    # The engine locked the chosen side's record; a change to the other one waits too (the same
    # key its own event takes), so neither is written between our read and our write.
    if conflict.entity == "contact":
        if side == "qbo":
            await ctx.lock("released", "contact", str(link.released_id))
        else:
            await ctx.lock("qbo", link.qbo_type.lower(), str(link.qbo_id))
        return await _contact(ctx, link, conflict.field, value)
    kind = DOCUMENT_ENTITIES[conflict.entity]
    if side == "qbo":
        await ctx.lock("released", kind.released_category, str(link.released_id))
    else:
        await ctx.lock("qbo", kind.qbo_word, str(link.qbo_id))
    return await _document(ctx, kind, link, conflict.field, value)


async def _contact(ctx: SyncContext, link: Link, field: str, value: Any) -> list[str]:
    qbo_type, written = link.qbo_type, []
    record = await ctx.qbo.get(qbo_type, str(link.qbo_id))
    prefs = await company_prefs(ctx)
    theirs = contact_from_qbo(record, contacts.clash_suffix(ctx, qbo_type), prefs)
    released = await ctx.released.get(f"/contacts/{link.released_id}")
    if not _same(theirs.get(field), value):
        name = value if field == "name" else theirs["name"]
        display = contacts.display_name(ctx, qbo_type, str(name), record)
        record = await contacts.write_qbo(ctx, qbo_type, {field: value}, record, "resolve", display)
        written.append("qbo")
    if not _same(contact_from_released(released).get(field), value):
        if field == "active":
            released = await contacts.set_archived(ctx, released, archived=not value)
        else:
            released = await ctx.released.request(
                "PATCH",
                f"/contacts/{released['id']}",
                body=contact_body({field: value}, released),
                idempotency_key=ctx.request_id("rl-resolve"),
                if_match=released.get("version"),
            )
        written.append("released")
    await ctx.links.save(
        ctx.connection.id,
        "contact",
        qbo_type,
        qbo=(str(record["Id"]), str(record.get("SyncToken"))),
        released=(str(released["id"]), str(released.get("version"))),
        snapshot={**(link.snapshot or theirs), field: value},
    )
    return written


async def _document(
    ctx: SyncContext, kind: DocKind, link: Link, field: str, value: Any
) -> list[str]:
    written = []
    record = await ctx.qbo.get(kind.qbo_type, str(link.qbo_id))
    theirs = await fields_of_qbo(ctx, kind, record)
    released = await ctx.released.get(f"{kind.released_path}/{link.released_id}")
    ours = await fields_of_released(ctx, kind, released)
    status = str(released.get("status"))
    if ctx.event.source == "released" and not ctx.settings.syncs_status(status):
        raise NotCarriedOut(f"the Re-Leased document is {status}, a status that does not sync")
    stale_in_released = not _same(ours.get(field), value)
    if stale_in_released and status in documents.LOCKED:
        raise NotCarriedOut(
            f"the Re-Leased document is {status} and cannot change; "
            "reverse its payments in QBO first, or keep QuickBooks' value"
        )
    if not _same(theirs.get(field), value):
        whole = {**theirs, field: value}
        record = await documents.write_qbo(ctx, kind, record, {field: value}, whole)
        written.append("qbo")
    if stale_in_released:
        whole = {**ours, field: value}
        released = await documents.patch_released(
            ctx, kind, released, {field: value}, whole, "rl-resolve"
        )
        written.append("released")
    snapshot = {**(link.snapshot or theirs), field: value}
    await documents.save_link(ctx, kind, record, released, snapshot)
    return written
