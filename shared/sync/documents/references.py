"""What a document refers to (contact, accounts and items, tax rates, classes), read on either
side and translated to the other's ids; unlinked references are resolved first (see
``shared.sync.dependencies``)."""

from __future__ import annotations

from typing import Any

from shared.domain.errors import PermanentError
from shared.domain.mapping.documents import document_from_qbo, document_from_released
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.kinds import DocKind
from shared.domain.mapping.tax import QboTaxCode
from shared.sync.company import company_prefs
from shared.sync.context import SyncContext
from shared.sync.dependencies import run_dependency
from shared.sync.tax_codes import qbo_tax_code


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
            await run_dependency(ctx, "released", "contact", contact_id)
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
            found = await ctx.links.class_of_option(ctx.connection.id, str(option))
            refs[option] = f"Class:{found}" if found else None
    return refs


async def txn_tax_rate(ctx: SyncContext, record: dict[str, Any]) -> str | None:
    """The canonical tax key behind a sales document's transaction tax code: its one QBO TaxRate,
    or the code itself when it combines several rates (one Re-Leased rate at their sum)."""
    code_ref = ((record.get("TxnTaxDetail") or {}).get("TxnTaxCodeRef") or {}).get("value")
    if not code_ref:
        return None
    code = await ctx.qbo.get("TaxCode", str(code_ref))
    rates = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
    if not rates:
        raise PermanentError(
            f"tax code {code_ref} has no sales tax rate",
            remedy="use a sales tax code on documents that sync",
        )
    if len(rates) > 1:
        return f"TaxCode:{code_ref}"
    return f"TaxRate:{rates[0]['TaxRateRef']['value']}"


async def tax_code_for(ctx: SyncContext, rates: set[str]) -> QboTaxCode | None:
    """The QBO tax code for the one tax key a document's taxed lines use: a combined code is
    its own key; a single rate is carried by the code holding only that rate."""
    if not rates:
        return None
    if len(rates) > 1:
        raise PermanentError(
            "lines use different tax rates; a QBO sales document takes one tax code",
            remedy="use one tax rate for the document's taxed lines",
        )
    qbo_type, wanted = split_key(next(iter(rates)))
    if qbo_type == "TaxCode":
        return (await qbo_tax_code(ctx, wanted))[1]
    for code in await ctx.qbo.query_all("TaxCode"):
        details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        if [str(d["TaxRateRef"]["value"]) for d in details] == [wanted]:
            return (await qbo_tax_code(ctx, str(code["Id"])))[1]
    raise PermanentError(
        f"no QBO tax code carries only tax rate {wanted}",
        remedy="create a QBO tax code for that single rate",
    )


async def fields_of_qbo(ctx: SyncContext, kind: DocKind, record: dict[str, Any]) -> dict[str, Any]:
    """A QBO document's canonical fields (its tax key and the company's currency read first)."""
    return document_from_qbo(
        kind, record, await txn_tax_rate(ctx, record), await company_prefs(ctx)
    )


async def fields_of_released(
    ctx: SyncContext, kind: DocKind, record: dict[str, Any]
) -> dict[str, Any]:
    """A Re-Leased document's canonical fields (its references translated to QBO keys first)."""
    refs = await qbo_keys(ctx, kind, record)
    return document_from_released(kind, record, refs, await company_prefs(ctx))
