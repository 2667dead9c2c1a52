"""Money not against a document through the engine: a QBO payment's unapplied cash is held in
Re-Leased as prepayment/overpayment credit, its later application allocates that credit, and a
Re-Leased allocation of it (or a held note QBO lacks) reaches the QBO payment. Duplicates are
echoes; reversal stays QBO's."""

from __future__ import annotations

from typing import Any

from tests.unit.engine.setups import bank_of, linked_bill, linked_invoice, payment
from tests.unit.engine.world import TODAY, World


async def _held_notes(world: World) -> list[dict[str, Any]]:
    notes = await world.released.list_all("/credit-notes")
    return [n for n in notes if n.get("kind") in ("PREPAYMENT", "OVERPAYMENT")]


async def test_an_overpayment_is_held_as_credit_once_whatever_the_redeliveries() -> None:
    world = World()
    invoice, rl_invoice = await linked_invoice(world)
    paid = payment(world, invoice, "130.00", "100.00", bank_of(world))
    result = await world.from_qbo("payment", paid)
    assert result.outcome == "applied", result
    assert "30.00 unapplied held as credit" in result.reason
    (note,) = await _held_notes(world)
    assert (note["kind"], note["amountDue"], note["type"]) == (
        "OVERPAYMENT",
        "30.00",
        "INCOME_CREDIT",
    )
    assert (await world.released.get(f"/invoices/{rl_invoice}"))["amountDue"] == "0.00"
    writes = len(world.released.writes)
    assert (await world.from_qbo("payment", paid)).outcome == "echo"
    assert (await world.from_released("creditnote", note["id"])).outcome == "echo"
    assert len(world.released.writes) == writes, "nothing written twice"
    assert not [c for c in world.store.conflicts.rows if c.kind == "policy_flag"]


async def test_a_prepayment_applied_later_in_qbo_allocates_the_held_credit() -> None:
    world = World()
    invoice, rl_invoice = await linked_invoice(world)
    paid = payment(world, invoice, "45.00", None, bank_of(world))
    assert (await world.from_qbo("payment", paid)).outcome == "applied"
    (note,) = await _held_notes(world)
    assert (note["kind"], note["amountDue"]) == ("PREPAYMENT", "45.00")
    line = {"Amount": "45.00", "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}
    world.qbo.edit("Payment", paid, Line=[line])
    result = await world.from_qbo("payment", paid)
    assert result.outcome == "applied", result
    assert "held credit allocated" in result.reason
    note = await world.released.get(f"/credit-notes/{note['id']}")
    assert (note["amountDue"], len(note["allocations"])) == ("0.00", 1)
    assert (await world.released.get(f"/invoices/{rl_invoice}"))["amountDue"] == "55.00"
    payments = await world.released.list_all("/payments")
    assert not payments, "applied from credit, not paid again"
    assert (await world.from_released("creditnote", note["id"])).outcome == "echo"


async def test_allocating_held_credit_in_released_applies_the_qbo_payment() -> None:
    world = World()
    invoice, rl_invoice = await linked_invoice(world)
    paid = payment(world, invoice, "45.00", None, bank_of(world))
    await world.from_qbo("payment", paid)
    (note,) = await _held_notes(world)
    body = {"invoiceId": rl_invoice, "amount": "20.00", "date": "2026-11-21"}
    await world.released.request("POST", f"/credit-notes/{note['id']}/allocations", body=body)
    result = await world.from_released("creditnote", note["id"])
    assert result.outcome == "applied", result
    lines = world.qbo.objects["Payment"][paid]["Line"]
    assert lines == [{"Amount": "20.00", "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}]
    assert (await world.from_qbo("payment", paid)).outcome == "echo"
    assert (await world.from_released("creditnote", note["id"])).outcome == "echo"


async def test_a_held_note_qbo_lacks_becomes_a_payment_with_that_much_unapplied() -> None:
    world = World()
    invoice, rl_invoice = await linked_invoice(world)
    contact = (await world.released.get(f"/invoices/{rl_invoice}"))["contactId"]
    note = world.released.seed(
        "/credit-notes",
        type="INCOME_CREDIT",
        kind="PREPAYMENT",
        contactId=contact,
        date="2026-11-20",
        status="APPROVED",
        lineAmountType="NO_TAX",
        total="80.00",
        amountDue="80.00",
        allocations=[],
        lines=[{"description": "Prepayment", "quantity": "1", "unitAmount": "80.00"}],
    )
    result = await world.from_released("creditnote", note["id"])
    assert result.outcome == "applied", result
    (made,) = world.qbo.objects["Payment"].values()
    assert (made["TotalAmt"], made["Line"]) == ("80.00", [])
    assert not world.qbo.objects["CreditMemo"], "credit on the customer, not a credit memo"
    assert (await world.from_qbo("payment", made["Id"])).outcome == "echo"
    assert (await world.from_released("creditnote", note["id"])).outcome == "echo"


async def test_a_voided_qbo_payment_takes_its_held_credit_back() -> None:
    world = World()
    invoice, _ = await linked_invoice(world)
    paid = payment(world, invoice, "45.00", None, bank_of(world))
    await world.from_qbo("payment", paid)
    current = world.qbo.objects["Payment"][paid]
    await world.qbo.write(
        "Payment", {"Id": paid, "SyncToken": current["SyncToken"]}, request_id="v", operation="void"
    )
    result = await world.from_qbo("payment", paid, "void")
    assert result.outcome == "applied", result
    (note,) = await _held_notes(world)
    assert note["status"] == "VOIDED"
    assert (await world.from_released("creditnote", note["id"])).outcome == "ignored"


async def test_a_bill_payment_beyond_the_bill_is_held_as_supplier_credit() -> None:
    world = World()
    bill, rl_bill = await linked_bill(world)
    vendor = world.qbo.objects["Bill"][bill]["VendorRef"]
    paid = world.qbo.seed(
        "BillPayment",
        VendorRef=vendor,
        PayType="Check",
        CheckPayment={"BankAccountRef": {"value": bank_of(world)}},
        TotalAmt="55.00",
        TxnDate=TODAY,
        Line=[{"Amount": "40.00", "LinkedTxn": [{"TxnId": bill, "TxnType": "Bill"}]}],
    )
    result = await world.from_qbo("billpayment", str(paid["Id"]))
    assert result.outcome == "applied", result
    (note,) = await _held_notes(world)
    contact = (await world.released.get(f"/invoices/{rl_bill}"))["contactId"]
    assert (note["type"], note["kind"], note["amountDue"], note["contactId"]) == (
        "EXPENSE_CREDIT",
        "OVERPAYMENT",
        "15.00",
        contact,
    )
