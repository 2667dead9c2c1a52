"""Concurrent edits (guarantee 8): both sides changed since the last sync. Fields changed on one
side only are taken from that side; a field changed on both sides goes to the connection's
winner, and every clash is recorded for a person."""

from __future__ import annotations

from tests.unit.engine.setups import linked_customer, linked_invoice
from tests.unit.engine.world import World


async def test_different_fields_changed_on_each_side_both_survive() -> None:
    world = World()
    qbo_id, rl_id = await linked_customer(world)
    world.qbo.edit("Customer", qbo_id, PrimaryEmailAddr={"Address": "new@x.com"})
    world.released.edit("/contacts", rl_id, phones=[{"type": "DEFAULT", "number": "555 0100"}])
    result = await world.from_qbo("customer", qbo_id)
    assert result.outcome == "applied", result
    contact = await world.released.get(f"/contacts/{rl_id}")
    customer = await world.qbo.get("Customer", qbo_id)
    assert contact["email"] == "new@x.com"
    assert contact["phones"][0]["number"] == "555 0100", "Re-Leased's own change kept"
    assert customer["PrimaryPhone"]["FreeFormNumber"] == "555 0100", "and written back to QBO"
    assert world.store.conflicts.rows == []


async def test_a_contact_clash_goes_to_released_by_default_and_is_recorded() -> None:
    world = World()
    qbo_id, rl_id = await linked_customer(world)
    world.qbo.edit("Customer", qbo_id, DisplayName="Tenant A (QBO)")
    world.released.edit("/contacts", rl_id, name="Tenant A (RL)")
    await world.from_qbo("customer", qbo_id)
    assert (await world.released.get(f"/contacts/{rl_id}"))["name"] == "Tenant A (RL)"
    assert (await world.qbo.get("Customer", qbo_id))["DisplayName"] == "Tenant A (RL)"
    (conflict,) = world.store.conflicts.rows
    assert conflict.kind == "field_conflict"
    assert conflict.fields == {
        "field": "name",
        "base": "Tenant A",
        "source": "Tenant A (QBO)",
        "target": "Tenant A (RL)",
        "source_side": "qbo",
    }
    assert conflict.winner == "Tenant A (RL)"


async def test_the_connection_setting_decides_who_wins() -> None:
    world = World(settings={"conflict_winners": {"contact": "qbo"}})
    qbo_id, rl_id = await linked_customer(world)
    world.qbo.edit("Customer", qbo_id, DisplayName="Tenant A (QBO)")
    world.released.edit("/contacts", rl_id, name="Tenant A (RL)")
    await world.from_released("contact", rl_id)
    assert (await world.qbo.get("Customer", qbo_id))["DisplayName"] == "Tenant A (QBO)"
    assert (await world.released.get(f"/contacts/{rl_id}"))["name"] == "Tenant A (QBO)"
    assert [c.winner for c in world.store.conflicts.rows] == ["Tenant A (QBO)"]


async def test_a_document_clash_goes_to_qbo_by_default() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    world.qbo.edit("Invoice", qbo_id, TxnDate="2026-11-21")
    world.released.edit("/invoices", rl_id, date="2026-11-22", dueDate="2026-12-31")
    result = await world.from_released("invoice", rl_id)
    assert result.outcome == "applied", result
    invoice = await world.qbo.get("Invoice", qbo_id)
    document = await world.released.get(f"/invoices/{rl_id}")
    assert invoice["TxnDate"] == document["date"] == "2026-11-21", "QBO wins the clash"
    assert invoice["DueDate"] == document["dueDate"] == "2026-12-31", "one-sided change kept"
    assert [c.fields["field"] for c in world.store.conflicts.rows] == ["date"]
