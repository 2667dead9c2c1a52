"""Publishes committed inbox events right after the webhook is answered.

The inbox commit is what makes an event durable; publishing is the outbox step. Doing it here,
just behind the response, keeps QBO's 3-second budget and our latency independent of the broker's
confirm time. Anything this dispatcher cannot publish (broker down, backlog full, process killed)
stays ``pending`` in the inbox and the relay publishes it later, so nothing depends on memory.

A confirm that is late is not a failure: the publish goes on in the background and its id stays
"in flight", which the relay skips, so a slow broker does not turn into a second copy of every
event. An event the broker can never take (``UnpublishableError``) is quarantined in the inbox
with its reason instead of being retried forever. The backlog is capped by count and by size.

Bursts and streams are told apart by the backlog's age (``lag``): a burst is taken at full
speed and published behind it with a small window, so the requests keep the event loop (once
deliveries stop, the backlog gets the whole window); a backlog older than ``max_lag_s`` is a
stream, and then publishing gets the whole window and new deliveries are held briefly (``pace``)
so the broker, not the request path, sets the pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.adapters.batch_publish import publish_many
from shared.adapters.broker import EventPublisher, UnpublishableError
from shared.domain.events import ChangeEvent
from shared.infra.logging import get_logger
from shared.ingest.marker import PublishedMarker

log = get_logger(__name__)


class Publisher(Protocol):
    async def publish(self, event: ChangeEvent) -> None: ...


class BrokerGate(Protocol):
    """Tells whether publishing is worth trying right now (the broker link is up)."""

    def available(self) -> bool: ...


def approx_bytes(event: ChangeEvent) -> int:
    """What an event costs in the backlog, roughly: its variable text plus a fixed overhead."""
    texts = (event.event_id, event.account_id, event.entity_id, event.version, event.resource_url)
    return 400 + sum(len(t) for t in texts if t)


@dataclass
class Dispatcher:
    publisher: Publisher
    gate: BrokerGate
    marker: PublishedMarker
    max_backlog: int = 50_000
    max_backlog_bytes: int = 64 * 1024 * 1024
    batch_size: int = 256
    # Publishes awaiting their confirm at once. A window, not batch after batch: the next
    # batch goes out while the last one's confirms come back, so the broker's round trip is
    # not paid once per batch, and publishing keeps its share of a loop busy with requests.
    window: int = 2048
    # The window while deliveries arrive and publishing keeps up (a burst): each publish in
    # flight takes a turn of the event loop's time, so a smaller window leaves more of it to
    # the requests the burst is made of; once publishing is ``behind``, or no delivery came
    # for ``quiet_s``, it gets the whole window.
    burst_window: int = 64
    quiet_s: float = 0.1
    publish_timeout_s: float = 5.0
    # How long a late confirm is still waited for. A publish caught by a dropped connection can
    # wait on a confirm that never comes; past this the publish is given up and the event left
    # to the relay (at least once: a confirm that was only slow costs a duplicate, which dedupe
    # absorbs), so no event is held back from the relay for good.
    late_confirm_max_s: float = 20.0
    # A backlog older than this is a sustained stream, not a burst: new deliveries then wait
    # (at most ``pace_wait_s``, well inside QBO's 3 s) so publishing gets the process's time.
    max_lag_s: float = 10.0
    pace_wait_s: float = 1.0
    _last_submit: float = field(default=0.0, init=False)
    _stamps: deque[list[float]] = field(default_factory=deque, init=False)
    _caught_up: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _overflow_since: float | None = field(default=None, init=False)
    _queue: asyncio.Queue[ChangeEvent] = field(default_factory=asyncio.Queue, init=False)
    _queued_bytes: int = field(default=0, init=False)
    _open: int = field(default=0, init=False)  # events in the window
    _room: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _batches: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    # Publishes whose confirm was late: still running, so the relay must not resend them.
    in_flight: set[str] = field(default_factory=set, init=False)
    # Ids of the batches being published now (the relay may run beside them).
    _publishing: set[str] = field(default_factory=set, init=False)
    _late: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    dropped: int = field(default=0, init=False)

    def submit(self, events: list[ChangeEvent]) -> None:
        queued = 0
        for event in events:
            size = approx_bytes(event)
            if (
                self._queue.qsize() >= self.max_backlog
                or self._queued_bytes + size > self.max_backlog_bytes
            ):
                self.dropped += 1  # still pending in the inbox: the relay takes it
                self._overflow_since = self._overflow_since or time.monotonic()
                continue
            self._queued_bytes += size
            self._queue.put_nowait(event)
            queued += 1
        self._last_submit = time.monotonic()
        if queued:
            self._stamps.append([self._last_submit, queued])

    def _taken(self, count: int) -> None:
        while count and self._stamps:
            oldest = self._stamps[0]
            used = min(count, int(oldest[1]))
            oldest[1] -= used
            count -= used
            if not oldest[1]:
                self._stamps.popleft()

    def lag(self) -> float:
        """Seconds the oldest event of the backlog has waited: the oldest still queued here,
        or, once the queue overflowed, the first one left to the relay, until the relay has
        caught up (``overflow_cleared``)."""
        now = time.monotonic()
        queued = now - self._stamps[0][0] if self._stamps else 0.0
        return max(queued, now - self._overflow_since) if self._overflow_since else queued

    def overflow_cleared(self) -> None:
        """The relay found nothing old left to publish: what overflowed is out."""
        self._overflow_since = None
        self._check_caught_up()

    def behind(self) -> bool:
        """Publishing trails a stream, not a burst: the backlog is older than ``max_lag_s``."""
        return self.lag() > self.max_lag_s

    async def pace(self) -> None:
        """Hold a delivery while publishing is ``behind``, for at most ``pace_wait_s``. A burst
        is taken at full speed and published behind it; a stream that outlasts the lag is
        slowed towards what the broker confirms, instead of starving the publishing of this
        process's time."""
        if not self.behind():
            return
        self._caught_up.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._caught_up.wait(), self.pace_wait_s)

    def idle(self) -> bool:
        return self._queue.empty() and not self._batches

    def relay_may_run(self) -> bool:
        """Nothing is queued here, so every pending row older than the relay's grace that is
        not ``unsettled`` is the relay's to publish: what overflowed the queue, or failed.
        Batches may still be out: the relay skips their ids, so a stream's overflow is
        published while the stream goes on, not only once it stops."""
        return self._queue.empty()

    def unsettled(self) -> set[str]:
        """Ids the relay must not resend: the batches being published, publishes waiting on
        a late confirm, and confirmed ids the marker has not written yet (all still read
        "pending" in the inbox)."""
        return self._publishing | self.in_flight | self.marker.holding()

    async def drain(self, timeout_s: float) -> None:
        """On shutdown, give queued events a moment to publish (the relay has the rest)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def run(self) -> None:
        try:
            while True:
                batch = [await self._queue.get()]
                # In a burst, no batch larger than the small window (it would take more).
                size = min(self.batch_size, self._window())
                while len(batch) < size and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                # Out of the queue, so held from the relay from now on, even while the
                # batch waits below for room in the window.
                self._publishing.update(e.event_id for e in batch)
                self._queued_bytes -= sum(approx_bytes(e) for e in batch)
                self._taken(len(batch))
                self._check_caught_up()
                while self._open and self._open + len(batch) > self._window():
                    self._room.clear()
                    await self._room.wait()
                self._open += len(batch)
                task = asyncio.create_task(self._batch(batch))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)
        finally:
            for task in list(self._batches):
                task.cancel()

    def _check_caught_up(self) -> None:
        # Held deliveries go on once the lag is half the limit, not just under it: released
        # at the limit, they would be held again by the backlog they add at once.
        if self.lag() <= self.max_lag_s / 2:
            self._caught_up.set()

    def _window(self) -> int:
        if self.behind() or time.monotonic() - self._last_submit > self.quiet_s:
            return self.window
        return min(self.burst_window, self.window)

    async def _batch(self, batch: list[ChangeEvent]) -> None:
        try:
            if self.gate.available():
                confirmed = await self._publish(batch)
                self.marker.add([e.event_id for e, ok in zip(batch, confirmed, strict=True) if ok])
        finally:
            # Each id is now confirmed (the marker holds it), late (``in_flight``) or left
            # pending for the relay: none is unaccounted for in between.
            self._publishing.difference_update(e.event_id for e in batch)
            self._open -= len(batch)
            self._room.set()
            self._check_caught_up()
            for _ in batch:
                self._queue.task_done()

    async def _publish(self, events: list[ChangeEvent]) -> list[bool]:
        """Publish ``events`` at once; True for each one confirmed within the timeout. A late
        one keeps going in the background; a failed one stays pending for the relay."""
        tasks = await self._started(events)
        try:
            if tasks:
                await asyncio.wait(tasks, timeout=self.publish_timeout_s)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            raise
        confirmed: list[bool] = []
        for event, task in zip(events, tasks, strict=True):
            if task.done():
                confirmed.append(self._settled(event, task))
            else:
                self._follow_late(event, task)
                confirmed.append(False)
        return confirmed

    async def _started(self, events: list[ChangeEvent]) -> list[asyncio.Future[Any]]:
        """Every publish under way: on our broker publisher, the whole batch handed to the
        channel at once (``publish_many``), else one task per event."""
        if isinstance(self.publisher, EventPublisher):
            return await publish_many(self.publisher, events)
        return [asyncio.ensure_future(self.publisher.publish(e)) for e in events]

    def _settled(self, event: ChangeEvent, task: asyncio.Future[Any]) -> bool:
        if task.cancelled():  # a confirm given up on (a channel closing): left to the relay
            return False
        exc = task.exception()
        if exc is None:
            return True
        if isinstance(exc, UnpublishableError):
            log.warning("event_quarantined", event_id=event.event_id[:80], reason=str(exc)[:200])
            self.marker.quarantine(event.event_id, str(exc))
        return False  # otherwise it stays pending for the relay

    def _follow_late(self, event: ChangeEvent, task: asyncio.Future[Any]) -> None:
        """Keep waiting for a late confirm in the background; mark the event when it comes."""
        self.in_flight.add(event.event_id)

        async def follow() -> None:
            try:
                done, _ = await asyncio.wait({task}, timeout=self.late_confirm_max_s)
                if not done:
                    task.cancel()
                    return
                if not task.cancelled() and self._settled(event, task):
                    self.marker.add([event.event_id])
            finally:
                self.in_flight.discard(event.event_id)

        follower = asyncio.create_task(follow())
        self._late.add(follower)
        follower.add_done_callback(self._late.discard)

    async def publish_now(self, events: list[ChangeEvent]) -> list[str]:
        """Publish and wait for confirms (used when PostgreSQL is down and the broker must hold
        the events before we answer)."""
        if not self.gate.available():
            return []
        confirmed = await self._publish(events)
        return [e.event_id for e, ok in zip(events, confirmed, strict=True) if ok]


async def cancel_quietly(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
