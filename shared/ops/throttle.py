"""An even pace for bulk operations, so a replay of thousands never crowds out live events.

Even spacing (not bursts) keeps the replayed events interleaved with live ones in the work queues,
and the rate stays well under QBO's 500 requests per minute per realm even when every replayed
event costs a couple of API calls.
"""

from __future__ import annotations

import asyncio
import time

DEFAULT_REPLAY_RATE_PER_MINUTE = 120


class Throttle:
    """At most ``per_minute`` calls to ``wait`` return per minute, evenly spaced."""

    def __init__(self, per_minute: float = DEFAULT_REPLAY_RATE_PER_MINUTE) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        # The lock makes concurrent bulk replays (two admin requests) share one pace.
        async with self._lock:
            now = time.monotonic()
            if self._next > now:
                await asyncio.sleep(self._next - now)
                now = self._next
            self._next = now + self.interval
