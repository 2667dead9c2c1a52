"""Money not against a document: credit notes of ``kind`` PREPAYMENT / OVERPAYMENT.

One line, no tax, made and changed only by the accounting side while connected; a user may
allocate their remaining credit to invoices like any credit note's. Ordinary notes are STANDARD.
"""

from __future__ import annotations

from typing import Any

from tests.integration.released_sandbox_helpers import Harness, running_sandbox


def code_of(response: Any) -> str:
    return str(response.json()["elements"][0]["validationErrors"][0]["code"])


def held(
    contact: str, kind: str = "PREPAYMENT", extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "type": "INCOME_CREDIT",
        "kind": kind,
        "contactId": contact,
        "date": "2025-01-05",
        "status": "APPROVED",
        "lineAmountType": "NO_TAX",
        "lines": [{"description": "Prepayment", "unitAmount": "80.00"}],
        **(extra or {}),
    }


async def _connected(h: Harness) -> tuple[str, dict[str, Any]]:
    cid = await h.company()
    invoice = await h.invoice(cid, status="APPROVED")
    await h.connect(cid)
    return cid, invoice


async def test_the_accounting_side_holds_credit_that_a_user_can_allocate() -> None:
    async with running_sandbox() as h:
        cid, invoice = await _connected(h)
        made = await h.call(cid, "POST", "/credit-notes", json=held(invoice["contactId"]))
        assert made.status_code == 201, made.text
        note = made.json()
        assert (note["kind"], note["remainingCredit"], note["totalTax"]) == (
            "PREPAYMENT",
            "80.00",
            "0.00",
        )
        body = {"invoiceId": invoice["id"], "amount": "30.00", "date": "2025-01-06"}
        path = f"/credit-notes/{note['id']}/allocations"
        allocated = await h.as_user(cid, "POST", path, json=body)
        assert allocated.status_code == 200, allocated.text
        assert allocated.json()["remainingCredit"] == "50.00"
        patch = {"kind": "STANDARD", "reference": "kept"}
        changed = await h.call(cid, "PATCH", f"/credit-notes/{note['id']}", json=patch)
        assert changed.json()["kind"] == "PREPAYMENT", "the kind never changes"
        plain = {**held(invoice["contactId"]), "kind": "STANDARD", "lineAmountType": "EXCLUSIVE"}
        standard = await h.call(cid, "POST", "/credit-notes", json=plain)
        assert standard.json()["kind"] == "STANDARD"


async def test_users_may_not_make_change_or_void_held_credit_while_connected() -> None:
    async with running_sandbox() as h:
        cid, invoice = await _connected(h)
        refused = await h.as_user(cid, "POST", "/credit-notes", json=held(invoice["contactId"]))
        assert (refused.status_code, code_of(refused)) == (409, "MANAGED_IN_ACCOUNTING")
        note = (await h.call(cid, "POST", "/credit-notes", json=held(invoice["contactId"]))).json()
        for method, path, body in (
            ("PATCH", f"/credit-notes/{note['id']}", {"reference": "mine"}),
            ("POST", f"/credit-notes/{note['id']}/void", None),
        ):
            answer = await h.as_user(cid, method, path, json=body)
            assert (answer.status_code, code_of(answer)) == (409, "MANAGED_IN_ACCOUNTING")
        voided = await h.call(cid, "POST", f"/credit-notes/{note['id']}/void")
        assert voided.json()["status"] == "VOIDED"


async def test_held_credit_is_one_line_without_tax() -> None:
    async with running_sandbox() as h:
        cid, invoice = await _connected(h)
        contact = invoice["contactId"]
        two: dict[str, object] = {"lines": [{"unitAmount": "1.00"}, {"unitAmount": "2.00"}]}
        for body in (
            held(contact, extra=two),
            held(contact, "OVERPAYMENT", {"lineAmountType": "EXCLUSIVE"}),
        ):
            answer = await h.call(cid, "POST", "/credit-notes", json=body)
            assert (answer.status_code, code_of(answer)) == (400, "HELD_CREDIT_SHAPE"), body
        batch = {"items": [held(contact, extra=two), held(contact, "OVERPAYMENT")]}
        results = (await h.call(cid, "POST", "/credit-notes/batch", json=batch)).json()["items"]
        assert [r["status"] for r in results] == [400, 201]
        assert results[1]["item"]["kind"] == "OVERPAYMENT"


async def test_a_refunded_held_note_cannot_be_voided_but_can_be_reduced_to_its_refund() -> None:
    """A refund (a payment on the note) is money that left: the note cannot be voided while it
    is there; the accounting side may reduce the note to it, which leaves it fully used (PAID)."""
    async with running_sandbox() as h:
        cid, invoice = await _connected(h)
        note = (await h.call(cid, "POST", "/credit-notes", json=held(invoice["contactId"]))).json()
        refund = {
            "documentType": "CREDIT_NOTE",
            "documentId": note["id"],
            "date": "2025-01-06",
            "amount": "25.00",
            "bankAccountId": invoice.get("bankAccountId") or await _bank(h, cid),
        }
        paid = await h.as_user(cid, "POST", "/payments", json=refund)
        assert paid.status_code == 201, paid.text
        path = f"/credit-notes/{note['id']}"
        refused = await h.call(cid, "POST", f"{path}/void")
        assert (refused.status_code, code_of(refused)) == (409, "REMOVE_PAYMENTS_FIRST")
        reduced = await h.call(cid, "PATCH", path, json=_one_line("25.00"))
        assert reduced.status_code == 200, reduced.text
        assert (reduced.json()["total"], reduced.json()["remainingCredit"]) == ("25.00", "0.00")
        assert reduced.json()["status"] == "PAID", "no credit left: fully used"
        below = await h.call(cid, "PATCH", path, json=_one_line("5.00"))
        assert below.status_code in (400, 409), "never below the refund"


def _one_line(amount: str) -> dict[str, Any]:
    return {"lines": [{"description": "Prepayment", "unitAmount": amount}]}


async def _bank(h: Harness, cid: str) -> str:
    accounts = (await h.call(cid, "GET", "/accounts?pageSize=1000")).json()["items"]
    return str(next(a["id"] for a in accounts if a["type"] == "BANK"))
