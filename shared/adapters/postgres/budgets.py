"""API budgets shared by every replica: a rate limit, a concurrency limit and a 429 block.

QBO allows 500 requests a minute and 10 concurrent per realm; Re-Leased 60 a minute and 5
concurrent per company. The state lives in PostgreSQL so any number of processes stay inside the
limits together:
- rate: the send times of the key's recent requests, so no sliding window (the platform's minute
  plus a margin for the time a request takes to reach it) ever holds more than the limit, as the
  platforms count it (both sandboxes keep a sliding 60-second log of arrivals; a request's time
  moves to when it ended, an upper bound of its arrival, so a stalled send never slips out of the
  window early); under that guard a
  token bucket refilling at the limit spread over that window smooths the flow. The bucket alone
  had to refill at the limit minus its capacity to stay safe, which held a backlog to ~85 % of
  Re-Leased's 60 a minute; the log lets it use ~95 % and still never cause a 429;
- concurrency: ``slots`` leases per key, each with an expiry so a crashed holder frees its slot;
- a 429 blocks the key until Retry-After for everyone, while other keys carry on;
- a bulk caller (an import, a bulk replay) holds a ``Reserve``: it spends a token only while the
  bucket holds more than the reserve and the window has room beyond as many requests, and takes
  only the slots beyond the reserved ones, so live traffic always finds some of each and the bulk
  work takes what live traffic leaves; and it spaces its sends (``PACE_SHARE``), so the window
  frees a place about every second rather than in bunches, and a live request that finds the
  window full waits for the next place, not for the next bunch.

One module because its statements share one parameter list ($1 to $7, ``_args``) and one
reasoning about the window; apart, they would drift.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class Limits:
    per_minute: int
    concurrent: int
    burst: int = 20  # bucket capacity: how far the flow may bunch up (inside the window's guard)
    window_s: float = 60.0  # the platform counts ``per_minute`` over a sliding window this long
    # Our send time is stamped before the request reaches the platform; counting over a slightly
    # longer window keeps a request that took this long to arrive inside our count (2 s: a loaded
    # process can stall that long between the token and the send).
    margin_s: float = 2.0

    @property
    def refill_per_s(self) -> float:
        return self.per_minute / self.span_s

    @property
    def span_s(self) -> float:
        return self.window_s + self.margin_s

    def sustained_share(self, reserve: Reserve | None = None) -> float:
        """The share of ``per_minute`` a caller with ``reserve`` can use while backlogged: the
        bucket's refill or the window's room, whichever binds."""
        room = self.per_minute - (reserve.hits if reserve else 0)
        per_window = min(self.refill_per_s * self.window_s, room * self.window_s / self.span_s)
        return max(per_window, 0.0) / self.per_minute


# A bulk caller's sends are at least this share of the window's even pace (span / room) apart:
# unbunched, so the window frees a place about every pace, and only a little slower than the
# window allows, so the window still binds a backlog.
PACE_SHARE = 0.9

QBO_LIMITS = Limits(per_minute=500, concurrent=10, burst=50)
RELEASED_LIMITS = Limits(per_minute=60, concurrent=5, burst=10)

# $5: the window counted (seconds), $6: the requests it may hold for this caller (the limit less
# its reserve). The row lock taken by ON CONFLICT makes the check and the append one step, so
# replicas racing for the last place in the window cannot both get it.
# $7: a bulk caller's pace (the least seconds between two bulk sends; 0 for live).
_SPEND_ONE = """
INSERT INTO api_budgets AS b (key, tokens, refilled_at, hits, paced_at)
SELECT $1, $2 - 1, clock_timestamp(), ARRAY[clock_timestamp()],
       CASE WHEN $7::float8 > 0 THEN clock_timestamp() END WHERE $6 >= 1
ON CONFLICT (key) DO UPDATE SET
    tokens = LEAST($2, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.refilled_at) * $3) - 1,
    refilled_at = clock_timestamp(),
    hits = ARRAY(SELECT h FROM unnest(b.hits) h
                 WHERE h > clock_timestamp() - make_interval(secs => $5) ORDER BY h)
        || clock_timestamp(),
    paced_at = CASE WHEN $7::float8 > 0 THEN clock_timestamp() ELSE b.paced_at END
WHERE (b.blocked_until IS NULL OR b.blocked_until <= clock_timestamp())
  AND LEAST($2, b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.refilled_at) * $3) >= 1 + $4
  AND (SELECT count(*) FROM unnest(b.hits) h
       WHERE h > clock_timestamp() - make_interval(secs => $5)) < $6
  AND ($7::float8 = 0 OR b.paced_at IS NULL
       OR b.paced_at <= clock_timestamp() - make_interval(secs => $7::float8))
