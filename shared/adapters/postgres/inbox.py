"""The webhook inbox: dedupe on ``event_id`` and the outbox the relay drains."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.domain.events import ChangeEvent
from shared.infra.db import DbConnection

PENDING, PUBLISHED, IGNORED = "pending", "published", "ignored"
# Prefix of ``ignore_reason`` for rows that can never be published.
QUARANTINED = "quarantined: "


@dataclass(frozen=True)
class InboxEntry:
    event: ChangeEvent
    status: str  # PENDING or IGNORED
    ignore_reason: str | None = None


def _columns(entries: Sequence[InboxEntry]) -> list[list[Any]]:
    """The insert's thirteen arrays, filled in one pass over the entries."""
    columns: list[list[Any]] = [[] for _ in range(13)]
    (ids, sources, connections, accounts, entities, entity_ids, operations, origins, keys,
     texts, statuses, reasons, received) = columns  # fmt: skip
    for entry in entries:
        event = entry.event
        ids.append(event.event_id)
        sources.append(event.source)
        connections.append(event.connection_id)
        accounts.append(event.account_id)
        entities.append(event.entity)
        entity_ids.append(event.entity_id)
        operations.append(event.operation)
        origins.append(event.origin)
        keys.append(event.routing_key)
        # JSON text, cast in SQL: pydantic's serializer is much cheaper than a dict codec.
        texts.append(event.model_dump_json())
        statuses.append(entry.status)
        reasons.append(entry.ignore_reason)
        received.append(event.received_at)
    return columns


class InboxRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def store(self, entries: Sequence[InboxEntry]) -> set[str]:
        """Insert in one statement; returns the ids that were new (the rest are duplicates)."""
        if not entries:
            return set()
        rows = await self._conn.fetch(
            """
            INSERT INTO inbox (event_id, source, connection_id, account_id, entity, entity_id,
                               operation, origin, routing_key, event, status, ignore_reason,
                               received_at)
            SELECT e, s, c, a, n, i, o, g, r, j::jsonb, st, ir, t
            FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::text[],
                        $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                        $11::text[], $12::text[], $13::timestamptz[])
                AS u(e, s, c, a, n, i, o, g, r, j, st, ir, t)
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id
            """,
            *_columns(entries),
        )
        return {r["event_id"] for r in rows}

    async def mark_published(self, event_ids: Sequence[str]) -> int:
        result = await self._conn.execute(
            "UPDATE inbox SET status = 'published', published_at = now() "
            "WHERE event_id = ANY($1::text[]) AND status = 'pending'",
            list(event_ids),
        )
        return int(result.rsplit(" ", 1)[-1])

    async def quarantine(self, event_id: str, reason: str) -> None:
        """Take a pending row the broker can never accept out of the relay's way, with why
        (status ``ignored``, reason prefixed ``quarantined:``; ``syncctl``/SQL can find it)."""
        await self._conn.execute(
            "UPDATE inbox SET status = 'ignored', ignore_reason = $2 "
            "WHERE event_id = $1 AND status = 'pending'",
            event_id,
            f"{QUARANTINED}{reason}"[:300],
        )

    async def claim_pending(
        self, *, older_than_s: float, limit: int, received_before: datetime | None = None
    ) -> list[ChangeEvent]:
        """Lock a page of pending rows for this transaction (other relays skip them): rows
        older than ``older_than_s`` and, if given, received before ``received_before``."""
        rows = await self._conn.fetch(
            """
            SELECT event_id, event FROM inbox
            WHERE status = 'pending' AND received_at < now() - make_interval(secs => $1)
              AND ($3::timestamptz IS NULL OR received_at < $3)
            ORDER BY received_at
            LIMIT $2
            FOR UPDATE SKIP LOCKED
            """,
            older_than_s,
            limit,
            received_before,
        )
        events: list[ChangeEvent] = []
        for row in rows:
            try:
                events.append(ChangeEvent.model_validate(row["event"]))
            except ValidationError as exc:
                # One undecodable row must not stop the relay for every row behind it.
                await self._conn.execute(
                    "UPDATE inbox SET status = 'ignored', ignore_reason = $2 WHERE event_id = $1",
                    row["event_id"],
                    f"undecodable: {exc.errors()[0]['msg']}"[:200],
                )
        return events

    async def count(self, status: str) -> int:
        value: int = await self._conn.fetchval(
            "SELECT count(*) FROM inbox WHERE status = $1", status
        )
        return value
