"""Marks published what the broker confirmed, in batches, and quarantines what it never can.

Confirmed ids are written to the inbox every ``interval_s`` (or at 500); until then they still
read ``pending`` there, so the relay asks ``holding`` before it takes a row for unpublished.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import asyncpg

from shared.adapters.postgres.inbox import InboxRepository
from shared.infra.logging import get_logger

log = get_logger(__name__)

_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class PublishedMarker:
    """Collects confirmed event ids and marks them published in batches; quarantines events
    the broker can never take."""

    def __init__(self, pool: asyncpg.Pool, *, interval_s: float = 0.2) -> None:
        self._pool = pool
        self._interval = interval_s
        self._ids: list[str] = []
        self._flushing: set[str] = set()
        self._quarantine: dict[str, str] = {}
        self._wake = asyncio.Event()

    def holding(self) -> set[str]:
        """Ids confirmed by the broker but not yet marked published in the inbox: still
        ``pending`` there, so the relay must not take them for unpublished."""
        return self._flushing.union(self._ids)

    def add(self, event_ids: Sequence[str]) -> None:
        self._ids.extend(event_ids)
        if len(self._ids) >= 500:
            self._wake.set()

    def quarantine(self, event_id: str, reason: str) -> None:
        self._quarantine[event_id] = reason
        self._wake.set()

    async def flush(self) -> None:
        batch, self._ids = self._ids, []
        doomed, self._quarantine = self._quarantine, {}
        if not batch and not doomed:
            return
        self._flushing = set(batch)
        try:
            async with self._pool.acquire() as conn:
                repo = InboxRepository(conn)
                if batch:
                    await repo.mark_published(batch)
                for event_id, reason in doomed.items():
                    await repo.quarantine(event_id, reason)
        except _DB_ERRORS:
            # Left pending: the relay republishes them and consumers absorb the duplicates.
            log.warning("inbox_mark_failed", count=len(batch) + len(doomed))
        finally:
            self._flushing = set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()