RETURNING tokens, hits[array_upper(hits, 1)] AS stamp
"""

# When the request is over, its place in the window moves to the end time: the platform saw it
# arrive somewhere between the stamp and now, so counting it from now can only over-count. A
# process stalled between stamp and send (a loaded machine, a long GC) can then no longer make
# the window look emptier than the platform's.
_RESTAMP = """
UPDATE api_budgets SET hits = array_replace(hits, $2, clock_timestamp()) WHERE key = $1
"""

# The wait: the block, the bucket, the window (when it is full for this caller, until its oldest
# send leaves it; a poll then looks again) and the pace; at least $8 (0: is it ready?).
_WAIT = """
SELECT GREATEST(
    EXTRACT(EPOCH FROM COALESCE(blocked_until, clock_timestamp()) - clock_timestamp()),
    CASE WHEN $7::float8 > 0 AND paced_at IS NOT NULL THEN EXTRACT(EPOCH FROM
        paced_at + make_interval(secs => $7::float8) - clock_timestamp()) ELSE 0 END,
    (1 + $4 - LEAST($2, tokens + EXTRACT(EPOCH FROM clock_timestamp() - refilled_at) * $3)) / $3,
    COALESCE((SELECT CASE WHEN count(*) >= $6 THEN EXTRACT(EPOCH FROM
                  min(h) + make_interval(secs => $5) - clock_timestamp()) END
              FROM unnest(hits) h WHERE h > clock_timestamp() - make_interval(secs => $5)), 0),
    $8)
FROM api_budgets WHERE key = $1
"""

# Whether $8 requests could go now, one after another, without waiting (no block, the tokens, and
# the window's room for this caller).
_SPARE = """
SELECT (blocked_until IS NULL OR blocked_until <= clock_timestamp())
   AND LEAST($2, tokens + EXTRACT(EPOCH FROM clock_timestamp() - refilled_at) * $3) >= $8::int + $4
   AND (SELECT count(*) FROM unnest(hits) h
        WHERE h > clock_timestamp() - make_interval(secs => $5)) + $8::int <= $6
   AND $7::float8 >= 0
FROM api_budgets WHERE key = $1
"""

_USAGE = """
SELECT max(1 - LEAST($2, tokens + EXTRACT(EPOCH FROM clock_timestamp() - refilled_at) * $3) / $2)
         AS used,
       count(*) FILTER (WHERE blocked_until > clock_timestamp()) AS blocked
