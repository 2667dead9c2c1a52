"""Issue 17, findings 1, 2 and 8: every event that leaves the parsers can be stored and
published, because its text is bounded in the wire's units (UTF-8 bytes) and holds nothing
PostgreSQL refuses; and the dispatcher's backlog is bounded by size and not fooled by late
confirms."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.broker import UnpublishableError
from shared.domain.events import TEXT_LIMITS, ChangeEvent
from shared.domain.qbo_notifications import parse_qbo_payload
from shared.domain.released_notifications import parse_released_payload
from shared.ingest.dispatch import Dispatcher
from shared.ingest.marker import PublishedMarker


def fields(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e-1",
        "source": "released",
        "account_id": "co-1",
        "entity": "invoice",
        "entity_id": "inv-1",
        "operation": "update",
        "occurred_at": datetime(2026, 11, 1, tzinfo=UTC),
        "received_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    base.update(changes)
    return base


def released(**item: object) -> bytes:
    event: dict[str, object] = {
        "eventId": "ev-1",
        "eventCategory": "INVOICE",
        "eventType": "UPDATE",
        "eventName": "invoice.updated",
        "resourceId": "inv-1",
        "companyId": "co-1",
        "resourceVersion": 2,
        "eventDateUtc": "2026-11-26T11:00:00Z",
    }
    event.update(item)
    return json.dumps({"events": [event]}).encode()


def test_finding1_an_id_of_150_e_acute_is_300_bytes_and_refused() -> None:
    event_id = "é" * 150  # 150 characters, 300 bytes: over AMQP's 255-byte message id
    with pytest.raises(ValueError, match="300 bytes"):
        ChangeEvent.checked(**fields(event_id=event_id))
    with pytest.raises(ValueError, match="300 bytes"):
        ChangeEvent.model_validate(fields(event_id=event_id))
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": event_id,
                "type": "qbo.invoice.updated.v1",
                "intuitentityid": "1",
                "intuitaccountid": "9130",
            }
        ]
    ).encode()
    parsed = parse_qbo_payload(body)
    assert parsed.events == []
    assert "300 bytes" in parsed.skipped[0]


def test_finding1_a_category_of_64_e_acute_is_skipped_on_its_own() -> None:
    parsed = parse_released_payload(released(eventCategory="é" * 64))
    assert parsed.events == []
    assert "128 bytes" in parsed.skipped[0]
    assert len(parse_released_payload(released(eventCategory="e" * 64)).events) == 1


@pytest.mark.parametrize("bad", ["\ud800", "a\u0000b"])
@pytest.mark.parametrize(
    "field", ["eventId", "resourceId", "companyId", "resourceUrl", "resourceVersion"]
)
def test_finding2_nul_and_lone_surrogates_never_leave_the_parser(bad: str, field: str) -> None:
    parsed = parse_released_payload(released(**{field: bad}))
    assert parsed.events == []
    assert parsed.skipped
    assert "NUL" in parsed.skipped[0] or "UTF-8" in parsed.skipped[0]


@pytest.mark.parametrize(
    ("name", "limit"), [("version", 200), ("resource_url", 2048), ("related_id", 200)]
)
def test_finding8_hints_have_a_byte_cap(name: str, limit: int) -> None:
    assert TEXT_LIMITS[name] == limit
    ChangeEvent.checked(**fields(**{name: "x" * limit}))
    with pytest.raises(ValueError, match=name):
        ChangeEvent.checked(**fields(**{name: "x" * (limit + 1)}))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "eventId",
                "eventCategory",
                "eventName",
                "resourceId",
                "companyId",
                "resourceUrl",
                "resourceVersion",
            ]
        ),
        st.text(max_size=300),
    )
)
def test_whatever_the_parser_accepts_fits_the_wires(item: dict[str, str]) -> None:
    for event in parse_released_payload(released(**item)).events:
        assert len(event.event_id.encode()) <= 255
        assert len(event.routing_key.encode()) <= 255
        text = event.model_dump_json()
        assert "\\u0000" not in text
        assert ChangeEvent.from_bytes(event.to_bytes()) == event


class FakeMarker(PublishedMarker):
    def __init__(self) -> None:
        self.marked: list[str] = []
        self.quarantined: dict[str, str] = {}

    def add(self, event_ids: Any) -> None:
        self.marked.extend(event_ids)

    def quarantine(self, event_id: str, reason: str) -> None:
        self.quarantined[event_id] = reason


class Up:
    def available(self) -> bool:
        return True


class SlowPublisher:
    def __init__(self, delay: float, refuse: str = "") -> None:
        self.delay, self.refuse, self.calls = delay, refuse, 0

    async def publish(self, event: ChangeEvent) -> None:
        self.calls += 1
        await asyncio.sleep(self.delay)
        if event.event_id == self.refuse:
            raise UnpublishableError("message id too long")


async def test_finding8_a_late_confirm_stays_in_flight_and_is_marked_when_it_comes() -> None:
    marker = FakeMarker()
    dispatcher = Dispatcher(SlowPublisher(0.3), Up(), marker, publish_timeout_s=0.05)
    event = ChangeEvent.checked(**fields())
    assert await dispatcher.publish_now([event]) == []  # not confirmed within the timeout...
    assert dispatcher.in_flight == {"e-1"}  # ...but still going: the relay must skip it
    await asyncio.sleep(0.5)
    assert marker.marked == ["e-1"]
    assert dispatcher.in_flight == set()


async def test_a_confirm_that_never_comes_hands_the_event_back_to_the_relay() -> None:
    """A publish caught by a dropped connection may wait on a confirm forever; past the late
    window it is given up, so the relay resends the event instead of skipping it for good."""
    marker = FakeMarker()
    dispatcher = Dispatcher(
        SlowPublisher(3600), Up(), marker, publish_timeout_s=0.05, late_confirm_max_s=0.2
    )
    assert await dispatcher.publish_now([ChangeEvent.checked(**fields())]) == []
    assert dispatcher.in_flight == {"e-1"}
    await asyncio.sleep(0.5)
    assert dispatcher.in_flight == set()
    assert marker.marked == []  # still pending in the inbox: the relay's to send


async def test_finding1_an_unpublishable_event_is_quarantined_not_retried() -> None:
    marker = FakeMarker()
    dispatcher = Dispatcher(SlowPublisher(0, refuse="e-1"), Up(), marker)
    assert await dispatcher.publish_now([ChangeEvent.checked(**fields())]) == []
    assert marker.quarantined == {"e-1": "message id too long"}


def test_finding8_the_backlog_is_capped_by_size() -> None:
    dispatcher = Dispatcher(SlowPublisher(0), Up(), FakeMarker(), max_backlog_bytes=100_000)
    url = "u" * 2000
    dispatcher.submit(
        [ChangeEvent.checked(**fields(event_id=f"e-{n}", resource_url=url)) for n in range(100)]
    )
    assert 0 < dispatcher.dropped < 100
    assert dispatcher.idle() is False


class CountingPublisher:
    """Confirms after ``delay``; records how many publishes awaited a confirm at once."""

    def __init__(self, delay: float) -> None:
        self.delay, self.open, self.most = delay, 0, 0

    async def publish(self, event: ChangeEvent) -> None:
        self.open += 1
        self.most = max(self.most, self.open)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.open -= 1


async def test_the_next_batch_goes_out_while_the_last_ones_confirms_are_awaited() -> None:
    """Issue 18: batch after batch paid a broker round trip per batch; a window keeps several
    batches in flight, and no more than the window."""
    marker = FakeMarker()
    publisher = CountingPublisher(0.05)
    dispatcher = Dispatcher(publisher, Up(), marker, batch_size=10, window=40)
    runner = asyncio.create_task(dispatcher.run())
    dispatcher.submit([ChangeEvent.checked(**fields(event_id=f"e-{n}")) for n in range(200)])
    await dispatcher.drain(timeout_s=5)
    await asyncio.sleep(0)
    runner.cancel()
    assert sorted(marker.marked) == sorted(f"e-{n}" for n in range(200))
    assert 10 < publisher.most <= 40
    assert dispatcher.idle()


class BlockingPool:
    """A pool whose connection blocks until released: a flush caught in the middle."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()

    def acquire(self) -> Any:
        pool = self

        class Conn:
            async def __aenter__(self) -> Any:
                pool.entered.set()
                await pool.release.wait()
                raise OSError("database away")

            async def __aexit__(self, *exc: object) -> None:
                return None

        return Conn()


