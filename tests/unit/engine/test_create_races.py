"""Create races (guarantee 6): a record the engine created, announced by the other side before its
link commits (or after the transaction that made it failed), is linked, never copied back as new;
a create redone after a lost race makes one twin, not two."""

from __future__ import annotations

import pytest

from shared.domain.errors import TransientError
from tests.unit.engine.fake_released import Obj
from tests.unit.engine.setups import (
    linked_invoice,
    released_approved_invoice,
    released_payment,
)
from tests.unit.engine.world import World


def _fail_link_save(world: World, after: int = 0) -> None:
    """The link save after ``after`` successful ones fails (its transaction with it)."""
    world.store.links.fail_saves = [*([None] * after), TransientError("the transaction failed")]


@pytest.mark.parametrize("failure", ["number_write", "link_save"])
async def test_a_qbo_invoice_made_from_released_is_linked_when_its_notification_wins(
    failure: str,
) -> None:
    """The transaction that made the QBO invoice fails after QBO's write: before QBO's number
    reached Re-Leased (only the ledger knows the two are twins), or after it (the number does)."""
    world = World()
    rl_id = await released_approved_invoice(world)
    invoices = len(world.qbo.objects["Invoice"])
    if failure == "link_save":
        _fail_link_save(world)
    else:
        _fail_number_write(world, rl_id)
    with pytest.raises(TransientError):
        await world.from_released("invoice", rl_id)
    made_id = max(world.qbo.objects["Invoice"], key=int)
    assert len(world.qbo.objects["Invoice"]) == invoices + 1, "QBO has the invoice, no link yet"
    result = await world.from_qbo("invoice", made_id)
    assert result.outcome == "applied", result
    assert result.reason.startswith("matched existing document")
    assert len(world.released.records["/invoices"]) == 2, "no second Re-Leased invoice"
    document = await world.released.get(f"/invoices/{rl_id}")
    assert document["number"] == world.qbo.objects["Invoice"][made_id]["DocNumber"]
    retried = await world.from_released("invoice", rl_id)
    assert retried.outcome == "echo", retried
    assert len(world.qbo.objects["Invoice"]) == invoices + 1, "no second QBO invoice"


def _fail_number_write(world: World, rl_id: str) -> None:
    """The write of QBO's number back to the Re-Leased invoice fails, once."""

    def fail() -> None:
        raise TransientError("Re-Leased answered 503")

    world.released.once_before_write("PATCH", f"/invoices/{rl_id}", fail)


async def test_a_released_invoice_made_from_qbo_is_linked_when_its_notification_wins() -> None:
    world = World()
    first, _ = await linked_invoice(world)  # the contact and the item are linked already
    customer = (await world.qbo.get("Invoice", first))["CustomerRef"]["value"]
    item = (await world.qbo.query_all("Item", "Name = 'Services'"))[0]["Id"]
    qbo_invoice = world.qbo_invoice(customer, item, "55.00")
    _fail_link_save(world)
    with pytest.raises(TransientError):
        await world.from_qbo("invoice", qbo_invoice["Id"])
    rl_id = max(world.released.records["/invoices"], key=lambda i: int(i.removeprefix("rl-")))
    result = await world.from_released("invoice", rl_id)
    assert result.outcome == "applied", result
    assert result.reason.startswith("matched existing document")
    assert world.qbo.written("Invoice") == [], "not created in QBO a second time"
    again = await world.from_qbo("invoice", qbo_invoice["Id"])
    assert again.outcome == "echo", again
    assert len(world.released.records["/invoices"]) == 2, "one Re-Leased twin"


async def test_a_qbo_customer_made_from_released_is_matched_by_name_not_created_again() -> None:
    world = World()
    contact = world.released.seed("/contacts", name="Walk-in Tenant", isCustomer=True)
    _fail_link_save(world)
    with pytest.raises(TransientError):
        await world.from_released("contact", contact["id"])
    (customer_id,) = world.qbo.objects["Customer"]
    result = await world.from_qbo("customer", customer_id)
    assert result.outcome == "applied", result
    assert result.reason == "matched existing contact"
    assert list(world.released.records["/contacts"]) == [contact["id"]]
    again = await world.from_released("contact", contact["id"])
    assert again.outcome == "echo", again
    assert list(world.qbo.objects["Customer"]) == [customer_id], "one QBO customer"


async def test_a_create_redone_after_a_lost_version_race_makes_one_qbo_invoice() -> None:
    world = World()
    rl_id = await released_approved_invoice(world)
    invoices = len(world.qbo.objects["Invoice"])
    # QBO's number goes back to Re-Leased at the version read: someone edits it first.
    world.released.once_before_write(
        "PATCH",
        f"/invoices/{rl_id}",
        lambda: world.released.edit("/invoices", rl_id, dueDate="2026-12-31"),
    )
    result = await world.from_released("invoice", rl_id)
    assert result.outcome == "applied", result
    assert len(world.qbo.objects["Invoice"]) == invoices + 1, "one QBO invoice"
    document: Obj = await world.released.get(f"/invoices/{rl_id}")
    twin = world.qbo.objects["Invoice"][str(result.target_id)]
    assert document["number"] == twin["DocNumber"]


async def test_a_twin_being_written_elsewhere_is_retried_not_duplicated() -> None:
    world = World()
    rl_id = await released_approved_invoice(world)
    _fail_link_save(world)
    with pytest.raises(TransientError):
        await world.from_released("invoice", rl_id)
    made_id = max(world.qbo.objects["Invoice"], key=int)
    # The handler that made it still holds the Re-Leased invoice's lock (its retry, say).
    world.store.locks.held_elsewhere.add(f"{world.connection_id}:released:invoice:{rl_id}")
    with pytest.raises(TransientError):
        await world.from_qbo("invoice", made_id)
    assert len(world.released.records["/invoices"]) == 2, "nothing created meanwhile"


async def test_a_qbo_payment_made_from_released_is_not_paid_back() -> None:
    world = World()
    payment = await released_payment(world)
    _fail_link_save(world)
    with pytest.raises(TransientError):
        await world.from_released("payment", payment)
    (made_id,) = world.qbo.objects["Payment"]
    result = await world.from_qbo("payment", made_id)
    assert result.outcome == "echo", result
    assert len(world.released.records["/payments"]) == 1, "Re-Leased is not paid twice"
    again = await world.from_released("payment", payment)
    assert again.outcome == "echo", again
    assert list(world.qbo.objects["Payment"]) == [made_id]


async def test_a_released_contact_made_from_qbo_is_known_ours_before_its_link_commits() -> None:
    """The create's notification, arriving before the link commits, comes back later; it never
    reads the contact (a request on the company's 60 a minute) to learn it is an echo."""
    world = World()
    customer = world.qbo.seed("Customer", DisplayName="Quay Street Florist", Active=True)
    _fail_link_save(world)
    with pytest.raises(TransientError):
        await world.from_qbo("customer", customer["Id"])
    (made_id,) = world.released.records["/contacts"]
    reads: list[str] = []
    get = world.released.get

    async def counted(path: str) -> Obj:
        reads.append(path)
        return await get(path)

    world.released.get = counted  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="ours, being linked"):
        await world.from_released("contact", made_id, operation="create", version="1")
    assert reads == [], "no read of a contact we made"
    assert (await world.from_qbo("customer", customer["Id"])).outcome == "applied"
    version = str(world.released.records["/contacts"][made_id].get("version"))
    again = await world.from_released("contact", made_id, operation="create", version=version)
    assert again.outcome == "echo", again
    assert list(world.released.records["/contacts"]) == [made_id], "one Re-Leased contact"
