"""Payments through the engine: QBO's payments recorded per document, re-recorded when they
change, reversed when voided; Re-Leased's payments sent to QBO; credit used becomes an
allocation."""

from __future__ import annotations

from tests.unit.engine.setups import linked_invoice, linked_payment, released_payment
from tests.unit.engine.world import TODAY, World


def _active(world: World) -> list[dict[str, object]]:
    return [p for p in world.released.records["/payments"].values() if p["status"] != "REVERSED"]


async def test_a_qbo_payment_is_recorded_on_its_document_and_its_echo_is_absorbed() -> None:
    world = World()
    qbo_id, rl_ids = await linked_payment(world)
    (payment,) = _active(world)
    assert payment["amount"] == "30.00"
    assert payment["reference"] == f"QBO Payment {qbo_id}"
    echo = await world.from_released("payment", str(payment["id"]))
    assert echo.outcome == "echo", echo
    assert world.qbo.written("Payment") == [], "never sent back to QBO"
    assert rl_ids == str(payment["id"])


async def test_a_changed_qbo_payment_is_reversed_and_recorded_again() -> None:
    world = World()
    qbo_id, first = await linked_payment(world)
    payment = world.qbo.objects["Payment"][qbo_id]
    line = {**payment["Line"][0], "Amount": "45.00"}
    world.qbo.edit("Payment", qbo_id, TotalAmt="45.00", Line=[line])
    result = await world.from_qbo("payment", qbo_id)
    assert result.outcome == "applied", result
    assert world.released.records["/payments"][first]["status"] == "REVERSED"
    assert [p["amount"] for p in _active(world)] == ["45.00"]


async def test_a_voided_qbo_payment_is_reversed_in_released() -> None:
    world = World()
    qbo_id, first = await linked_payment(world)
    current = world.qbo.objects["Payment"][qbo_id]
    ident = {"Id": qbo_id, "SyncToken": current["SyncToken"]}
    await world.qbo.write("Payment", ident, request_id="void-it", operation="void")
    result = await world.from_qbo("payment", qbo_id)
    assert result.outcome == "applied", result
    assert _active(world) == []
    again = await world.from_qbo("payment", qbo_id)
    assert again.outcome in ("ignored", "echo"), again


async def test_a_released_payment_reaches_qbo_once() -> None:
    world = World()
    payment = await released_payment(world)
    result = await world.from_released("payment", payment)
    assert result.outcome == "applied", result
    (made,) = world.qbo.objects["Payment"].values()
    assert made["TotalAmt"] == "25.00"
    again = await world.from_released("payment", payment)
    assert again.outcome == "echo", again
    echo = await world.from_qbo("payment", str(made["Id"]))
    assert echo.outcome == "echo", echo
    assert len(world.released.records["/payments"]) == 1


async def test_credit_used_by_a_qbo_payment_becomes_an_allocation() -> None:
    world = World()
    qbo_invoice, rl_invoice = await linked_invoice(world)
    invoice = world.qbo.objects["Invoice"][qbo_invoice]
    item = invoice["Line"][0]["SalesItemLineDetail"]["ItemRef"]["value"]
    memo = world.qbo.seed(
        "CreditMemo",
        CustomerRef=invoice["CustomerRef"],
        TxnDate=TODAY,
        Line=[
            {
                **invoice["Line"][0],
                "Amount": "20.00",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item},
                    "Qty": "1",
                    "UnitPrice": "20.00",
                    "TaxCodeRef": {"value": "NON"},
                },
            }
        ],
    )
    payment = world.qbo.seed(
        "Payment",
        CustomerRef=invoice["CustomerRef"],
        TotalAmt="0.00",
        TxnDate=TODAY,
        Line=[
            {"Amount": "20.00", "LinkedTxn": [{"TxnId": qbo_invoice, "TxnType": "Invoice"}]},
            {"Amount": "20.00", "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]},
        ],
    )
    result = await world.from_qbo("payment", payment["Id"])
    assert result.outcome == "applied", result
    (note,) = world.released.records["/credit-notes"].values()
    (allocation,) = note["allocations"]
    assert (allocation["invoiceId"], allocation["amount"]) == (rl_invoice, "20.00")
    assert str(result.target_id).startswith("allocation:")
    echo = await world.from_released("creditnote", str(note["id"]))
    assert echo.outcome == "echo", echo
    assert world.qbo.written("Payment") == [], "the allocation is not sent back"
