"""The QBO company's preferences the mapping needs (home currency, multi-currency, and whether
amounts may include tax: outside the US), read from QBO (``select * from Preferences`` and
``CompanyInfo``) and kept for a few minutes per connection: one read per
connection per five minutes, not one per document."""

from __future__ import annotations

import time
from uuid import UUID

from shared.domain.mapping.money import CompanyPrefs, prefs_from_qbo
from shared.sync.context import SyncContext

KEEP_SECONDS = 300.0
_KEPT: dict[UUID, tuple[float, CompanyPrefs]] = {}


async def company_prefs(ctx: SyncContext) -> CompanyPrefs:
    kept = _KEPT.get(ctx.connection.id)
    now = time.monotonic()
    if kept is not None and kept[0] > now:
        return kept[1]
    rows = await ctx.qbo.query_all("Preferences")
    info = await ctx.qbo.query_all("CompanyInfo")
    prefs = prefs_from_qbo(rows[0] if rows else None, info[0] if info else None)
    _KEPT[ctx.connection.id] = (now + KEEP_SECONDS, prefs)
    return prefs
