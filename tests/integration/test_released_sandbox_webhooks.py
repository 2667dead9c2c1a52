"""Webhooks: the intent-to-receive handshake, signed thin events, retries, disable, change feed."""

from __future__ import annotations

import asyncio
import itertools
import json
from datetime import datetime
from typing import Any

from starlette.requests import Request

from sandboxes.released.webhooks import RETRY_SCHEDULE
from tests.integration.released_sandbox_helpers import (
    Harness,
    Receiver,
    eventually,
    expected_signature,
    running_sandbox,
    verifying_answer,
    webhook_receiver,
)

EVENT_KEYS = {
    "eventId",
    "sequence",
    "eventCategory",
    "eventType",
    "eventName",
    "resourceId",
    "resourceUrl",
    "companyId",
    "resourceVersion",
    "eventDateUtc",
    "data",
}


async def subscribe(h: Harness, cid: str, receiver: Receiver) -> dict[str, Any]:
    response = await h.call(cid, "POST", "/webhooks", json={"url": receiver.url})
    assert response.status_code == 201, response.text
    return dict(response.json())


def deliveries(receiver: Receiver) -> list[dict[str, Any]]:
    """Event payloads received (the handshake's empty ones left out)."""
    bodies = [json.loads(b) for b in receiver.bodies]
    return [b for b in bodies if b["events"]]


def received_ids(receiver: Receiver) -> list[str]:
    return [e["eventId"] for body in deliveries(receiver) for e in body["events"]]


async def log(h: Harness, cid: str) -> list[dict[str, Any]]:
    response = await h.client.get("/_sandbox/deliveries", params={"companyId": cid})
    return list(response.json()["items"])


async def logged_attempts(h: Harness, cid: str, count: int) -> None:
    """Wait until the sandbox has logged `count` delivery attempts (it has scheduled the next)."""
    deadline = asyncio.get_running_loop().time() + 5
    while len([e for e in await log(h, cid) if e["kind"] == "DELIVERY"]) < count:
        assert asyncio.get_running_loop().time() < deadline, f"attempt {count} never logged"
        await asyncio.sleep(0.01)


async def test_handshake_then_signed_thin_events() -> None:
    async with webhook_receiver() as receiver, running_sandbox() as h:
        cid = await h.company()
        sub = await subscribe(h, cid, receiver)
        assert sub["status"] == "ACTIVE"
        handshake = [json.loads(b) for b in receiver.bodies]
        assert [b["events"] for b in handshake] == [[], [], [], []]
        assert all(b["firstEventSequence"] == b["lastEventSequence"] == 0 for b in handshake)
        assert receiver.statuses == [200, 401, 200, 401]
        assert len({b["entropy"] for b in handshake}) == 4
        invoice = await h.invoice(cid)
        await eventually(lambda: len(deliveries(receiver)) >= 1)
        body_bytes = receiver.bodies[4]
        headers = receiver.headers[4]
        assert headers["x-released-signature"] == expected_signature(body_bytes)
        assert headers["content-type"] == "application/json"
        assert len(headers["x-released-delivery-id"]) == 36
        body = json.loads(body_bytes)
        assert set(body) == {"events", "firstEventSequence", "lastEventSequence", "entropy"}
        event = body["events"][0]
        assert set(event) == EVENT_KEYS
        assert (event["eventCategory"], event["eventType"], event["eventName"]) == (
            "INVOICE",
            "CREATE",
            "invoice.created",
        )
        assert event["resourceUrl"] == f"http://sandbox/api/v1/invoices/{invoice['id']}"
        assert body["firstEventSequence"] == body["lastEventSequence"] == event["sequence"]
        fetched = await h.call(
            cid, "GET", event["resourceUrl"].removeprefix("http://sandbox/api/v1")
        )
        assert fetched.json()["version"] == event["resourceVersion"]
        got = (await h.call(cid, "GET", f"/webhooks/{sub['id']}")).json()
        assert got["status"] == "ACTIVE"


async def test_receiver_that_accepts_everything_stays_pending() -> None:
    async def always_ok(request: Request, body: bytes) -> int:
        return 200

    async with webhook_receiver(always_ok) as receiver, running_sandbox() as h:
        cid = await h.company()
        sub = await subscribe(h, cid, receiver)
        assert sub["status"] == "PENDING_VALIDATION"
        assert receiver.statuses == [200, 200]
        await h.invoice(cid)
        await asyncio.sleep(0.2)
        assert deliveries(receiver) == []


async def test_unreachable_receiver_stays_pending() -> None:
    async with running_sandbox() as h:
        cid = await h.company()
        response = await h.call(cid, "POST", "/webhooks", json={"url": "http://127.0.0.1:9/hook"})
        assert response.json()["status"] == "PENDING_VALIDATION"


