"""Shared API budgets: rate, concurrency and 429 blocks hold across replicas (guarantee 10)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid

import asyncpg
import pytest

from shared.adapters.postgres.budgets import (
    QBO_LIMITS,
    RELEASED_LIMITS,
    ApiBudget,
    Limits,
    Reserve,
)

pytestmark = pytest.mark.integration


def test_a_backlog_can_use_at_least_90_percent_of_each_limit() -> None:
    # The old bucket refilled at the limit less its capacity: 50 of Re-Leased's 60 a minute.
    for limits in (QBO_LIMITS, RELEASED_LIMITS):
        assert limits.sustained_share() >= 0.9
        # Bulk work, which leaves live traffic its reserve, too.
        assert limits.sustained_share(Reserve.share(limits, 0.2)) >= 0.9


async def test_no_sliding_window_holds_more_than_the_limit(pool: asyncpg.Pool) -> None:
    # A 2 s window of 6, a bucket of 6 refilling at 6 per 2.2 s: the bucket alone would let
    # about 11 through in a window after a full start; the log of send times holds it to 6.
    limits = Limits(per_minute=6, concurrent=1, burst=6, window_s=2.0, margin_s=0.2)
    budget = ApiBudget(pool, limits, poll_s=0.01)
    key = f"released:{uuid.uuid4().hex}"
    sent: list[float] = []
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        async with budget.acquire(key):
            sent.append(time.monotonic())
    assert len(sent) >= 12, "the budget kept sending"
    for i, start in enumerate(sent):
        assert len([t for t in sent[i:] if t < start + 2.0]) <= 6


async def test_a_request_stalled_before_it_is_sent_still_counts_where_it_arrived(
    pool: asyncpg.Pool,
) -> None:
    """The window counts a request from when it is stamped, but the platform from when it
    arrives. The first four stall 1 s (longer than the margin) between token and send: counted
    from their stamps they would leave the window 1 s before the platform lets them go, and the
    next four would arrive inside the same platform window (eight in 2 s, a 429)."""
    limits = Limits(per_minute=4, concurrent=4, burst=4, window_s=2.0, margin_s=0.2)
    budget = ApiBudget(pool, limits, poll_s=0.01)
    key = f"released:{uuid.uuid4().hex}"
    arrived: list[float] = []
    stalls = iter([1.0] * 4 + [0.0] * 4)

    async def send() -> None:
        async with budget.acquire(key):
            await asyncio.sleep(next(stalls))
            arrived.append(time.monotonic())

    await asyncio.gather(*(send() for _ in range(8)))
    arrived.sort()
    for i, first in enumerate(arrived):
        assert len([t for t in arrived[i:] if t < first + limits.window_s]) <= 4


async def test_bulk_leaves_its_window_places_to_live(pool: asyncpg.Pool) -> None:
    # A bucket far bigger than the window's limit: the window is what binds.
    limits = Limits(per_minute=10, concurrent=5, burst=100, window_s=30.0)
    reserve = Reserve.share(Limits(per_minute=10, concurrent=5, burst=10), 0.2)
    # Unpaced: the reserve alone is under test here.
    live, bulk = ApiBudget(pool, limits), ApiBudget(pool, limits, reserve=reserve, pace_share=0)
    key = f"released:{uuid.uuid4().hex}"
    taken = 0
    while await bulk.try_take(key):
        taken += 1
    assert taken == 8, "bulk stops 2 short of the window's 10"
    assert [await live.try_take(key) for _ in range(3)] == [True, True, False]


async def test_spare_says_whether_requests_could_go_without_waiting(pool: asyncpg.Pool) -> None:
    limits = Limits(per_minute=10, concurrent=5, burst=100, window_s=30.0)
    budget = ApiBudget(pool, limits)
    key = f"released:{uuid.uuid4().hex}"
    assert await budget.spare(key, 3), "a key never used has room"
    for _ in range(7):
        assert await budget.try_take(key)
    assert await budget.spare(key, 3)
    assert not await budget.spare(key, 4), "the window holds 7 of 10"
    await budget.block(key, 5)
    assert not await budget.spare(key, 1), "blocked by a 429"


async def test_rate_is_shared_by_two_replicas(pool: asyncpg.Pool) -> None:
    limits = Limits(per_minute=64, concurrent=10, burst=4)  # refills 1 per second
    replicas = [ApiBudget(pool, limits), ApiBudget(pool, limits)]
    key = f"qbo:{uuid.uuid4().hex}"
    started = time.monotonic()
    for i in range(6):
        async with replicas[i % 2].acquire(key):
            pass
    # 4 come from the burst; the 5th and 6th wait for refills whichever replica asks.
    assert time.monotonic() - started >= 1.8


async def test_concurrency_slots_are_shared(pool: asyncpg.Pool) -> None:
    limits = Limits(per_minute=6000, concurrent=3, burst=100)
    replicas = [ApiBudget(pool, limits, poll_s=0.01) for _ in range(2)]
    key = f"qbo:{uuid.uuid4().hex}"
    inside = peak = 0

    async def call(i: int) -> None:
        nonlocal inside, peak
        async with replicas[i % 2].acquire(key):
            inside += 1
            peak = max(peak, inside)
            await asyncio.sleep(0.05)
            inside -= 1

    await asyncio.gather(*(call(i) for i in range(12)))
    assert peak == 3


async def test_a_blocked_realm_waits_while_others_proceed(pool: asyncpg.Pool) -> None:
    budget = ApiBudget(pool, Limits(per_minute=6000, concurrent=5, burst=100))
    throttled, other = f"qbo:{uuid.uuid4().hex}", f"qbo:{uuid.uuid4().hex}"
    await budget.block(throttled, 1.0)
    started = time.monotonic()
    async with budget.acquire(other):
        assert time.monotonic() - started < 0.5, "another realm is not held up"
    assert await budget.blocked_for(throttled) > 0
    async with budget.acquire(throttled):
        assert time.monotonic() - started >= 0.9


async def test_a_crashed_holder_frees_its_slot_after_the_lease(pool: asyncpg.Pool) -> None:
    limits = Limits(per_minute=6000, concurrent=1, burst=100)
    budget = ApiBudget(pool, limits, poll_s=0.02)
    key = f"qbo:{uuid.uuid4().hex}"
    async with budget.acquire(key):
        pass
    async with pool.acquire() as conn:
        # A replica took the only slot and died: its lease runs out half a second from now.
        await conn.execute(
            "UPDATE api_slots SET holder = 'dead-replica', "
            "expires_at = clock_timestamp() + interval '0.5 seconds' WHERE key = $1",
            key,
        )
    started = time.monotonic()
    async with budget.acquire(key):
        assert time.monotonic() - started >= 0.4


async def test_bulk_leaves_its_reserve_of_tokens_to_live(pool: asyncpg.Pool) -> None:
    # Hardly any refill, and room in the window: what is in the bucket is what there is.
    limits = Limits(per_minute=20, concurrent=5, burst=10, window_s=600.0)
    reserve = Reserve.share(limits, 0.3)
    live, bulk = ApiBudget(pool, limits), ApiBudget(pool, limits, reserve=reserve, pace_share=0)
    key = f"released:{uuid.uuid4().hex}"
    taken = 0
    while await bulk.try_take(key):
        taken += 1
    assert taken == 7, "bulk stops at the reserve: 3 of 10 tokens stay"
    assert [await live.try_take(key) for _ in range(3)] == [True, True, True]
    assert not await live.try_take(key)


async def test_bulk_sends_are_paced_so_the_window_frees_places_evenly(pool: asyncpg.Pool) -> None:
    """A bulk caller with tokens and room to spare still sends no faster than a little under the
    window's even pace (here 0.9 x 3.3 s / 5 = 0.59 s), so a full window frees one place about
    every pace, never a bunch at once; live requests are not paced."""
    limits = Limits(per_minute=6, concurrent=5, burst=6, window_s=3.0, margin_s=0.3)
    reserve = Reserve(tokens=1.0, slots=0)
    bulk = ApiBudget(pool, limits, reserve=reserve, poll_s=0.01)
    live = ApiBudget(pool, limits, poll_s=0.01)
    key = f"released:{uuid.uuid4().hex}"
    sent: list[float] = []
    for _ in range(4):
        async with bulk.acquire(key):
            sent.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap >= 0.9 * 3.3 / 5 - 0.02 for gap in gaps), gaps
    assert not await bulk.try_take(key), "too soon after the last bulk send"
    assert await live.try_take(key), "live is not paced"


async def test_bulk_never_takes_the_reserved_slots(pool: asyncpg.Pool) -> None:
    limits = Limits(per_minute=6000, concurrent=5, burst=1000)
    reserve = Reserve.share(limits, 0.2)
    assert reserve.slots == 1
    live = ApiBudget(pool, limits, poll_s=0.01)
    bulk = ApiBudget(pool, limits, poll_s=0.01, reserve=reserve)
    key = f"released:{uuid.uuid4().hex}"
    inside = peak = 0
    release = asyncio.Event()

    async def bulk_call() -> None:
        nonlocal inside, peak
        async with bulk.acquire(key):
            inside += 1
            peak = max(peak, inside)
            await release.wait()
            inside -= 1

    calls = [asyncio.create_task(bulk_call()) for _ in range(8)]
    await asyncio.sleep(0.3)
    assert peak == 4, "bulk holds at most the unreserved slots"
    started = time.monotonic()
    async with live.acquire(key):
        assert time.monotonic() - started < 0.5, "live finds its slot while bulk is saturated"
    release.set()
    await asyncio.gather(*calls)
