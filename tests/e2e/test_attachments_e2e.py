"""Attachments end to end: QBO Attachables (found by polling) <-> Re-Leased document attachments."""

from __future__ import annotations

import functools
import hashlib
import io
from typing import Any

import aiohttp
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EventPublisher
from shared.ingest.reconciler import Reconciler
from tests.e2e.builders import (
    qbo_customer,
    qbo_invoice,
    qbo_item_id,
    qbo_sales_line,
    rl_as_user,
    rl_document_body,
    seed_links,
)
from tests.e2e.conftest import Linked
from tests.e2e.readers import linked_qbo_id, linked_released, settle
from tests.e2e.stack import Stack, consumers, eventually

pytestmark = pytest.mark.e2e

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64


async def rl_attachments(stack: Stack, company: str, invoice: str) -> list[dict[str, Any]]:
    page = await stack.released_api(company, "GET", f"/invoices/{invoice}/attachments")
    return list(page["items"])


async def test_qbo_attachable_reaches_released_once_deduplicated_by_hash(
    stack: Stack,
    linked: Linked,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
) -> None:
    publisher = await EventPublisher.open(broker)
    reconciler = Reconciler(pool, publisher)
    released = stack.factory.released(linked.connection)
    async with consumers(stack.settings):
        cust = await qbo_customer(linked.qbo)
        invoice = await qbo_invoice(
            linked.qbo, cust["Id"], [qbo_sales_line(await qbo_item_id(linked.qbo), "1", "9")]
        )
        rl_id = await linked_released(pool, "Invoice", str(invoice["Id"]), linked.connection)
        ref = {"AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]}}]}
        made = []
        for copy in ("a", "b"):  # the same bytes attached twice in QBO
            made.append(
                await linked.qbo.upload(
                    {**ref, "FileName": f"lease-{copy}.pdf", "ContentType": "application/pdf"},
                    io.BytesIO(PDF),
                    file_name=f"lease-{copy}.pdf",
                    content_type="application/pdf",
                    request_id=f"up-{copy}-{rl_id[:8]}",
                )
            )
        await reconciler.reconcile(linked.connection, linked.qbo, released)
        (found,) = await eventually(lambda: rl_attachments(stack, linked.company, rl_id))
        await settle()
        await reconciler.reconcile(linked.connection, linked.qbo, released)
        await settle(1.0)
        assert found["sha256"] == hashlib.sha256(PDF).hexdigest()
        assert len(await rl_attachments(stack, linked.company, rl_id)) == 1, "deduplicated by hash"
        # QBO never announces Attachable deletes: the reconciler's poll notices them.
        for attachable, still_there in ((made[0], 1), (made[1], 0)):
            current = await linked.qbo.get("Attachable", str(attachable["Id"]))
            await linked.qbo.write(
                "Attachable",
                {"Id": current["Id"], "SyncToken": current["SyncToken"]},
                request_id=f"del-{attachable['Id']}-{rl_id[:8]}",
                operation="delete",
            )
            # Polling finds the Attachable gone and publishes its deletion.
            await reconciler.reconcile(linked.connection, linked.qbo, released)

            async def count_is(wanted: int) -> bool:
                return len(await rl_attachments(stack, linked.company, rl_id)) == wanted

            await settle(1.5)
            # The first delete leaves the file: the second QBO copy still holds it.
            await eventually(functools.partial(count_is, still_there))
    await publisher.close()
    uploads = [
        w for w in await stack.released_writes(linked.company) if "/attachments" in w["path"]
    ]
    assert [w["method"] for w in uploads] == ["POST", "DELETE"]
    qbo_uploads = (
        await stack.call("GET", f"{stack.qbo_base}/_sandbox/realms/{linked.realm}/requests")
    )["requests"]
    assert len([r for r in qbo_uploads if r["operation"] == "upload"]) == 2, "no echo to QBO"


@pytest.mark.usefixtures("engine")
async def test_released_attachment_added_and_removed_reaches_qbo(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    ids = await seed_links(stack, linked.qbo, pool, linked.connection)
    doc = await rl_as_user(
        stack,
        linked.company,
        "POST",
        "/invoices",
        rl_document_body("INCOME", ids["customer"], ids["item"], "APPROVED"),
    )
    qbo_id = await eventually(lambda: linked_qbo_id(pool, "invoice", doc["id"]))
    form = aiohttp.FormData()
    form.add_field("file", PDF, filename="lease.pdf", content_type="application/pdf")
    added = await stack.call(
        "POST",
        f"{stack.released_base}/_sandbox/companies/{linked.company}/as-user"
        f"/invoices/{doc['id']}/attachments",
        data=form,
    )

    async def in_qbo() -> list[dict[str, Any]]:
        return await linked.qbo.query_all(
            "Attachable", f"AttachableRef.EntityRef.value = '{qbo_id}'"
        )

    (listed,) = await eventually(in_qbo)
    attachable = await linked.qbo.get("Attachable", str(listed["Id"]))
    chunks = [c async for c in linked.qbo.stream_file(str(attachable["TempDownloadUri"]))]
    assert b"".join(chunks) == PDF
    await rl_as_user(
        stack, linked.company, "DELETE", f"/invoices/{doc['id']}/attachments/{added['id']}"
    )

    async def gone() -> bool:
        return not await in_qbo()

    await eventually(gone)
