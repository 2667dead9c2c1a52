"""How the inbox's group commit groups deliveries (the statements themselves are tested on
PostgreSQL in tests/integration/test_edge_isolation.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.adapters.postgres.inbox import PENDING, InboxEntry
from shared.domain.events import ChangeEvent
from shared.ingest import group_commit
from shared.ingest.group_commit import InboxWriter


def entries(prefix: str, count: int) -> list[InboxEntry]:
    at = datetime(2026, 11, 30, tzinfo=UTC)
    return [
        InboxEntry(
            ChangeEvent.checked(
                event_id=f"{prefix}-{n}",
                source="qbo",
                account_id="realm-1",
                entity="invoice",
                entity_id=str(n),
                operation="update",
                occurred_at=at,
            ),
            PENDING,
        )
        for n in range(count)
    ]


class Statements:
    """Stands in for the insert: records each group's size and holds it until released."""

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.running = self.most = 0
        self.release = asyncio.Event()

    async def insert(self, pool: Any, rows: list[InboxEntry]) -> set[str]:
        self.groups.append(len(rows))
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self.release.wait()
        finally:
            self.running -= 1
        return {e.event.event_id for e in rows}


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_small_deliveries_wait_for_the_running_group_and_go_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 18: with a writer free for each, single-event posts were committed in groups of
    one or two (a statement and a commit each); now what arrives while a group commits goes
    together in the next one."""
    statements = Statements()
    monkeypatch.setattr(group_commit, "_insert", statements.insert)
    writer = InboxWriter(None, writers=4, spread_rows=100)  # type: ignore[arg-type]
    writer.start()
    first = asyncio.create_task(writer.store(entries("a", 1)))
    await settle()
    later = [asyncio.create_task(writer.store(entries(f"b{n}", 1))) for n in range(5)]
    await settle()
    assert statements.groups == [1]  # the five wait: not worth a statement each
    statements.release.set()
    results = await asyncio.gather(first, *later)
    assert statements.groups == [1, 5]
    assert [r.new for r in results] == [{"a-0"}] + [{f"b{n}-0"} for n in range(5)]
    await writer.stop()


async def test_enough_waiting_rows_start_another_group_beside_the_running_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    statements = Statements()
    monkeypatch.setattr(group_commit, "_insert", statements.insert)
    writer = InboxWriter(None, writers=2, spread_rows=100)  # type: ignore[arg-type]
    writer.start()
    stores = [asyncio.create_task(writer.store(entries("a", 100)))]
    await settle()
    stores.append(asyncio.create_task(writer.store(entries("b", 60))))
    await settle()
    assert statements.groups == [100]  # 60 rows wait for the running group
    stores.append(asyncio.create_task(writer.store(entries("c", 60))))
    await settle()
    assert statements.groups == [100, 120]  # 120 waiting: worth a second group beside it
    stores.append(asyncio.create_task(writer.store(entries("d", 200))))
    await settle()
    assert statements.most == 2  # never more than ``writers`` at once
    statements.release.set()
    await asyncio.gather(*stores)
    assert statements.groups == [100, 120, 200]
    await writer.stop()


async def test_a_stopped_writer_fails_every_delivery_it_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Committing or still waiting: each delivery gets an error (the endpoint answers 503 or
    falls back to the broker), none waits for good."""
    statements = Statements()
    monkeypatch.setattr(group_commit, "_insert", statements.insert)
    writer = InboxWriter(None, writers=1)  # type: ignore[arg-type]
    writer.start()
    running = asyncio.create_task(writer.store(entries("a", 1)))
    waiting = asyncio.create_task(writer.store(entries("b", 1)))
    await settle()
    await writer.stop()
    with pytest.raises(ConnectionError):
        await waiting
    with pytest.raises(ConnectionError):
        await running
