"""The migrations runner: ordered, idempotent, safe when several processes start at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from shared.infra.db import connect
from shared.infra.errors import ConfigError
from shared.infra.migrations import Migration, apply_migrations, discover, migrate

pytestmark = pytest.mark.integration

EXPECTED_TABLES = {
    "connections",
    "inbox",
    "links",
    "write_ledger",
    "conflicts",
    "dead_letters",
    "cursors",
    "schema_migrations",
}


async def tables(dsn: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_apply_on_empty_database_then_reapply_is_a_no_op(empty_database_url: str) -> None:
    all_versions = [m.version for m in discover()]
    assert await migrate(empty_database_url) == all_versions
    assert await tables(empty_database_url) >= EXPECTED_TABLES
    assert await migrate(empty_database_url) == []


async def test_concurrent_runners_do_not_collide(empty_database_url: str) -> None:
    results = await asyncio.gather(*(migrate(empty_database_url) for _ in range(4)))
    applied = sorted(v for result in results for v in result)
    assert applied == [m.version for m in discover()], "each migration applied exactly once"


async def test_changed_migration_is_refused(empty_database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (x int);")
    conn = await connect(empty_database_url)
    try:
        assert await apply_migrations(conn, discover(tmp_path)) == [1]
        (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (x bigint);")
        with pytest.raises(ConfigError, match="changed after"):
            await apply_migrations(conn, discover(tmp_path))
    finally:
        await conn.close()


async def test_failed_migration_leaves_nothing_half_applied(
    empty_database_url: str,
) -> None:
    broken = [
        Migration(1, "ok", "CREATE TABLE good (x int);"),
        Migration(2, "bad", "CREATE TABLE half (x int); SELECT no_such_function();"),
    ]
    conn = await connect(empty_database_url)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await apply_migrations(conn, broken)
        versions = await conn.fetch("SELECT version FROM schema_migrations")
        assert [r["version"] for r in versions] == [1]
        assert "half" not in await tables(empty_database_url)
    finally:
        await conn.close()


def test_misnamed_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(ConfigError, match="NNNN_description"):
        discover(tmp_path)
