"""Documents through the engine: dependencies first, the status and date gates, voids and
deletes mirrored, and an edit that would leave less than the money QBO applied."""

from __future__ import annotations

from tests.unit.engine.setups import (
    linked_bill,
    linked_invoice,
    linked_payment,
    released_approved_invoice,
)
from tests.unit.engine.world import World


async def test_a_qbo_invoice_brings_its_customer_and_item_first() -> None:
    world = World()
    books = world.seed_qbo_books()
    customer = world.qbo.seed("Customer", DisplayName="Tenant D")
    invoice = world.qbo_invoice(customer["Id"], books["item"], "80.00")
    result = await world.from_qbo("invoice", invoice["Id"])
    assert result.outcome == "applied", result
    links = world.store.links
    contact = await links.by_qbo(world.connection_id, "Customer", customer["Id"])
    item = await links.by_qbo(world.connection_id, "Item", books["item"])
    assert contact is not None, "the customer is linked before the invoice"
    assert item is not None, "and so is the item"
    document = await world.released.get(f"/invoices/{result.target_id}")
    assert document["contactId"] == contact.released_id
    assert document["lines"][0]["accountId"] == item.released_id
    assert (document["status"], document["number"], document["total"]) == (
        "APPROVED",
        invoice["DocNumber"],
        "80.00",
    )


async def test_draft_never_syncs_and_approved_only_waits_for_approval() -> None:
    world = World(settings={"synced_statuses": ["APPROVED"]})
    rl_id = await released_approved_invoice(world)
    invoices = len(world.qbo.objects["Invoice"])
    world.released.edit("/invoices", rl_id, status="DRAFT")
    assert (await world.from_released("invoice", rl_id)).reason == "DRAFT never syncs"
    world.released.edit("/invoices", rl_id, status="AWAITING_APPROVAL")
    waiting = await world.from_released("invoice", rl_id)
    assert waiting.outcome == "ignored", waiting
    assert len(world.qbo.objects["Invoice"]) == invoices
    world.released.edit("/invoices", rl_id, status="APPROVED")
    assert (await world.from_released("invoice", rl_id)).outcome == "applied"
    assert len(world.qbo.objects["Invoice"]) == invoices + 1


async def test_documents_dated_before_the_sync_from_date_stay_put() -> None:
    world = World()
    rl_id = await released_approved_invoice(world)  # dated 2026-11-20
    world.settings["sync_from_date"] = "2026-11-21"
    result = await world.from_released("invoice", rl_id)
    assert (result.outcome, result.reason) == ("ignored", "dated before the sync-from date")


async def test_a_released_void_voids_the_qbo_invoice() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    world.released.edit("/invoices", rl_id, status="VOIDED")
    result = await world.from_released("invoice", rl_id)
    assert (result.outcome, result.reason) == ("applied", "voided in QBO")
    assert world.qbo.objects["Invoice"][qbo_id]["PrivateNote"] == "Voided"
    again = await world.from_qbo("invoice", qbo_id)
    assert (again.outcome, again.reason) == ("ignored", "document is voided")


async def test_a_qbo_delete_voids_the_released_bill() -> None:
    world = World()
    bill_qbo, bill_rl = await linked_bill(world)
    del world.qbo.objects["Bill"][bill_qbo]
    deleted = await world.from_qbo("bill", bill_qbo, "delete")
    assert deleted.outcome == "applied", deleted
    assert (await world.released.get(f"/invoices/{bill_rl}"))["status"] == "VOIDED"


async def test_a_released_edit_below_the_money_qbo_applied_is_reverted_and_flagged() -> None:
    world = World()
    await linked_payment(world)  # 30.00 paid in QBO on a 100.00 invoice
    (qbo_id,) = [i for i, inv in world.qbo.objects["Invoice"].items() if inv.get("_applied")]
    link = next(lk for lk in world.store.links.of("invoice") if lk.qbo_id == qbo_id)
    rl_id = str(link.released_id)
    document = await world.released.get(f"/invoices/{rl_id}")
    lines = [{**document["lines"][0], "unitAmount": "11.00"}]
    world.released.edit("/invoices", rl_id, lines=lines, amountPaid="0.00")
    result = await world.from_released("invoice", rl_id)
    assert result.outcome == "reverted", result
    assert world.qbo.objects["Invoice"][qbo_id]["TotalAmt"] == "100.00", "QBO keeps its total"
    restored = await world.released.get(f"/invoices/{rl_id}")
    assert restored["total"] == "100.00", "QBO's version went back over the edit"
    (flag,) = [c for c in world.store.conflicts.rows if c.kind == "policy_flag"]
    assert flag.fields["applied"] == "30.00"


async def test_a_qbo_edit_meeting_a_released_cut_below_the_money_applied_restores_qbo() -> None:
    """QBO changes the due date while Re-Leased cuts the lines below what QBO has applied: the
    merge would write the cut to QBO, which cannot take it, so QBO's version is restored in
    Re-Leased and a person is told."""
    world = World()
    await linked_payment(world)
    (qbo_id,) = [i for i, inv in world.qbo.objects["Invoice"].items() if inv.get("_applied")]
    link = next(lk for lk in world.store.links.of("invoice") if lk.qbo_id == qbo_id)
    rl_id = str(link.released_id)
    document = await world.released.get(f"/invoices/{rl_id}")
    lines = [{**document["lines"][0], "unitAmount": "11.00"}]
    world.released.edit("/invoices", rl_id, lines=lines, amountPaid="0.00")
    world.qbo.edit("Invoice", qbo_id, DueDate="2026-12-20")
    result = await world.from_qbo("invoice", qbo_id)
    assert result.outcome == "reverted", result
    assert world.qbo.objects["Invoice"][qbo_id]["TotalAmt"] == "100.00"
    restored = await world.released.get(f"/invoices/{rl_id}")
    assert (restored["total"], restored["dueDate"]) == ("100.00", "2026-12-20")
    assert [c.kind for c in world.store.conflicts.rows] == ["policy_flag"]
