"""How a failed event is classified, and the attempt history it carries.

``route`` is the single decision point for every error class (the consumer acts on it);
``retry_delay`` picks the retry-ladder tier; the history helpers read and extend the
``x-history`` header that carries each failed attempt from delivery to delivery, so the dead
letter ends up with all of them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from aio_pika.abc import AbstractIncomingMessage

from shared.adapters.broker import retry_tier_for
from shared.domain.errors import ConnectionRevoked, TransientError

Route = Literal["retry", "park", "dead"]

HISTORY_HEADER = "x-history"
# Bounds the header: a message that failed more often than this keeps its latest entries.
MAX_HISTORY = 25

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TransientError,
    TimeoutError,
    ConnectionError,
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.DeadlockDetectedError,
    asyncpg.exceptions.SerializationError,
    # PostgreSQL going away: class 08, and a shutdown or restart (57P01, 57P02).
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    # The client's protocol state broken by a connection that died mid-operation (seen when the
    # pool resets a connection PostgreSQL has just closed). A fresh connection clears it; were
    # it ever a bug, the attempt limit still ends it in the dead letters.
    asyncpg.exceptions.InternalClientError,
)
# What asyncpg raises on top of the real error when the connection died under it: the rollback
# of a transaction whose connection PostgreSQL just closed ("cannot call Transaction.__aexit__():
# the underlying connection is closed"), with the real cause as its context.
_WRAPPERS = (asyncpg.exceptions.InterfaceError,)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, _WRAPPERS):
        inner = exc.__cause__ or exc.__context__
        return inner is not None and is_transient(inner)
    return False


def route(exc: BaseException) -> Route:
    """Where a failed event goes. The single decision point for every error class."""
    if isinstance(exc, ConnectionRevoked):
        return "park"  # not the event's fault: hold it, spend no attempt
    if is_transient(exc):
        return "retry"
    return "dead"  # permanent, policy rejection, not found, bugs: retrying cannot help


def retry_delay(attempt: int, retry_after: float | None, tiers: tuple[int, ...]) -> int:
    """The ladder tier for retry ``attempt``: its backoff step, or longer if the peer asked."""
    step = retry_tier_for(attempt, tiers)
    if retry_after is None or retry_after <= step:
        return step
    longer = [t for t in sorted(tiers) if t >= retry_after]
    return longer[0] if longer else max(tiers)


def history_of(message: AbstractIncomingMessage) -> list[dict[str, Any]]:
    raw = (message.headers or {}).get(HISTORY_HEADER)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        return []
    try:
        decoded = json.loads(raw)
    except json.JSONDecodeError:
        return []
    return [e for e in decoded if isinstance(e, dict)] if isinstance(decoded, list) else []


def attempt_entry(attempt: int, outcome: str, exc: BaseException, **extra: Any) -> dict[str, Any]:
    return {
        "at": datetime.now(UTC).isoformat(),
        "attempt": attempt,
        "outcome": outcome,
        "error_class": type(exc).__name__,
        "error": str(exc)[:300],
        **extra,
    }


def deferral_entry(attempt: int, blocked_s: float, delay_s: int) -> dict[str, Any]:
    return {
        "at": datetime.now(UTC).isoformat(),
        "attempt": attempt,
        "outcome": "deferred",
        "error_class": "RateLimited",
        "error": f"budget blocked for {blocked_s:.1f} s after a 429",
        "delay_s": delay_s,
    }
