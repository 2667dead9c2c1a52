"""The sandbox's data API: CRUD, SyncToken, faults, name lists, voids, idempotency, balances."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.integration.qbo_sandbox_helpers import Sandbox, sandbox


def fault_code(body: dict[str, Any]) -> str:
    error = body["Fault"]["Error"][0]
    assert set(error) >= {"Message", "Detail", "code"}
    assert body["Fault"]["type"]
    assert "time" in body
    return str(error["code"])


async def test_create_read_update_with_synctoken_and_stale_5010() -> None:
    async with sandbox() as sb:
        created = await sb.create("Customer", {"DisplayName": "Ada", "CompanyName": "Ada Ltd"})
        assert created["SyncToken"] == "0"
        assert created["Active"] is True
        assert {"CreateTime", "LastUpdatedTime"} <= set(created["MetaData"])
        read = (await sb.get(f"customer/{created['Id']}", minorversion=75)).json()["Customer"]
        assert read["DisplayName"] == "Ada"

        sparse = {"Id": created["Id"], "SyncToken": "0", "sparse": True, "Notes": "vip"}
        updated = (await sb.post("customer", sparse)).json()["Customer"]
        assert updated["SyncToken"] == "1"
        assert updated["CompanyName"] == "Ada Ltd"
        assert updated["Notes"] == "vip"

        stale = await sb.post("customer", {**sparse, "Notes": "late"})
        assert stale.status_code == 400
        assert fault_code(stale.json()) == "5010"
        assert stale.json()["Fault"]["type"] == "ValidationFault"

        full = {"Id": created["Id"], "SyncToken": "1", "DisplayName": "Ada"}
        replaced = (await sb.post("customer", full)).json()["Customer"]
        # A full update nulls what it omits.
        assert "CompanyName" not in replaced
        assert replaced["SyncToken"] == "2"


async def test_entity_path_is_case_insensitive() -> None:
    async with sandbox() as sb:
        response = await sb.post("VENDOR", {"DisplayName": "Shouty"})
        assert response.status_code == 200
        assert "Vendor" in response.json()


async def test_display_name_unique_across_customer_vendor_employee_6240() -> None:
    async with sandbox() as sb:
        await sb.create("Customer", {"DisplayName": "Sam Smith"})
        for entity in ("vendor", "employee", "customer"):
            clash = await sb.post(entity, {"DisplayName": "sam smith"})
            assert clash.status_code == 400
            assert fault_code(clash.json()) == "6240"
        assert (await sb.post("vendor", {"DisplayName": "Sam Smith 2"})).status_code == 200


async def test_missing_object_is_610() -> None:
    async with sandbox() as sb:
        response = await sb.get("invoice/99999")
        assert response.status_code == 400
        assert fault_code(response.json()) == "610"


async def test_reference_to_missing_customer_is_610() -> None:
    async with sandbox() as sb:
        response = await sb.post("invoice", {"CustomerRef": {"value": "424242"}, "Line": []})
        assert response.status_code == 400
        assert fault_code(response.json()) in ("610", "2020")


async def test_requestid_replay_returns_first_response_without_second_write() -> None:
    async with sandbox() as sb:
        first = await sb.post("customer", {"DisplayName": "Once"}, requestid="abc-1")
        second = await sb.post("customer", {"DisplayName": "Once"}, requestid="abc-1")
        assert second.status_code == 200
        assert second.json() == first.json()
        rows = await sb.query("select count(*) from Customer where DisplayName = 'Once'")
        assert rows["totalCount"] == 1
        log = (await sb.http.get(f"/_sandbox/realms/{sb.realm_id}/requests")).json()
        assert log["writes"] == 1
        assert [r["operation"] for r in log["requests"] if r["entity"]] == ["create", "replay"]


async def test_name_lists_are_never_deleted_only_inactivated() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Gone"})
        body = {"Id": customer["Id"], "SyncToken": customer["SyncToken"]}
        refused = await sb.post("customer", body, operation="delete")
        assert refused.status_code == 400
        inactive = await sb.post("customer", {**body, "sparse": True, "Active": False})
        assert inactive.json()["Customer"]["Active"] is False
        read = await sb.get(f"customer/{customer['Id']}")
        assert read.status_code == 200
        active_only = await sb.query("select * from Customer where DisplayName = 'Gone'")
        assert active_only == {}
        both = await sb.query(
            "select * from Customer where DisplayName = 'Gone' and Active in (true, false)"
        )
        assert len(both["Customer"]) == 1


async def test_customer_with_open_balance_cannot_be_made_inactive() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Owes"})
        await sb.invoice(customer["Id"], "40.00")
        read = (await sb.get(f"customer/{customer['Id']}")).json()["Customer"]
        assert Decimal(str(read["Balance"])) == Decimal("40")
        body = {"Id": customer["Id"], "SyncToken": read["SyncToken"], "sparse": True}
        full = await sb.post(
            "customer",
            {"Id": customer["Id"], "SyncToken": read["SyncToken"], "DisplayName": "Owes"},
        )
        assert full.json()["Customer"]["Balance"] == 40  # read-only, survives a full update
        body["SyncToken"] = full.json()["Customer"]["SyncToken"]
        refused = await sb.post("customer", {**body, "Active": False})
        assert refused.status_code == 400
        assert fault_code(refused.json()) == "6000"


async def test_transactions_hard_delete() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Del"})
        invoice = await sb.invoice(customer["Id"])
        body = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}
        deleted = await sb.post("invoice", body, operation="delete")
        assert deleted.json()["Invoice"] == {
            "status": "Deleted",
            "domain": "QBO",
            "Id": invoice["Id"],
        }
        assert (await sb.get(f"invoice/{invoice['Id']}")).status_code == 400


async def test_totals_are_decimal_exact_and_payment_reduces_balance() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Payer"})
        item = await sb.first_id("Item")
        lines = [
            {
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 3, "UnitPrice": 0.1},
            },
            {"DetailType": "SalesItemLineDetail", "Amount": 0.2, "SalesItemLineDetail": {}},
        ]
        invoice = await sb.create(
            "Invoice", {"CustomerRef": {"value": customer["Id"]}, "Line": lines}
        )
        assert invoice["TotalAmt"] == 0.5
        assert invoice["Balance"] == 0.5
        assert invoice["Line"][-1]["DetailType"] == "SubTotalLineDetail"
        payment = await sb.create(
            "Payment",
            {
                "CustomerRef": {"value": customer["Id"]},
                "TotalAmt": 0.3,
                "Line": [
                    {"Amount": 0.3, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
                ],
            },
        )
        after = (await sb.get(f"invoice/{invoice['Id']}")).json()["Invoice"]
        assert after["Balance"] == 0.2
        assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
        assert after["SyncToken"] == "1"
        locked = await sb.post(
            "invoice", {"Id": invoice["Id"], "SyncToken": "1"}, operation="delete"
        )
        assert locked.status_code == 400
        assert fault_code(locked.json()) == "6000"
        too_much = await sb.post(
            "payment",
            {
                "CustomerRef": {"value": customer["Id"]},
                "TotalAmt": 5,
                "Line": [
                    {"Amount": 5, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
                ],
            },
        )
        assert too_much.status_code == 400
        assert fault_code(too_much.json()) == "6000"


async def test_invoice_tax_from_tax_code() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Taxed"})
        code = await sb.first_id("TaxCode", "where Name = 'State Sales Tax'")
        item = await sb.first_id("Item")
        line = {
            "DetailType": "SalesItemLineDetail",
            "Amount": 50,
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "TaxCodeRef": {"value": "TAX"}},
        }
        invoice = await sb.create(
            "Invoice",
            {
                "CustomerRef": {"value": customer["Id"]},
                "Line": [line],
                "TxnTaxDetail": {"TxnTaxCodeRef": {"value": code}},
            },
        )
        assert invoice["TxnTaxDetail"]["TotalTax"] == 4
        assert invoice["TotalAmt"] == 54


async def test_invoice_void_keeps_id_zeroes_amounts_prefixes_note() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Voidee"})
        invoice = await sb.invoice(customer["Id"], "25.00")
        body = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}
        voided = (await sb.post("invoice", body, operation="void")).json()["Invoice"]
        assert voided["Id"] == invoice["Id"]
        assert voided["SyncToken"] == "1"
        assert voided["TotalAmt"] == 0
        assert voided["Balance"] == 0
        assert voided["PrivateNote"].startswith("Voided")
        assert all(line["Amount"] == 0 for line in voided["Line"])


async def test_void_forms_per_entity_and_refusals() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "P"})
        payment = await sb.create(
            "Payment", {"CustomerRef": {"value": customer["Id"]}, "TotalAmt": 10}
        )
        body = {"Id": payment["Id"], "SyncToken": "0", "sparse": True}
        voided = await sb.post("payment", body, operation="update", include="void")
        assert voided.status_code == 200
        assert voided.json()["Payment"]["TotalAmt"] == 0

        vendor = await sb.create("Vendor", {"DisplayName": "V"})
        account = await sb.first_id("Account", "where AccountType = 'Expense'")
        line = {
            "DetailType": "AccountBasedExpenseLineDetail",
            "Amount": 12,
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}},
        }
        bill = await sb.create("Bill", {"VendorRef": {"value": vendor["Id"]}, "Line": [line]})
        bill_body = {"Id": bill["Id"], "SyncToken": "0"}
        for params in ({"operation": "void"}, {"operation": "update", "include": "void"}):
            refused = await sb.post("bill", bill_body, **params)
            assert refused.status_code == 400
        credit = await sb.create(
            "CreditMemo",
            {
                "CustomerRef": {"value": customer["Id"]},
                "Line": [
                    {"DetailType": "SalesItemLineDetail", "Amount": 5, "SalesItemLineDetail": {}}
                ],
            },
        )
        refused = await sb.post(
            "creditmemo", {"Id": credit["Id"], "SyncToken": "0"}, operation="void"
        )
        assert refused.status_code == 400
        # ...but a user can void it in the UI.
        ui = await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/ui/creditmemo/{credit['Id']}/void")
        assert ui.json()["CreditMemo"]["TotalAmt"] == 0

        bill_payment = await sb.create(
            "BillPayment",
            {
                "VendorRef": {"value": vendor["Id"]},
                "PayType": "Check",
                "TotalAmt": 12,
                "Line": [{"Amount": 12, "LinkedTxn": [{"TxnId": bill["Id"], "TxnType": "Bill"}]}],
            },
        )
        assert (await sb.get(f"bill/{bill['Id']}")).json()["Bill"]["Balance"] == 0
        bp_body = {"Id": bill_payment["Id"], "SyncToken": "0", "sparse": True}
        assert (await sb.post("billpayment", bp_body, operation="void")).status_code == 400
        voided_bp = await sb.post("billpayment", bp_body, operation="update", include="void")
        assert voided_bp.json()["BillPayment"]["Line"] == []
        assert (await sb.get(f"bill/{bill['Id']}")).json()["Bill"]["Balance"] == 12


async def test_read_only_and_create_only_entities() -> None:
    async with sandbox() as sb:
        assert (await sb.post("taxcode", {"Name": "X"})).status_code == 400
        agency = await sb.create("TaxAgency", {"DisplayName": "County"})
        update = await sb.post(
            "taxagency", {"Id": agency["Id"], "SyncToken": "0", "DisplayName": "Y"}
        )
        assert update.status_code == 400


async def test_auth_faults_use_qbo_bodies() -> None:
    async with sandbox() as sb:
        missing = await sb.http.get(f"{sb.base}/customer/1")
        assert missing.status_code == 401
        assert missing.json()["fault"]["error"][0]["code"] == "3200"
        other = Sandbox(sb.app, sb.http)
        await other.new_realm("Other")
        wrong = await sb.http.get(f"{sb.base}/customer/1", headers=other.auth)
        assert wrong.status_code == 403


async def test_company_info_reads_by_realm_id() -> None:
    async with sandbox() as sb:
        response = await sb.get(f"companyinfo/{sb.realm_id}")
        assert response.status_code == 200
        assert response.json()["CompanyInfo"]["CompanyName"] == "Test Co"


def _applies(amount: float, txn_type: str, txn_id: str) -> dict[str, Any]:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": txn_type}]}


async def test_payment_credits_offset_charges_and_refunds_use_up_credit() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Credited"})
        who = {"CustomerRef": {"value": customer["Id"]}}
        item = await sb.first_id("Item")
        line = {"DetailType": "SalesItemLineDetail", "Amount": 100, "SalesItemLineDetail": {}}
        line["SalesItemLineDetail"] = {"ItemRef": {"value": item}}
        invoice = await sb.create("Invoice", {**who, "Line": [line]})
        memo = await sb.create("CreditMemo", {**who, "Line": [{**line, "Amount": 60}]})
        # 100 owed, 30 of the credit used: 70 applied, so 70 of cash is enough.
        payment = await sb.create(
            "Payment",
            {
                **who,
                "TotalAmt": 70,
                "Line": [
                    _applies(100, "Invoice", invoice["Id"]),
                    _applies(30, "CreditMemo", memo["Id"]),
                ],
            },
        )
        assert payment["UnappliedAmt"] == 0
        assert (await sb.get(f"invoice/{invoice['Id']}")).json()["Invoice"]["Balance"] == 0
        after = (await sb.get(f"creditmemo/{memo['Id']}")).json()["CreditMemo"]
        assert (after["Balance"], after["RemainingCredit"]) == (30, 30)
        # More credit than the charges it is used on: refused.
        greedy = await sb.post(
            "payment", {**who, "TotalAmt": 0, "Line": [_applies(30, "CreditMemo", memo["Id"])]}
        )
        assert greedy.status_code == 400
        # The rest of the credit paid back: an Expense to the customer, the credit applied to it.
        bank = await sb.first_id("Account", "where AccountType = 'Bank'")
        refund = await sb.create(
            "Purchase",
            {
                "PaymentType": "Cash",
                "AccountRef": {"value": bank},
                "EntityRef": {"value": customer["Id"], "type": "Customer"},
                "Line": [
                    {
                        "Amount": 30,
                        "DetailType": "AccountBasedExpenseLineDetail",
                        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": bank}},
                    }
                ],
            },
        )
        await sb.create(
            "Payment",
            {
                **who,
                "TotalAmt": 0,
                "Line": [
                    _applies(30, "Expense", refund["Id"]),
                    _applies(30, "CreditMemo", memo["Id"]),
                ],
            },
        )
        final = (await sb.get(f"creditmemo/{memo['Id']}")).json()["CreditMemo"]
        assert final["RemainingCredit"] == 0
        twice = await sb.post(
            "payment",
            {**who, "TotalAmt": 1, "Line": [_applies(1, "Expense", refund["Id"])]},
        )
        assert twice.status_code == 400, "the refund was already covered"
