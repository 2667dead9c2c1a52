"""Issue 17: both receivers under fuzzed input (Hypothesis drives ``tests/support/fuzz_bodies``:
the body grammars with hostile values, byte-level mutations of valid bodies, raw bytes). Every
answer is a deliberate one (never 5xx), a refused request stores nothing, and afterwards the
receivers still store and publish a good delivery (no stall). Each numbered finding also has
an explicit example here; the longer run is ``bench/bench_fuzz.py``."""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Awaitable, Iterator
from concurrent.futures import Future
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.fuzz_bodies import FuzzCase, fuzz_case, headers_for
from tests.support.receivers import (
    add_connection,
    cloud_event,
    qbo_receiver,
    released_event,
    released_receiver,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")
EXPECTED = {200, 400, 401, 408, 413, 415}


@dataclass
class World:
    loop: asyncio.AbstractEventLoop
    pool: asyncpg.Pool
    urls: dict[str, str]
    http: httpx.Client

    def run(self, coro: Awaitable[T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout=60)

    def post(self, case: FuzzCase) -> int:
        response = self.http.post(
            self.urls[case.receiver], content=case.body, headers=headers_for(case)
        )
        return response.status_code

    def stored(self, marker: str) -> int:
        async def count() -> int:
            async with self.pool.acquire() as conn:
                value: int = await conn.fetchval(
                    "SELECT count(*) FROM inbox WHERE account_id = $1", marker
                )
                return value

        return self.run(count())


@pytest.fixture(scope="module")
def world(database_url: str, amqp_url: str) -> Iterator[World]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stack = AsyncExitStack()

    async def start() -> tuple[asyncpg.Pool, dict[str, str]]:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=3)
        qbo = await stack.enter_async_context(qbo_receiver(database_url, amqp_url))
        released = await stack.enter_async_context(released_receiver(database_url, amqp_url))
        return pool, {"qbo": qbo, "released": released}

    pool, urls = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=60)
    with httpx.Client(timeout=30) as http:
        yield World(loop, pool, urls, http)
    asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=60)
    asyncio.run_coroutine_threadsafe(pool.close(), loop).result(timeout=30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


def _named(receiver: str, body: Any) -> FuzzCase:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return FuzzCase(receiver, raw, True, "fz-named")


NAMED = [
    # finding 1: a 300-byte id; a 128-byte category
    _named("qbo", [cloud_event(1, "fz-named", id="é" * 150)]),
    _named("released", {"events": [released_event(1, "fz-named", eventCategory="é" * 64)]}),
    # finding 2: a lone surrogate and a NUL inside signed bodies
    _named("qbo", [cloud_event(1, "fz-named", intuitentityid="\ud800")]),
    _named("released", {"events": [released_event(1, "fz-named", resourceId="a\u0000")]}),
    # finding 4: nesting 100,000 deep, a 5,000-digit integer
    _named("qbo", b"[" * 100_000 + b"]" * 100_000),
    _named("released", b'{"events": [' + b"7" * 5000 + b"]}"),
    # finding 8: over-long version, resource URL, related id
    _named("released", {"events": [released_event(1, "fz-named", resourceUrl="u" * 3000)]}),
    _named("qbo", [cloud_event(1, "fz-named", time="t" * 300)]),
    _named("qbo", [cloud_event(1, "fz-named", data={"deletedId": "d" * 300})]),
]


def _check(world: World, case: FuzzCase) -> None:
    status = world.post(case)
    assert status in EXPECTED, (status, case.body[:200])
    if status != 200:
        assert world.stored(case.marker) == 0, "a refused request stored something"


@pytest.mark.parametrize("case", NAMED, ids=[f"finding-{n}" for n in (1, 1, 2, 2, 4, 4, 8, 8, 8)])
def test_named_findings_are_answered_deliberately(world: World, case: FuzzCase) -> None:
    _check(world, case)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.randoms(use_true_random=False))
@example(random.Random(17))
def test_fuzzed_bodies_never_get_5xx_and_refusals_store_nothing(
    world: World, rng: random.Random
) -> None:
    _check(world, fuzz_case(rng))


def test_after_the_fuzz_a_good_delivery_is_stored_and_published(world: World) -> None:
    async def connect() -> tuple[str, str]:
        return await add_connection(world.pool)

    realm, company = world.run(connect())
    good = json.dumps([cloud_event(n, realm) for n in range(20)]).encode()
    assert world.post(FuzzCase("qbo", good, True, realm)) == 200
    body = {"events": [released_event(n, company) for n in range(20)]}
    assert world.post(FuzzCase("released", json.dumps(body).encode(), True, company)) == 200

    async def published() -> int:
        async with world.pool.acquire() as conn:
            value: int = await conn.fetchval(
                "SELECT count(*) FROM inbox WHERE account_id = ANY($1::text[]) "
                "AND status = 'published'",
                [realm, company],
            )
            return value

    deadline = time.monotonic() + 30
    while world.run(published()) < 40 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert world.run(published()) == 40
