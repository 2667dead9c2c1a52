"""Idempotency-Key: the same key and body replays the first response for 24 h (sandbox clock)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sandboxes.released.errors import ApiError

TTL = timedelta(hours=24)


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: bytes
    headers: dict[str, str]
    stored_at: datetime


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyCache:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], StoredResponse] = {}
        self._running: dict[tuple[str, str], asyncio.Event] = {}

    def reset(self) -> None:
        self._entries.clear()

    @contextlib.asynccontextmanager
    async def exclusive(self, company_id: str, key: str) -> AsyncIterator[None]:
        """One request per key at a time: a retry that overtakes a slow first attempt waits for
        it and then replays its answer instead of doing the work twice."""
        slot = (company_id, key)
        while (running := self._running.get(slot)) is not None:
            await running.wait()
        done = self._running[slot] = asyncio.Event()
        try:
            yield
        finally:
            del self._running[slot]
            done.set()

    def lookup(
        self, company_id: str, key: str, print_: str, now: datetime
    ) -> StoredResponse | None:
        entry = self._entries.get((company_id, key))
        if entry is None or now - entry.stored_at > TTL:
            return None
        if entry.fingerprint != print_:
            raise ApiError(
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with a different request",
            )
        return entry

    def remember(self, company_id: str, key: str, entry: StoredResponse) -> None:
        self._entries[(company_id, key)] = entry
