"""Contacts through the engine: a contact in both roles, the name clash, archiving and merges."""

from __future__ import annotations

from shared.domain.events import ChangeEvent
from tests.unit.engine.setups import linked_customer
from tests.unit.engine.world import World, qbo_event


async def test_a_contact_in_both_roles_becomes_a_customer_and_a_suffixed_vendor() -> None:
    world = World()
    contact = world.released.seed(
        "/contacts", name="Harbour Bakery", isCustomer=True, isSupplier=True
    )
    result = await world.from_released("contact", contact["id"])
    assert result.outcome == "applied", result
    (customer,) = world.qbo.objects["Customer"].values()
    (vendor,) = world.qbo.objects["Vendor"].values()
    assert customer["DisplayName"] == "Harbour Bakery"
    assert vendor["DisplayName"] == "Harbour Bakery (Supplier)", "DisplayName is unique in QBO"
    links = await world.store.links.by_released(world.connection_id, "contact", contact["id"])
    assert [link.qbo_type for link in links] == ["Customer", "Vendor"]
    echo = await world.from_qbo("vendor", vendor["Id"])
    assert echo.outcome == "echo", echo
    assert list(world.released.records["/contacts"]) == [contact["id"]]


async def test_the_clash_suffix_is_the_connections() -> None:
    world = World(settings={"contact_clash_suffix": " [S]"})
    contact = world.released.seed("/contacts", name="Dock Co", isCustomer=True, isSupplier=True)
    await world.from_released("contact", contact["id"])
    (vendor,) = world.qbo.objects["Vendor"].values()
    assert vendor["DisplayName"] == "Dock Co [S]"


async def test_archiving_in_qbo_archives_in_released() -> None:
    world = World()
    qbo_id, rl_id = await linked_customer(world)
    world.qbo.edit("Customer", qbo_id, Active=False)
    result = await world.from_qbo("customer", qbo_id)
    assert (result.outcome, result.reason) == ("applied", "archive")
    assert world.released.records["/contacts"][rl_id]["status"] == "ARCHIVED"


async def test_a_qbo_merge_archives_the_merged_away_contact_once() -> None:
    world = World()
    survivor, survivor_rl = await linked_customer(world, "Tenant A")
    gone, gone_rl = await linked_customer(world, "Tenant A (old)")
    result = await world.deliver(_merge_event(survivor, gone))
    assert result.outcome == "applied", result
    merged = world.released.records["/contacts"][gone_rl]
    assert (merged["status"], merged["mergedToContactId"]) == ("ARCHIVED", survivor_rl)
    again = await world.deliver(_merge_event(survivor, gone))
    assert again.outcome == "echo", again


def _merge_event(survivor: str, gone: str) -> ChangeEvent:
    """QBO's notification of a merge: the survivor's id, the merged-away one as ``related_id``."""
    return qbo_event("customer", survivor, "merge").model_copy(update={"related_id": gone})
