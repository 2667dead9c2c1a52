"""Ordered plain-SQL migrations.

Files live in ``shared/infra/sql`` as ``NNNN_description.sql`` and apply in numeric order,
each in its own transaction, recorded in ``schema_migrations`` with a checksum. A session-level
advisory lock makes concurrent runners (several services starting at once) take turns: the second
one finds everything applied and does nothing. Editing an applied file is refused, because the
database would silently differ from the code.

``python -m shared.infra.migrations`` applies them to ``DATABASE_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.infra.db import connect
from shared.infra.errors import ConfigError, InfraUnavailable
from shared.infra.logging import configure_logging, get_logger
from shared.infra.settings import InfraSettings, load_settings, read_env_file

MIGRATIONS_DIR = Path(__file__).with_name("sql")
# Arbitrary but fixed: every runner of this project contends for the same lock.
MIGRATION_LOCK_KEY = 0x5EC5_0001
_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

log = get_logger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All migration files, ordered; a misnamed or duplicate-numbered file is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise ConfigError(f"migration file {path.name} is not named NNNN_description.sql")
        version = int(match["version"])
        if version in found:
            raise ConfigError(f"two migrations share version {version:04d}")
        found[version] = Migration(version, match["name"], path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[int]:
    """Apply what is missing; returns the versions applied by this call."""
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {r["version"]: r["checksum"] for r in rows}
        done: list[int] = []
        for migration in migrations:
            known = applied.get(migration.version)
            if known is not None:
                if known != migration.checksum:
                    raise ConfigError(
                        f"migration {migration.version:04d}_{migration.name} was changed after "
                        "it was applied; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("migration_applied", version=migration.version, name=migration.name)
            done.append(migration.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def migrate(dsn: str) -> list[int]:
    conn = await connect(dsn)
    try:
        return await apply_migrations(conn, discover())
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.infra.migrations")
    parser.add_argument(
        "--env-file", type=Path, help="KEY=VALUE file whose values fill unset variables"
    )
    args = parser.parse_args(argv)
    try:
        if args.env_file is not None:
            for key, value in read_env_file(args.env_file).items():
                os.environ.setdefault(key, value)
        settings = load_settings(InfraSettings)
        configure_logging(settings.log_level, settings.log_format)
        applied = asyncio.run(migrate(settings.database_url))
    except (ConfigError, InfraUnavailable) as exc:
        sys.stderr.write(f"migrate: {exc}\n")
        return 1
    log.info("migrations_done", applied=applied, count=len(applied))
    return 0


if __name__ == "__main__":
    sys.exit(main())
