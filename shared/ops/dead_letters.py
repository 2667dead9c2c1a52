"""Dead letters as operators find them: filter, list, count, show, purge.

The rows are the queryable mirror of ``sync.dead`` (written by the consumer, see
``shared.adapters.postgres.dead_letters``); ``shared.ops.replay`` sends them back, and
``shared.ops.absorb`` gives a row to what reached ``sync.dead`` without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from shared.infra.db import DbConnection, plain_row
from shared.infra.logging import get_logger

log = get_logger("ops.dlq")

SUMMARY_COLUMNS = (
    "id, event_id, queue, routing_key, connection_id, event ->> 'entity' AS entity, "
    "event ->> 'entity_id' AS entity_id, error_class, error, remedy, attempts, replay_count, "
    "status, created_at, updated_at"
)


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operation applies to; every given criterion must hold."""

    ids: tuple[int, ...] = ()
    connection_id: UUID | None = None
    entity: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = "dead"

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []

        def add(sql: str, value: Any) -> None:
            args.append(value)
            clauses.append(sql.format(f"${len(args)}"))

        if self.ids:
            add("id = ANY({}::bigint[])", list(self.ids))
        if self.connection_id is not None:
            add("connection_id = {}", self.connection_id)
        if self.entity:
            add("event ->> 'entity' = {}", self.entity.lower())
        if self.error_class:
            add("error_class = {}", self.error_class)
        if self.since is not None:
            add("created_at >= {}", self.since)
        if self.until is not None:
            add("created_at < {}", self.until)
        if self.status:
            add("status = {}", self.status)
        return (" AND ".join(clauses) or "TRUE"), args


async def select(
    conn: DbConnection, where: DeadLetterFilter, *, limit: int = 100
) -> list[dict[str, Any]]:
    sql, args = where.where()
    rows = await conn.fetch(
        f"SELECT {SUMMARY_COLUMNS} FROM dead_letters WHERE {sql} "  # noqa: S608 - built above
        f"ORDER BY created_at, id LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [plain_row(r) for r in rows]


async def count(conn: DbConnection, where: DeadLetterFilter) -> int:
    sql, args = where.where()
    found: int = await conn.fetchval(
        f"SELECT count(*) FROM dead_letters WHERE {sql}",  # noqa: S608 - built above
        *args,
    )
    return found


async def ids(conn: DbConnection, where: DeadLetterFilter, *, limit: int = 10_000) -> list[int]:
    sql, args = where.where()
    rows = await conn.fetch(
        f"SELECT id FROM dead_letters WHERE {sql} "  # noqa: S608 - built above
        f"ORDER BY created_at, id LIMIT ${len(args) + 1}",
        *args,
        limit,
    )
    return [int(r["id"]) for r in rows]


async def show(conn: DbConnection, letter_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow("SELECT * FROM dead_letters WHERE id = $1", letter_id)
    return plain_row(row) if row else None


async def purge(conn: DbConnection, where: DeadLetterFilter) -> int:
    """Mark matching dead letters purged (kept for audit; never replayed again); how many."""
    sql, args = where.where()
    done: str = await conn.execute(
        f"UPDATE dead_letters SET status = 'purged', updated_at = now(), "  # noqa: S608
        "history = history || jsonb_build_array(jsonb_build_object('at', now(), "
        f"'outcome', 'purged')) WHERE {sql} AND status <> 'purged'",
        *args,
    )
    purged = int(done.split()[-1])
    log.info("dead_letters_purged", count=purged)
    return purged