async def test_batches_of_at_most_one_hundred_and_reorder() -> None:
    gate = asyncio.Event()
    handshake_done = False

    async def slow_first(request: Request, body: bytes) -> int:
        if handshake_done and not gate.is_set():
            await gate.wait()
        return await verifying_answer(request, body)

    async with webhook_receiver(slow_first) as receiver, running_sandbox() as h:
        cid = await h.company()
        await subscribe(h, cid, receiver)
        handshake_done = True
        await h.client.put(
            f"/_sandbox/companies/{cid}/faults", json={"deliveries": {"reorder": True}}
        )
        for n in range(150):
            await h.call(cid, "POST", "/contacts", json={"name": f"Tenant {n}"})
        gate.set()
        await eventually(lambda: len(received_ids(receiver)) == 150)
        sizes = [len(b["events"]) for b in deliveries(receiver)]
        assert max(sizes) == 100
        assert sum(sizes) == 150
        big = next(b for b in deliveries(receiver) if len(b["events"]) == 100)
        sequences = [e["sequence"] for e in big["events"]]
        assert sequences == sorted(sequences, reverse=True)
        assert big["firstEventSequence"] == min(sequences)
        assert big["lastEventSequence"] == max(sequences)


async def test_failed_delivery_retries_on_the_schedule() -> None:
    healthy = False

    async def flaky(request: Request, body: bytes) -> int:
        if json.loads(body)["events"] and not healthy:
            return 500
        return await verifying_answer(request, body)

    async with webhook_receiver(flaky) as receiver, running_sandbox() as h:
        h.refresh_tokens = True
        cid = await h.company()
        sub = await subscribe(h, cid, receiver)
        await h.invoice(cid)
        await eventually(lambda: len(deliveries(receiver)) == 1)
        for attempt, delay in enumerate(RETRY_SCHEDULE[:4], start=2):
            # The receiver sees a body before the sandbox has its answer and schedules the
            # retry; moving the clock in between would move the retry too. Wait for the log.
            await logged_attempts(h, cid, attempt - 1)
            seconds = delay.total_seconds()
            await h.client.post("/_sandbox/clock", json={"advanceSeconds": seconds - 5})
            await asyncio.sleep(0.1)
            assert len(deliveries(receiver)) == attempt - 1, "retried too early"
            await h.client.post("/_sandbox/clock", json={"advanceSeconds": 5})
            await eventually(lambda n=attempt: len(deliveries(receiver)) == n)  # type: ignore[misc]
        attempts = [e for e in await log(h, cid) if e["kind"] == "DELIVERY"]
        assert [e["attempt"] for e in attempts] == [1, 2, 3, 4, 5]
        assert all(e["status"] == 500 for e in attempts)
        healthy = True
        await h.client.post("/_sandbox/clock", json={"advanceSeconds": 3600})
        await eventually(lambda: 200 in receiver.statuses[4:])
        state = (await h.call(cid, "GET", f"/webhooks/{sub['id']}")).json()
        assert (state["status"], state["failingSince"]) == ("ACTIVE", None)
        assert len({json.dumps(b["events"]) for b in deliveries(receiver)}) == 1


async def test_disabled_after_twenty_four_hours_of_failures() -> None:
    repaired = False

    async def broken(request: Request, body: bytes) -> int:
        if json.loads(body)["events"] and not repaired:
            return 503
        return await verifying_answer(request, body)

    scaled = running_sandbox(released_sandbox_time_scale=50_000.0)
    async with webhook_receiver(broken) as receiver, scaled as h:
        h.refresh_tokens = True
        cid = await h.company()
        sub = await subscribe(h, cid, receiver)
        await h.invoice(cid)

        async def status() -> str:
            return str((await h.call(cid, "GET", f"/webhooks/{sub['id']}")).json()["status"])

        deadline = asyncio.get_running_loop().time() + 20
        while await status() != "DISABLED":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        entries = await log(h, cid)
        attempts = [e for e in entries if e["kind"] == "DELIVERY"]
        assert entries[-1]["kind"] == "DISABLED"
        assert [e["attempt"] for e in attempts] == list(range(1, len(attempts) + 1))
        assert 9 <= len(attempts) <= 10
        times = [datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in attempts]
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        for gap, delay in zip(gaps, RETRY_SCHEDULE, strict=False):
            assert gap >= delay.total_seconds()
        # Give-up is 24 h after the first failure: the last attempt is made at that deadline,
        # never before it, and no attempt is scheduled past it. At this clock scale each real
        # millisecond of delivery lag on a loaded machine is 50 simulated seconds, so the upper
        # bound allows a quarter of a real second of lag (the attempt count above already
        # catches a retry made after the deadline).
        lag_allowance = 0.25 * 50_000.0
        span = (times[-1] - times[0]).total_seconds()
        assert 24 * 3600 - 60 <= span <= 24 * 3600 + lag_allowance
        seen = len(receiver.bodies)
        await h.invoice(cid)
        await asyncio.sleep(0.2)
        assert len(receiver.bodies) == seen
        repaired = True
        enabled = await h.call(cid, "POST", f"/webhooks/{sub['id']}/enable")
        assert enabled.json()["status"] == "ACTIVE"
        await h.invoice(cid)
        await eventually(lambda: receiver.statuses[-1] == 200 and len(receiver.bodies) > seen + 4)


