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

Contacts are another matter: users create and edit them in Re-Leased while connected, so a kept
listing alone could miss a contact of the name we are about to create. ``fresh_listing`` keeps
the listing for longer (``FRESH_LIFETIME_S``) and brings it up to date before each lookup with
one request for what changed (``modifiedSince=``, ordered by (updatedAt, id)), merged by id: a
live QBO customer then costs one page instead of the whole collection (three pages at 2,200
contacts, against a live share of 12 requests a minute). Why that answer is as complete as a
full listing taken at the moment of the request:

- ``since`` is the newest ``updatedAt`` Re-Leased put on a listed record (the server's clock,
  never ours) less ``OVERLAP_S``. Every write committed before our request, by a user, another
  replica, the import or us, is stamped at or after ``since``, unless it was stamped more than
  the overlap before it became visible; the filter is inclusive (updatedAt >= modifiedSince);
- contacts are never deleted (archived, or merged and archived; archived ones are listed), so a
  record absent from a change list is unchanged, and merging by id loses nothing; of two copies
  of a record the newer ``updatedAt`` wins, so a slow refresh cannot undo our own ``put``;
- the caller holds the engine's lock on the natural key (``contact-name``) before the lookup,
  and our own creates of that name happen under the same lock: any of them either ended before
  the request (it is in the answer) or has not begun;
- a refresh already sent after the caller asked is shared (a burst of lookups waits for one
  request rather than sending one each); one sent before is not;
- a change list of more than one page (``PAGE_SIZE``) is answered by a full listing instead,
  and so is the first lookup after ``FRESH_LIFETIME_S`` that finds the company's budget with
  room for the listing's pages (``ReleasedApi.spare``), and any after ``FRESH_LIFETIME_MAX_S``.
  The full listing is the safety net, not part of the argument: during an import, whose batches
  hold all of the company's 60 a minute but the live lane's few places, its three pages made the
  live change that happened to ask wait some 9 s for places in the window.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from shared.sync.ports import ReleasedApi

LIFETIME_S = 60.0
# ``fresh_listing``: a full listing at least this often (whatever the reasoning missed ages out).
FRESH_LIFETIME_S = 600.0
# ... but while the company's budget is full (an import holds all but the live lane's reserve,
# which one live customer's refresh and create fill), the full listing waits, up to this long:
# its pages would make the live change that happened to ask wait for places in the window.
FRESH_LIFETIME_MAX_S = 3600.0
# How long before it became visible a write may have been stamped (a real server stamps a row
# in its transaction and commits later); refreshes ask again for this much of the past.
OVERLAP_S = 30.0
# A change list of more than one page (a bulk edit, a long pause) is not paged through: while we
# paged, a record edited on an earlier page would move to the end, past one we had not read yet.
# Everything is listed instead (the same paging as before listings were kept).
PAGE_SIZE = "1000"
Record = dict[str, Any]


def key_entity(entity: str) -> str:
    """The twin-ledger entity under which our writes of a natural key are entered (its
    ``source_id`` is the key). Apart from ``entity`` itself, which echoes read."""
    return f"{entity}-key"


@dataclass
class _Listing:
    records: dict[str, Record]
    taken: float
    # ``fresh_listing`` only: the newest ``updatedAt`` listed, and when the last request for the
    # listing (full or changes) was sent.
    newest: datetime | None = None
    asked: float = 0.0


def _stamp(record: Record) -> datetime | None:
    raw = record.get("updatedAt")
    if not raw:
        return None
    moment = datetime.fromisoformat(str(raw))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _merge(held: _Listing, records: list[Record]) -> None:
    """Records from Re-Leased into the listing, by id; an older copy never replaces a newer."""
    for record in records:
        stamp = _stamp(record)
        key = str(record["id"])
        kept = held.records.get(key)
        kept_stamp = _stamp(kept) if kept is not None else None
        if kept_stamp is None or stamp is None or stamp >= kept_stamp:
            held.records[key] = record
        if stamp is not None and (held.newest is None or stamp > held.newest):
            held.newest = stamp


@dataclass
class ListingCache:
    """One consumer process's listings, per connection and collection (archived included)."""

    lifetime: float = LIFETIME_S
    fresh_lifetime: float = FRESH_LIFETIME_S
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

    async def fresh_listing(
        self, released: ReleasedApi, connection_id: UUID, path: str
    ) -> list[Record]:
        """The collection as Re-Leased holds it now, from the kept listing and one request for
        what changed since (module docstring); the caller holds the natural key's lock."""
        key = (connection_id, path)
        arrived = self.clock()
        async with self._guards.setdefault(key, asyncio.Lock()):
            held = self._listings.get(key)
            if held is not None and held.asked > arrived:
                return list(held.records.values())  # a refresh sent after we asked
            now = self.clock()
            if (
                held is None
                or held.newest is None
                or await self._aged(released, held, now)
                or not await self._refresh(released, held, held.newest, path, now)
            ):
                held = _Listing({}, now, asked=now)
                _merge(held, await released.list_all(path, includeArchived="true"))
                self._listings[key] = held
            return list(held.records.values())

    async def _aged(self, released: ReleasedApi, held: _Listing, now: float) -> bool:
        """Time for the full listing: past ``fresh_lifetime`` when the company's budget has room
        for its pages now, past ``FRESH_LIFETIME_MAX_S`` in any case."""
        age = now - held.taken
        if age <= self.fresh_lifetime:
            return False
        pages = math.ceil(max(len(held.records), 1) / int(PAGE_SIZE))
        return age > FRESH_LIFETIME_MAX_S or await released.spare(pages + 1)

    async def _refresh(
        self, released: ReleasedApi, held: _Listing, newest: datetime, path: str, now: float
    ) -> bool:
        """Merge what changed since ``newest`` less the overlap; False when the change list
        runs to more than one page (nothing merged then: the caller lists everything)."""
        params = {
            "modifiedSince": _format(newest - timedelta(seconds=OVERLAP_S)),
            "includeArchived": "true",
            "pageSize": PAGE_SIZE,
        }
        payload = await released.request("GET", path, params=params)
        if int(payload.get("pagination", {}).get("pageCount", 1) or 1) > 1:
            return False
        held.asked = now
        _merge(held, payload.get("items", []))
        return True

    def put(self, connection_id: UUID, path: str, record: Record) -> None:
        """Our own write of ``record`` (created or updated), as Re-Leased answered it."""
        held = self._listings.get((connection_id, path))
        if held is not None:
            kept = held.records.get(str(record["id"]))
            stamp, kept_stamp = _stamp(record), _stamp(kept) if kept is not None else None
            if kept_stamp is None or stamp is None or stamp >= kept_stamp:
                held.records[str(record["id"])] = record

    def drop(self, connection_id: UUID, path: str) -> None:
        """Forget the listing: the next lookup lists the collection again."""
        self._listings.pop((connection_id, path), None)
