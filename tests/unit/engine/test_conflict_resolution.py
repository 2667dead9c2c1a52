"""A field conflict resolved by choosing a side, through the engine: both sides end up holding
that side's value (the winner had been written to both), the link's snapshot takes it so the
notifications of those writes are echoes, and the conflict closes with the outcome. A choice the
ownership table forbids is refused and changes nothing."""

from __future__ import annotations

import json

from shared.domain.events import ChangeEvent
from shared.domain.resolution import RESOLVE_OPERATION
from shared.sync.context import Result
from tests.unit.engine.fake_store import Conflict
from tests.unit.engine.setups import linked_customer, linked_invoice
from tests.unit.engine.world import World, qbo_event, released_event


def _resolution(event: ChangeEvent, conflict_id: int) -> ChangeEvent:
    return event.model_copy(update={"operation": RESOLVE_OPERATION, "related_id": str(conflict_id)})


async def keep_qbo(world: World, entity: str, qbo_id: str, conflict_id: int = 1) -> Result:
    return await world.deliver(_resolution(qbo_event(entity, qbo_id), conflict_id))


async def keep_released(world: World, category: str, rl_id: str, conflict_id: int = 1) -> Result:
    return await world.deliver(_resolution(released_event(category, rl_id), conflict_id))


async def _contact_clash(world: World) -> tuple[str, str]:
    """Both sides renamed the contact; Re-Leased won (the default) and both hold its name."""
    qbo_id, rl_id = await linked_customer(world)
    world.qbo.edit("Customer", qbo_id, DisplayName="Tenant A (QBO)")
    world.released.edit("/contacts", rl_id, name="Tenant A (RL)")
    await world.from_qbo("customer", qbo_id)
    assert (await world.qbo.get("Customer", qbo_id))["DisplayName"] == "Tenant A (RL)"
    return qbo_id, rl_id


async def test_keeping_the_losing_side_writes_its_value_to_both_sides() -> None:
    world = World()
    qbo_id, rl_id = await _contact_clash(world)
    result = await keep_qbo(world, "customer", qbo_id)
    assert (result.outcome, result.target_id) == ("applied", rl_id), result
    assert (await world.released.get(f"/contacts/{rl_id}"))["name"] == "Tenant A (QBO)"
    assert (await world.qbo.get("Customer", qbo_id))["DisplayName"] == "Tenant A (QBO)"
    (conflict,) = world.store.conflicts.rows
    assert conflict.resolved_by == "engine"
    assert conflict.resolution == "kept QuickBooks's name; written to QuickBooks and Re-Leased"
    (link,) = world.store.links.of("contact")
    assert (link.snapshot or {}).get("name") == "Tenant A (QBO)"
    # Each side's notification of these writes is our own echo, not a new change.
    assert (await world.from_qbo("customer", qbo_id)).outcome == "echo"
    assert (await world.from_released("contact", rl_id)).outcome == "echo"


async def test_keeping_the_winner_writes_nothing_and_closes_the_conflict() -> None:
    world = World()
    qbo_id, rl_id = await _contact_clash(world)
    version = (await world.released.get(f"/contacts/{rl_id}"))["version"]
    result = await keep_released(world, "contact", rl_id)
    assert result.outcome == "applied", result
    assert (await world.released.get(f"/contacts/{rl_id}"))["version"] == version
    assert world.store.conflicts.rows[0].resolution == (
        "kept Re-Leased's name; written to neither side (both held it)"
    )
    again = await keep_released(world, "contact", rl_id)
    assert (again.outcome, again.reason) == ("ignored", "conflict 1 is resolved already")


async def test_a_document_date_kept_from_re_leased_reaches_quickbooks() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    world.qbo.edit("Invoice", qbo_id, TxnDate="2026-11-21")
    world.released.edit("/invoices", rl_id, date="2026-11-22")
    await world.from_released("invoice", rl_id)
    assert (await world.qbo.get("Invoice", qbo_id))["TxnDate"] == "2026-11-21", "QBO won"
    conflict_id = len(world.store.conflicts.rows)
    result = await keep_released(world, "invoice", rl_id, conflict_id)
    assert result.outcome == "applied", result
    assert (await world.qbo.get("Invoice", qbo_id))["TxnDate"] == "2026-11-22"
    assert (await world.released.get(f"/invoices/{rl_id}"))["date"] == "2026-11-22"
    assert world.store.conflicts.rows[-1].resolved_by == "engine"


async def test_a_choice_the_ownership_table_forbids_is_refused_and_changes_nothing() -> None:
    world = World()
    qbo_id, rl_id = await linked_customer(world)
    (link,) = world.store.links.of("contact")
    # Re-Leased's "archived" against QBO's "active": archiving is QBO's alone.
    fields = {"field": "active", "base": True, "source": False, "target": True}
    world.store.conflicts.rows.append(
        Conflict(
            "contact",
            "field_conflict",
            link.id,
            "e",
            {**fields, "source_side": "released"},
            "True",
            "active changed on both sides",
            world.connection_id,
        )
    )
    result = await keep_released(world, "contact", rl_id)
    assert result.outcome == "ignored"
    assert "archive only in QBO" in result.reason
    assert (await world.qbo.get("Customer", qbo_id)).get("Active", True) is True
    (conflict,) = world.store.conflicts.rows
    assert conflict.resolved_by is None
    assert "cannot be written" in str(conflict.resolution)


async def test_a_documents_lines_kept_from_re_leased_reach_quickbooks() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    line = dict((await world.qbo.get("Invoice", qbo_id))["Line"][0])
    detail = {**line["SalesItemLineDetail"], "UnitPrice": "120.00"}
    world.qbo.edit(
        "Invoice", qbo_id, Line=[{**line, "Amount": "120.00", "SalesItemLineDetail": detail}]
    )
    document = await world.released.get(f"/invoices/{rl_id}")
    world.released.edit(
        "/invoices", rl_id, lines=[{**document["lines"][0], "unitAmount": "130.00"}]
    )
    await world.from_released("invoice", rl_id)
    assert (await world.released.get(f"/invoices/{rl_id}"))["lines"][0]["unitAmount"] == "120.00"
    (conflict,) = world.store.conflicts.rows
    # As PostgreSQL keeps it: JSON, money as text.
    conflict.fields = json.loads(json.dumps(conflict.fields, default=str))
    result = await keep_released(world, "invoice", rl_id)
    assert result.outcome == "applied", result
    assert (await world.qbo.get("Invoice", qbo_id))["Line"][0]["Amount"] == "130.00"
    assert (await world.released.get(f"/invoices/{rl_id}"))["lines"][0]["unitAmount"] == "130.00"
    assert (await world.from_qbo("invoice", qbo_id)).outcome == "echo"
    assert (await world.from_released("invoice", rl_id)).outcome == "echo"
