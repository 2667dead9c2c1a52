"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.domain.connections import Connection
from tests.e2e.stack import Stack, running_stack


@pytest.fixture
async def stack(
    database_url: str, amqp_url: str, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> AsyncIterator[Stack]:
    async with running_stack(database_url, amqp_url, pool) as running:
        yield running


@pytest.fixture
async def linked(stack: Stack) -> tuple[str, str, Connection]:
    """A fresh QBO company and Re-Leased company, connected (their seed data predates it)."""
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    await asyncio.sleep(1.1)  # CDC works in whole seconds: keep seed data before the connection
    return realm, company, await stack.connect(realm, tokens, company)
