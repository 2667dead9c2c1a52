"""The admin's reads and writes of ``connections`` (the engine's repository is read-mostly)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from shared.adapters.postgres.connections import ConnectionRepository
from shared.domain.connections import ConnectionSettings
from shared.infra.db import DbConnection
from shared.ingest.importer import BATCHED, QUEUED, STAGE, STARTED, TOTAL
from shared.ops.import_progress import import_progress

_COLUMNS = (
    "id, released_company_id, qbo_realm_id, status, status_reason, settings, "
    "qbo_tokens IS NOT NULL AS has_tokens, created_at, updated_at"
)

_LIST = f"SELECT {_COLUMNS} FROM connections ORDER BY created_at, id"  # noqa: S608 - fixed text


@dataclass(frozen=True)
class ConnectionRow:
    id: UUID
    released_company_id: str
    qbo_realm_id: str | None
    status: str
    status_reason: str | None
    settings: dict[str, Any]
    has_tokens: bool
    created_at: Any
    updated_at: Any

    def summary(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "released_company_id": self.released_company_id,
            "qbo_realm_id": self.qbo_realm_id,
            "status": self.status,
        }

    def details(self) -> dict[str, Any]:
        # Never the tokens themselves: only whether we hold a grant.
        return {
            **self.summary(),
            "status_reason": self.status_reason,
            "settings": self.settings,
            "has_qbo_tokens": self.has_tokens,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


class AdminConnections:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list(self) -> list[ConnectionRow]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_LIST)
        return [ConnectionRow(**dict(r)) for r in rows]

    async def get(self, connection_id: UUID) -> ConnectionRow | None:
        async with self._pool.acquire() as conn:
            return await fetch_row(conn, connection_id)

    async def create(
        self, released_company_id: str, settings: ConnectionSettings
    ) -> tuple[ConnectionRow, bool]:
        """The company's connection, created if it has none; ``True`` when created now."""
        async with self._pool.acquire() as conn:
            new_id: UUID | None = await conn.fetchval(
                "INSERT INTO connections (released_company_id, settings) VALUES ($1, $2) "
                "ON CONFLICT (released_company_id) DO NOTHING RETURNING id",
                released_company_id,
                settings.document(),
            )
            found_id = new_id or await conn.fetchval(
                "SELECT id FROM connections WHERE released_company_id = $1", released_company_id
            )
            row = await fetch_row(conn, found_id)
        assert row is not None, "a connection row we just saw vanished"
        return row, new_id is not None

    async def save_settings(self, connection_id: UUID, settings: ConnectionSettings) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE connections SET settings = $2 WHERE id = $1",
                connection_id,
                settings.document(),
            )

    async def set_status(self, connection_id: UUID, status: str, reason: str | None) -> None:
        await ConnectionRepository(self._pool).set_status(connection_id, status, reason)

    async def import_state(self, connection_id: UUID) -> dict[str, Any]:
        """What the initial import recorded: records queued per stage, whether it finished, and
        how the company's own master data met QBO's (``master_data_alignment``)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT name, value FROM cursors WHERE connection_id = $1 AND name LIKE 'import:%'",
                connection_id,
            )
            progress = await import_progress(conn, connection_id)
        marks = {STARTED, STAGE, QUEUED, TOTAL, BATCHED}
        values = {
            str(r["name"]).removeprefix("import:"): str(r["value"])
            for r in rows
            if r["name"] not in marks
        }
        alignment = values.pop("alignment", None)
        done = values.pop("done", None)
        stages = {name: int(v) for name, v in values.items() if v.isdigit()}
        return {
            "progress": progress,
            "stages": stages,
            "done": done,
            "master_data_alignment": json.loads(alignment) if alignment else None,
        }


async def fetch_row(
    conn: DbConnection, connection_id: UUID, *, for_update: bool = False
) -> ConnectionRow | None:
    lock = " FOR UPDATE" if for_update else ""
    query = f"SELECT {_COLUMNS} FROM connections WHERE id = $1{lock}"  # noqa: S608 - fixed text
    row = await conn.fetchrow(query, connection_id)
    return ConnectionRow(**dict(row)) if row else None
