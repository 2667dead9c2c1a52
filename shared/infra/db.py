"""asyncpg pool factory.

The pool is owned by an async context manager so every process closes it on the way out. A
database that cannot be reached becomes one ``InfraUnavailable`` with the URL (password masked)
and how to start PostgreSQL, instead of a wall of driver traceback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from shared.infra.errors import InfraUnavailable
from shared.infra.logging import scrub_text

POSTGRES_HINT = (
    "start PostgreSQL (locally: pg_ctlcluster --skip-systemctl-redirect "
    "$(ls /etc/postgresql) main start; or: docker compose -f deploy/docker-compose.yml up -d "
    "postgres) or set DATABASE_URL"
)

# What handlers and repositories receive: a plain connection or one borrowed from a pool.
DbConnection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

_CONNECT_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come back as Python objects and go in from them.
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """No reset query on release: for pools whose users never change session state."""


@asynccontextmanager
async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 10.0,
    reset_sessions: bool = True,
    statement_timeout_ms: int | None = None,
    lock_timeout_ms: int | None = None,
) -> AsyncIterator[asyncpg.Pool]:
    """Open a pool or raise ``InfraUnavailable`` saying which URL failed and what to do.

    ``reset_sessions=False`` skips asyncpg's reset round trip on every release; only for pools
    whose users take no session-level locks, listeners or settings (the webhook inbox).
    ``statement_timeout_ms`` and ``lock_timeout_ms`` bound every statement of the pool's
    sessions on the server (``QueryCanceledError`` / ``LockNotAvailableError``), for pools on
    a request path that must answer fast rather than late.
    """
    server_settings: dict[str, str] = {}
    if statement_timeout_ms is not None:
        server_settings["statement_timeout"] = str(statement_timeout_ms)
    if lock_timeout_ms is not None:
        server_settings["lock_timeout"] = str(lock_timeout_ms)
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            init=_init_connection,
            reset=None if reset_sessions else _keep_session,
            server_settings=server_settings or None,
        )
    except _CONNECT_ERRORS as exc:
        raise InfraUnavailable(
            "PostgreSQL", scrub_text(dsn), f"{type(exc).__name__}: {exc}; {POSTGRES_HINT}"
        ) from exc
    try:
        yield pool
    finally:
        await pool.close()


async def connect(dsn: str, *, timeout: float = 10.0) -> asyncpg.Connection:
    """A single connection (migrations, tests), with the same clear failure."""
    try:
        conn: asyncpg.Connection = await asyncpg.connect(dsn, timeout=timeout)
    except _CONNECT_ERRORS as exc:
        raise InfraUnavailable(
            "PostgreSQL", scrub_text(dsn), f"{type(exc).__name__}: {exc}; {POSTGRES_HINT}"
        ) from exc
    await _init_connection(conn)
    return conn


def plain_row(row: asyncpg.Record) -> dict[str, Any]:
    """A record as JSON-ready values (timestamps ISO-8601, ids as strings)."""
    out: dict[str, Any] = {}
    for key, value in dict(row).items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, UUID):
            out[key] = str(value)
        else:
            out[key] = value
    return out
