"""The failure classes every layer speaks about a change it could not apply.

They are mapped at the edges, in one place each: HTTP answers in the API clients
(``shared.adapters.http``), broker outcomes in the consumer (``shared.delivery.failures``:
transient -> retry ladder, revoked -> parked, anything else -> dead letter).
"""

from __future__ import annotations


class SyncError(Exception):
    """Base class for the failures we name."""


class TransientError(SyncError):
    """Worth retrying later: timeouts, 5xx, 429, connection loss.

    ``retry_after`` is the delay the other side asked for, in seconds, when it said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RecordHeld(TransientError):
    """The record is held by a bulk writer (an import's batch) that may keep it for seconds:
    the consumer hands the event back to come again shortly, spending no attempt, rather than
    let it hold a consumer slot while live events queue behind it."""


class PermanentError(SyncError):
    """Retrying cannot help (validation, missing mapping). ``remedy`` tells a person what to do."""

    def __init__(self, message: str, *, remedy: str | None = None) -> None:
        super().__init__(message)
        self.remedy = remedy


class Refused(PermanentError):
    """The other side refused the request as invalid; ``codes`` are its validation codes."""

    def __init__(
        self, message: str, *, codes: tuple[str, ...] = (), remedy: str | None = None
    ) -> None:
        super().__init__(message, remedy=remedy)
        self.codes = codes


class PolicyRejection(PermanentError):
    """The ownership policy refuses the change; not a fault, never retried."""


class ConnectionRevoked(PermanentError):
    """The grant was revoked or expired: the connection pauses until a person reconnects."""


class NotFound(PermanentError):
    """The record does not exist (any more) on that side."""


class StaleVersion(TransientError):
    """Optimistic concurrency lost (QBO 5010, Re-Leased 412): re-fetch, re-merge, retry."""


class DuplicateName(PermanentError):
    """QBO 6240: the DisplayName is taken by another Customer, Vendor or Employee."""
