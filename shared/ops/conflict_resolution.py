"""Resolving a field conflict by choosing a side, as the admin API, console and syncctl ask it.

Choosing a side is not only a record of the choice: both systems must end up holding that side's
value. The writes are the engine's (``shared.sync.resolution``), so they go through the API
budgets with Idempotency-Key and If-Match like any change. Here the request is checked against
the ownership table first (a refusal is answered at once, with the rule's reason, and nothing is
queued), the choice is kept on the conflict, and one change event for the chosen side's record is
published; the engine closes the conflict when both sides hold the value.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.adapters.broker import EventPublisher
from shared.adapters.postgres.links import ConflictRepository, LinkRepository
from shared.domain.events import ChangeEvent
from shared.domain.links import Link
from shared.domain.ownership import OwnershipPolicy
from shared.domain.resolution import DOCUMENT_ENTITIES, RESOLVE_OPERATION, OpenConflict, refusal
from shared.infra.db import DbConnection
from shared.infra.logging import get_logger

log = get_logger("ops.conflicts")


class Refused(ValueError):
    """The choice cannot be carried out; the message says why, for the person who made it."""


@dataclass(frozen=True)
class Requested:
    conflict_id: int
    side: str
    field: str
    event_id: str


def _entity_word(conflict: OpenConflict, link: Link, side: str) -> str:
    """The entity word of a change event about this link's record on ``side``."""
    if conflict.entity == "contact":
        return link.qbo_type.lower() if side == "qbo" else "contact"
    kind = DOCUMENT_ENTITIES[conflict.entity]
    return kind.qbo_word if side == "qbo" else kind.released_category


async def _event(conn: DbConnection, conflict: OpenConflict, link: Link, side: str) -> ChangeEvent:
    row = await conn.fetchrow(
        "SELECT qbo_realm_id, released_company_id FROM connections WHERE id = $1",
        conflict.connection_id,
    )
    account = row and (row["qbo_realm_id"] if side == "qbo" else row["released_company_id"])
    record_id = link.qbo_id if side == "qbo" else link.released_id
    if not account or not record_id:
        raise Refused("the connection or the record has no id on that side")
    now = datetime.now(UTC)
    return ChangeEvent(
        event_id=f"resolve-{conflict.id}-{uuid.uuid4().hex}",
        source=side,
        connection_id=conflict.connection_id,
        account_id=str(account),
        entity=_entity_word(conflict, link, side),
        entity_id=str(record_id),
        operation=RESOLVE_OPERATION,
        occurred_at=now,
        received_at=now,
        origin="replay",
        related_id=str(conflict.id),
    )


async def request(
    conn: DbConnection,
    publisher: EventPublisher,
    conflict_id: int,
    side: str,
    requested_by: str,
    policy: OwnershipPolicy | None = None,
) -> Requested | None:
    """Queue the engine's resolution of an open conflict (None: no such open conflict)."""
    async with conn.transaction():
        conflict = await ConflictRepository(conn).open_conflict(conflict_id)
        if conflict is None:
            return None
        why = refusal(policy or OwnershipPolicy(), conflict, side)
        link = await LinkRepository(conn).by_id(conflict.link_id) if conflict.link_id else None
        if why is None and (link is None or link.status != "linked"):
            why = "the conflict's records are no longer linked; relink them first"
        if why is not None or link is None:
            log.info("conflict_resolution_refused", conflict_id=conflict_id, side=side, reason=why)
            raise Refused(why or "not resolvable")
        event = await _event(conn, conflict, link, side)
        await conn.execute(
            "UPDATE conflicts SET requested_side = $2, requested_by = $3, requested_at = now(), "
            "resolution = NULL WHERE id = $1",
            conflict_id,
            side,
            requested_by[:200],
        )
        # Published before the commit: a broker that refuses it leaves no choice recorded.
        await publisher.publish(event)
    log.info(
        "conflict_resolution_requested",
        connection_id=str(conflict.connection_id),
        conflict_id=conflict_id,
        side=side,
        field=conflict.field,
        event_id=event.event_id,
        requested_by=requested_by,
    )
    return Requested(conflict_id, side, conflict.field, event.event_id)
