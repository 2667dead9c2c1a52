"""Re-Leased master-data collections listed once per burst, not once per record.

Before creating an account or a tax rate the engine looks for one with the same natural key
(``shared.sync.masterdata``). Listing the collection for every QBO record costs one or more
requests each at Re-Leased's 60 a minute: an initial import of a chart of accounts spent tens of
them. A consumer process keeps each connection's listing for a short while instead, and puts its
own writes into it.

Why a lookup served from a kept listing cannot create a duplicate:

- while connected, only the accounting side (we) writes master data: a user's create or edit is
  refused with ``MANAGED_IN_ACCOUNTING`` (docs: released-api.md), and what a company had before it
  connected was there before the connection's first event, so before any listing we keep. A
  record can only appear after our listing was taken, or take a natural key it did not have
  (the connection's alignment gives a name-matched account QBO's code), through our own writes;
- Re-Leased does not protect us: the contract names no refusal of a second account with the same
  code, and the sandbox takes one. So a miss must never be trusted while a write of that key by
  us may be missing from the listing;
- every such write is first entered in the twin ledger (``created_twins``, committed on its own,
  before the request is sent) under the natural key (``key_entity``). A handler that finds no
  record in its listing asks the ledger, holding the engine's natural-key lock: any create of
  that key by any replica either ended before the lock was granted or has not begun, so its row
  is there. A row means "we wrote this key at some time": the listing is taken again, fresh, and
  that answer decides. No row means no write of ours could be missing, and the listing answers;
- the one writer outside that lock is the connection's alignment, which gives a name-matched
  account QBO's code before the import queues QBO's records: its ledger row goes in before its
  write, so a live event racing it sees no more and no less than a fresh listing showed it before
  listings were kept;
- a record that was found in the kept listing but has changed since is written with its listed
  version (If-Match): Re-Leased refuses the stale write, the listing is dropped and the change
  redone from a fresh one (``StaleVersion``).

The listing lives at most ``lifetime`` seconds, so whatever this reasoning missed ages out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared.sync.ports import ReleasedApi

LIFETIME_S = 60.0
Record = dict[str, Any]


def key_entity(entity: str) -> str:
    """The twin-ledger entity under which our writes of a natural key are entered (its
    ``source_id`` is the key). Apart from ``entity`` itself, which echoes read."""
    return f"{entity}-key"


@dataclass
class _Listing:
    records: dict[str, Record]
    taken: float


@dataclass
class ListingCache:
    """One consumer process's listings, per connection and collection (archived included)."""

    lifetime: float = LIFETIME_S
    clock: Callable[[], float] = time.monotonic
    _listings: dict[tuple[UUID, str], _Listing] = field(default_factory=dict)
    _guards: dict[tuple[UUID, str], asyncio.Lock] = field(default_factory=dict)

    async def listing(self, released: ReleasedApi, connection_id: UUID, path: str) -> list[Record]:
        """The collection as listed within ``lifetime``; listed now when not (one listing at a
        time per collection, so a burst of handlers shares the first)."""
        key = (connection_id, path)
        async with self._guards.setdefault(key, asyncio.Lock()):
            held = self._listings.get(key)
            if held is None or self.clock() - held.taken > self.lifetime:
                taken = self.clock()
                records = await released.list_all(path, includeArchived="true")
                held = _Listing({str(r["id"]): r for r in records}, taken)
                self._listings[key] = held
            return list(held.records.values())

    def put(self, connection_id: UUID, path: str, record: Record) -> None:
        """Our own write of ``record`` (created or updated), as Re-Leased answered it."""
        held = self._listings.get((connection_id, path))
        if held is not None:
            held.records[str(record["id"])] = record

    def drop(self, connection_id: UUID, path: str) -> None:
        """Forget the listing: the next lookup lists the collection again."""
        self._listings.pop((connection_id, path), None)
