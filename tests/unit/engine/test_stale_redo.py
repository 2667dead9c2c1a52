"""A write that loses an optimistic-concurrency race (QBO SyncToken, Re-Leased If-Match) is redone:
fetch again, merge again, write again, as a new request (a replay of the refused one would only
be refused again). After a few lost rounds the event goes back to the retry ladder."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.errors import StaleVersion
from shared.sync.engine import MAX_STALE_ROUNDS
from tests.unit.engine.fake_qbo import Obj
from tests.unit.engine.setups import linked_invoice
from tests.unit.engine.world import World


def _edit_qbo_before_writes(world: World, qbo_id: str, times: int, **fields: Any) -> list[int]:
    """Someone edits the QBO invoice just before each of the engine's next ``times`` writes."""
    done = [0]

    def hook(entity: str, body: Obj) -> None:
        if entity == "Invoice" and str(body.get("Id")) == qbo_id and done[0] < times:
            done[0] += 1
            world.qbo.edit("Invoice", qbo_id, **fields)

    world.qbo.before_write.append(hook)
    return done


async def test_a_write_refused_for_a_stale_sync_token_is_remerged_and_written() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    world.released.edit("/invoices", rl_id, date="2026-11-23")
    edits = _edit_qbo_before_writes(world, qbo_id, 1, DueDate="2026-12-24")
    result = await world.from_released("invoice", rl_id)
    assert result.outcome == "applied", result
    assert edits == [1], "the first write lost the race"
    invoice = await world.qbo.get("Invoice", qbo_id)
    assert invoice["TxnDate"] == "2026-11-23", "Re-Leased's change is in"
    assert invoice["DueDate"] == "2026-12-24", "and the concurrent QBO edit is kept"
    document = await world.released.get(f"/invoices/{rl_id}")
    assert document["dueDate"] == "2026-12-24", "merged back to Re-Leased"


async def test_too_many_lost_races_go_back_to_the_retry_ladder() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    world.released.edit("/invoices", rl_id, date="2026-11-23")
    _edit_qbo_before_writes(world, qbo_id, MAX_STALE_ROUNDS + 1, PrivateNote="busy")
    with pytest.raises(StaleVersion):
        await world.from_released("invoice", rl_id)
    assert world.errors.rows == [], "a lost race is transient, not a record error"
    invoice = await world.qbo.get("Invoice", qbo_id)
    assert invoice["TxnDate"] != "2026-11-23"


async def test_a_released_patch_refused_for_its_version_is_redone() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    world.qbo.edit("Invoice", qbo_id, TxnDate="2026-11-25")
    world.released.once_before_write(
        "PATCH",
        f"/invoices/{rl_id}",
        lambda: world.released.edit("/invoices", rl_id, dueDate="2026-12-31"),
    )
    result = await world.from_qbo("invoice", qbo_id)
    assert result.outcome == "applied", result
    document = await world.released.get(f"/invoices/{rl_id}")
    assert (document["date"], document["dueDate"]) == ("2026-11-25", "2026-12-31")
    assert (await world.qbo.get("Invoice", qbo_id))["DueDate"] == "2026-12-31"
