"""The ``dead_letters`` table: the queryable mirror of ``sync.dead``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.infra.db import DbConnection


@dataclass(frozen=True)
class DeadLetter:
    event_id: str
    routing_key: str
    queue: str
    event: dict[str, Any]
    error_class: str
    error: str
    remedy: str | None
    attempts: int
    connection_id: str | None = None
    # Earlier failed attempts (time, attempt, outcome, error), oldest first.
    history: tuple[dict[str, Any], ...] = ()


class DeadLetterRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def record(self, letter: DeadLetter) -> int:
        """Insert, or on a repeat death of the same event append to its history."""
        entry = {
            "at": datetime.now(UTC).isoformat(),
            "attempt": letter.attempts - 1,
            "outcome": "dead",
            "error_class": letter.error_class,
            "error": letter.error,
            "attempts": letter.attempts,
        }
        row_id: int = await self._conn.fetchval(
            """
            INSERT INTO dead_letters (event_id, routing_key, queue, connection_id, event,
                                      error_class, error, remedy, attempts, history)
            VALUES ($1, $2, $3, coalesce($4::uuid, (
                        -- thin events may carry no connection id: find it from the account
                        SELECT c.id FROM connections c
                        WHERE ($5::jsonb ->> 'source' = 'qbo'
                               AND c.qbo_realm_id = $5::jsonb ->> 'account_id')
                           OR ($5::jsonb ->> 'source' = 'released'
                               AND c.released_company_id = $5::jsonb ->> 'account_id'))),
                    $5, $6, $7, $8, $9, $10)
            ON CONFLICT (event_id, queue) DO UPDATE SET
                event = EXCLUDED.event,
                error_class = EXCLUDED.error_class,
                error = EXCLUDED.error,
                remedy = EXCLUDED.remedy,
                attempts = EXCLUDED.attempts,
                history = dead_letters.history || EXCLUDED.history,
                status = 'dead',
                updated_at = now()
            RETURNING id
            """,
            letter.event_id,
            letter.routing_key,
            letter.queue,
            letter.connection_id,
            letter.event,
            letter.error_class,
            letter.error,
            letter.remedy,
            letter.attempts,
            [*letter.history, entry],
        )
        return row_id

    async def get(self, event_id: str, queue: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._conn.fetchrow(
            "SELECT * FROM dead_letters WHERE event_id = $1 AND queue = $2", event_id, queue
        )
        return row


def event_as_json(body: bytes) -> dict[str, Any]:
    """The message body as an object, or a wrapper when it is not JSON (kept for inspection)."""
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"raw": body.decode("utf-8", errors="replace")}
    return decoded if isinstance(decoded, dict) else {"raw": decoded}
