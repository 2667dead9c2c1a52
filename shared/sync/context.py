"""What one change needs while it is applied: the event, its connection, clients, locks, results."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from shared.adapters.postgres.links import ConflictRepository, LinkRepository
from shared.adapters.postgres.twins import TwinLedger
from shared.adapters.qbo.client import QboClient
from shared.adapters.released.client import ReleasedClient
from shared.domain.connections import Connection
from shared.domain.events import ChangeEvent
from shared.domain.ownership import OwnershipPolicy
from shared.infra.db import DbConnection

DEFAULT_CLASH_SUFFIX = " (Supplier)"
DEFAULT_WINNERS = {"contact": "released", "document": "qbo", "payment": "qbo"}


@dataclass(frozen=True)
class ConnectionSettings:
    clash_suffix: str = DEFAULT_CLASH_SUFFIX
    winners: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_WINNERS))

    @classmethod
    def from_row(cls, raw: dict[str, Any]) -> ConnectionSettings:
        winners = {**DEFAULT_WINNERS, **(raw.get("conflict_winners") or {})}
        return cls(
            clash_suffix=str(raw.get("contact_clash_suffix", DEFAULT_CLASH_SUFFIX)),
            winners=winners,
        )


@dataclass(frozen=True)
class Result:
    """How one change ended; stored in sync_outcomes and logged."""

    outcome: str  # applied | echo | ignored | reverted | flagged
    reason: str = ""
    target_id: str | None = None


@dataclass
class SyncContext:
    event: ChangeEvent
    connection: Connection
    db: DbConnection
    qbo: QboClient
    released: ReleasedClient
    policy: OwnershipPolicy
    settings: ConnectionSettings
    # Bumped when a write lost an optimistic-concurrency race: the redo is a new request, not a
    # replay of the refused one (QBO and Re-Leased would answer a replay with the same refusal).
    stale_round: int = 0
    # Where creates are remembered outside this transaction (None: not remembered, e.g. tools).
    twins: TwinLedger | None = None

    @property
    def links(self) -> LinkRepository:
        return LinkRepository(self.db)

    @property
    def conflicts(self) -> ConflictRepository:
        return ConflictRepository(self.db)

    def request_id(self, purpose: str) -> str:
        """Idempotency key for one write caused by this event (same on every retry of it)."""
        origin = self.event.replay_of or self.event.event_id
        material = f"{origin}:{purpose}:{self.stale_round}".encode()
        return hashlib.sha256(material).hexdigest()[:40]

    async def created(self, side: str, entity: str, record_id: str, source_id: str) -> None:
        """Remember, whatever becomes of this transaction, that this handler created
        ``record_id`` on ``side`` from ``source_id``. Call right after the create returns."""
        if self.twins is not None:
            await self.twins.record(self.connection.id, side, entity, record_id, source_id)

    async def made_by_us(self, side: str, entity: str, record_id: str) -> str | None:
        """What the engine made ``record_id`` (on ``side``) from, if it made it."""
        return await TwinLedger.source_of(self.db, self.connection.id, side, entity, record_id)

    async def twin_made_from(self, side: str, entity: str, source_id: str) -> str | None:
        """A twin the engine already created on ``side`` from ``source_id`` (an earlier attempt
        whose transaction failed, or a redo after a lost optimistic-concurrency race)."""
        return await TwinLedger.twin_of(self.db, self.connection.id, side, entity, source_id)

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

    async def try_lock(self, *parts: str) -> bool:
        """``lock`` without waiting: False when another transaction holds it."""
        key = ":".join((str(self.connection.id), *parts))
        got = await self.db.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", key
        )
        return bool(got)

    async def lock(self, *parts: str) -> None:
        """Serialise work on one record (or natural key) across every replica, until commit."""
        key = ":".join((str(self.connection.id), *parts))
        await self.db.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
