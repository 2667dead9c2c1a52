"""Which handler applies which change event: ``(source, entity word)`` -> handler.

The one place that knows every entity's package. Entities never import each other: a dependency
(a document's contact, the document a payment settles) is reached through ``resolve`` below, and
the credit note, whose event carries both a document and its allocations, is composed here.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.domain.entities import QBO_IGNORED_TYPES
from shared.domain.errors import NotFound
from shared.domain.events import ChangeEvent
from shared.domain.mapping.held_credit import is_held
from shared.domain.resolution import RESOLVE_OPERATION
from shared.sync import attachments, classes, contacts, documents, masterdata, payments, resolution
from shared.sync.context import Handler, Result, SyncContext


async def credit_note_from_released(ctx: SyncContext) -> Result:
    """A Re-Leased credit note changed: the document itself, then any allocation QBO lacks
    (read once: the document's own handling does not change its allocations)."""
    try:
        note = await ctx.released.get(f"/credit-notes/{ctx.event.entity_id}")
    except NotFound:
        return Result("ignored", "gone from Re-Leased")
    if is_held(note):  # money not against a document: a QBO payment's unapplied cash
        return await payments.held_credit_from_released(ctx, note)
    result = await documents.apply_released(ctx, note)
    if result.outcome not in ("applied", "echo"):
        return result
    made = await payments.allocations_to_qbo(ctx, note)
    if not made:
        return result
    return Result(
        "applied", f"{result.reason}; {made} allocation(s) recorded in QBO", result.target_id
    )


ROUTES: dict[tuple[str, str], Handler] = {
    ("qbo", "customer"): contacts.from_qbo,
    ("qbo", "vendor"): contacts.from_qbo,
    ("qbo", "account"): masterdata.from_qbo,
    ("qbo", "item"): masterdata.from_qbo,
    ("qbo", "taxrate"): masterdata.from_qbo,
    ("qbo", "taxcode"): masterdata.from_qbo,
    ("qbo", "class"): classes.from_qbo,
    ("qbo", "invoice"): documents.from_qbo,
    ("qbo", "bill"): documents.from_qbo,
    ("qbo", "creditmemo"): documents.from_qbo,
    ("qbo", "vendorcredit"): documents.from_qbo,
    ("qbo", "payment"): payments.from_qbo,
    ("qbo", "billpayment"): payments.from_qbo,
    ("qbo", "attachable"): attachments.from_qbo,
    ("released", "contact"): contacts.from_released,
    ("released", "invoice"): documents.from_released,
    ("released", "creditnote"): credit_note_from_released,
    ("released", "payment"): payments.from_released,
    ("released", "attachment"): attachments.from_released,
    ("released", "account"): masterdata.from_released,
    ("released", "taxrate"): masterdata.from_released,
    ("released", "tracking"): classes.from_released,
}

# A credit note needed as a dependency (a refund's, an allocation's) is the document alone.
_DEPENDENCIES: dict[tuple[str, str], Handler] = {
    **ROUTES,
    ("released", "creditnote"): documents.from_released,
}

_IGNORED_QBO = {t.lower() for t in QBO_IGNORED_TYPES}


def handler_for(handlers: Mapping[tuple[str, str], Handler], event: ChangeEvent) -> Handler | None:
    """The handler of ``event``: a conflict resolution (any entity) or the entity's own."""
    if event.operation == RESOLVE_OPERATION:
        return resolution.resolve
    return handlers.get((event.source, event.entity))


def resolve(source: str, entity: str) -> Handler:
    """The handler a dependency of this kind runs (a lookup error here is a bug: every kind a
    handler asks for is in the table)."""
    return _DEPENDENCIES[(source, entity)]


def ignore_reason(event: ChangeEvent) -> str:
    """Why an event no handler takes is ignored (logged with its outcome)."""
    if event.source == "qbo" and event.entity in _IGNORED_QBO:
        return "not_synced_type"
    return f"no sync for {event.source} {event.entity} yet"
