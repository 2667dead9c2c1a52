"""Tax and totals exact on both sides, where QBO (document-level rounding) and Re-Leased
(per-line rounding) would compute different tax for the same lines."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from tests.e2e.builders import (
    TODAY,
    qbo_bank_account_id,
    qbo_customer,
    qbo_invoice,
    qbo_item_id,
    qbo_sales_line,
    qbo_sales_tax_code_id,
    rl_as_user,
)
from tests.e2e.conftest import Linked
from tests.e2e.readers import linked_qbo_id, linked_released, rl_doc, settle
from tests.e2e.stack import Stack, consumers, eventually, unique

pytestmark = pytest.mark.e2e


def rl_line(item: str, amount: str, rate: str | None) -> dict[str, Any]:
    return {"quantity": "1", "unitAmount": amount, "accountId": item, "taxRateId": rate}


def same_money(qbo_doc: dict[str, Any], rl: dict[str, Any]) -> None:
    assert Decimal(str(qbo_doc["TxnTaxDetail"]["TotalTax"])) == Decimal(rl["totalTax"])
    assert Decimal(str(qbo_doc["TotalAmt"])) == Decimal(rl["total"])
    assert Decimal(str(qbo_doc["Balance"])) == Decimal(rl["amountDue"])


async def test_tax_rounded_differently_on_each_side_still_ends_equal(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        item = await qbo_item_id(linked.qbo)
        code = {"TxnTaxCodeRef": {"value": await qbo_sales_tax_code_id(linked.qbo)}}
        # QBO -> Re-Leased. At 8 %: QBO taxes 30.15 once (2.41); per line it would be 3 x 0.80.
        lines = [qbo_sales_line(item, "1", "10.05", taxed=True) for _ in range(3)]
        made = await qbo_invoice(
            linked.qbo, cust["Id"], [*lines, qbo_sales_line(item, "1", "7.00")], TxnTaxDetail=code
        )
        assert Decimal(str(made["TxnTaxDetail"]["TotalTax"])) == Decimal("2.41")
        rl_id = await linked_released(pool, "Invoice", str(made["Id"]), linked.connection)
        same_money(made, await rl_doc(stack, linked.company, "/invoices", rl_id))
        await linked.qbo.write(
            "Payment",
            {
                "CustomerRef": {"value": cust["Id"]},
                "TotalAmt": str(made["TotalAmt"]),
                "TxnDate": TODAY,
                "DepositToAccountRef": {"value": await qbo_bank_account_id(linked.qbo)},
                "Line": [
                    {
                        "Amount": str(made["TotalAmt"]),
                        "LinkedTxn": [{"TxnId": made["Id"], "TxnType": "Invoice"}],
                    }
                ],
            },
            request_id=unique("pay"),
        )

        async def paid() -> bool:
            doc = await rl_doc(stack, linked.company, "/invoices", rl_id)
            return bool((doc["status"], doc["amountDue"]) == ("PAID", "0.00"))

        await eventually(paid)

        # Re-Leased -> QBO: the same lines taxed per line (2.40) stay 2.40 in QBO.
        rate = await linked_released(pool, "TaxRate", str(_rate_of(made)), linked.connection)
        rl_customer = await linked_released(pool, "Customer", str(cust["Id"]), linked.connection)
        rl_item = await linked_released(pool, "Item", item, linked.connection)
        body = {
            "type": "INCOME",
            "contactId": rl_customer,
            "date": TODAY,
            "status": "APPROVED",
            "lines": [rl_line(rl_item, "10.05", rate) for _ in range(3)],
        }
        ours = await rl_as_user(stack, linked.company, "POST", "/invoices", body)
        assert ours["totalTax"] == "2.40"
        qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", ours["id"]))
        await settle()
        pushed = await linked.qbo.get("Invoice", qbo_id)
        same_money(pushed, await rl_doc(stack, linked.company, "/invoices", ours["id"]))

        # A QBO edit of the lines: QBO taxes anew, Re-Leased follows to the cent.
        changed = await linked.qbo.write(
            "Invoice",
            {
                "Id": qbo_id,
                "SyncToken": pushed["SyncToken"],
                "sparse": True,
                "Line": [qbo_sales_line(item, "1", "10.05", taxed=True) for _ in range(5)],
                "TxnTaxDetail": code,
            },
            request_id=unique("edit"),
        )
        assert Decimal(str(changed["TxnTaxDetail"]["TotalTax"])) == Decimal("4.02")

        async def followed() -> bool:
            doc = await rl_doc(stack, linked.company, "/invoices", ours["id"])
            return bool(doc["totalTax"] == "4.02")

        await eventually(followed)
        await settle()
    final = await rl_doc(stack, linked.company, "/invoices", ours["id"])
    same_money(await linked.qbo.get("Invoice", qbo_id), final)
    assert sorted(line["taxAmount"] for line in final["lines"]) == ["0.80"] * 3 + ["0.81"] * 2


def _rate_of(invoice: dict[str, Any]) -> str:
    (line,) = invoice["TxnTaxDetail"]["TaxLine"]
    return str(line["TaxLineDetail"]["TaxRateRef"]["value"])
