"""Invoices, credit notes, payments and attachments: totals, the state machine, the 409 rules."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.integration.released_sandbox_helpers import Harness, running_sandbox


def code_of(response: Any) -> str:
    body = response.json()
    return str(body["elements"][0]["validationErrors"][0]["code"])


async def test_totals_are_decimal_strings_for_each_line_amount_type() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        exclusive = await h.invoice(cid)
        assert (exclusive["subTotal"], exclusive["totalTax"], exclusive["total"]) == (
            "1000.00",
            "150.00",
            "1150.00",
        )
        assert exclusive["amountDue"] == "1150.00"
        assert exclusive["lines"][0]["taxAmount"] == "150.00"
        inclusive = await h.invoice(cid, lineAmountType="INCLUSIVE")
        assert (inclusive["subTotal"], inclusive["totalTax"], inclusive["total"]) == (
            "869.57",
            "130.43",
            "1000.00",
        )
        no_tax = await h.invoice(cid, lineAmountType="NO_TAX")
        assert (no_tax["totalTax"], no_tax["total"]) == ("0.00", "1000.00")


async def _status_after(
    h: Harness, cid: str, start: str, action: str
) -> tuple[int, str, str | None]:
    doc = await h.invoice(cid)
    if start in ("AWAITING_APPROVAL", "APPROVED"):
        doc = await h.invoice(cid, status=start)
    elif start == "VOIDED":
        doc = await h.invoice(cid, status="APPROVED")
        await h.call(cid, "POST", f"/invoices/{doc['id']}/void")
    elif start == "PAID":
        doc = await h.invoice(cid, status="APPROVED")
        assert (await h.pay(cid, doc, "1150.00")).status_code == 201
    if action == "draft":
        response = await h.call(cid, "PATCH", f"/invoices/{doc['id']}", json={"status": "DRAFT"})
    else:
        response = await h.call(cid, "POST", f"/invoices/{doc['id']}/{action}")
    current = (await h.call(cid, "GET", f"/invoices/{doc['id']}")).json()["status"]
    code = code_of(response) if response.status_code >= 400 else None
    return response.status_code, current, code


@pytest.mark.parametrize(
    ("start", "action", "status", "final", "code"),
    [
        ("DRAFT", "submit", 200, "AWAITING_APPROVAL", None),
        ("DRAFT", "approve", 200, "APPROVED", None),
        ("DRAFT", "void", 409, "DRAFT", "INVALID_STATUS_TRANSITION"),
        ("AWAITING_APPROVAL", "approve", 200, "APPROVED", None),
        ("AWAITING_APPROVAL", "draft", 200, "DRAFT", None),
        ("AWAITING_APPROVAL", "void", 409, "AWAITING_APPROVAL", "INVALID_STATUS_TRANSITION"),
        ("APPROVED", "void", 200, "VOIDED", None),
        ("APPROVED", "submit", 409, "APPROVED", "INVALID_STATUS_TRANSITION"),
        ("APPROVED", "draft", 409, "APPROVED", "INVALID_STATUS_TRANSITION"),
        ("VOIDED", "approve", 409, "VOIDED", "DOCUMENT_NOT_EDITABLE"),
        ("PAID", "void", 409, "PAID", "REMOVE_PAYMENTS_FIRST"),
        ("PAID", "submit", 409, "PAID", "DOCUMENT_NOT_EDITABLE"),
    ],
)
async def test_state_machine(
    start: str, action: str, status: int, final: str, code: str | None
) -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        assert await _status_after(h, cid, start, action) == (status, final, code)


async def test_paid_is_derived_and_undone_by_an_accounting_reversal() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        doc = await h.invoice(cid, status="APPROVED")
        part = await h.pay(cid, doc, "150.00")
        assert part.status_code == 201
        doc = (await h.call(cid, "GET", f"/invoices/{doc['id']}")).json()
        assert (doc["status"], doc["amountPaid"], doc["amountDue"]) == (
            "APPROVED",
            "150.00",
            "1000.00",
        )
        overpay = await h.pay(cid, doc, "1000.01")
        assert (overpay.status_code, code_of(overpay)) == (400, "OVERPAYMENT")
        rest = await h.pay(cid, doc, "1000.00")
        doc = (await h.call(cid, "GET", f"/invoices/{doc['id']}")).json()
        assert (doc["status"], doc["amountDue"]) == ("PAID", "0.00")
        await h.connect(cid)
        refused = await h.as_user(cid, "POST", f"/payments/{rest.json()['id']}/reverse")
        assert (refused.status_code, code_of(refused)) == (409, "REVERSE_IN_ACCOUNTING")
        # The client that connected is the accounting side: it may reverse.
        reversed_ = await h.call(cid, "POST", f"/payments/{rest.json()['id']}/reverse")
        assert reversed_.json()["status"] == "REVERSED"
        assert reversed_.json()["reversalSource"] == "ACCOUNTING"
        doc = (await h.call(cid, "GET", f"/invoices/{doc['id']}")).json()
        assert (doc["status"], doc["amountDue"]) == ("APPROVED", "1000.00")


async def test_reverse_is_allowed_when_not_connected() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        doc = await h.invoice(cid, status="APPROVED")
        payment = (await h.pay(cid, doc, "10.00")).json()
        response = await h.call(cid, "POST", f"/payments/{payment['id']}/reverse")
        assert response.status_code == 200
        assert response.json()["status"] == "REVERSED"


async def test_void_with_active_payment_is_refused_until_reversed() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        doc = await h.invoice(cid, status="APPROVED")
        payment = (await h.pay(cid, doc, "100.00")).json()
        refused = await h.call(cid, "POST", f"/invoices/{doc['id']}/void")
        assert (refused.status_code, code_of(refused)) == (409, "REMOVE_PAYMENTS_FIRST")
        await h.call(cid, "POST", f"/payments/{payment['id']}/reverse")
        voided = await h.call(cid, "POST", f"/invoices/{doc['id']}/void")
        assert voided.status_code == 200
        assert voided.json()["status"] == "VOIDED"
        assert voided.json()["voidedAt"] is not None


@pytest.mark.parametrize("final", ["VOIDED", "PAID"])
async def test_paid_and_voided_are_not_editable(final: str) -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        doc = await h.invoice(cid, status="APPROVED")
        if final == "PAID":
            await h.pay(cid, doc, "1150.00")
        else:
            await h.call(cid, "POST", f"/invoices/{doc['id']}/void")
        response = await h.call(cid, "PATCH", f"/invoices/{doc['id']}", json={"reference": "x"})
        assert (response.status_code, code_of(response)) == (409, "DOCUMENT_NOT_EDITABLE")


async def test_patch_recomputes_totals_and_bumps_version() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        doc = await h.invoice(cid)
        lines = [{"quantity": "2", "unitAmount": "250.005"}]
        response = await h.call(
            cid, "PATCH", f"/invoices/{doc['id']}", json={"lines": lines, "reference": "Jan"}
        )
        assert response.status_code == 200
        body = response.json()
        assert (body["total"], body["reference"]) == ("500.01", "Jan")
        assert body["version"] == doc["version"] + 1
        assert response.headers["etag"] == f'"{body["version"]}"'


async def test_unknown_references_are_validation_errors() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        missing_contact = await h.call(
            cid,
            "POST",
            "/invoices",
            json={"type": "INCOME", "contactId": "nope", "date": "2025-01-01"},
        )
        assert (missing_contact.status_code, code_of(missing_contact)) == (400, "CONTACT_NOT_FOUND")
        bad_type = await h.call(cid, "POST", "/invoices", json={"type": "INCOME_CREDIT"})
        assert bad_type.status_code == 400
        assert bad_type.json()["type"] == "ValidationException"
        assert bad_type.json()["errorNumber"] == 10


async def test_credit_note_allocation_reduces_both_sides() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        invoice = await h.invoice(cid, status="APPROVED")
        contact = invoice["contactId"]
        note = (
            await h.call(
                cid,
                "POST",
                "/credit-notes",
                json={
                    "type": "INCOME_CREDIT",
                    "contactId": contact,
                    "date": "2025-01-05",
                    "status": "APPROVED",
                    "lineAmountType": "NO_TAX",
                    "lines": [{"unitAmount": "200.00"}],
                },
            )
        ).json()
        assert note["remainingCredit"] == "200.00"
        body = {"invoiceId": invoice["id"], "amount": "150.00", "date": "2025-01-06"}
        response = await h.call(cid, "POST", f"/credit-notes/{note['id']}/allocations", json=body)
        assert response.status_code == 200
        assert response.json()["remainingCredit"] == "50.00"
        assert response.json()["allocations"][0]["amount"] == "150.00"
        invoice = (await h.call(cid, "GET", f"/invoices/{invoice['id']}")).json()
        assert (invoice["amountCredited"], invoice["amountDue"]) == ("150.00", "1000.00")
        too_much = {**body, "amount": "60.00"}
        over = await h.call(cid, "POST", f"/credit-notes/{note['id']}/allocations", json=too_much)
        assert (over.status_code, code_of(over)) == (400, "OVER_ALLOCATION")
        void = await h.call(cid, "POST", f"/credit-notes/{note['id']}/void")
        assert (void.status_code, code_of(void)) == (409, "REMOVE_PAYMENTS_FIRST")
        # The accounting side unapplies the credit: kept in the list, marked deleted.
        allocation = response.json()["allocations"][0]["id"]
        path = f"/credit-notes/{note['id']}"
        undone = await h.call(cid, "DELETE", f"{path}/allocations/{allocation}")
        assert undone.json()["remainingCredit"] == "200.00"
        assert undone.json()["allocations"][0]["isDeleted"] is True
        invoice = (await h.call(cid, "GET", f"/invoices/{invoice['id']}")).json()
        assert (invoice["amountCredited"], invoice["amountDue"]) == ("0.00", "1150.00")
        missing = await h.call(cid, "DELETE", f"{path}/allocations/nope")
        assert missing.status_code == 404


async def test_attachments_upload_download_delete() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        doc = await h.invoice(cid)
        content = b"%PDF-1.4 lease schedule"
        files = {"file": ("lease.pdf", content, "application/pdf")}
        added = await h.call(cid, "POST", f"/invoices/{doc['id']}/attachments", files=files)
        assert added.status_code == 201, added.text
        item = added.json()
        assert item["sha256"] == hashlib.sha256(content).hexdigest()
        assert (item["fileName"], item["mimeType"], item["size"]) == (
            "lease.pdf",
            "application/pdf",
            len(content),
        )
        base = f"/invoices/{doc['id']}/attachments/{item['id']}"
        assert (await h.call(cid, "GET", base + "/content")).content == content
        assert (await h.call(cid, "GET", f"/invoices/{doc['id']}")).json()["hasAttachments"]
        assert (await h.call(cid, "DELETE", base)).status_code == 204
        assert (await h.call(cid, "GET", base)).status_code == 404
        assert not (await h.call(cid, "GET", f"/invoices/{doc['id']}")).json()["hasAttachments"]
        names = [e["eventName"] for e in (await h.call(cid, "GET", "/events")).json()["items"]]
        assert "attachment.added" in names
        assert "attachment.removed" in names
        missing = await h.call(cid, "POST", f"/invoices/{doc['id']}/attachments", data={"x": "1"})
        assert missing.status_code == 400


async def test_credit_note_lifecycle_and_acting_as_a_user() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        contact = await h.first(cid, "/contacts")
        body = {"type": "EXPENSE_CREDIT", "contactId": contact["id"], "date": "2025-02-01"}
        user = f"/_sandbox/companies/{cid}/as-user"
        note = (await h.client.post(f"{user}/credit-notes", json=body)).json()
        assert (note["status"], note["remainingCredit"], note["allocations"]) == (
            "DRAFT",
            "0.00",
            [],
        )
        submitted = await h.client.post(f"{user}/credit-notes/{note['id']}/submit")
        assert submitted.json()["status"] == "AWAITING_APPROVAL"
        approved = await h.client.post(f"{user}/credit-notes/{note['id']}/approve")
        assert approved.json()["status"] == "PAID"  # a zero credit note has nothing left
        refused = await h.client.post(f"{user}/credit-notes/{note['id']}/void")
        assert (refused.status_code, code_of(refused)) == (409, "DOCUMENT_NOT_EDITABLE")
        names = [e["eventName"] for e in (await h.call(cid, "GET", "/events")).json()["items"]]
        assert names[-4:] == [
            "creditnote.created",
            "creditnote.submitted",
            "creditnote.approved",
            "creditnote.paid",
        ]
        log = (await h.client.get(f"/_sandbox/companies/{cid}/requests")).json()
        assert log["count"] == 0


async def test_only_approved_documents_take_money() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        draft = await h.invoice(cid)
        unpaid = await h.pay(cid, draft, "10.00")
        assert (unpaid.status_code, code_of(unpaid)) == (409, "DOCUMENT_NOT_PAYABLE")
        note = await h.call(
            cid,
            "POST",
            "/credit-notes",
            json={
                "type": "INCOME_CREDIT",
                "contactId": draft["contactId"],
                "date": "2025-01-05",
                "status": "APPROVED",
                "lines": [{"unitAmount": "10.00"}],
            },
        )
        body = {"invoiceId": draft["id"], "amount": "5.00", "date": "2025-01-06"}
        path = f"/credit-notes/{note.json()['id']}/allocations"
        refused = await h.call(cid, "POST", path, json=body)
        assert (refused.status_code, code_of(refused)) == (409, "ALLOCATION_NOT_ALLOWED")
