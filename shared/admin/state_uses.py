"""OAuth ``state`` is single use: the first callback that presents it claims it.

A second callback with the same state (a replayed or leaked URL, a double submit) is refused
before any code is exchanged, so it can never replace the tokens the first one stored. The
record holds a fingerprint, not the state, and outlives the state's own expiry only until the
retention job passes.
"""

from __future__ import annotations

import asyncpg

from shared.admin.oauth_state import fingerprint


async def claim_state(pool: asyncpg.Pool, state: str, ttl_s: float) -> bool:
    """True for the first use of ``state``; False if it was used before."""
    async with pool.acquire() as conn:
        claimed = await conn.fetchval(
            "INSERT INTO oauth_state_uses (fingerprint, expires_at) "
            "VALUES ($1, now() + make_interval(secs => $2)) "
            "ON CONFLICT (fingerprint) DO NOTHING RETURNING true",
            fingerprint(state),
            ttl_s,
        )
    return bool(claimed)
