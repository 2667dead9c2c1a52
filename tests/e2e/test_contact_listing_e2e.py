"""A live QBO customer looks up Re-Leased's contacts from the consumer's kept listing, brought up
to date with one request for what changed (``ListingCache.fresh_listing``), through the real
consumer and sandboxes: a few requests for the whole burst, and a contact a user made after the
listing was kept is still found."""

from __future__ import annotations

import asyncio
import functools

import asyncpg
import pytest

from shared.sync.listings import OVERLAP_S
from tests.e2e.builders import rl_as_user
from tests.e2e.conftest import Linked
from tests.e2e.readers import contacts_named, link_of
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e
# More than one page of 1000: a full listing of the company's contacts takes two requests.
SEEDED = 1001
CUSTOMERS = 6


async def _contact_listings(stack: Stack, company: str) -> int:
    """GETs of the whole contacts collection (any page, any filter) the company's API answered."""
    url = f"{stack.released_base}/_sandbox/companies/{company}/requests"
    found = await stack.call("GET", f"{url}?includeReads=true&method=GET&pathContains=/contacts")
    return len([r for r in found["items"] if str(r["path"]).endswith("/contacts")])


async def _contact_count(stack: Stack, company: str) -> int:
    everyone = await stack.released_api(company, "GET", "/contacts?includeArchived=true&pageSize=1")
    return int(everyone["pagination"]["itemCount"])


async def _seed_contacts(stack: Stack, company: str) -> None:
    """The company's contacts from before it connected (no webhook is subscribed yet)."""
    for start in range(0, SEEDED, 100):
        await asyncio.gather(
            *(
                rl_as_user(stack, company, "POST", "/contacts", {"name": f"Tenant {n:05}"})
                for n in range(start, min(start + 100, SEEDED))
            )
        )


async def test_live_qbo_customers_cost_one_page_each_not_the_whole_listing(
    stack: Stack, pool: asyncpg.Pool
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company(user_subscribes=False)
    await _seed_contacts(stack, company)
    # Re-Leased's clock moves past the refresh's overlap (``OVERLAP_S``) before the company's
    # newest contact: the others are older than any change list asks for, as a company's
    # contacts would be (seeded within seconds, they would all fall in the first one's overlap).
    await stack.call(
        "POST", f"{stack.released_base}/_sandbox/clock", json={"advanceSeconds": OVERLAP_S + 5}
    )
    await rl_as_user(stack, company, "POST", "/contacts", {"name": "Tenant newest"})
    await asyncio.sleep(1.1)  # CDC works in whole seconds: keep seed data before the connection
    connection = await stack.connect(realm, tokens, company)
    linked = Linked(realm, company, connection, stack.factory.qbo(connection))
    had = await _contact_count(stack, company)
    async with consumers(stack.settings):
        before = await _contact_listings(stack, company)
        for n in range(CUSTOMERS):
            body = {"DisplayName": unique(f"Live customer {n}")}
            made = await linked.qbo.write("Customer", body, request_id=unique("cust"))
            # One at a time, as live edits come: each lookup is its own.
            await eventually(functools.partial(link_of, pool, "Customer", made["Id"], connection))
        listings = await _contact_listings(stack, company) - before
    # The first lookup lists both pages; every later one asks for what changed (one page).
    # Relisting for each would have cost 2 x CUSTOMERS = 12.
    assert listings <= CUSTOMERS + 1, f"{listings} listing requests for {CUSTOMERS} customers"
    assert await _contact_count(stack, company) == had + CUSTOMERS, "one contact each"


async def test_a_contact_a_user_made_after_the_listing_was_kept_is_linked_not_duplicated(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    # The user's contact must reach us only through the lookup: its webhook is lost.
    await stack.call(
        "PUT",
        f"{stack.released_base}/_sandbox/companies/{linked.company}/faults",
        json={"deliveries": {"dropRate": 1.0}},
    )
    async with consumers(stack.settings):
        first = await linked.qbo.write(
            "Customer", {"DisplayName": unique("First")}, request_id=unique("c")
        )
        await eventually(lambda: link_of(pool, "Customer", str(first["Id"]), linked.connection))
        name = unique("Walk-in tenant")
        theirs = await rl_as_user(
            stack, linked.company, "POST", "/contacts", {"name": name, "isSupplier": True}
        )
        ours = await linked.qbo.write("Customer", {"DisplayName": name}, request_id=unique("c"))
        link = await eventually(
            lambda: link_of(pool, "Customer", str(ours["Id"]), linked.connection)
        )
    assert link["released_id"] == theirs["id"]
    (contact,) = await contacts_named(stack, linked.company, name)
    assert contact["isCustomer"] is True
