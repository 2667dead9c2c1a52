"""Nothing silent about a QBO payment's money: money that went through an account Re-Leased
cannot name as a bank (Undeposited Funds) lands in a bank by a logged decision. (Cash applied to
no document is held as credit: test_held_credit.py.)"""

from __future__ import annotations

from structlog.testing import capture_logs

from tests.unit.engine.setups import linked_invoice, released_payment
from tests.unit.engine.world import TODAY, World


def payment(world: World, invoice: str, total: str, applied: str | None, bank: str) -> str:
    customer = world.qbo.objects["Invoice"][invoice]["CustomerRef"]
    lines = (
        [{"Amount": applied, "LinkedTxn": [{"TxnId": invoice, "TxnType": "Invoice"}]}]
        if applied
        else []
    )
    made = world.qbo.seed(
        "Payment",
        CustomerRef=customer,
        TotalAmt=total,
        TxnDate=TODAY,
        DepositToAccountRef={"value": bank},
        Line=lines,
    )
    return str(made["Id"])


def bank_of(world: World) -> str:
    return next(
        str(a["Id"]) for a in world.qbo.objects["Account"].values() if a["AccountType"] == "Bank"
    )


async def test_a_payment_into_undeposited_funds_lands_in_a_bank_by_a_logged_decision() -> None:
    world = World()
    invoice, rl_invoice = await linked_invoice(world)
    funds = world.qbo.seed("Account", Name="Undeposited Funds", AccountType="Other Current Asset")
    bank = world.released.seed("/accounts", code="090", name="Bank", type="BANK", kind="ACCOUNT")
    paid = payment(world, invoice, "25.00", "25.00", funds["Id"])
    with capture_logs() as logs:
        result = await world.from_qbo("payment", paid)
    assert result.outcome == "applied", result
    (made,) = [p for p in world.released.records["/payments"].values()]
    assert (made["documentId"], made["bankAccountId"]) == (rl_invoice, bank["id"])
    (decision,) = [e for e in logs if e["event"] == "payment_bank_fallback"]
    assert (decision["reason"], decision["chosen"]) == ("not_a_bank_account", bank["id"])


async def test_a_released_payment_from_a_bank_qbo_does_not_know_is_a_logged_decision() -> None:
    world = World()
    payment = await released_payment(world)  # into a Re-Leased bank made there, not in QBO
    with capture_logs() as logs:
        result = await world.from_released("payment", payment)
    assert result.outcome == "applied", result
    (decision,) = [e for e in logs if e["event"] == "payment_bank_fallback"]
    assert (decision["direction"], decision["reason"]) == ("released_to_qbo", "no_counterpart")
    (made,) = world.qbo.objects["Payment"].values()
    assert made["DepositToAccountRef"] == {"value": decision["chosen"]}
