"""Master data arriving from QBO in a burst costs Re-Leased one listing per collection, not one per
record (``shared.sync.listings``), through the real consumer and sandboxes."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import Linked
from tests.e2e.readers import link_of
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e
ACCOUNTS = 20


async def _account_listings(stack: Stack, company: str) -> int:
    """GETs of the whole accounts collection (any page) the company's API answered."""
    url = f"{stack.released_base}/_sandbox/companies/{company}/requests"
    found = await stack.call("GET", f"{url}?includeReads=true&method=GET&pathContains=/accounts")
    return len([r for r in found["items"] if str(r["path"]).endswith("/accounts")])


async def test_a_burst_of_new_qbo_accounts_is_looked_up_in_one_listing(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        before = await _account_listings(stack, linked.company)
        made: list[dict[str, Any]] = []
        for n in range(ACCOUNTS):
            body = {"Name": unique(f"Cost {n}"), "AccountType": "Expense", "AcctNum": f"7{n:03}"}
            made.append(await linked.qbo.write("Account", body, request_id=unique("acct")))

        async def all_linked() -> bool:
            rows = [await link_of(pool, "Account", str(a["Id"]), linked.connection) for a in made]
            return all(rows)

        await eventually(all_linked)
        listings = await _account_listings(stack, linked.company) - before
    codes = await stack.released_api(linked.company, "GET", "/accounts?pageSize=1000")
    ours = [a["code"] for a in codes["items"] if str(a["code"]).startswith("7")]
    assert sorted(ours) == [f"7{n:03}" for n in range(ACCOUNTS)], "one account per code"
    assert listings <= 1, f"{listings} listings of /accounts for {ACCOUNTS} new accounts"
