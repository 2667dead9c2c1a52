"""Links between records on both sides, and the bookkeeping around each applied change (outcomes,
conflicts), read and written inside the change's transaction."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from shared.domain.canonical import canonical_hash
from shared.domain.links import Link
from shared.domain.outcomes import OutcomeRecord
from shared.domain.resolution import OpenConflict, values_by_side
from shared.infra.db import DbConnection

_COLUMNS = (
    "id, connection_id, entity, qbo_type, qbo_id, released_id, qbo_version, released_version, "
    "snapshot, snapshot_hash, status"
)


class LinkRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def by_qbo(self, connection_id: UUID, qbo_type: str, qbo_id: str) -> Link | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM links WHERE connection_id = $1 AND qbo_type = $2 "  # noqa: S608
            "AND qbo_id = $3",
            connection_id,
            qbo_type,
            qbo_id,
        )
        return Link(**dict(row)) if row else None

    async def by_id(self, link_id: int) -> Link | None:
        row = await self._conn.fetchrow(
            f"SELECT {_COLUMNS} FROM links WHERE id = $1",  # noqa: S608 - fixed columns
            link_id,
        )
        return Link(**dict(row)) if row else None

    async def by_released(self, connection_id: UUID, entity: str, released_id: str) -> list[Link]:
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM links WHERE connection_id = $1 AND entity = $2 "  # noqa: S608
            "AND released_id = $3 ORDER BY qbo_type",
            connection_id,
            entity,
            released_id,
        )
        return [Link(**dict(r)) for r in rows]

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
        """Insert or update the pair, recording both versions and the merge base."""
        link_id: int = await self._conn.fetchval(
            """
            INSERT INTO links (connection_id, entity, qbo_type, qbo_id, qbo_version, released_id,
                               released_version, snapshot, snapshot_hash, status, last_synced_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
            ON CONFLICT (connection_id, qbo_type, qbo_id) DO UPDATE SET
                released_id = EXCLUDED.released_id,
                qbo_version = EXCLUDED.qbo_version,
                released_version = EXCLUDED.released_version,
                snapshot = EXCLUDED.snapshot,
                snapshot_hash = EXCLUDED.snapshot_hash,
                status = EXCLUDED.status,
                last_error = NULL,
                last_synced_at = now(),
                updated_at = now()
            RETURNING id
            """,
            connection_id,
            entity,
            qbo_type,
            qbo[0],
            qbo[1],
            released[0],
            released[1],
            snapshot,
            canonical_hash(snapshot),
            status,
        )
        return link_id

    async def class_of_option(self, connection_id: UUID, option_id: str) -> str | None:
        """The QBO Class linked to a Re-Leased tracking option (links hold
        ``category:option``)."""
        found = await self._conn.fetchval(
            "SELECT qbo_id FROM links WHERE connection_id = $1 AND entity = 'tracking_class' "
            "AND released_id LIKE '%:' || $2",
            connection_id,
            option_id,
        )
        return str(found) if found is not None else None

    async def attachment_holders(
        self, connection_id: UUID, attachment: str, *, live: bool = False
    ) -> list[Link]:
        """Every link (only the linked ones when ``live``) naming this Re-Leased attachment in
        its snapshot: deduplication lets one file stand for several QBO Attachables."""
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM links "  # noqa: S608 - fixed columns
            "WHERE connection_id = $1 AND entity = 'attachment' "
            "AND snapshot->>'released_attachment' = $2 AND ($3 = false OR status = 'linked') "
            "ORDER BY id",
            connection_id,
            attachment,
            live,
        )
        return [Link(**dict(r)) for r in rows]

    async def attachment_on(self, connection_id: UUID, document: str, sha256: str) -> bool:
        found = await self._conn.fetchval(
            "SELECT 1 FROM links WHERE connection_id = $1 AND entity = 'attachment' "
            "AND status = 'linked' AND snapshot->>'document' = $2 AND snapshot->>'sha256' = $3",
            connection_id,
            document,
            sha256,
        )
        return found is not None

    async def set_status(self, link_id: int, status: str, error: str | None = None) -> None:
        await self._conn.execute(
            "UPDATE links SET status = $2, last_error = $3, updated_at = now() WHERE id = $1",
            link_id,
            status,
            error,
        )


class OutcomeRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def record(self, item: OutcomeRecord) -> None:
        await self._conn.execute(
            "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
            "target_id, outcome, reason, remedy, label) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            item.connection_id,
            item.event_id,
            item.direction,
            item.entity,
            item.source_id,
            item.target_id,
            item.outcome,
            item.reason,
            item.remedy,
            item.label,
        )


class ConflictRepository:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

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
        conflict_id: int = await self._conn.fetchval(
            "INSERT INTO conflicts (connection_id, link_id, entity, event_id, kind, fields, "
            "winner, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            connection_id,
            link_id,
            entity,
            event_id,
            kind,
            json.loads(json.dumps(fields, default=str)),
            winner,
            detail,
        )
        return conflict_id

    async def open_conflict(self, conflict_id: int) -> OpenConflict | None:
        """An open conflict, locked until this transaction ends (None: closed or unknown). The
        side that made the change is in its fields; older rows have it from their outcome."""
        row = await self._conn.fetchrow(
            "SELECT c.id, c.connection_id, c.link_id, c.entity, c.kind, c.fields, "
            "c.requested_by, coalesce(c.fields->>'source_side', (SELECT CASE o.direction "
            "WHEN 'released_to_qbo' THEN 'released' ELSE 'qbo' END FROM sync_outcomes o "
            "WHERE o.event_id = c.event_id ORDER BY o.id LIMIT 1), 'qbo') AS source_side "
            "FROM conflicts c WHERE c.id = $1 AND c.resolved_at IS NULL FOR UPDATE OF c",
            conflict_id,
        )
        if row is None:
            return None
        fields = dict(row["fields"] or {})
        return OpenConflict(
            id=row["id"],
            connection_id=row["connection_id"],
            link_id=row["link_id"],
            entity=row["entity"],
            field=str(fields.get("field")),
            base=fields.get("base"),
            values=values_by_side(fields, row["source_side"]),
            kind=row["kind"],
            requested_by=row["requested_by"],
        )

    async def close(self, conflict_id: int, resolved_by: str, resolution: str) -> None:
        await self._conn.execute(
            "UPDATE conflicts SET resolved_at = now(), resolved_by = $2, resolution = $3 "
            "WHERE id = $1 AND resolved_at IS NULL",
            conflict_id,
            resolved_by,
            resolution[:500],
        )

    async def note(self, conflict_id: int, resolution: str) -> None:
        """Why a requested resolution could not be carried out; the conflict stays open."""
        await self._conn.execute(
            "UPDATE conflicts SET resolution = $2, requested_side = NULL WHERE id = $1",
            conflict_id,
            resolution[:500],
        )