FROM api_budgets WHERE key LIKE $1
"""

_TAKE_SLOT = """
UPDATE api_slots SET holder = $2, expires_at = clock_timestamp() + make_interval(secs => $3)
WHERE (key, slot) = (
    SELECT key, slot FROM api_slots
    WHERE key = $1 AND slot < $4 AND (holder IS NULL OR expires_at < clock_timestamp())
    ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING slot
"""


@dataclass(frozen=True)
class Reserve:
    """What a bulk caller leaves for live traffic on every key: request tokens it never spends
    (it waits while the bucket holds no more than these) and concurrency slots it never takes."""

    tokens: float = 0.0
    slots: int = 0

    @property
    def hits(self) -> int:
        """Places in the sliding window left to live traffic (as many as reserved tokens)."""
        return math.ceil(self.tokens)

    @classmethod
    def share(cls, limits: Limits, fraction: float) -> Reserve:
        """``fraction`` of the bucket and of the slots (at least one slot, at least one left)."""
        if fraction <= 0:
            return cls()
        slots = min(max(1, round(limits.concurrent * fraction)), limits.concurrent - 1)
        return cls(tokens=limits.burst * fraction, slots=max(slots, 0))


class ApiBudget:
    def __init__(
        self,
        pool: asyncpg.Pool,
        limits: Limits,
        *,
        lease_s: float = 120.0,
        poll_s: float = 0.05,
        reserve: Reserve | None = None,
        pace_share: float = PACE_SHARE,
    ) -> None:
        self._pool = pool
        self._limits = limits
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._seeded: set[str] = set()
        self._reserve = reserve or Reserve()
        self._floor = self._reserve.tokens
        self._room = limits.per_minute - self._reserve.hits
        self._usable_slots = max(limits.concurrent - self._reserve.slots, 1)
        # Bulk only: its sends a little under the window's even pace apart (``PACE_SHARE``).
        self._pace = pace_share * limits.span_s / self._room if self._reserve.hits else 0.0

    @property
    def limits(self) -> Limits:
        return self._limits

    @asynccontextmanager
    async def acquire(self, key: str) -> AsyncIterator[None]:
        """Wait for a concurrency slot and a request token for ``key``; release the slot after.

        The slot first: the token's time is the send time the window counts, so it must not be
        taken long before the request can go."""
        holder = uuid.uuid4().hex
        await self._ensure_slots(key)
        slot = await self._take_slot(key, holder)
        try:
            stamp = await self._take_token(key)
        except BaseException:
            await self._free_slot(key, slot, holder)
            raise
        try:
            yield
        finally:
            await self._free_slot(key, slot, holder, stamp)

    async def _free_slot(
        self, key: str, slot: int, holder: str, stamp: datetime | None = None
    ) -> None:
        async with self._pool.acquire() as conn:
            if stamp is not None:
                await conn.execute(_RESTAMP, key, stamp)
            await conn.execute(
                "UPDATE api_slots SET holder = NULL, expires_at = NULL "
                "WHERE key = $1 AND slot = $2 AND holder = $3",
                key,
                slot,
                holder,
            )

    async def try_take(self, key: str) -> bool:
        """Spend a request token for ``key`` if one is there now; never waits, takes no slot."""
        async with self._pool.acquire() as conn:
            return await conn.fetchval(_SPEND_ONE, *self._args(key)) is not None

    async def spare(self, key: str, requests: int) -> bool:
        """Whether ``requests`` could be sent for ``key`` now without waiting for the budget."""
        async with self._pool.acquire() as conn:
            ready = await conn.fetchval(_SPARE, *self._args(key), requests)
        return ready is None or bool(ready)

    async def wait_ready(self, key: str) -> None:
        """Return once ``key`` has a token to spend (not blocked), without spending it."""
        while True:
            async with self._pool.acquire() as conn:
                wait = await conn.fetchval(_WAIT, *self._args(key), 0.0)
            if wait is None or float(wait) <= 0:
                return
            await asyncio.sleep(min(float(wait), 60.0))

    async def block(self, key: str, seconds: float) -> None:
        """The other side said 429: nobody calls for ``key`` until the time has passed."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                """
                INSERT INTO api_budgets (key, tokens, blocked_until)
                VALUES ($1, 0, clock_timestamp() + make_interval(secs => $2))
                ON CONFLICT (key) DO UPDATE SET blocked_until = GREATEST(
                    COALESCE(api_budgets.blocked_until, clock_timestamp()),
                    clock_timestamp() + make_interval(secs => $2))
                """,
                key,
                seconds,
            )

    async def blocked_for(self, key: str) -> float:
        async with self._pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT EXTRACT(EPOCH FROM blocked_until - clock_timestamp()) "
                "FROM api_budgets WHERE key = $1",
                key,
            )
        return max(float(value or 0), 0.0)

    async def usage(self, pattern: str) -> tuple[float, int]:
        """Over the keys matching ``pattern`` (SQL LIKE): the largest share of the burst
        allowance in use right now (0 idle, 1 empty), and how many keys a 429 blocks."""
        capacity, rate = float(self._limits.burst), self._limits.refill_per_s
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_USAGE, pattern, capacity, rate)
        used = float(row["used"] or 0.0) if row else 0.0
        return min(max(used, 0.0), 1.0), int(row["blocked"] or 0) if row else 0

    def _args(self, key: str) -> tuple[object, ...]:
        limits = self._limits
        rate, span = limits.refill_per_s, limits.span_s
        return (key, float(limits.burst), rate, self._floor, span, self._room, self._pace)

    async def _ensure_slots(self, key: str) -> None:
        if key in self._seeded:
            return
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO api_slots (key, slot) SELECT $1, s FROM generate_series(0, $2 - 1) s "
                "ON CONFLICT DO NOTHING",
                key,
                self._limits.concurrent,
            )
        self._seeded.add(key)

    async def _take_token(self, key: str) -> datetime:
        """Spend a token; the send time stamped in the window."""
        while True:
            async with self._pool.acquire() as conn:
                spent = await conn.fetchrow(_SPEND_ONE, *self._args(key))
                if spent is not None:
                    stamp: datetime = spent["stamp"]
                    return stamp
                wait = await conn.fetchval(_WAIT, *self._args(key), 0.01)
            await asyncio.sleep(min(float(wait or self._poll_s), 60.0))

    async def _take_slot(self, key: str, holder: str) -> int:
        while True:
            async with self._pool.acquire() as conn:
                slot = await conn.fetchval(
                    _TAKE_SLOT, key, holder, self._lease_s, self._usable_slots
                )
            if slot is not None:
                return int(slot)
            await asyncio.sleep(self._poll_s)
