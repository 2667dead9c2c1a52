"""Failures of the process itself rather than of a change: bad configuration, a backing service
that cannot be reached. Both stop a process at start-up with one clear line."""

from __future__ import annotations

from shared.domain.errors import SyncError


class ConfigError(SyncError):
    """The process is configured wrongly; it cannot start."""


class InfraUnavailable(SyncError):
    """A backing service (PostgreSQL, RabbitMQ) cannot be reached."""

    def __init__(self, what: str, url: str, hint: str) -> None:
        self.what = what
        self.url = url
        self.hint = hint
        super().__init__(f"{what} unreachable at {url}: {hint}")
