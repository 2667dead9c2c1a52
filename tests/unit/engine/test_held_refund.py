"""A refund of held credit in Re-Leased (a payment on a PREPAYMENT / OVERPAYMENT note) reaches
the QBO payment holding that cash: the money out as an Expense (a Deposit from a vendor), paid by
a line added to the payment, so its unapplied cash falls by the refund. Once, whatever the
redeliveries and replays; a refund QBO's payment has not the cash for is an error with a remedy."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.errors import PermanentError
from shared.domain.mapping.payments import payment_from_qbo, unapplied_cash
from tests.unit.engine.setups import bank_of, linked_bill, linked_invoice, payment
from tests.unit.engine.world import TODAY, World


async def _held_note(world: World) -> dict[str, Any]:
    (note,) = [
        n
        for n in await world.released.list_all("/credit-notes")
        if n.get("kind") in ("PREPAYMENT", "OVERPAYMENT")
    ]
    return note


async def _refund(world: World, note: dict[str, Any], amount: str) -> str:
    """A Re-Leased user pays ``amount`` of the held credit back out."""
    body = {
        "documentType": "CREDIT_NOTE",
        "documentId": note["id"],
        "amount": amount,
        "date": TODAY,
        "bankAccountId": "",
    }
    made = await world.released.request("POST", "/payments", body=body)
    return str(made["id"])


def _unapplied(world: World, qbo_type: str, payment_id: str) -> str:
    return str(unapplied_cash(payment_from_qbo(qbo_type, world.qbo.objects[qbo_type][payment_id])))


async def test_a_refund_of_a_customers_prepayment_is_paid_from_its_qbo_payment() -> None:
    world = World()
    invoice, _ = await linked_invoice(world)
    paid = payment(world, invoice, "45.00", None, bank_of(world))
    assert (await world.from_qbo("payment", paid)).outcome == "applied"
    note = await _held_note(world)
    refund = await _refund(world, note, "20.00")

    result = await world.from_released("payment", refund, operation="create")
    assert result.outcome == "applied", result
    (expense,) = world.qbo.objects["Purchase"].values()
    assert (expense["EntityRef"]["type"], expense["Line"][0]["Amount"]) == ("Customer", "20.00")
    lines = world.qbo.objects["Payment"][paid]["Line"]
    assert lines == [
        {"Amount": "20.00", "LinkedTxn": [{"TxnId": expense["Id"], "TxnType": "Expense"}]}
    ]
    assert world.qbo.objects["Payment"][paid]["TotalAmt"] == "45.00"
    assert _unapplied(world, "Payment", paid) == "25.00"

    writes = len(world.qbo.writes)
    assert (await world.from_qbo("payment", paid)).outcome == "echo"
    assert (await world.from_released("payment", refund, operation="create")).outcome == "echo"
    assert (await world.from_released("payment", refund)).outcome == "echo"
    assert (await world.from_released("creditnote", note["id"])).outcome == "echo"
    assert len(world.qbo.writes) == writes, "nothing written twice"


async def test_a_refund_whose_payment_update_failed_is_not_paid_twice_on_retry() -> None:
    world = World()
    invoice, _ = await linked_invoice(world)
    paid = payment(world, invoice, "45.00", None, bank_of(world))
    await world.from_qbo("payment", paid)
    refund = await _refund(world, await _held_note(world), "20.00")
    saved = world.store.links.save

    async def fail_once(*args: Any, **kwargs: Any) -> int:
        world.store.links.save = saved  # type: ignore[method-assign]  # once
        raise RuntimeError("the transaction fails after the writes")

    world.store.links.save = fail_once  # type: ignore[method-assign]  # a failing commit
    with pytest.raises(RuntimeError):
        await world.from_released("payment", refund, operation="create")
    assert (await world.from_released("payment", refund)).outcome == "applied"
    assert len(world.qbo.objects["Purchase"]) == 1
    assert len(world.qbo.objects["Payment"][paid]["Line"]) == 1
    assert _unapplied(world, "Payment", paid) == "25.00"


async def test_a_refund_of_supplier_credit_is_a_deposit_the_bill_payment_pays() -> None:
    world = World()
    bill, _ = await linked_bill(world)
    world.qbo.seed("Account", Name="Payable", AccountType="Accounts Payable")
    vendor = world.qbo.objects["Bill"][bill]["VendorRef"]
    paid = world.qbo.seed(
        "BillPayment",
        VendorRef=vendor,
        TotalAmt="70.00",
        TxnDate=TODAY,
        PayType="Check",
        CheckPayment={"BankAccountRef": {"value": bank_of(world)}},
        Line=[{"Amount": "40.00", "LinkedTxn": [{"TxnId": bill, "TxnType": "Bill"}]}],
    )["Id"]
    assert (await world.from_qbo("billpayment", paid)).outcome == "applied"
    refund = await _refund(world, await _held_note(world), "30.00")
    result = await world.from_released("payment", refund, operation="create")
    assert result.outcome == "applied", result
    (deposit,) = world.qbo.objects["Deposit"].values()
    line = world.qbo.objects["BillPayment"][paid]["Line"][-1]
    assert line == {
        "Amount": "30.00",
        "LinkedTxn": [{"TxnId": deposit["Id"], "TxnType": "Deposit"}],
    }
    assert _unapplied(world, "BillPayment", paid) == "0.00"
    assert (await world.from_qbo("billpayment", paid)).outcome == "echo"


async def test_a_refund_beyond_what_the_qbo_payment_holds_is_an_error_with_a_remedy() -> None:
    """QBO applied part of the cash to an invoice (not synced yet) while Re-Leased refunded more
    than is left: QBO cannot pay it; nothing is written there, a person is told what to do."""
    world = World()
    invoice, _ = await linked_invoice(world)
    paid = payment(world, invoice, "45.00", None, bank_of(world))
    await world.from_qbo("payment", paid)
    line = {"Amount": "30.00", "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}
    world.qbo.edit("Payment", paid, Line=[line])
    refund = await _refund(world, await _held_note(world), "20.00")
    with pytest.raises(PermanentError) as raised:
        await world.from_released("payment", refund, operation="create")
    assert "more than the 15.00" in str(raised.value)
    assert "reverse the refund in Re-Leased" in str(raised.value.remedy)
    (error,) = world.errors.rows
    assert (error.outcome, error.remedy) == ("error", raised.value.remedy)
    assert world.qbo.objects["Payment"][paid]["Line"] == [line]
