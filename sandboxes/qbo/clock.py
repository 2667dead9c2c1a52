"""Time as QBO shows it, and the sandbox's scalable clock for expiries and schedules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

# QBO renders timestamps in the company's local time with an offset; our companies live in
# Pacific time. A fixed offset keeps the rendering stable (DST is not reproduced).
COMPANY_TZ = timezone(timedelta(hours=-7))


def utcnow() -> datetime:
    return datetime.now(UTC)


def qbo_time(moment: datetime) -> str:
    """``2015-07-24T10:33:39-07:00``: whole seconds, as in MetaData."""
    return moment.astimezone(COMPANY_TZ).isoformat(timespec="seconds")


def response_time(moment: datetime | None = None) -> str:
    """The ``time`` field of every response: milliseconds, offset."""
    return (moment or utcnow()).astimezone(COMPANY_TZ).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime | None:
    """Parse the timestamp forms clients send (ISO-8601, with or without offset, ``Z``)."""
    candidate = text.strip()
    if candidate.endswith("Z"):
        candidate = candidate[:-1] + "+00:00"
    # QBO also accepts offsets without a colon, e.g. -0700.
    if len(candidate) > 5 and candidate[-5] in "+-" and candidate[-3] != ":":
        candidate = candidate[:-2] + ":" + candidate[-2:]
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=COMPANY_TZ)
    return parsed


class ScaledClock:
    """Durations divided by the time scale: scale 60 makes an hour-long token last a minute."""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def monotonic(self) -> float:
        return time.monotonic()

    def seconds(self, real_world_seconds: float) -> float:
        return real_world_seconds / self.scale

    def deadline(self, real_world_seconds: float) -> float:
        return self.monotonic() + self.seconds(real_world_seconds)
