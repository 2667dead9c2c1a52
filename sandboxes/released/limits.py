"""Per-company request limits: 60 a minute (sliding window on the sandbox clock), 5 at once."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from sandboxes.released.clock import SandboxClock
from sandboxes.released.errors import ApiError

PER_MINUTE = 60
CONCURRENT = 5
WINDOW_SECONDS = 60.0


@dataclass
class _Usage:
    window: deque[float] = field(default_factory=deque)
    in_flight: int = 0


class RateLimiter:
    def __init__(self, clock: SandboxClock, *, enabled: bool) -> None:
        self.clock = clock
        self.enabled = enabled
        self._usage: dict[str, _Usage] = {}

    def reset(self) -> None:
        self._usage.clear()

    def acquire(self, company_id: str) -> int:
        """Count one request; return how many are left this minute, or raise 429."""
        usage = self._usage.setdefault(company_id, _Usage())
        now = self.clock.now().timestamp()
        while usage.window and usage.window[0] <= now - WINDOW_SECONDS:
            usage.window.popleft()
        if not self.enabled:
            usage.in_flight += 1
            return PER_MINUTE
        if usage.in_flight >= CONCURRENT:
            raise self._refused("CONCURRENCY_LIMIT", "more than 5 concurrent requests", 1.0)
        if len(usage.window) >= PER_MINUTE:
            wait = usage.window[0] + WINDOW_SECONDS - now
            raise self._refused("MINUTE_LIMIT", "more than 60 requests in a minute", wait)
        usage.window.append(now)
        usage.in_flight += 1
        return PER_MINUTE - len(usage.window)

    def release(self, company_id: str) -> None:
        usage = self._usage.get(company_id)
        if usage is not None and usage.in_flight > 0:
            usage.in_flight -= 1

    def _refused(self, problem: str, message: str, sandbox_wait: float) -> ApiError:
        # Retry-After is in real seconds: what a client actually has to sleep.
        retry_after = max(1, math.ceil(self.clock.real_seconds(sandbox_wait)))
        headers = {"Retry-After": str(retry_after), "X-Rate-Limit-Problem": problem}
        return ApiError(429, problem, message, headers=headers)
