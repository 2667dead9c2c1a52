"""Reconciler high-water marks, one per connection and stream."""

from __future__ import annotations

from uuid import UUID

import asyncpg


class CursorRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, connection_id: UUID, name: str) -> str | None:
        async with self._pool.acquire() as conn:
            value: str | None = await conn.fetchval(
                "SELECT value FROM cursors WHERE connection_id = $1 AND name = $2",
                connection_id,
                name,
            )
        return value

    async def set(self, connection_id: UUID, name: str, value: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO cursors (connection_id, name, value) VALUES ($1, $2, $3) "
                "ON CONFLICT (connection_id, name) DO UPDATE SET value = EXCLUDED.value, "
                "updated_at = now()",
                connection_id,
                name,
                value,
            )
