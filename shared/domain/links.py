"""A link: one record on each side known to be the same thing, and what was last synced."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass
class Link:
    """Both ids and versions, the last-synced canonical snapshot (the merge base) and its hash;
    ``status`` is linked, unlinked (merged away or cut by an operator) or voided."""

    id: int
    connection_id: UUID
    entity: str
    qbo_type: str
    qbo_id: str | None
    released_id: str | None
    qbo_version: str | None
    released_version: str | None
    snapshot: dict[str, Any] | None
    snapshot_hash: str | None
    status: str