async def test_confirmed_ids_not_yet_marked_are_held_from_the_relay() -> None:
    """Issue 18: ids the broker confirmed read "pending" in the inbox until the marker writes
    them; a relay pass in between resent them (228 duplicates in a 4 s stream)."""
    pool = BlockingPool()
    marker = PublishedMarker(pool)  # type: ignore[arg-type]
    marker.add(["e-1", "e-2"])
    assert marker.holding() == {"e-1", "e-2"}
    flushing = asyncio.create_task(marker.flush())
    await pool.entered.wait()
    marker.add(["e-3"])
    assert marker.holding() == {"e-1", "e-2", "e-3"}  # mid-flush: still held
    dispatcher = Dispatcher(SlowPublisher(0), Up(), marker)
    dispatcher.in_flight.add("e-9")
    assert dispatcher.unsettled() == {"e-1", "e-2", "e-3", "e-9"}  # what the relay skips
    pool.release.set()
    await flushing
    assert marker.holding() == {"e-3"}


async def test_a_stream_older_than_the_lag_is_held_until_publishing_catches_up() -> None:
    """Issue 18: under a sustained stream the requests took the whole process and publishing
    fell to a trickle (396 events/s against 5,675 bare); past the lag new deliveries wait."""
    dispatcher = Dispatcher(CountingPublisher(0), Up(), FakeMarker(), max_lag_s=0.01)
    dispatcher.submit([ChangeEvent.checked(**fields(event_id=f"e-{n}")) for n in range(50)])
    await dispatcher.pace()  # a fresh backlog is a burst: no wait
    await asyncio.sleep(0.05)
    held = asyncio.create_task(dispatcher.pace())
    await asyncio.sleep(0.05)
    assert not held.done()  # the backlog is older than the lag: held
    runner = asyncio.create_task(dispatcher.run())
    await asyncio.wait_for(held, 1)  # released once the queue is taken
    assert dispatcher.lag() == 0.0
    runner.cancel()


