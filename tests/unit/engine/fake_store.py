"""The engine's store of one change, in memory (a fake of ``SyncStore``).

``transaction`` gives what PostgreSQL gives the consumer: links, conflicts and outcomes written
during a change disappear when it fails; the twin ledger and the outcomes recorded for errors do
not (they are written on connections of their own). ``held_elsewhere`` plays another
transaction holding a lock.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared.domain.canonical import canonical_hash
from shared.domain.links import Link
from shared.domain.outcomes import OutcomeRecord
from shared.domain.resolution import OpenConflict, values_by_side


@dataclass
class Conflict:
    entity: str
    kind: str
    link_id: int | None
    event_id: str
    fields: dict[str, Any]
    winner: str | None
    detail: str
    connection_id: UUID | None = None
    resolved_by: str | None = None
    resolution: str | None = None
    requested_by: str | None = None


class FakeLinks:
    def __init__(self) -> None:
        self.rows: dict[int, Link] = {}
        self._ids = itertools.count(1)
        # What the next saves do, in order: raise (a transaction failing after the other side's
        # write) or, for None, save.
        self.fail_saves: list[Exception | None] = []

    async def by_qbo(self, connection_id: UUID, qbo_type: str, qbo_id: str) -> Link | None:
        for link in self.rows.values():
            if (link.connection_id, link.qbo_type, link.qbo_id) == (
                connection_id,
                qbo_type,
                qbo_id,
            ):
                return copy.deepcopy(link)
        return None

    async def by_id(self, link_id: int) -> Link | None:
        found = self.rows.get(link_id)
        return copy.deepcopy(found) if found else None

    async def by_released(self, connection_id: UUID, entity: str, released_id: str) -> list[Link]:
        found = [
            copy.deepcopy(link)
            for link in self.rows.values()
            if (link.connection_id, link.entity, link.released_id)
            == (connection_id, entity, released_id)
        ]
        return sorted(found, key=lambda link: link.qbo_type)

    async def save(
        self,
        connection_id: UUID,
        entity: str,
        qbo_type: str,
        *,
        qbo: tuple[str, str | None],
        released: tuple[str, str | None],
        snapshot: dict[str, Any],
        status: str = "linked",
    ) -> int:
        failure = self.fail_saves.pop(0) if self.fail_saves else None
        if failure is not None:
            raise failure
        current = await self.by_qbo(connection_id, qbo_type, qbo[0])
        link_id = current.id if current else next(self._ids)
        self.rows[link_id] = Link(
            id=link_id,
            connection_id=connection_id,
            entity=entity,
            qbo_type=qbo_type,
            qbo_id=qbo[0],
            released_id=released[0],
            qbo_version=qbo[1],
            released_version=released[1],
            snapshot=copy.deepcopy(snapshot),
            snapshot_hash=canonical_hash(snapshot),
            status=status,
        )
        return link_id

    async def set_status(self, link_id: int, status: str, error: str | None = None) -> None:
        self.rows[link_id].status = status

    async def class_of_option(self, connection_id: UUID, option_id: str) -> str | None:
        for link in self.rows.values():
            if link.entity == "tracking_class" and str(link.released_id).endswith(f":{option_id}"):
                return link.qbo_id
        return None

    async def attachment_holders(
        self, connection_id: UUID, attachment: str, *, live: bool = False
    ) -> list[Link]:
        return [
            copy.deepcopy(link)
            for link in sorted(self.rows.values(), key=lambda link: link.id)
            if link.entity == "attachment"
            and (link.snapshot or {}).get("released_attachment") == attachment
            and (not live or link.status == "linked")
        ]

    async def attachment_on(self, connection_id: UUID, document: str, sha256: str) -> bool:
        return any(
            link.entity == "attachment"
            and link.status == "linked"
            and (link.snapshot or {}).get("document") == document
            and (link.snapshot or {}).get("sha256") == sha256
            for link in self.rows.values()
        )

    def of(self, entity: str) -> list[Link]:
        return [link for link in self.rows.values() if link.entity == entity]


class FakeConflicts:
    def __init__(self) -> None:
        self.rows: list[Conflict] = []

    async def record(
        self,
        connection_id: UUID,
        entity: str,
        kind: str,
        *,
        link_id: int | None,
        event_id: str,
        fields: dict[str, Any],
        winner: str | None,
        detail: str,
    ) -> int:
        self.rows.append(
            Conflict(entity, kind, link_id, event_id, fields, winner, detail, connection_id)
        )
        return len(self.rows)

    async def open_conflict(self, conflict_id: int) -> OpenConflict | None:
        row = self.rows[conflict_id - 1] if 0 < conflict_id <= len(self.rows) else None
        if row is None or row.resolved_by is not None:
            return None
        return OpenConflict(
            id=conflict_id,
            connection_id=row.connection_id,
            link_id=row.link_id,
            entity=row.entity,
            field=str(row.fields.get("field")),
            base=row.fields.get("base"),
            values=values_by_side(row.fields, str(row.fields.get("source_side", "qbo"))),
            kind=row.kind,
            requested_by=row.requested_by,
        )

    async def close(self, conflict_id: int, resolved_by: str, resolution: str) -> None:
        row = self.rows[conflict_id - 1]
        row.resolved_by, row.resolution = resolved_by, resolution

    async def note(self, conflict_id: int, resolution: str) -> None:
        self.rows[conflict_id - 1].resolution = resolution


class FakeTwins:
    def __init__(self) -> None:
        self.rows: list[tuple[UUID, str, str, str, str]] = []

    async def record(
        self, connection_id: UUID, side: str, entity: str, record_id: str, source_id: str
    ) -> None:
        self.rows.append((connection_id, side, entity, record_id, source_id))

    async def source_of(
        self, connection_id: UUID, side: str, entity: str, record_id: str
    ) -> str | None:
        for row in self.rows:
            if row[:4] == (connection_id, side, entity, record_id):
                return row[4]
        return None

    async def twin_of(
        self, connection_id: UUID, side: str, entity: str, source_id: str
    ) -> str | None:
        for row in reversed(self.rows):
            if row[:3] == (connection_id, side, entity) and row[4] == source_id:
                return row[3]
        return None


@dataclass
class FakeLocks:
    taken: list[str] = field(default_factory=list)
    held_elsewhere: set[str] = field(default_factory=set)

    async def lock(self, key: str) -> None:
        if key in self.held_elsewhere:
            raise AssertionError(f"would wait forever for {key}")
        self.taken.append(key)

    async def try_lock(self, key: str) -> bool:
        if key in self.held_elsewhere:
            return False
        self.taken.append(key)
        return True

    async def try_lock_shared(self, key: str) -> bool:
        return key not in self.held_elsewhere


class FakeOutcomes:
    def __init__(self) -> None:
        self.rows: list[OutcomeRecord] = []

    async def record(self, item: OutcomeRecord) -> None:
        self.rows.append(item)


class FakeStore:
    def __init__(self) -> None:
        self.links = FakeLinks()
        self.conflicts = FakeConflicts()
        self.twins = FakeTwins()
        self.locks = FakeLocks()
        self.outcomes = FakeOutcomes()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        saved = copy.deepcopy((self.links.rows, self.conflicts.rows, self.outcomes.rows))
        try:
            yield
        except BaseException:
            self.links.rows, self.conflicts.rows, self.outcomes.rows = saved
            raise
        finally:
            self.locks.taken.clear()
