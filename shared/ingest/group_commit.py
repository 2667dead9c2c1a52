"""Group commit for the inbox: many concurrent deliveries, one INSERT and one COMMIT.

Each delivery hands over its entries and waits; a group commit takes everything waiting at that
moment (up to ``max_rows``), inserts it in one statement and one transaction, and wakes every
waiter with the ids that were new for it. Under load this turns N fsyncs into one without adding
a timer: an idle system commits a lone delivery immediately, and what arrives meanwhile goes in
the next group. Up to ``writers`` groups commit side by side, the second and later only once
enough rows wait to be worth a statement of their own (``spread_rows``).

A batch is only as good as its worst row, so a failure that is not the database being away
(a value PostgreSQL refuses, an event that cannot be serialised) never sinks the batch: the
writer stores each delivery of it on its own, and splits a failing delivery in halves until
the bad event stands alone; an event that cannot be stored even alone is reported back as
rejected, with the reason, and every other event is stored. Unavailability (connection lost,
statement or lock timeout) still fails every waiter of the batch, who answers 503 or falls back
to the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field

import asyncpg

from shared.adapters.postgres.inbox import InboxEntry, InboxRepository
from shared.infra.logging import get_logger

log = get_logger(__name__)

# The database is away or stuck: retrying row by row would only make it worse.
UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # cancelled (statement timeout), shutting down
    asyncpg.LockNotAvailableError,
    asyncpg.InsufficientResourcesError,
)


@dataclass
class Stored:
    """What became of one delivery's entries: ids new to the inbox, and refused ids with why."""

    new: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)


def _fail(future: asyncio.Future[Stored], exc: BaseException) -> None:
    """Hand ``exc`` to a waiter; if its request was abandoned (client gone), nobody will read
    it, so mark it read rather than have asyncio report it as never retrieved."""
    if future.done():
        return
    future.set_exception(exc)
    future.exception()


@dataclass
class _Request:
    entries: list[InboxEntry]
    done: asyncio.Future[Stored]


async def _insert(pool: asyncpg.Pool, entries: list[InboxEntry]) -> set[str]:
    async with pool.acquire() as conn:
        return await InboxRepository(conn).store(entries)


async def store_isolated(pool: asyncpg.Pool, entries: list[InboxEntry]) -> Stored:
    """Store ``entries`` together if possible, else halves of them, down to single events (a
    handful of statements for one bad event among thousands); only unavailability raises."""
    try:
        return Stored(await _insert(pool, entries))
    except UNAVAILABLE:
        raise
    except Exception as exc:  # a bad value in the group: find it below
        if len(entries) > 1:
            middle = len(entries) // 2
            first = await store_isolated(pool, entries[:middle])
            second = await store_isolated(pool, entries[middle:])
            return Stored(first.new | second.new, {**first.rejected, **second.rejected})
        reason = f"{type(exc).__name__}: {exc}"[:200]
        event_id = entries[0].event.event_id
        log.warning("inbox_event_rejected", event_id=event_id[:80], reason=reason)
        return Stored(rejected={event_id: reason})


@dataclass
class InboxWriter:
    pool: asyncpg.Pool
    # Group commits running at once, at most.
    writers: int = 2
    max_rows: int = 2000
    # Another group commit starts beside those running only once this many rows wait; fewer
    # wait for a running one to end and go together in the next group. Single-event posts
    # then share one statement and one commit (16 deliveries in flight made groups of about
    # four when every free writer took what was there), while 100-event posts still commit
    # side by side.
    spread_rows: int = 100
    _waiting: deque[_Request] = field(default_factory=deque, init=False)
    _rows_waiting: int = field(default=0, init=False)
    _running: int = field(default=0, init=False)
    _changed: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _coordinator: asyncio.Task[None] | None = field(default=None, init=False)

    def start(self) -> None:
        self._coordinator = asyncio.create_task(self._run())

    async def stop(self) -> None:
        tasks = [t for t in (self._coordinator, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._coordinator = None
        while self._waiting:
            _fail(self._waiting.popleft().done, ConnectionError("inbox writer stopped"))

    async def store(self, entries: list[InboxEntry]) -> Stored:
        """Which of ``entries`` were new to the inbox (committed), and which were refused."""
        if self._coordinator is None:
            return await store_isolated(self.pool, entries)
        future: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Request(entries, future))
        self._rows_waiting += len(entries)
        self._changed.set()
        return await future

    def _may_start(self) -> bool:
        if not self._waiting or self._running >= self.writers:
            return False
        return not self._running or self._rows_waiting >= self.spread_rows

    def _take(self) -> list[_Request]:
        batch: list[_Request] = []
        rows = 0
        while self._waiting and (not batch or rows < self.max_rows):
            request = self._waiting.popleft()
            batch.append(request)
            rows += len(request.entries)
        self._rows_waiting -= rows
        return batch

    async def _run(self) -> None:
        while True:
            while not self._may_start():
                self._changed.clear()
                await self._changed.wait()
            self._running += 1
            task = asyncio.create_task(self._commit(self._take()))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _commit(self, batch: list[_Request]) -> None:
        try:
            await self._insert_group(batch)
        except asyncio.CancelledError:  # stopped mid-commit: its deliveries must not wait on
            for request in batch:
                _fail(request.done, ConnectionError("inbox writer stopped"))
            raise
        finally:
            self._running -= 1
            self._changed.set()

    async def _insert_group(self, batch: list[_Request]) -> None:
        try:
            new_ids = await _insert(self.pool, [e for r in batch for e in r.entries])
        except UNAVAILABLE as exc:  # every waiter sees it and answers accordingly
            for request in batch:
                _fail(request.done, exc)
            return
        except Exception:  # one bad row: each delivery on its own
            await self._one_by_one(batch)
            return
        unclaimed = new_ids
        for request in batch:
            # An id sent twice in one group is new for its first sender only. Linear in the
            # rows: the group's new ids are not copied once per delivery.
            mine = {e.event.event_id for e in request.entries}
            mine &= unclaimed
            unclaimed -= mine
            if not request.done.done():
                request.done.set_result(Stored(mine))

    async def _one_by_one(self, batch: list[_Request]) -> None:
        for request in batch:
            try:
                result = await store_isolated(self.pool, request.entries)
            except UNAVAILABLE as exc:
                _fail(request.done, exc)
                continue
            if not request.done.done():
                request.done.set_result(result)
