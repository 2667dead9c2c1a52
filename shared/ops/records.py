"""Conflicts and links, as operators see and correct them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from shared.infra.db import DbConnection, plain_row
from shared.infra.logging import get_logger

log = get_logger("ops.records")

_LINK_COLUMNS = (
    "id, connection_id, entity, qbo_type, qbo_id, released_id, qbo_version, released_version, "
    "status, last_error, last_synced_at, updated_at"
)


async def list_conflicts(
    conn: DbConnection,
    connection_id: UUID | None = None,
    *,
    include_resolved: bool = False,
    limit: int = 100,
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, connection_id, link_id, entity, event_id, kind, fields, winner, detail, "
        "created_at, resolved_at, resolved_by, requested_side, requested_by, requested_at, "
        "resolution FROM conflicts "
        "WHERE ($1::uuid IS NULL OR connection_id = $1) AND ($2 OR resolved_at IS NULL) "
        "ORDER BY created_at, id LIMIT $3",
        connection_id,
        include_resolved,
        limit,
    )
    return [plain_row(r) for r in rows]


async def resolve_conflict(conn: DbConnection, conflict_id: int, resolved_by: str) -> bool:
    """Close an open conflict; False when it does not exist or was already resolved."""
    done: str = await conn.execute(
        "UPDATE conflicts SET resolved_at = now(), resolved_by = $2 "
        "WHERE id = $1 AND resolved_at IS NULL",
        conflict_id,
        resolved_by,
    )
    resolved = done.endswith(" 1")
    if resolved:
        log.info("conflict_resolved", conflict_id=conflict_id, resolved_by=resolved_by)
    return resolved


async def find_links(
    conn: DbConnection,
    connection_id: UUID,
    *,
    record_id: str | None = None,
    entity: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Links of a connection, optionally those whose QBO or Re-Leased id is ``record_id``."""
    rows = await conn.fetch(
        f"SELECT {_LINK_COLUMNS} FROM links WHERE connection_id = $1 "  # noqa: S608 - fixed
        "AND ($2::text IS NULL OR qbo_id = $2 OR released_id = $2) "
        "AND ($3::text IS NULL OR entity = $3) ORDER BY id LIMIT $4",
        connection_id,
        record_id,
        entity,
        limit,
    )
    return [plain_row(r) for r in rows]


async def get_link(conn: DbConnection, link_id: int) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {_LINK_COLUMNS} FROM links WHERE id = $1",  # noqa: S608 - fixed columns
        link_id,
    )
    return plain_row(row) if row else None


async def unlink(conn: DbConnection, link_id: int) -> dict[str, Any] | None:
    """Stop syncing this pair: the engine ignores changes to an unlinked record."""
    await conn.execute(
        "UPDATE links SET status = 'unlinked', updated_at = now() WHERE id = $1", link_id
    )
    log.info("link_unlinked", link_id=link_id)
    return await get_link(conn, link_id)


async def relink(
    conn: DbConnection,
    link_id: int,
    *,
    qbo_id: str | None = None,
    released_id: str | None = None,
) -> dict[str, Any] | None:
    """Sync the pair again, optionally pointing it at other records.

    A changed side forgets its last-seen version, so the next change on it is compared in full
    rather than recognised as our own echo.
    """
    await conn.execute(
        "UPDATE links SET status = 'linked', updated_at = now(), last_error = NULL, "
        "qbo_id = coalesce($2, qbo_id), "
        "qbo_version = CASE WHEN $2::text IS NULL THEN qbo_version END, "
        "released_id = coalesce($3, released_id), "
        "released_version = CASE WHEN $3::text IS NULL THEN released_version END "
        "WHERE id = $1",
        link_id,
        qbo_id,
        released_id,
    )
    log.info("link_relinked", link_id=link_id, qbo_id=qbo_id, released_id=released_id)
    return await get_link(conn, link_id)
