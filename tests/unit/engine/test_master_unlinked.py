"""Master data changed in Re-Leased with no QBO counterpart.

While connected only the accounting side (we) writes master data there; one archived without a
link is the connection's alignment retiring the company's own record: nothing to restore, nobody
to ask. An active one without a link still asks a person (QBO is the only manager).
"""

from __future__ import annotations

from tests.unit.engine.world import World


def _flags(world: World) -> int:
    return len([c for c in world.store.conflicts.rows if c.kind == "policy_flag"])


async def test_unlinked_master_record_archived_is_ignored() -> None:
    world = World()
    rate = world.released.seed("/tax-rates", name="Old GST", rate="15.00", status="ARCHIVED")
    result = await world.from_released("taxrate", rate["id"])
    assert result.outcome == "ignored", result
    assert _flags(world) == 0
    assert (world.qbo.writes, world.released.writes) == ([], [])


async def test_unlinked_master_record_still_active_is_flagged() -> None:
    world = World()
    account = world.released.seed("/accounts", code="777", name="Own account", status="ACTIVE")
    result = await world.from_released("account", account["id"])
    assert result.outcome == "flagged", result
    assert _flags(world) == 1
