"""Signed webhooks: formats, which changes notify, retries with head-of-line blocking, faults."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sandboxes.qbo.changes import Change
from sandboxes.qbo.webhooks import notifies
from tests.integration.qbo_sandbox_helpers import (
    VERIFIER,
    Receiver,
    Sandbox,
    delivery_log,
    sandbox,
    serve,
)


def intuit_signature_valid(raw_body: bytes, header: str | None, verifier_token: str) -> bool:
    """What Intuit tells a receiver to do: HMAC-SHA256 the raw body with the verifier token,
    base64 it, and compare with the intuit-signature header (constant time)."""
    if not header:
        return False
    digest = hmac.new(verifier_token.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode(), header)


@asynccontextmanager
async def hooked(receiver: Receiver, **overrides: Any) -> AsyncIterator[Sandbox]:
    async with serve(receiver.app()) as hook_base:
        settings = {"qbo_sandbox_webhook_url": f"{hook_base}/hook", **overrides}
        async with sandbox(**settings) as sb, sb.app.router.lifespan_context(sb.app):
            yield sb


def events(raw: bytes) -> list[dict[str, Any]]:
    body = json.loads(raw)
    assert isinstance(body, list)
    return body


async def test_cloudevents_signed_as_intuit_documents() -> None:
    receiver = Receiver()
    async with hooked(receiver) as sb:
        customer = await sb.create("Customer", {"DisplayName": "Hooked"})
        await receiver.wait_for(1)
    headers, raw = receiver.received[0]
    assert intuit_signature_valid(raw, headers.get("intuit-signature"), VERIFIER)
    assert not intuit_signature_valid(raw + b" ", headers.get("intuit-signature"), VERIFIER)
    assert headers["content-type"] in ("application/json", "application/cloudevents+json")
    [event] = events(raw)
    assert event["specversion"] == "1.0"
    assert event["type"] == "qbo.customer.created.v1"
    assert event["intuitentityid"] == customer["Id"]
    assert event["intuitaccountid"] == sb.realm_id
    assert {"id", "source", "time"} <= set(event)


async def test_legacy_format_is_switchable() -> None:
    receiver = Receiver()
    async with hooked(receiver, qbo_sandbox_webhook_format="legacy") as sb:
        customer = await sb.create("Customer", {"DisplayName": "Old School"})
        await receiver.wait_for(1)
    headers, raw = receiver.received[0]
    assert intuit_signature_valid(raw, headers["intuit-signature"], VERIFIER)
    [notification] = json.loads(raw)["eventNotifications"]
    assert notification["realmId"] == sb.realm_id
    [entity] = notification["dataChangeEvent"]["entities"]
    assert entity["name"] == "Customer"
    assert entity["id"] == customer["Id"]
    assert entity["operation"] == "Create"
    assert entity["lastUpdated"]


async def test_inactivation_is_announced_as_delete() -> None:
    receiver = Receiver()
    async with hooked(receiver) as sb:
        customer = await sb.create("Customer", {"DisplayName": "Leaving"})
        await receiver.wait_for(1)
        body = {"Id": customer["Id"], "SyncToken": "0", "sparse": True, "Active": False}
        assert (await sb.post("customer", body)).status_code == 200
        await receiver.wait_for(2)
    assert events(receiver.received[1][1])[0]["type"] == "qbo.customer.deleted.v1"


async def test_attachable_and_tax_entities_never_notify() -> None:
    assert not notifies(Change("1", "TaxCode", "1", "Update", datetime.now(UTC)))
    assert not notifies(Change("1", "TaxRate", "1", "Create", datetime.now(UTC)))
    assert not notifies(Change("1", "Attachable", "1", "Create", datetime.now(UTC)))
    receiver = Receiver()
    async with hooked(receiver) as sb:
        note = {"Note": "hello", "AttachableRef": []}
        assert (await sb.post("attachable", note)).status_code == 200
        await sb.create("Vendor", {"DisplayName": "After the note"})
        await receiver.wait_for(1)
        await asyncio.sleep(0.3)
    types = [e["type"] for _, raw in receiver.received for e in events(raw)]
    assert types == ["qbo.vendor.created.v1"]


async def test_void_and_merge_events() -> None:
    receiver = Receiver()
    async with hooked(receiver) as sb:
        keep = await sb.create("Customer", {"DisplayName": "Keep"})
        lose = await sb.create("Customer", {"DisplayName": "Lose"})
        invoice = await sb.invoice(keep["Id"])
        body = {"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]}
        await sb.post("invoice", body, operation="void")
        merge = {"fromId": lose["Id"], "toId": keep["Id"]}
        await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/ui/customer/merge", json=merge)
        await receiver.wait_for(1)
        await asyncio.sleep(0.4)
    seen = [e for _, raw in receiver.received for e in events(raw)]
    assert "qbo.invoice.voided.v1" in [e["type"] for e in seen]
    merged = next(e for e in seen if e["type"] == "qbo.customer.merged.v1")
    assert merged["intuitentityid"] == keep["Id"]
    assert merged["data"] == {"deletedid": lose["Id"]}


async def test_retry_schedule_with_head_of_line_blocking() -> None:
    # Scale 100: retries after 0.1 s and 0.2 s instead of 10 s and 20 s.
    receiver = Receiver(statuses=[500, 503, 200])
    async with hooked(receiver, qbo_sandbox_time_scale=100) as sb:
        first = await sb.create("Customer", {"DisplayName": "First"})
        await receiver.wait_for(1)
        second = await sb.create("Customer", {"DisplayName": "Second"})
        await receiver.wait_for(4)
        log = {"deliveries": await delivery_log(sb, 4)}
    ids = [[e["intuitentityid"] for e in events(raw)] for _, raw in receiver.received]
    # The second change waits behind the unacknowledged first one.
    assert ids == [[first["Id"]], [first["Id"]], [first["Id"]], [second["Id"]]]
    bodies = [raw for _, raw in receiver.received[:3]]
    assert bodies[0] == bodies[1] == bodies[2]  # same event ids on every retry
    attempts = [(d["status"], d["attempt"]) for d in log["deliveries"]]
    assert attempts == [("failed", 1), ("failed", 2), ("delivered", 3), ("delivered", 1)]
    stamps = [datetime.fromisoformat(d["time"]) for d in log["deliveries"][:3]]
    assert (stamps[1] - stamps[0]).total_seconds() >= 0.09
    assert (stamps[2] - stamps[1]).total_seconds() >= 0.19


async def test_slow_receiver_counts_as_failure() -> None:
    # Intuit needs the 200 within 3 s; a slower answer is a failure and is retried.
    receiver = Receiver(delays=[3.5])
    async with hooked(receiver, qbo_sandbox_time_scale=100) as sb:
        await sb.create("Customer", {"DisplayName": "Patient"})
        log = await delivery_log(sb, 2, timeout=8)
    assert log[0]["status"] == "failed"
    assert "Timeout" in (log[0]["error"] or "")
    assert log[1]["status"] == "delivered"
    assert log[1]["attempt"] == 2


async def test_duplicate_fault_sends_the_same_events_twice() -> None:
    receiver = Receiver()
    async with hooked(receiver) as sb:
        await sb.http.put(
            f"/_sandbox/realms/{sb.realm_id}/faults", json={"webhook_duplicate_rate": 1}
        )
        await sb.create("Customer", {"DisplayName": "Twice"})
        await receiver.wait_for(2)
    assert receiver.received[0][1] == receiver.received[1][1]


async def test_drop_fault_loses_the_delivery_and_logs_it() -> None:
    receiver = Receiver()
    async with hooked(receiver) as sb:
        faults = f"/_sandbox/realms/{sb.realm_id}/faults"
        await sb.http.put(faults, json={"webhook_drop_rate": 1})
        await sb.create("Customer", {"DisplayName": "Lost"})
        await asyncio.sleep(0.4)
        assert receiver.received == []
        await sb.http.delete(faults)
        await sb.create("Customer", {"DisplayName": "Found"})
        log = await delivery_log(sb, 2)
    assert [d["status"] for d in log] == ["dropped", "delivered"]


async def test_reorder_fault_reverses_a_batch() -> None:
    receiver = Receiver()
    async with hooked(receiver, qbo_sandbox_aggregation_seconds=0.3) as sb:
        await sb.http.put(f"/_sandbox/realms/{sb.realm_id}/faults", json={"webhook_reorder": True})
        first = await sb.create("Customer", {"DisplayName": "One"})
        second = await sb.create("Customer", {"DisplayName": "Two"})
        await receiver.wait_for(1)
    ids = [e["intuitentityid"] for e in events(receiver.received[0][1])]
    assert ids == [second["Id"], first["Id"]]


async def test_bad_signature_fault_fails_verification() -> None:
    receiver = Receiver()
    async with hooked(receiver) as sb:
        faults = f"/_sandbox/realms/{sb.realm_id}/faults"
        await sb.http.put(faults, json={"webhook_bad_signature": True})
        await sb.create("Customer", {"DisplayName": "Forged"})
        await receiver.wait_for(1)
    headers, raw = receiver.received[0]
    assert not intuit_signature_valid(raw, headers["intuit-signature"], VERIFIER)


async def test_at_most_100_events_per_post() -> None:
    receiver = Receiver()
    async with hooked(receiver, qbo_sandbox_aggregation_seconds=0.5) as sb:
        for start in range(0, 150, 30):
            items = [
                {"bId": str(i), "operation": "create", "Customer": {"DisplayName": f"Bulk {i}"}}
                for i in range(start, start + 30)
            ]
            await sb.post("batch", {"BatchItemRequest": items})
        await receiver.wait_for(2)
    assert [len(events(raw)) for _, raw in receiver.received] == [100, 50]


async def test_unconnected_realms_do_not_notify() -> None:
    receiver = Receiver()
    async with hooked(receiver) as sb:
        created = await sb.http.post("/_sandbox/realms", json={"companyName": "Offline"})
        offline = created.json()["realmId"]
        await sb.http.post(f"/_sandbox/realms/{offline}/ui/customer", json={"DisplayName": "Quiet"})
        await sb.create("Customer", {"DisplayName": "Loud"})
        await receiver.wait_for(1)
        await asyncio.sleep(0.3)
    accounts = {e["intuitaccountid"] for _, raw in receiver.received for e in events(raw)}
    assert accounts == {sb.realm_id}


async def test_ui_spend_money_notifies_but_is_not_an_api_request() -> None:
    receiver = Receiver()
    async with hooked(receiver) as sb:
        bank = await sb.first_id("Account", "where AccountType = 'Bank'")
        expense = await sb.first_id("Account", "where AccountType = 'Expense'")
        line = {
            "DetailType": "AccountBasedExpenseLineDetail",
            "Amount": 19.99,
            "AccountBasedExpenseLineDetail": {"AccountRef": {"value": expense}},
        }
        spend = {"PaymentType": "Cash", "AccountRef": {"value": bank}, "Line": [line]}
        created = await sb.http.post(f"/_sandbox/realms/{sb.realm_id}/ui/purchase", json=spend)
        purchase = created.json()["Purchase"]
        assert purchase["TotalAmt"] == 19.99
        await receiver.wait_for(1)
        log = (await sb.http.get(f"/_sandbox/realms/{sb.realm_id}/requests")).json()
    assert events(receiver.received[0][1])[0]["type"] == "qbo.purchase.created.v1"
    assert log["writes"] == 0
