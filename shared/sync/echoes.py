"""Re-Leased's notification of a record we created ourselves, known without reading it.

Every Re-Leased notification is thin: handling one starts with a read of the record, a request
against the company's 60 a minute. After an import has created thousands of records in batches,
their ``create`` notifications would cost as many reads only to find each linked at the version we
wrote: the import's gain spent again. A ``create`` notification of a record that is already linked
(at the notified version, where the link keeps one; payments keep none) is our own write or one
already synced, so it ends here as an echo. Any later change comes with its own notification,
which is read as before.
"""

from __future__ import annotations

from shared.domain.errors import TransientError
from shared.sync.context import Result, SyncContext

# Re-Leased event category -> the link entities its records may be linked as.
LINKED_AS = {
    "contact": ("contact",),
    "invoice": ("invoice", "bill"),
    "creditnote": ("credit_note", "vendor_credit"),
    "payment": ("payment", "bill_payment"),
}


async def known_create(ctx: SyncContext) -> Result | None:
    """An echo for a Re-Leased ``create`` of a record already linked; None otherwise."""
    event = ctx.event
    if event.source != "released" or event.operation != "create" or event.replay_of:
        return None
    for entity in LINKED_AS.get(event.entity, ()):
        for link in await ctx.links.by_released(ctx.connection.id, entity, event.entity_id):
            if link.status != "linked":
                continue
            if link.released_version is None or link.released_version == event.version:
                return Result("echo", "created by us (linked at this version)", link.qbo_id)
    for entity in LINKED_AS.get(event.entity, ()):
        if await ctx.made_by_us("released", entity, event.entity_id) is not None:
            # Made by a batch whose transaction has not committed its links yet (it holds their
            # locks only once it has them all): this comes back, and then finds the link.
            raise TransientError(
                f"Re-Leased {event.entity} {event.entity_id} is ours, being linked"
            )
    return None
