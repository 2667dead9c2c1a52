"""The sandbox clock: real time, sped up by a scale factor and movable by tests.

Token lifetimes, rate-limit windows and webhook retry schedules are all measured on this clock, so a
test can live through 24 hours of retries in a few seconds without sleeping.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class SandboxClock:
    def __init__(self, scale: float) -> None:
        self._scale = scale
        self._anchor_real = time.monotonic()
        self._anchor_sandbox = datetime.now(UTC)

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._anchor_real) * self._scale
        return self._anchor_sandbox + timedelta(seconds=elapsed)

    def set_scale(self, scale: float) -> None:
        # Re-anchor so that changing speed never makes the clock jump.
        self._anchor_sandbox = self.now()
        self._anchor_real = time.monotonic()
        self._scale = scale

    def advance(self, seconds: float) -> None:
        self._anchor_sandbox += timedelta(seconds=seconds)

    def real_seconds(self, sandbox_seconds: float) -> float:
        """How long to really wait for ``sandbox_seconds`` to pass on this clock."""
        return max(0.0, sandbox_seconds / self._scale)


def format_ts(moment: datetime) -> str:
    # Fixed width, so that string order is time order (lists sort on it).
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_ts(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
