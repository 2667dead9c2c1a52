"""Dependencies first (guarantee 7): what a change refers to is applied before the change.

A reference that is not linked yet (a document's contact, account, tax rate or class; the
document a payment settles) is resolved by running the engine's handler for it inside the same
transaction, as if its own change event had arrived, holding the lock that event would take; then
it is looked up again. What still cannot be linked is a per-record error with a remedy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from shared.domain.errors import PermanentError
from shared.domain.mapping.keys import split_key
from shared.sync.context import Result, SyncContext

# QBO type -> the entity word of its change events.
EVENT_WORD = {
    "Customer": "customer",
    "Vendor": "vendor",
    "Account": "account",
    "Item": "item",
    "TaxRate": "taxrate",
    "TaxCode": "taxcode",
    "Class": "class",
}


def sub_context(ctx: SyncContext, source: str, entity: str, entity_id: str) -> SyncContext:
    """A context for a dependency: its own event id (so its writes get their own keys)."""
    origin = ctx.event.replay_of or ctx.event.event_id
    event = ctx.event.model_copy(
        update={
            "event_id": f"{origin}:dep:{source}:{entity}:{entity_id}"[:200],
            "source": source,
            "entity": entity,
            "entity_id": entity_id,
            "operation": "update",
            "replay_of": None,
        }
    )
    return dataclasses.replace(ctx, event=event, stale_round=0)


async def run_dependency(ctx: SyncContext, source: str, entity: str, entity_id: str) -> Result:
    """Apply a dependency now, holding the lock its own change event would take (so the two
    never run at once and cannot both create it)."""
    handler = ctx.resolve(source, entity)
    await ctx.lock(source, entity, entity_id)
    return await handler(sub_context(ctx, source, entity, entity_id))


async def released_id_for(ctx: SyncContext, key: str) -> str | None:
    """The Re-Leased id linked to a QBO key (``"Item:5"``), if linked."""
    qbo_type, qbo_id = split_key(key)
    link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, qbo_id)
    if link is None or not link.released_id:
        return None
    # A class is an option of the tracking category: the link holds "category:option".
    return link.released_id.rsplit(":", 1)[-1] if qbo_type == "Class" else link.released_id


async def released_ids(ctx: SyncContext, keys: Iterable[str]) -> dict[str, str]:
    """QBO key -> Re-Leased id for every key, resolving unlinked ones from QBO first."""
    found: dict[str, str] = {}
    for key in keys:
        released = await released_id_for(ctx, key)
        if released is None:
            qbo_type, qbo_id = split_key(key)
            await run_dependency(ctx, "qbo", EVENT_WORD[qbo_type], qbo_id)
            released = await released_id_for(ctx, key)
        if released is None:
            raise PermanentError(
                f"{key} could not be linked to Re-Leased",
                remedy="check the record in QBO is active, then replay this event",
            )
        found[key] = released
    return found
