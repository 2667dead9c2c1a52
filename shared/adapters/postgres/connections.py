"""Which connection an incoming account (QBO realm, Re-Leased company) belongs to.

Receivers look this up for every delivery, so answers are cached briefly in process; a connection
created a moment ago is seen within ``ttl_s``. A database error is not fatal here: the receiver
publishes without a connection id and the consumer resolves it. The cache holds at most
``max_entries`` accounts (QBO sends notifications for every realm of the app, known or not):
when full, expired answers go first, then the oldest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from shared.domain.connections import Connection
from shared.domain.events import ChangeEvent, Source

_COLUMN = {"qbo": "qbo_realm_id", "released": "released_company_id"}


@dataclass
class ConnectionDirectory:
    pool: asyncpg.Pool
    ttl_s: float = 5.0
    max_entries: int = 10_000
    _cache: dict[tuple[str, str], tuple[float, UUID | None]] = field(default_factory=dict)

    def _make_room(self, now: float, wanted: int) -> None:
        if len(self._cache) + wanted <= self.max_entries:
            return
        for key in [k for k, (expiry, _) in self._cache.items() if expiry <= now]:
            del self._cache[key]
        excess = len(self._cache) + wanted - self.max_entries
        for key in list(self._cache)[: max(excess, 0)]:
            del self._cache[key]

    def __len__(self) -> int:
        return len(self._cache)

    async def resolve(self, source: Source, accounts: list[str]) -> dict[str, UUID | None]:
        """Map each account to its connection id (None: no connection). Raises on DB errors."""
        now = time.monotonic()
        found: dict[str, UUID | None] = {}
        missing: list[str] = []
        for account in accounts:
            hit = self._cache.get((source, account))
            if hit is not None and hit[0] > now:
                found[account] = hit[1]
            else:
                missing.append(account)
        if missing:
            column = _COLUMN[source]
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(
                    f"SELECT id, {column} AS account FROM connections "  # noqa: S608 - fixed column
                    f"WHERE {column} = ANY($1::text[])",
                    missing,
                )
            by_account = {r["account"]: r["id"] for r in rows}
            self._make_room(now, min(len(missing), self.max_entries))
            for account in missing:
                found[account] = by_account.get(account)
            for account in missing[-self.max_entries :]:
                self._cache[(source, account)] = (now + self.ttl_s, found[account])
        return found

    def forget(self) -> None:
        self._cache.clear()


class ConnectionRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def active(self) -> list[Connection]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, released_company_id, qbo_realm_id, status, settings, created_at "
                "FROM connections "
                "WHERE status = 'active' AND qbo_realm_id IS NOT NULL ORDER BY created_at"
            )
        return [Connection(**dict(r)) for r in rows]

    async def get(self, connection_id: UUID) -> Connection | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT id, released_company_id, qbo_realm_id, status, settings, created_at "
                "FROM connections "
                "WHERE id = $1",
                connection_id,
            )
        return Connection(**dict(row)) if row else None

    async def set_status(self, connection_id: UUID, status: str, reason: str | None) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute(
                "UPDATE connections SET status = $2, status_reason = $3 WHERE id = $1",
                connection_id,
                status,
                reason,
            )


class ConnectionLookup:
    """The engine's way to its connection: by id when the event carries one, else by account."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._directory = ConnectionDirectory(pool)
        self._connections = ConnectionRepository(pool)

    async def connection_for(self, event: ChangeEvent) -> Connection | None:
        connection_id = event.connection_id
        if connection_id is None:
            owners = await self._directory.resolve(event.source, [event.account_id])
            connection_id = owners.get(event.account_id)
        if connection_id is None:
            return None
        return await self._connections.get(connection_id)
