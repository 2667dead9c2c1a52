"""Where a real QBO client notices the difference: a malformed query is a ValidationFault, a
condition on a property QBO does not filter on is refused (4001) instead of matching nothing,
Intuit's documented revoke path answers, an invoice reads as a PDF, and an unknown route answers
in QBO's fault shape."""

from __future__ import annotations

import base64
import re

from tests.integration.qbo_sandbox_helpers import CLIENT_ID, CLIENT_SECRET, sandbox

BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


async def test_a_malformed_query_is_a_validation_fault() -> None:
    async with sandbox() as sb:
        broken = await sb.get("query", query="select from where")
        assert broken.status_code == 400
        fault = broken.json()["Fault"]
        assert (fault["type"], fault["Error"][0]["code"]) == ("ValidationFault", "4000")


async def test_a_condition_on_a_property_qbo_does_not_filter_on_is_refused_4001() -> None:
    async with sandbox() as sb:
        await sb.create("Customer", {"DisplayName": "Alpha", "BillAddr": {"City": "Austin"}})
        for where in ("BillAddr.City = 'Austin'", "Colour = 'red'"):
            refused = await sb.get("query", query=f"select * from Customer where {where}")
            assert refused.status_code == 400, where
            error = refused.json()["Fault"]["Error"][0]
            assert error["code"] == "4001"
            assert "not queryable" in error["Detail"]
        fine = await sb.query("select * from Customer where displayname = 'Alpha'")
        assert [c["DisplayName"] for c in fine["Customer"]] == ["Alpha"]


async def test_the_documented_revoke_path_answers_too() -> None:
    async with sandbox() as sb:
        response = await sb.http.post(
            "/v2/oauth2/tokens/revoke",
            json={"token": sb.refresh_token},
            headers={"Authorization": BASIC},
        )
        assert response.status_code == 200
        assert (await sb.get("customer/1")).status_code == 401


async def test_an_invoice_reads_as_a_pdf() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Printed Co"})
        invoice = await sb.invoice(customer["Id"], "42.50")
        response = await sb.get(f"invoice/{invoice['Id']}/pdf")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pdf"
        data = response.content
        assert data.startswith(b"%PDF-1.4")
        assert data.rstrip().endswith(b"%%EOF")
        # Every cross-reference offset points at its object: a reader can open it.
        start = int(re.findall(rb"startxref\n(\d+)", data)[-1])
        table = data[start:].split(b"\n")
        count = int(table[1].split()[1])
        for number, row in enumerate(table[3 : 2 + count], start=1):
            assert data[int(row.split()[0]) :].startswith(b"%d 0 obj" % number)
        assert b"42.50" in data
        missing = await sb.get("invoice/99999/pdf")
        assert missing.status_code == 400


async def test_unknown_routes_answer_in_qbos_fault_shape() -> None:
    async with sandbox() as sb:
        for path in (f"{sb.base}/no/such/thing/here", "/nothing-here"):
            response = await sb.http.get(path, headers=sb.auth)
            assert response.status_code == 404
            fault = response.json()["Fault"]
            assert fault["type"] == "ValidationFault"
            assert fault["Error"][0]["code"] == "610"
