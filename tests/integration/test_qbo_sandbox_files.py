"""Attachments: multipart upload with AttachableRef, temporary download link, bytes served."""

from __future__ import annotations

import json

from tests.integration.qbo_sandbox_helpers import sandbox


async def test_upload_then_download_link_serves_the_bytes() -> None:
    async with sandbox() as sb:
        customer = await sb.create("Customer", {"DisplayName": "Att"})
        invoice = await sb.invoice(customer["Id"])
        meta = {
            "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]}}],
            "FileName": "receipt.pdf",
            "ContentType": "application/pdf",
        }
        files = {
            "file_metadata_0": (None, json.dumps(meta).encode(), "application/json"),
            "file_content_0": ("receipt.pdf", b"%PDF-1.4 hello", "application/pdf"),
        }
        response = await sb.http.post(f"{sb.base}/upload", files=files, headers=sb.auth)
        assert response.status_code == 200, response.text
        attachable = response.json()["AttachableResponse"][0]["Attachable"]
        assert attachable["Size"] == 14
        assert attachable["FileName"] == "receipt.pdf"

        link = await sb.get(f"download/{attachable['Id']}")
        assert link.status_code == 200
        assert link.text.startswith("http")
        content = await sb.http.get(link.text)
        assert content.content == b"%PDF-1.4 hello"
        forged = await sb.http.get(link.text.replace("signature=", "signature=0"))
        assert forged.status_code == 403

        rows = await sb.query(
            "select * from Attachable where AttachableRef.EntityRef.value = " f"'{invoice['Id']}'"
        )
        assert [r["Id"] for r in rows["Attachable"]] == [attachable["Id"]]


async def test_upload_refuses_unsupported_file_type() -> None:
    async with sandbox() as sb:
        files = {
            "file_metadata_0": (
                None,
                json.dumps({"FileName": "x.exe"}).encode(),
                "application/json",
            ),
            "file_content_0": ("x.exe", b"MZ", "application/octet-stream"),
        }
        response = await sb.http.post(f"{sb.base}/upload", files=files, headers=sb.auth)
        assert "Fault" in response.json()["AttachableResponse"][0]
