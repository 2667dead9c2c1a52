"""How one change ended, as stored per record (``sync_outcomes``) and logged."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class OutcomeRecord:
    connection_id: UUID | None
    event_id: str
    direction: str
    entity: str
    source_id: str
    outcome: str  # applied | echo | ignored | reverted | flagged | error
    target_id: str | None = None
    reason: str | None = None
    remedy: str | None = None
    label: str | None = None  # the record's number or name, when the engine read it
