"""Defer events whose realm or company is blocked by a 429, so they never hold a consumer.

After a 429 the budgets (``api_budgets.blocked_until``) stop every call for that key until the
Retry-After has passed, and a call that arrives meanwhile waits inside the process. Waiting is
right for a second or two; for QBO's typical 60 s it would pin a consumer's prefetch window on
one realm's events while every other realm's events queue behind them. So the consumer asks the
gate first and, when the event's connection is blocked for longer than a short in-process wait,
sends it to the retry ladder without spending an attempt: being rate-limited is not the event's
failure. An event that passed the gate just before the 429 and is now waiting inside the budget
is watched too: once it has waited longer than that short wait while the block stands, the
consumer cancels it (the transaction rolls back, as after a crash; idempotency keys make the
redo safe) and defers it the same way.

The keys are the clients' ``budget_key``: ``qbo:<realm id>`` and ``released:<company id>``.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from shared.domain.events import ChangeEvent

# Blocks shorter than this are waited out in the request, like the clients' in-process retries.
MAX_IN_PROCESS_WAIT_S = 5.0
# How long an event whose record an import batch holds (``RecordHeld``) is taken to be blocked:
# past the in-process wait, so it is deferred (to the shortest tier), attempt unchanged.
HELD_BLOCK_S = 2 * MAX_IN_PROCESS_WAIT_S

_BLOCKED_FOR = """
SELECT GREATEST(0, EXTRACT(EPOCH FROM max(b.blocked_until) - clock_timestamp()))
FROM connections c
JOIN api_budgets b ON b.key IN ('qbo:' || c.qbo_realm_id, 'released:' || c.released_company_id)
WHERE CASE WHEN $1::uuid IS NOT NULL THEN c.id = $1::uuid
           WHEN $2 = 'qbo' THEN c.qbo_realm_id = $3
           ELSE c.released_company_id = $3 END
"""


@dataclass
class BudgetGate:
    """How long the event's connection must wait before any API call; 0 when it need not."""

    pool: asyncpg.Pool

    async def blocked_for(self, event: ChangeEvent) -> float:
        # Not cached: a block set a moment ago must be seen by the very next event.
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                _BLOCKED_FOR, event.connection_id, event.source, event.account_id
            )
        return float(value or 0.0)


def defer_delay(blocked_s: float, tiers: tuple[int, ...]) -> int:
    """The ladder tier to wait: the longest not beyond the block, so the event is back soon after.

    Deferring costs no attempt, so coming back a little early and deferring again is harmless;
    coming back far too late (the next tier up) would be the real cost.
    """
    fitting = [t for t in sorted(tiers) if t <= blocked_s]
    return fitting[-1] if fitting else min(tiers)
