"""Shared fixtures: real PostgreSQL and RabbitMQ, isolated per test run.

Each run gets its own database (``t_<random>``, migrated once) and its own RabbitMQ vhost, both
removed at the end, so parallel runs and leftovers never collide. ``TEST_PG_ADMIN_URL`` and
``TEST_AMQP_URL`` point at the servers (defaults: the python-svc box's local services).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import Topology, connect_broker, declare_topology
from shared.infra.db import create_pool
from shared.infra.logging import configure_logging
from shared.infra.migrations import migrate

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_BASE_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
RUN_ID = uuid.uuid4().hex[:10]
# Tests use a one-second retry tier so a retried message comes back quickly.
TEST_TOPOLOGY = Topology(retry_tiers=(1,))


def _dsn_for(database: str) -> str:
    parts = urlsplit(PG_ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_database(prefix: str = "t") -> str:
    name = f"{prefix}_{RUN_ID}_{uuid.uuid4().hex[:6]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging("DEBUG", "json")


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A migrated database private to this test run."""
    name = create_database()
    dsn = _dsn_for(name)
    asyncio.run(migrate(dsn))
    yield dsn
    drop_database(name)


@pytest.fixture
def empty_database_url() -> Iterator[str]:
    """A brand-new, unmigrated database for one test."""
    name = create_database("e")
    yield _dsn_for(name)
    drop_database(name)


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        pytest.fail("rabbitmqctl not found: tests create a private RabbitMQ vhost with it")
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost private to this test run."""
    vhost = f"test_{RUN_ID}"
    _rabbitmqctl("add_vhost", vhost)
    user = urlsplit(AMQP_BASE_URL).username or "guest"
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    parts = urlsplit(AMQP_BASE_URL)
    yield urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    _rabbitmqctl("delete_vhost", vhost)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with create_pool(database_url, min_size=1, max_size=5) as p:
        yield p


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractRobustConnection]:
    """A connection to the run's vhost with the topology declared and every queue emptied."""
    async with connect_broker(amqp_url) as connection:
        channel = await connection.channel()
        await declare_topology(channel, TEST_TOPOLOGY)
        for name in (
            "sync.qbo_to_released",
            "sync.released_to_qbo",
            "sync.qbo_to_released.bulk",
            "sync.released_to_qbo.bulk",
            "sync.dead",
            "sync.retry.1s",
        ):
            queue = await channel.get_queue(name)
            await queue.purge()
        await channel.close()
        yield connection
