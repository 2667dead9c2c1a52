"""A QBO payment whose held credit was partly refunded in Re-Leased, then edited or voided in QBO:
the refund is money that left the bank, so it stays recorded once (Re-Leased refuses to void a
note with a payment on it). The note it was paid from is kept with just what the refunds used;
what the payment still holds unapplied is a new held note. And a QBO payment that already pays a
refund when first seen holds only what is left."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.domain.mapping.payments import payment_from_qbo, unapplied_cash
from tests.unit.engine.setups import bank_of, linked_invoice, payment
from tests.unit.engine.world import TODAY, World


async def _held_notes(world: World) -> list[dict[str, Any]]:
    notes = await world.released.list_all("/credit-notes")
    return [n for n in notes if n.get("kind") in ("PREPAYMENT", "OVERPAYMENT")]


async def _live_credit(world: World) -> str:
    """The credit Re-Leased still holds for the contact on held notes not voided."""
    left = sum(
        (Decimal(n["amountDue"]) for n in await _held_notes(world) if n["status"] != "VOIDED"),
        Decimal(0),
    )
    return f"{left:.2f}"


def _unapplied(world: World, payment_id: str) -> str:
    record = world.qbo.objects["Payment"][payment_id]
    return str(unapplied_cash(payment_from_qbo("Payment", record)))


def _flags(world: World) -> list[Any]:
    return [c for c in world.store.conflicts.rows if c.kind == "policy_flag"]


async def _refunded(world: World) -> tuple[str, str]:
    """A QBO payment of 60 held as a prepayment, 25 of it refunded in Re-Leased and carried to
    QBO: (QBO payment, Re-Leased refund)."""
    invoice, _ = await linked_invoice(world)
    paid = payment(world, invoice, "60.00", None, bank_of(world))
    assert (await world.from_qbo("payment", paid)).outcome == "applied"
    (note,) = await _held_notes(world)
    body = {
        "documentType": "CREDIT_NOTE",
        "documentId": note["id"],
        "amount": "25.00",
        "date": TODAY,
        "bankAccountId": "",
    }
    refund = str((await world.released.request("POST", "/payments", body=body))["id"])
    assert (await world.from_released("payment", refund, operation="create")).outcome == "applied"
    assert _unapplied(world, paid) == "35.00"
    return paid, refund


async def _refund_once(world: World, refund: str) -> None:
    payments = await world.released.list_all("/payments")
    active = [p for p in payments if p["status"] == "ACTIVE" and p["documentType"] == "CREDIT_NOTE"]
    assert [p["id"] for p in active] == [refund], "the refund stays, recorded once"
    assert len(world.qbo.objects["Purchase"]) == 1, "its Expense made once"


async def test_a_refunded_payment_edited_in_qbo_keeps_the_refund_and_holds_the_rest() -> None:
    world = World()
    paid, refund = await _refunded(world)
    world.qbo.edit("Payment", paid, TotalAmt="80.00")
    result = await world.from_qbo("payment", paid)
    assert result.outcome == "applied", result
    assert _unapplied(world, paid) == "55.00"
    assert await _live_credit(world) == "55.00", "Re-Leased holds what QBO holds unapplied"
    await _refund_once(world, refund)
    kept = next(n for n in await _held_notes(world) if Decimal(n.get("amountPaid", "0")) > 0)
    assert (kept["total"], kept["amountDue"], kept["status"]) == ("25.00", "0.00", "PAID")
    assert not _flags(world), "QBO still pays the refund: nothing for a person"
    writes = (len(world.qbo.writes), len(world.released.writes))
    assert (await world.from_qbo("payment", paid)).outcome == "echo"
    assert (await world.from_released("payment", refund)).outcome == "echo"
    assert not _flags(world), "the refund reached QBO late, it is not left unpaid there"
    for note in await _held_notes(world):
        assert (await world.from_released("creditnote", note["id"])).outcome in ("echo", "ignored")
    assert (len(world.qbo.writes), len(world.released.writes)) == writes, "echoes write nothing"


async def test_a_refunded_payment_edited_twice_keeps_one_refund_and_allocates_the_new_note() -> (
    None
):
    world = World()
    paid, refund = await _refunded(world)
    world.qbo.edit("Payment", paid, TotalAmt="80.00")
    await world.from_qbo("payment", paid)
    world.qbo.edit("Payment", paid, TotalAmt="70.00")
    result = await world.from_qbo("payment", paid)
    assert result.outcome == "applied", result
    assert await _live_credit(world) == _unapplied(world, paid) == "45.00"
    await _refund_once(world, refund)
    # QBO applying the rest of the cash to an invoice allocates the live note, not the kept one.
    lines = world.qbo.objects["Payment"][paid]["Line"]
    invoice = next(n for n in world.qbo.objects["Invoice"])
    line = {"Amount": "45.00", "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}
    world.qbo.edit("Payment", paid, Line=[*lines, line])
    moved = await world.from_qbo("payment", paid)
    assert (moved.outcome, "held credit allocated" in moved.reason) == ("applied", True), moved
    assert await _live_credit(world) == "0.00"


async def test_a_refund_line_taken_off_in_qbo_keeps_the_refund_and_flags_the_open_expense() -> None:
    world = World()
    paid, refund = await _refunded(world)
    world.qbo.edit("Payment", paid, Line=[])
    result = await world.from_qbo("payment", paid)
    assert result.outcome == "applied", result
    assert await _live_credit(world) == _unapplied(world, paid) == "60.00"
    await _refund_once(world, refund)
    (flag,) = _flags(world)
    assert "no longer pays 25.00" in flag.detail


async def test_a_refunded_payment_voided_in_qbo_keeps_the_refund_and_holds_nothing() -> None:
    world = World()
    paid, refund = await _refunded(world)
    current = world.qbo.objects["Payment"][paid]
    body = {"Id": paid, "SyncToken": current["SyncToken"]}
    await world.qbo.write("Payment", body, request_id="v", operation="void")
    result = await world.from_qbo("payment", paid, "void")
    assert result.outcome == "applied", result
    assert "refund" in result.reason
    assert not world.errors.rows, "no Re-Leased refusal to void a note with a payment on it"
    assert await _live_credit(world) == "0.00"
    await _refund_once(world, refund)
    (flag,) = _flags(world)
    assert "25.00 refunded" in flag.detail
    assert "Expense is open in QBO" in flag.detail
    assert (await world.from_qbo("payment", paid, "void")).outcome in ("echo", "ignored")
    assert len(_flags(world)) == 1, "flagged once"
    for note in await _held_notes(world):
        assert (await world.from_released("creditnote", note["id"])).outcome in ("echo", "ignored")


async def test_a_qbo_payment_already_paying_a_refund_holds_only_what_is_left() -> None:
    """Seen for the first time (the refund was recorded in QBO, or before the connection): the
    Expense is not a synced type; the held note is the cash neither applied nor refunded."""
    world = World()
    invoice, _ = await linked_invoice(world)
    customer = world.qbo.objects["Invoice"][invoice]["CustomerRef"]
    expense = world.qbo.seed(
        "Purchase",
        PaymentType="Cash",
        EntityRef={**customer, "type": "Customer"},
        AccountRef={"value": bank_of(world)},
        TotalAmt="25.00",
        TxnDate=TODAY,
        Line=[{"Amount": "25.00", "DetailType": "AccountBasedExpenseLineDetail"}],
    )
    paid = world.qbo.seed(
        "Payment",
        CustomerRef=customer,
        TotalAmt="60.00",
        TxnDate=TODAY,
        DepositToAccountRef={"value": bank_of(world)},
        Line=[{"Amount": "25.00", "LinkedTxn": [{"TxnId": expense["Id"], "TxnType": "Expense"}]}],
    )["Id"]
    result = await world.from_qbo("payment", paid)
    assert result.outcome == "applied", result
    (note,) = await _held_notes(world)
    assert (note["kind"], note["total"], note["amountDue"]) == ("PREPAYMENT", "35.00", "35.00")
    assert not await world.released.list_all("/payments"), "the Expense is not carried"
    assert (await world.from_qbo("purchase", expense["Id"])).outcome == "ignored"


async def test_a_refund_reaching_qbo_after_the_payment_was_edited_is_not_held_twice() -> None:
    """The refund is made in Re-Leased, then QBO changes the payment before the refund's event
    is handled: the note is kept for the refund and a new note holds all the new version's cash;
    when the refund then reaches QBO, QBO's notification of that update records the payment
    afresh, so the new note holds only what the refund left."""
    world = World()
    invoice, _ = await linked_invoice(world)
    paid = payment(world, invoice, "60.00", None, bank_of(world))
    await world.from_qbo("payment", paid)
    (note,) = await _held_notes(world)
    body = {
        "documentType": "CREDIT_NOTE",
        "documentId": note["id"],
        "amount": "25.00",
        "date": TODAY,
        "bankAccountId": "",
    }
    refund = str((await world.released.request("POST", "/payments", body=body))["id"])
    world.qbo.edit("Payment", paid, TotalAmt="80.00")
    assert (await world.from_qbo("payment", paid)).outcome == "applied"
    assert (await world.from_released("payment", refund, operation="create")).outcome == "applied"
    assert _unapplied(world, paid) == "55.00"
    result = await world.from_qbo("payment", paid)
    assert result.outcome == "applied", result
    assert await _live_credit(world) == "55.00"
    await _refund_once(world, refund)
    assert (await world.from_qbo("payment", paid)).outcome == "echo"
    assert (await world.from_released("payment", refund)).outcome == "echo"
    assert not _flags(world), "the refund reached QBO late, it is not left unpaid there"
