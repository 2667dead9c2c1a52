"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.qbo.client import QboClient
from shared.domain.connections import Connection
from tests.e2e.stack import Stack, consumers, running_stack


@pytest.fixture
async def stack(
    database_url: str, amqp_url: str, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> AsyncIterator[Stack]:
    async with running_stack(database_url, amqp_url, pool) as running:
        yield running


@dataclass(frozen=True)
class Linked:
    """A QBO realm and a Re-Leased company connected to each other, and our QBO client for them."""

    realm: str
    company: str
    connection: Connection
    qbo: QboClient


@pytest.fixture
async def linked(stack: Stack) -> Linked:
    """A fresh QBO company and Re-Leased company, connected (their seed data predates it)."""
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    await asyncio.sleep(1.1)  # CDC works in whole seconds: keep seed data before the connection
    connection = await stack.connect(realm, tokens, company)
    return Linked(realm, company, connection, stack.factory.qbo(connection))


@pytest.fixture
async def engine(stack: Stack, linked: Linked) -> AsyncIterator[None]:
    """Both directions of the engine consuming for the whole test, started once ``linked`` is.

    It stops (draining what it holds) only after the test. A test that stops or restarts the
    engine part-way, runs it with other settings or replicas, or checks after stopping it what
    the drained engine did (counts, "nothing came back"), runs ``consumers`` itself instead.
    """
    async with consumers(stack.settings):
        yield
