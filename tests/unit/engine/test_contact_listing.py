"""The kept contacts listing brought up to date with what changed (``ListingCache.fresh_listing``):
one changes request per lookup, merged by id, asked with an overlap, listed again in full after
its lifetime or when the changes run to more than a page."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

from shared.sync.listings import FRESH_LIFETIME_MAX_S, FRESH_LIFETIME_S, OVERLAP_S, ListingCache
from shared.sync.ports import ReleasedApi

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Server:
    """Contacts stamped by the server's clock, listed as the contract says: ``modifiedSince``
    inclusive, ordered by (updatedAt, id), paged."""

    def __init__(self, page_size: int = 1000) -> None:
        self.now = START
        self.contacts: dict[str, dict[str, Any]] = {}
        self.page_size = page_size
        self.asked: list[dict[str, str]] = []
        self.budget_free = True  # ``spare``: the company's budget has room now
        self.spare_asked: list[int] = []

    def write(self, contact_id: str, name: str, *, stamped: datetime | None = None) -> None:
        self.now += timedelta(seconds=1)
        moment = stamped or self.now
        self.contacts[contact_id] = {"id": contact_id, "name": name, "updatedAt": _ts(moment)}

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        params: dict[str, str] = kwargs.get("params") or {}
        self.asked.append(params)
        since = params.get("modifiedSince")
        items = sorted(
            (c for c in self.contacts.values() if since is None or c["updatedAt"] >= since),
            key=lambda c: (c["updatedAt"], c["id"]),
        )
        page = int(params.get("page", "1"))
        size = min(self.page_size, int(params.get("pageSize", "1000")))
        pages = math.ceil(len(items) / size)
        return {
            "pagination": {"page": page, "pageCount": pages, "itemCount": len(items)},
            "items": [dict(c) for c in items[(page - 1) * size : page * size]],
        }

    async def spare(self, requests: int) -> bool:
        self.spare_asked.append(requests)
        return self.budget_free

    async def list_all(self, path: str, **filters: str) -> list[dict[str, Any]]:
        self.asked.append({"full": "yes"})
        return [dict(c) for c in self.contacts.values()]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


async def _look(cache: ListingCache, server: Server, connection: UUID) -> list[dict[str, Any]]:
    return await cache.fresh_listing(cast(ReleasedApi, server), connection, "/contacts")


def _names(records: list[dict[str, Any]]) -> dict[str, str]:
    return {str(r["id"]): str(r["name"]) for r in records}


async def test_each_lookup_after_the_first_asks_only_for_what_changed() -> None:
    server, clock, connection = Server(), Clock(), uuid4()
    for n in range(5):
        server.write(f"c{n}", f"Tenant {n}")
    cache = ListingCache(clock=clock)
    first = await _look(cache, server, connection)
    assert len(first) == 5
    assert server.asked == [{"full": "yes"}]

    server.write("c1", "Tenant One renamed")  # a user's edit: a newer copy of c1
    server.write("c9", "Walk-in")  # a user's new contact
    second = _names(await cache.fresh_listing(server, connection, "/contacts"))  # type: ignore[arg-type]
    assert second["c1"] == "Tenant One renamed"
    assert second["c9"] == "Walk-in"
    assert len(second) == 6
    assert len(server.asked) == 2
    newest = START + timedelta(seconds=5)  # c4, the newest stamp of the first listing
    assert server.asked[1]["modifiedSince"] == _ts(newest - timedelta(seconds=OVERLAP_S))


async def test_a_write_stamped_before_the_newest_but_seen_later_is_picked_up() -> None:
    """A real server stamps a row in its transaction and commits later: a contact stamped before
    the newest listed one can appear after that listing. The overlap asks for it again."""
    server, connection = Server(), uuid4()
    server.write("c1", "Early")
    server.write("c2", "Newest")
    cache = ListingCache(clock=Clock())
    await _look(cache, server, connection)
    server.write("late", "Committed late", stamped=START + timedelta(seconds=1))
    found = _names(await cache.fresh_listing(server, connection, "/contacts"))  # type: ignore[arg-type]
    assert found.get("late") == "Committed late"


async def test_an_older_copy_never_replaces_our_newer_write() -> None:
    server, connection = Server(), uuid4()
    server.write("c1", "Before")
    cache = ListingCache(clock=Clock())
    await _look(cache, server, connection)
    ours = {"id": "c1", "name": "Ours", "updatedAt": _ts(START + timedelta(seconds=50))}
    cache.put(connection, "/contacts", ours)  # server copy still stamped START + 1 s
    found = _names(await cache.fresh_listing(server, connection, "/contacts"))  # type: ignore[arg-type]
    assert found["c1"] == "Ours"


async def test_after_its_lifetime_the_listing_is_taken_in_full_again() -> None:
    server, clock, connection = Server(), Clock(), uuid4()
    server.write("c1", "One")
    cache = ListingCache(clock=clock)
    await _look(cache, server, connection)
    await _look(cache, server, connection)
    assert [("full" in p) for p in server.asked] == [True, False]
    clock.now += FRESH_LIFETIME_S + 1
    await _look(cache, server, connection)
    assert [("full" in p) for p in server.asked] == [True, False, True]


async def test_while_the_budget_is_full_the_aged_listing_is_refreshed_not_taken_again() -> None:
    """An import holds the company's window: the safety-net listing (its pages plus the
    caller's write) waits for room, up to ``FRESH_LIFETIME_MAX_S``; lookups stay correct."""
    server, clock, connection = Server(), Clock(), uuid4()
    server.write("c1", "One")
    cache = ListingCache(clock=clock)
    await _look(cache, server, connection)
    server.budget_free = False
    clock.now += FRESH_LIFETIME_S + 1
    server.write("c2", "Made meanwhile")
    found = _names(await _look(cache, server, connection))
    assert set(found.values()) == {"One", "Made meanwhile"}
    assert [("full" in p) for p in server.asked] == [True, False]
    assert server.spare_asked == [2], "one page of contacts and the caller's write"
    server.budget_free = True
    await _look(cache, server, connection)
    assert "full" in server.asked[-1], "room again: the safety net runs"
    server.budget_free = False
    clock.now += FRESH_LIFETIME_MAX_S + 1
    await _look(cache, server, connection)
    assert "full" in server.asked[-1], "never longer than the hard limit"


async def test_a_change_list_of_more_than_a_page_is_answered_by_a_full_listing() -> None:
    server, connection = Server(page_size=2), uuid4()
    server.write("c0", "Zero")
    cache = ListingCache(clock=Clock())
    await _look(cache, server, connection)
    for n in range(4):  # a bulk edit: more than one page of changes
        server.write(f"b{n}", f"Bulk {n}")
    found = await _look(cache, server, connection)
    assert len(found) == 5
    assert "full" in server.asked[-1]
    assert "modifiedSince" in server.asked[-2]
