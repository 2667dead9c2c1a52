"""Classes through the engine: options named by the class's full path, a document's header class
on its lines, a Re-Leased tracking option QBO cannot hold kept as it is, and Re-Leased edits to
the QBO Classes category reverted (QBO owns classes)."""

from __future__ import annotations

from typing import Any

from tests.unit.engine.setups import linked_customer, linked_invoice
from tests.unit.engine.world import World


def units(world: World) -> tuple[str, str]:
    """Two sub-classes called "Unit 1", under "Building A" and "Building B"."""
    found = []
    for building in ("Building A", "Building B"):
        parent = world.qbo.seed("Class", Name=building, FullyQualifiedName=building)
        unit = world.qbo.seed(
            "Class",
            Name="Unit 1",
            FullyQualifiedName=f"{building}:Unit 1",
            SubClass=True,
            ParentRef={"value": parent["Id"]},
        )
        found.append(unit["Id"])
    return found[0], found[1]


async def option_of(world: World, class_id: str) -> dict[str, Any]:
    link = await world.store.links.by_qbo(world.connection_id, "Class", class_id)
    assert link is not None
    assert link.released_id
    category_id, option_id = link.released_id.split(":")
    category = await world.released.get(f"/tracking-categories/{category_id}")
    return next(o for o in category["options"] if o["id"] == option_id)


async def test_sub_classes_with_the_same_name_stay_two_options_named_by_full_path() -> None:
    world = World()
    first, second = units(world)
    for class_id in (first, second):
        assert (await world.from_qbo("class", class_id)).outcome == "applied"
    one, two = await option_of(world, first), await option_of(world, second)
    assert one["id"] != two["id"]
    assert (one["name"], two["name"]) == ("Building A:Unit 1", "Building B:Unit 1")


async def test_a_class_on_the_whole_qbo_document_goes_to_each_line_without_one() -> None:
    world = World()
    books = world.seed_qbo_books()
    first, _ = units(world)
    customer, _ = await linked_customer(world)
    invoice = world.qbo_invoice(customer, books["item"], "80.00", ClassRef={"value": first})
    result = await world.from_qbo("invoice", invoice["Id"])
    assert result.outcome == "applied", result
    (line,) = (await world.released.get(f"/invoices/{result.target_id}"))["lines"]
    assert line["trackingOptionId"] == (await option_of(world, first))["id"]


async def test_a_property_option_qbo_cannot_hold_survives_a_qbo_edit() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    category = world.released.seed(
        "/tracking-categories", name="Property", options=[{"name": "12 Quay St"}]
    )
    option = category["options"][0]["id"]
    document = await world.released.get(f"/invoices/{rl_id}")
    world.released.edit(
        "/invoices", rl_id, lines=[{**document["lines"][0], "trackingOptionId": option}]
    )
    seen = await world.from_released("invoice", rl_id)
    assert seen.outcome == "echo", "nothing QBO holds changed"
    line = world.qbo.objects["Invoice"][qbo_id]["Line"][0]
    world.qbo.edit(
        "Invoice",
        qbo_id,
        Line=[
            {
                **line,
                "Amount": "120.00",
                "SalesItemLineDetail": {**line["SalesItemLineDetail"], "UnitPrice": "120.00"},
            }
        ],
    )
    result = await world.from_qbo("invoice", qbo_id)
    assert result.outcome == "applied", result
    (after,) = (await world.released.get(f"/invoices/{rl_id}"))["lines"]
    assert (after["lineAmount"], after["trackingOptionId"]) == ("120.00", option)


async def test_released_edits_to_the_qbo_classes_category_are_reverted() -> None:
    world = World()
    first, _ = units(world)
    await world.from_qbo("class", first)
    link = await world.store.links.by_qbo(world.connection_id, "Class", first)
    assert link is not None
    assert link.released_id
    category_id, option_id = link.released_id.split(":")
    category = await world.released.get(f"/tracking-categories/{category_id}")
    renamed = [
        {**o, "name": "Penthouse"} if o["id"] == option_id else o for o in category["options"]
    ]
    renamed.append({"id": "opt-made-in-rl", "name": "Carpark", "status": "ACTIVE"})
    world.released.edit("/tracking-categories", category_id, options=renamed)
    result = await world.from_released("tracking", category_id)
    assert result.outcome == "reverted", result
    options = {
        o["id"]: o
        for o in (await world.released.get(f"/tracking-categories/{category_id}"))["options"]
    }
    assert options[option_id]["name"] == "Building A:Unit 1"
    assert options["opt-made-in-rl"]["status"] == "ARCHIVED"
    assert [c.kind for c in world.store.conflicts.rows] == ["policy_flag"]
    again = await world.from_released("tracking", category_id)
    assert again.outcome == "echo", again


async def test_a_released_tracking_category_of_its_own_is_left_alone() -> None:
    world = World()
    category = world.released.seed(
        "/tracking-categories", name="Property", options=[{"name": "12 Quay St"}]
    )
    result = await world.from_released("tracking", category["id"])
    assert result.outcome == "ignored", result
    assert world.released.writes == []
