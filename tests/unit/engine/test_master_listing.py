"""Master-data lookups before create come from one listing per burst (``shared.sync.listings``),
and a listing kept from before our own create elsewhere cannot make a duplicate."""

from __future__ import annotations

from typing import Any

import pytest

from shared.sync.listings import ListingCache
from tests.unit.engine.world import World


def _count_listings(world: World, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    original = world.released.list_all

    async def counting(path: str, **filters: str) -> list[dict[str, Any]]:
        seen.append(path)
        return await original(path, **filters)

    monkeypatch.setattr(world.released, "list_all", counting)
    return seen


def _accounts(world: World, code: str) -> list[dict[str, Any]]:
    return [a for a in world.released.records["/accounts"].values() if a.get("code") == code]


async def test_twenty_unlinked_accounts_are_looked_up_in_one_listing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = World()
    world.released.seed("/accounts", code="500", name="Theirs", type="EXPENSE", status="ACTIVE")
    listings = _count_listings(world, monkeypatch)
    ids = [
        world.qbo.seed("Account", Name=f"Cost {n}", AccountType="Expense", AcctNum=str(500 + n))[
            "Id"
        ]
        for n in range(20)
    ]
    for qbo_id in ids:
        result = await world.from_qbo("account", qbo_id, "create")
        assert result.outcome == "applied", result
    assert listings.count("/accounts") == 1, listings
    # The company's own 500 was adopted, the other nineteen created: one of each code.
    assert all(len(_accounts(world, str(500 + n))) == 1 for n in range(20))


async def test_listing_kept_from_before_another_replicas_create_makes_no_duplicate() -> None:
    """Replica B creates account 400 in Re-Leased, then its transaction fails (no link).
    Replica A's listing was taken before that create; the account is renamed in QBO and A
    handles it: a new create request (a new body), which without the ledger's word would be a
    second account 400, since Re-Leased takes duplicate codes."""
    world = World()
    world.released.seed("/accounts", code="090", name="Bank", type="BANK", status="ACTIVE")
    other = world.qbo.seed("Account", Name="Other", AccountType="Expense", AcctNum="300")
    replica_a, replica_b = ListingCache(), ListingCache()
    world.listings = replica_a
    assert (await world.from_qbo("account", other["Id"], "create")).outcome == "applied"
    rent = world.qbo.seed("Account", Name="Rent", AccountType="Income", AcctNum="400")

    world.listings = replica_b
    saved = world.store.links.save

    async def fail_once(*args: Any, **kwargs: Any) -> int:
        world.store.links.save = saved  # type: ignore[method-assign]  # once
        raise RuntimeError("the transaction fails after the create")

    world.store.links.save = fail_once  # type: ignore[method-assign]  # a failing commit
    with pytest.raises(RuntimeError):
        await world.from_qbo("account", rent["Id"], "create")
    assert len(_accounts(world, "400")) == 1
    assert [link.qbo_id for link in world.store.links.of("account")] == [other["Id"]]

    world.qbo.edit("Account", rent["Id"], Name="Rent income")
    world.listings = replica_a
    result = await world.from_qbo("account", rent["Id"])
    assert result.outcome == "applied", result
    assert len(_accounts(world, "400")) == 1
    assert _accounts(world, "400")[0]["name"] == "Rent income"