async def test_the_hold_is_bounded_when_publishing_cannot_catch_up() -> None:
    dispatcher = Dispatcher(
        CountingPublisher(0), Up(), FakeMarker(), max_lag_s=0.01, pace_wait_s=0.05
    )
    dispatcher.submit([ChangeEvent.checked(**fields())])
    await asyncio.sleep(0.05)
    await asyncio.wait_for(dispatcher.pace(), 1)  # nobody publishes, yet it returns
    assert dispatcher.lag() > 0.01


async def test_an_overflow_to_the_relay_counts_as_lag_until_the_relay_catches_up() -> None:
    """What did not fit the queue waits in the inbox; a stream that keeps the queue full of
    young events would otherwise never look old enough to be paced."""
    dispatcher = Dispatcher(CountingPublisher(0), Up(), FakeMarker(), max_backlog=10)
    dispatcher.submit([ChangeEvent.checked(**fields(event_id=f"e-{n}")) for n in range(20)])
    assert dispatcher.dropped == 10
    await asyncio.sleep(0.05)
    for _ in range(10):  # the run loop's part, by hand: the old events are taken...
        dispatcher._queue.get_nowait()
        dispatcher._queue.task_done()
    dispatcher._taken(10)
    dispatcher.submit([ChangeEvent.checked(**fields(event_id=f"f-{n}")) for n in range(5)])
    assert dispatcher.lag() >= 0.05  # ...and young ones queued: the overflow is still old
    runner = asyncio.create_task(dispatcher.run())
    await dispatcher.drain(timeout_s=1)
    assert dispatcher.lag() >= 0.05  # the queue is out, the overflow is still in the inbox
    dispatcher.overflow_cleared()  # the relay found nothing old left
    assert dispatcher.lag() == 0.0
    runner.cancel()


async def test_a_burst_batch_is_no_larger_than_the_burst_window() -> None:
    publisher = CountingPublisher(0.05)
    dispatcher = Dispatcher(publisher, Up(), FakeMarker(), burst_window=4, quiet_s=5)
    runner = asyncio.create_task(dispatcher.run())
    dispatcher.submit([ChangeEvent.checked(**fields(event_id=f"e-{n}")) for n in range(20)])
    await dispatcher.drain(timeout_s=2)
    await asyncio.sleep(0)
    runner.cancel()
    assert publisher.most == 4  # never the whole queue in one batch


def test_the_backlog_gets_the_whole_window_once_deliveries_stop() -> None:
    dispatcher = Dispatcher(
        CountingPublisher(0), Up(), FakeMarker(), burst_window=4, window=100, quiet_s=0.05
    )
    dispatcher.submit([ChangeEvent.checked(**fields())])
    assert dispatcher._window() == 4  # deliveries arriving: the requests come first
    dispatcher._last_submit -= 0.1
    assert dispatcher._window() == 100


async def test_every_id_out_of_the_queue_is_held_from_the_relay_until_it_settles() -> None:
    """Issue 18: the relay now runs once nothing is queued, beside batches still out. A batch
    taken from the queue that waits for room in the window is in neither place; its ids
    must be skipped by the relay all the same, or a backlog older than the relay's grace is
    published twice."""
    release = asyncio.Event()

    class Held:
        async def publish(self, event: ChangeEvent) -> None:
            await release.wait()

    marker = PublishedMarker(None)  # type: ignore[arg-type]  # never flushed here
    dispatcher = Dispatcher(Held(), Up(), marker, batch_size=2, window=2, burst_window=2)
    runner = asyncio.create_task(dispatcher.run())
    ids = {f"e-{n}" for n in range(4)}
    dispatcher.submit([ChangeEvent.checked(**fields(event_id=i)) for i in sorted(ids)])
    for _ in range(20):
        await asyncio.sleep(0)
    assert dispatcher.relay_may_run()  # nothing queued: one batch out, one waiting for room
    assert dispatcher.unsettled() == ids
    release.set()
    await dispatcher.drain(timeout_s=5)
    await asyncio.sleep(0)
    runner.cancel()
    assert dispatcher.unsettled() == ids  # confirmed: now the marker holds them until written
    assert marker.holding() == ids
