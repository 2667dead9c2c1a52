"""Derived amounts: line amounts, tax, TotalAmt, Balance, as QBO computes them.

Everything is Decimal. Balances of invoices and bills follow the payments linked to them, so a
payment write recomputes the documents it touches (``linked_documents``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandboxes.qbo.entities import EXPENSES, SALES
from sandboxes.qbo.errors import QboFault, business_rule, invalid, required
from sandboxes.qbo.money import cents, money
from sandboxes.qbo.store import Obj, Realm

ZERO = Decimal("0")
_PAYMENTS_OF = {
    "Invoice": "Payment",
    "CreditMemo": "Payment",
    "Bill": "BillPayment",
    "VendorCredit": "BillPayment",
}
# What a payment line may link to. Charges are what the payment settles (an invoice or bill, or
# the refund transaction a credit is applied to: an Expense for a customer, a Deposit from a
# vendor); credits (a credit memo, a vendor credit) are used up against the charges, so a payment
# applies sum(charges) - sum(credits) of its TotalAmt.
_CHARGES = {"Payment": ("Invoice", "Expense", "Check"), "BillPayment": ("Bill", "Deposit")}
_CREDITS = {"Payment": ("CreditMemo",), "BillPayment": ("VendorCredit",)}
_ENTITY_OF_TXN_TYPE = {"Expense": "Purchase", "Check": "Purchase"}
REFUNDS = ("Purchase", "Deposit")


def entity_of(txn_type: str) -> str:
    """The entity a LinkedTxn.TxnType names (a check or expense is a Purchase)."""
    return _ENTITY_OF_TXN_TYPE.get(txn_type, txn_type)


def _amount(value: Any, field: str) -> Decimal:
    try:
        return money(value)
    except ValueError:
        raise invalid(f"Invalid number for {field}: {value!r}", "2050") from None


def _line_amount(line: Obj) -> Decimal:
    detail = line.get("SalesItemLineDetail") or line.get("ItemBasedExpenseLineDetail") or {}
    qty, price = detail.get("Qty"), detail.get("UnitPrice")
    given = line.get("Amount")
    # Clients send Qty 0 / UnitPrice 0 with a bare Amount (python-quickbooks does, and QBO
    # accepts it); only a real quantity and price must agree with the amount.
    if qty not in (None, "") and price not in (None, ""):
        expected = cents(_amount(qty, "Qty") * _amount(price, "UnitPrice"))
        if given is None:
            return expected
        if expected != 0 and cents(_amount(given, "Amount")) != expected:
            raise QboFault(
                400,
                "6070",
                "Amount is not equal to UnitPrice * Qty",
                f"Amount is not equal to UnitPrice * Qty. Supplied value:{given}",
            )
    if given is None:
        raise required("Line.Amount")
    return cents(_amount(given, "Amount"))


def normalise_lines(obj: Obj) -> Decimal:
    """Number the lines, fix their amounts, drop client-sent subtotals; returns the subtotal."""
    lines = obj.get("Line")
    if lines is None:
        return ZERO
    if not isinstance(lines, list):
        raise invalid("Line must be an array")
    kept: list[Obj] = []
    subtotal = ZERO
    for line in lines:
        if not isinstance(line, dict):
            raise invalid("Line entries must be objects")
        if line.get("DetailType") == "SubTotalLineDetail":
            continue
        if line.get("LinkedTxn") is not None and "DetailType" not in line:
            line["Amount"] = cents(_amount(line.get("Amount", 0), "Amount"))
        else:
            line["Amount"] = _line_amount(line)
        if line.get("DetailType") != "DiscountLineDetail":
            subtotal += line["Amount"]
        else:
            subtotal -= line["Amount"]
        kept.append(line)
    for number, line in enumerate(kept, start=1):
        line["Id"] = str(number)
        line["LineNum"] = number
    obj["Line"] = kept
    return subtotal


def _tax(realm: Realm, obj: Obj) -> Decimal:
    """US-style sales tax: lines coded TAX are taxed at the rates of TxnTaxCodeRef, one TaxLine
    per rate. A client may override the amounts by sending TaxLine entries with an Amount for
    the same taxable total (QBO's tax override); a change of the taxable lines recomputes."""
    detail = obj.setdefault("TxnTaxDetail", {})
    code_ref = (detail.get("TxnTaxCodeRef") or {}).get("value")
    if code_ref is None:
        return cents(_amount(detail.get("TotalTax", 0), "TotalTax"))
    code = realm.get("TaxCode", str(code_ref))
    if code is None:
        raise invalid(f"Invalid Reference Id : TaxCode {code_ref}", "2500")
    taxable = sum(
        (
            line["Amount"]
            for line in obj.get("Line", [])
            if ((line.get("SalesItemLineDetail") or {}).get("TaxCodeRef") or {}).get("value")
            == "TAX"
        ),
        ZERO,
    )
    given = _tax_override(detail, taxable)
    tax_lines: list[Obj] = []
    total = ZERO
    for rate_detail in (code.get("SalesTaxRateList") or {}).get("TaxRateDetail", []):
        rate_id = str(rate_detail["TaxRateRef"]["value"])
        rate = realm.get("TaxRate", rate_id)
        if rate is None:
            continue
        percent = money(rate.get("RateValue", 0))
        amount = given.get(rate_id, cents(taxable * percent / 100))
        total += amount
        tax_lines.append(
            {
                "Amount": amount,
                "DetailType": "TaxLineDetail",
                "TaxLineDetail": {
                    "TaxRateRef": {"value": rate_id},
                    "PercentBased": True,
                    "TaxPercent": percent,
                    "NetAmountTaxable": taxable,
                },
            }
        )
    detail["TotalTax"] = total
    detail["TaxLine"] = tax_lines
    return total


def _tax_override(detail: Obj, taxable: Decimal) -> dict[str, Decimal]:
    """Rate id -> amount a client set, for tax lines sent for this very taxable total."""
    found: dict[str, Decimal] = {}
    for line in detail.get("TaxLine") or []:
        if not isinstance(line, dict) or line.get("Amount") in (None, ""):
            continue
        tax_detail = line.get("TaxLineDetail") or {}
        rate_id = (tax_detail.get("TaxRateRef") or {}).get("value")
        net = tax_detail.get("NetAmountTaxable")
        if rate_id is None or net in (None, "") or _amount(net, "NetAmountTaxable") != taxable:
            continue
        found[str(rate_id)] = cents(_amount(line["Amount"], "TaxLine.Amount"))
    return found


def applied_to(realm: Realm, doc_type: str, doc_id: str) -> tuple[Decimal, list[Obj]]:
    """What payments apply to one document: the amount, and LinkedTxn entries for it."""
    payment_type = _PAYMENTS_OF.get(doc_type) or {"Purchase": "Payment"}.get(doc_type)
    if doc_type == "Deposit":
        payment_type = "BillPayment"
    if payment_type is None:
        return ZERO, []
    total, links = ZERO, []
    for payment in realm.table(payment_type).values():
        for line in payment.get("Line", []):
            for link in line.get("LinkedTxn", []):
                kind = entity_of(str(link.get("TxnType")))
                if kind == doc_type and str(link.get("TxnId")) == doc_id:
                    total += line["Amount"]
                    links.append({"TxnId": payment["Id"], "TxnType": payment_type})
    return total, links


def derive(realm: Realm, entity: str, obj: Obj) -> None:
    """Fill TotalAmt, Balance and friends from the lines and links."""
    subtotal = normalise_lines(obj)
    if entity in SALES:
        tax = _tax(realm, obj)
        obj["TotalAmt"] = subtotal + tax
        obj["Line"].append(
            {"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        )
    elif entity in EXPENSES or entity in ("Deposit",):
        obj["TotalAmt"] = subtotal
    elif entity == "JournalEntry":
        obj["TotalAmt"] = _journal_total(obj)
    elif entity in _CHARGES:
        obj["TotalAmt"] = cents(_amount(obj.get("TotalAmt"), "TotalAmt"))
        charged, credited = _payment_sides(entity, obj)
        if credited > charged:
            raise business_rule("The credits applied exceed the amounts they are applied to.")
        obj["UnappliedAmt"] = obj["TotalAmt"] - (charged - credited)
        if obj["UnappliedAmt"] < 0:
            raise business_rule("The amount applied exceeds the payment total.")
    elif entity == "Transfer":
        obj["Amount"] = cents(_amount(obj.get("Amount"), "Amount"))
    refresh_balance(realm, entity, obj)


def _payment_sides(entity: str, obj: Obj) -> tuple[Decimal, Decimal]:
    """(charges, credits) a payment's lines apply."""
    charged, credited = ZERO, ZERO
    for line in obj.get("Line", []):
        for link in line.get("LinkedTxn") or []:
            kind = link.get("TxnType")
            if kind in _CREDITS[entity]:
                credited += line["Amount"]
            elif kind in _CHARGES[entity]:
                charged += line["Amount"]
            else:
                raise invalid(f"LinkedTxn.TxnType {kind} is not valid for {entity}", "2010")
    return charged, credited


def _journal_total(obj: Obj) -> Decimal:
    debit, credit = ZERO, ZERO
    for line in obj.get("Line", []):
        posting = (line.get("JournalEntryLineDetail") or {}).get("PostingType")
        if posting == "Debit":
            debit += line["Amount"]
        elif posting == "Credit":
            credit += line["Amount"]
    if debit != credit:
        raise business_rule("Transaction is not balanced. Debits and credits must be equal.")
    return debit


def refresh_balance(realm: Realm, entity: str, obj: Obj) -> None:
    if entity in ("Invoice", "Bill", "CreditMemo", "VendorCredit"):
        paid, links = applied_to(realm, entity, obj.get("Id", ""))
        if obj["TotalAmt"] < paid and not _voided(obj):
            raise business_rule(
                f"The transaction total {obj['TotalAmt']} is less than the {paid} already "
                "applied to it; unapply the payments or credits first."
            )
        obj["Balance"] = obj["TotalAmt"] - paid
        if links:
            obj["LinkedTxn"] = links
        else:
            obj.pop("LinkedTxn", None)
        if entity == "CreditMemo":
            obj["RemainingCredit"] = obj["Balance"]
    elif entity in ("SalesReceipt", "RefundReceipt", "Purchase"):
        obj["Balance"] = ZERO


def _voided(obj: Obj) -> bool:
    return str(obj.get("PrivateNote") or "").startswith("Voided")


def linked_documents(entity: str, obj: Obj | None) -> set[tuple[str, str]]:
    """(entity, id) of the documents a payment applies to or uses the credit of."""
    if obj is None or entity not in _CHARGES:
        return set()
    found = set()
    for line in obj.get("Line", []):
        for link in line.get("LinkedTxn", []):
            kind = str(link.get("TxnType"))
            if kind in _CHARGES[entity] or kind in _CREDITS[entity]:
                found.add((entity_of(kind), str(link.get("TxnId"))))
    return found


def party_balance(realm: Realm, party: str, party_id: str) -> Decimal:
    """Open balance of a customer (invoices less credits) or vendor (bills less credits)."""
    owed, credit = ("Invoice", "CreditMemo") if party == "Customer" else ("Bill", "VendorCredit")
    ref = f"{party}Ref"
    total = ZERO
    for doc_type, sign in ((owed, 1), (credit, -1)):
        for doc in realm.table(doc_type).values():
            if str((doc.get(ref) or {}).get("value")) == party_id:
                total += sign * doc.get("Balance", ZERO)
    return total
