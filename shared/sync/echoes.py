"""Re-Leased's notification of a version we already synced, known without reading it.

Every Re-Leased notification is thin: handling one starts with a read of the record, a request
against the company's 60 a minute. After an import has written thousands of records in batches,
their notifications (the creates, and the documents the batched payments settled) would cost as
many reads only to find each linked at the version announced: the import's gain spent again. A
notification of the very version a link holds (one we wrote, or read and synced) ends here as an
echo, and so does a ``create`` of a record linked by a link that keeps no version (payments: one
is never edited, only reversed, which is announced as such). Any other change is read as before.
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
    "account": ("account",),
    "taxrate": ("tax_rate",),
}


async def known_create(ctx: SyncContext) -> Result | None:
    """An echo for a Re-Leased notification of a version already synced (any operation: the
    link's version is only ever one we wrote or read and synced), or for a ``create`` of a record
    already linked by a link that keeps no version (payments); None otherwise."""
    event = ctx.event
    if event.source != "released" or event.replay_of:
        return None
    create = event.operation == "create"
    for entity in LINKED_AS.get(event.entity, ()):
        for link in await ctx.links.by_released(ctx.connection.id, entity, event.entity_id):
            if link.status != "linked":
                continue
            if event.version and link.released_version == event.version:
                return Result("echo", "this version is synced already", link.qbo_id)
            if create and link.released_version is None:
                return Result("echo", "created by us", link.qbo_id)
    for entity in LINKED_AS.get(event.entity, ()) if create else ():
        if await ctx.made_by_us("released", entity, event.entity_id) is not None:
            # Made by a batch whose transaction has not committed its links yet (it holds their
            # locks only once it has them all): this comes back, and then finds the link.
            raise TransientError(f"{event.entity} {event.entity_id} is ours, being linked; retry")
    return None
