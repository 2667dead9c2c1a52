"""QBO sales tax codes read with their component rates: what both documents (the code a
document takes) and master data (a combined code as one Re-Leased rate) need."""

from __future__ import annotations

from typing import Any

from shared.domain.mapping.tax import QboTaxCode, rate_text
from shared.sync.context import SyncContext


async def qbo_tax_code(ctx: SyncContext, code_id: str) -> tuple[dict[str, Any], QboTaxCode]:
    """A QBO tax code and its component rates (read from QBO: exact percentages)."""
    code = await ctx.qbo.get("TaxCode", code_id)
    components = []
    for detail in (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []:
        rate_id = str(detail["TaxRateRef"]["value"])
        rate = await ctx.qbo.get("TaxRate", rate_id)
        components.append((rate_id, rate_text(rate.get("RateValue", 0))))
    return code, QboTaxCode(str(code["Id"]), tuple(components))
