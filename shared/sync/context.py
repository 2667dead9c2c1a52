"""What one change carries while it is applied: the event, its connection and settings, the two
APIs, the change's store, and the keys that make every write idempotent."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.domain.connections import Connection, ConnectionSettings
from shared.domain.errors import RecordHeld, TransientError
from shared.domain.events import ChangeEvent
from shared.domain.ownership import OwnershipPolicy
from shared.sync.listings import ListingCache
from shared.sync.ports import ConflictStore, LinkStore, QboApi, ReleasedApi, SyncStore

# The first part of the lock key that marks a record held by a bulk writer (``SyncContext.hold``).
HELD = "held"


@dataclass(frozen=True)
class Result:
    """How one change ended; stored in sync_outcomes and logged."""

    outcome: str  # applied | echo | ignored | reverted | flagged
    reason: str = ""
    target_id: str | None = None


Handler = Callable[["SyncContext"], Awaitable[Result]]
# (source, entity word as in events) -> the handler a dependency of that kind runs.
Resolver = Callable[[str, str], Handler]


@dataclass
class SyncContext:
    event: ChangeEvent
    connection: Connection
    store: SyncStore
    qbo: QboApi
    released: ReleasedApi
    policy: OwnershipPolicy
    settings: ConnectionSettings
    # The engine's handler for a dependency (a contact, an account, a document) that must be
    # applied before this change can be (guarantee 7); see ``shared.sync.dependencies``.
    resolve: Resolver
    # Bumped when a write lost an optimistic-concurrency race: the redo is a new request, not a
    # replay of the refused one (QBO and Re-Leased would answer a replay with the same refusal).
    stale_round: int = 0
    # The consumer process's Re-Leased master-data listings (``shared.sync.listings``); a
    # context of its own (an import's) lists afresh.
    listings: ListingCache = field(default_factory=ListingCache)

    @property
    def links(self) -> LinkStore:
        return self.store.links

    @property
    def conflicts(self) -> ConflictStore:
        return self.store.conflicts

    def request_id(self, purpose: str) -> str:
        """Idempotency key for one write caused by this event (same on every retry of it)."""
        origin = self.event.replay_of or self.event.event_id
        material = f"{origin}:{purpose}:{self.stale_round}".encode()
        return hashlib.sha256(material).hexdigest()[:40]

    def create_key(self, purpose: str, body: Any) -> str:
        """Idempotency key for creating the other side's twin of this event's record.

        The same for every event about that record with the same content, so a create whose
        transaction failed after the write is answered with what was made the first time (no
        duplicate), whichever event retries it; a changed body (say, the record was fixed after
        a refusal) is a new request, not a replay of the refusal."""
        event = self.event
        content = json.dumps(body, sort_keys=True, default=str)
        material = (
            f"{self.connection.id}:{event.source}:{event.entity}:{event.entity_id}:"
            f"{purpose}:{self.stale_round}:{content}"
        ).encode()
        return hashlib.sha256(material).hexdigest()[:40]

    async def created(self, side: str, entity: str, record_id: str, source_id: str) -> None:
        """Remember, whatever becomes of this transaction, that this handler created
        ``record_id`` on ``side`` from ``source_id``. Call right after the create returns."""
        await self.store.twins.record(self.connection.id, side, entity, record_id, source_id)

    async def made_by_us(self, side: str, entity: str, record_id: str) -> str | None:
        """What the engine made ``record_id`` (on ``side``) from, if it made it."""
        return await self.store.twins.source_of(self.connection.id, side, entity, record_id)

    async def twin_made_from(self, side: str, entity: str, source_id: str) -> str | None:
        """A twin the engine already created on ``side`` from ``source_id`` (an earlier attempt
        whose transaction failed, or a redo after a lost optimistic-concurrency race)."""
        return await self.store.twins.twin_of(self.connection.id, side, entity, source_id)

    def _lock_key(self, parts: tuple[str, ...]) -> str:
        return ":".join((str(self.connection.id), *parts))

    async def lock(self, *parts: str) -> None:
        """Serialise work on one record (or natural key) across every replica, until commit."""
        await self.store.locks.lock(self._lock_key(parts))

    async def hold(self, *parts: str) -> None:
        """``lock``, for a bulk writer (an import's batch) that may keep the record for seconds
        (a read-back waiting for the bulk budget): it also marks the record held, so an event
        for it is handed back (``lock_unless_held``) instead of waiting in a consumer slot."""
        await self.lock(HELD, *parts)
        await self.lock(*parts)

    async def lock_unless_held(self, *parts: str) -> None:
        """``lock``, or ``RecordHeld`` at once while a bulk writer holds the record (``hold``).
        Events share the mark among themselves, so they still only wait for one another."""
        if not await self.store.locks.try_lock_shared(self._lock_key((HELD, *parts))):
            raise RecordHeld(f"{':'.join(parts)} is held by an import batch")
        await self.lock(*parts)

    async def try_lock(self, *parts: str) -> bool:
        """``lock`` without waiting: False when another transaction holds it."""
        return await self.store.locks.try_lock(self._lock_key(parts))

    async def lock_or_retry(self, busy: str, *parts: str) -> None:
        """``lock`` without waiting, or ``TransientError(busy)``: the holder is most likely the
        handler that made the record, between its write and its commit, and it may be waiting
        for a lock this handler holds; waiting here could deadlock, so the event comes back
        later instead."""
        if not await self.try_lock(*parts):
            raise TransientError(busy)
