"""What a document refers to (contact, accounts and items, tax rates, classes), on either side.

Dependencies first (guarantee 7): a reference that is not linked yet is resolved by running the
contact or master-data handler for it inside the same transaction, as if its own change event had
arrived, and then looked up again. What still cannot be linked is a per-record error with a remedy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.kinds import DocKind
from shared.sync import contacts, masterdata
from shared.sync.context import Result, SyncContext

_QBO_HANDLER: dict[str, tuple[str, Callable[[SyncContext], Awaitable[Result]]]] = {
    "Customer": ("customer", contacts.from_qbo),
    "Vendor": ("vendor", contacts.from_qbo),
    "Account": ("account", masterdata.from_qbo),
    "Item": ("item", masterdata.from_qbo),
    "TaxRate": ("taxrate", masterdata.from_qbo),
    "Class": ("class", masterdata.from_qbo),
}
_RELEASED_ENTITY = {"contact": "contact", "account": "account", "tax_rate": "tax_rate"}


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


async def run_dependency(
    ctx: SyncContext,
    source: str,
    entity: str,
    entity_id: str,
    handler: Callable[[SyncContext], Awaitable[Result]],
) -> Result:
    """Apply a dependency now, holding the lock its own change event would take (so the two
    never run at once and cannot both create it)."""
    await ctx.lock(source, entity, entity_id)
    return await handler(sub_context(ctx, source, entity, entity_id))


async def released_id_for(ctx: SyncContext, key: str) -> str | None:
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
            word, handler = _QBO_HANDLER[qbo_type]
            await run_dependency(ctx, "qbo", word, qbo_id, handler)
            released = await released_id_for(ctx, key)
        if released is None:
            raise PermanentError(
                f"{key} could not be linked to Re-Leased",
                remedy="check the record in QBO is active, then replay this event",
            )
        found[key] = released
    return found


async def _tracking_key(ctx: SyncContext, option_id: str) -> str | None:
    qbo_id = await ctx.db.fetchval(
        "SELECT qbo_id FROM links WHERE connection_id = $1 AND entity = 'tracking_class' "
        "AND released_id LIKE '%:' || $2",
        ctx.connection.id,
        option_id,
    )
    return f"Class:{qbo_id}" if qbo_id else None


async def _linked_key(ctx: SyncContext, entity: str, released_id: str, party: str) -> str | None:
    links = await ctx.links.by_released(ctx.connection.id, entity, released_id)
    for link in links:
        if entity != "contact" or link.qbo_type == party:
            return f"{link.qbo_type}:{link.qbo_id}"
    return None


async def qbo_keys(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any]
) -> dict[str, str | None]:
    """Re-Leased id -> QBO key for what a Re-Leased document uses (contact resolved first)."""
    refs: dict[str, str | None] = {}
    contact_id = str(record.get("contactId") or "")
    if contact_id:
        key = await _linked_key(ctx, "contact", contact_id, kind.party)
        if key is None:
            await run_dependency(ctx, "released", "contact", contact_id, contacts.from_released)
            key = await _linked_key(ctx, "contact", contact_id, kind.party)
        if key is None:
            role = "customer" if kind.party == "Customer" else "supplier"
            raise PermanentError(
                f"contact {contact_id} has no QBO {kind.party}",
                remedy=f"mark the contact as {role} in Re-Leased",
            )
        refs[contact_id] = key
    for line in record.get("lines") or []:
        for field, entity in (("accountId", "account"), ("taxRateId", "tax_rate")):
            value = line.get(field)
            if value and value not in refs:
                refs[value] = await _linked_key(ctx, entity, str(value), kind.party)
                if refs[value] is None:
                    raise PermanentError(
                        f"{entity} {value} is not linked to QBO",
                        remedy=f"use an {entity.replace('_', ' ')} that comes from QBO "
                        "(QBO manages them)",
                    )
        option = line.get("trackingOptionId")
        if option and option not in refs:
            refs[option] = await _tracking_key(ctx, str(option))
    return refs


async def txn_tax_rate(ctx: SyncContext, record: dict[str, Any]) -> str | None:
    """The QBO TaxRate behind a sales document's transaction tax code."""
    code_ref = ((record.get("TxnTaxDetail") or {}).get("TxnTaxCodeRef") or {}).get("value")
    if not code_ref:
        return None
    code = await ctx.qbo.get("TaxCode", str(code_ref))
    rates = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
    if len(rates) != 1:
        raise PermanentError(
            f"tax code {code_ref} combines {len(rates)} rates",
            remedy="use a tax code with a single rate on documents that sync",
        )
    return f"TaxRate:{rates[0]['TaxRateRef']['value']}"


async def tax_code_for(ctx: SyncContext, rates: set[str]) -> str | None:
    if not rates:
        return None
    if len(rates) > 1:
        raise PermanentError(
            "lines use different tax rates; a QBO sales document takes one tax code",
            remedy="use one tax rate for the document's taxed lines",
        )
    wanted = split_key(next(iter(rates)))[1]
    for code in await ctx.qbo.query_all("TaxCode"):
        details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        if [str(d["TaxRateRef"]["value"]) for d in details] == [wanted]:
            return str(code["Id"])
    raise PermanentError(
        f"no QBO tax code carries only tax rate {wanted}",
        remedy="create a QBO tax code for that single rate",
    )