async def test_change_feed_is_complete_when_deliveries_are_dropped() -> None:
    async with webhook_receiver() as receiver, running_sandbox() as h:
        cid = await h.company()
        await subscribe(h, cid, receiver)
        faults = {"deliveries": {"dropRate": 0.5}}
        await h.client.put(f"/_sandbox/companies/{cid}/faults", json=faults)
        for n in range(30):
            await h.call(cid, "POST", "/contacts", json={"name": f"Tenant {n}"})
            await asyncio.sleep(0.005)

        async def settled() -> int:
            entries = await log(h, cid)
            return sum(len(e["events"]) for e in entries if e["kind"] in ("DELIVERY", "DROPPED"))

        deadline = asyncio.get_running_loop().time() + 5
        while await settled() < 30:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
        feed = (
            await h.call(cid, "GET", "/events", params={"afterSequence": 0, "limit": 1000})
        ).json()
        sequences = [e["sequence"] for e in feed["items"]]
        assert sequences == list(range(1, feed["lastEventSequence"] + 1))
        created = [e["eventId"] for e in feed["items"] if e["eventName"] == "contact.created"]
        got = set(received_ids(receiver))
        assert len(created) == 30
        assert 0 < len(got) < 30
        assert got < set(created)
        page = (await h.call(cid, "GET", "/events", params={"afterSequence": 5, "limit": 3})).json()
        assert [e["sequence"] for e in page["items"]] == [6, 7, 8]
        assert page["items"][0] == feed["items"][5]


async def test_duplicates_bad_signatures_and_delay() -> None:
    async with webhook_receiver() as receiver, running_sandbox() as h:
        cid = await h.company()
        await subscribe(h, cid, receiver)
        faults = f"/_sandbox/companies/{cid}/faults"
        await h.client.put(faults, json={"deliveries": {"duplicateRate": 1.0}})
        await h.invoice(cid)
        await eventually(lambda: len(deliveries(receiver)) == 2)
        assert receiver.bodies[4] == receiver.bodies[5]
        ids = {receiver.headers[i]["x-released-delivery-id"] for i in (4, 5)}
        assert len(ids) == 2
        await h.client.put(
            faults, json={"deliveries": {"duplicateRate": 0, "badSignatureRate": 1.0}}
        )
        await h.invoice(cid)
        await eventually(lambda: len(deliveries(receiver)) == 3)
        assert receiver.statuses[-1] == 401
        await h.client.put(
            faults, json={"deliveries": {"badSignatureRate": 0, "delaySeconds": 600}}
        )
        await h.client.post("/_sandbox/clock", json={"advanceSeconds": 30})
        await eventually(lambda: receiver.statuses[-1] == 200)
        seen = len(deliveries(receiver))
        await h.invoice(cid)
        await asyncio.sleep(0.2)
        assert len(deliveries(receiver)) == seen
        await h.client.post("/_sandbox/clock", json={"advanceSeconds": 600})
        await eventually(lambda: len(deliveries(receiver)) == seen + 1)


async def test_a_receiver_slower_than_the_timeout_counts_as_failed() -> None:
    slow = True

    async def sluggish(request: Request, body: bytes) -> int:
        if json.loads(body)["events"] and slow:
            await asyncio.sleep(1.0)
        return await verifying_answer(request, body)

    async with webhook_receiver(sluggish) as receiver, running_sandbox() as h:
        cid = await h.company()
        await subscribe(h, cid, receiver)
        faults = {"deliveries": {"timeoutSeconds": 0.2}}
        await h.client.put(f"/_sandbox/companies/{cid}/faults", json=faults)
        await h.invoice(cid)

        async def attempts() -> list[dict[str, Any]]:
            return [e for e in await log(h, cid) if e["kind"] == "DELIVERY"]

        deadline = asyncio.get_running_loop().time() + 5
        while not await attempts():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        first = (await attempts())[0]
        assert (first["status"], first["attempt"]) == (None, 1)
        slow = False
        await h.client.post("/_sandbox/clock", json={"advanceSeconds": 30})
        while len(await attempts()) < 2:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        assert (await attempts())[1]["status"] == 200


async def test_concurrent_retries_with_one_idempotency_key_do_the_work_once() -> None:
    async def slow_handshake(request: Request, body: bytes) -> int:
        await asyncio.sleep(0.1)
        return await verifying_answer(request, body)

    async with webhook_receiver(slow_handshake) as receiver, running_sandbox() as h:
        cid = await h.company()
        headers = {"Idempotency-Key": "subscribe-once"}
        body = {"url": receiver.url}
        first, second = await asyncio.gather(
            h.call(cid, "POST", "/webhooks", json=body, headers=headers),
            h.call(cid, "POST", "/webhooks", json=body, headers=headers),
        )
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        listed = (await h.call(cid, "GET", "/webhooks")).json()["items"]
        assert len(listed) == 1
        assert len(receiver.bodies) == 4
