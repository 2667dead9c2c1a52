"""Contacts that survive the trip: an e-mail shared by several contacts is no match, a contact
linked elsewhere is not taken by e-mail, addresses travel both ways (what only one side holds
stays there), and a sub-customer (job) keeps its parent in QBO."""

from __future__ import annotations

from structlog.testing import capture_logs

from tests.unit.engine.setups import linked_customer
from tests.unit.engine.world import World

SHARED = "rent@harbour-agency.example"


async def test_an_email_several_contacts_share_is_no_match() -> None:
    world = World()
    for name in ("Tenant X", "Tenant Y"):
        world.released.seed("/contacts", name=name, email=SHARED, isCustomer=True)
    customer = world.qbo.seed(
        "Customer", DisplayName="Tenant Z", PrimaryEmailAddr={"Address": SHARED}
    )
    with capture_logs() as logs:
        result = await world.from_qbo("customer", customer["Id"])
    assert (result.outcome, result.reason) == ("applied", "created")
    assert len(world.released.records["/contacts"]) == 3
    (decision,) = [e for e in logs if e["event"] == "contact_match_decided"]
    assert (decision["reason"], decision["candidates"]) == ("email_ambiguous", 2)


async def test_a_contact_linked_to_another_customer_is_not_taken_by_email() -> None:
    world = World()
    _, first = await linked_customer(world, "Tenant A")  # e-mail t@x.com
    other = world.qbo.seed(
        "Customer", DisplayName="Tenant B", PrimaryEmailAddr={"Address": "t@x.com"}
    )
    result = await world.from_qbo("customer", other["Id"])
    assert (result.outcome, result.reason) == ("applied", "created")
    assert result.target_id != first


async def test_the_one_unlinked_contact_with_the_email_is_matched() -> None:
    world = World()
    mine = world.released.seed("/contacts", name="Kauri Cafe Ltd", email=SHARED, isCustomer=True)
    customer = world.qbo.seed(
        "Customer", DisplayName="Kauri Cafe", PrimaryEmailAddr={"Address": SHARED}
    )
    result = await world.from_qbo("customer", customer["Id"])
    assert (result.outcome, result.target_id) == ("applied", mine["id"])


async def test_addresses_travel_both_ways_and_what_one_side_holds_stays() -> None:
    world = World()
    customer = world.qbo.seed(
        "Customer",
        DisplayName="Quay Traders",
        BillAddr={
            "Line1": "12 Quay St",
            "Line2": "Level 3",
            "City": "Auckland",
            "CountrySubDivisionCode": "AKL",
            "PostalCode": "1010",
            "Country": "NZ",
        },
    )
    made = await world.from_qbo("customer", customer["Id"])
    contact = await world.released.get(f"/contacts/{made.target_id}")
    assert contact["addresses"] == [
        {
            "type": "POSTAL",
            "line1": "12 Quay St",
            "city": "Auckland",
            "postalCode": "1010",
            "country": "NZ",
        }
    ]
    street = {"type": "STREET", "line1": "1 Shop Lane", "city": "Auckland"}
    moved = {**contact["addresses"][0], "line1": "40 Wharf Rd"}
    world.released.edit("/contacts", str(made.target_id), addresses=[moved, street])
    result = await world.from_released("contact", str(made.target_id))
    assert result.outcome == "applied", result
    address = world.qbo.objects["Customer"][customer["Id"]]["BillAddr"]
    assert (address["Line1"], address["Line2"], address["CountrySubDivisionCode"]) == (
        "40 Wharf Rd",
        "Level 3",
        "AKL",
    )
    world.qbo.edit("Customer", customer["Id"], BillAddr={**address, "City": "Wellington"})
    await world.from_qbo("customer", customer["Id"])
    after = (await world.released.get(f"/contacts/{made.target_id}"))["addresses"]
    assert [a["city"] for a in after] == ["Wellington", "Auckland"], "the street address is kept"


async def test_a_sub_customer_is_its_own_contact_and_keeps_its_parent_in_qbo() -> None:
    world = World()
    parent, _ = await linked_customer(world, "Harbour Holdings")
    job = world.qbo.seed(
        "Customer",
        DisplayName="Unit 4 fit-out",
        FullyQualifiedName="Harbour Holdings:Unit 4 fit-out",
        Job=True,
        ParentRef={"value": parent},
    )
    made = await world.from_qbo("customer", job["Id"])
    assert made.outcome == "applied", made
    contact = await world.released.get(f"/contacts/{made.target_id}")
    assert contact["name"] == "Unit 4 fit-out"
    world.released.edit(
        "/contacts", str(made.target_id), phones=[{"type": "DEFAULT", "number": "09 555"}]
    )
    assert (await world.from_released("contact", str(made.target_id))).outcome == "applied"
    after = world.qbo.objects["Customer"][job["Id"]]
    assert (after["ParentRef"], after["Job"]) == ({"value": parent}, True)
    assert after["PrimaryPhone"] == {"FreeFormNumber": "09 555"}
