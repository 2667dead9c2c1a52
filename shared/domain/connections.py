"""A connection: one Re-Leased company bound to one QBO realm, and its settings.

Settings say what syncs, from when, and who wins a concurrent edit. They are stored as jsonb on the
connection row; the admin API validates every change through ``merge_settings`` and the engine
reads them through ``ConnectionSettings.applied``. Defaults follow the ownership rules (see
docs/architecture.md): documents in statuses AWAITING_APPROVAL and APPROVED, contacts won by
Re-Leased, documents and payments by QBO.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.domain.errors import PermanentError

SyncedStatus = Literal["AWAITING_APPROVAL", "APPROVED"]
Side = Literal["released", "qbo"]
DEFAULT_STATUSES: list[SyncedStatus] = ["AWAITING_APPROVAL", "APPROVED"]


@dataclass(frozen=True)
class Connection:
    """The binding as the engine and the reconciler see it (settings as stored)."""

    id: UUID
    released_company_id: str
    qbo_realm_id: str | None
    status: str
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: dt.datetime | None = None


class InvalidSettings(ValueError):
    """Settings a person sent that we will not store; the message says which field and why."""


class ConflictWinners(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    contact: Side = "released"
    document: Side = "qbo"
    payment: Side = "qbo"


class ConnectionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # None only on rows stored before settings existed: every date syncs for those.
    sync_from_date: dt.date | None = None
    synced_statuses: list[SyncedStatus] = Field(
        default_factory=lambda: list(DEFAULT_STATUSES), min_length=1
    )
    conflict_winners: ConflictWinners = Field(default_factory=ConflictWinners)
    contact_clash_suffix: str = Field(default=" (Supplier)", min_length=1, max_length=40)

    @field_validator("sync_from_date", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        # Lax pydantic would take a number as a Unix timestamp; people mean an ISO date.
        if isinstance(value, str | dt.date):
            return value
        raise ValueError("must be an ISO date (YYYY-MM-DD)")

    @field_validator("synced_statuses")
    @classmethod
    def _distinct(cls, value: list[SyncedStatus]) -> list[SyncedStatus]:
        if len(set(value)) != len(value):
            raise ValueError("statuses must not repeat")
        return value

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def applied(cls, stored: dict[str, Any]) -> ConnectionSettings:
        """What the engine applies: the stored document, defaults for what it lacks (no
        sync-from date means no date gate)."""
        try:
            return cls.model_validate(stored or {}, strict=False)
        except ValidationError as exc:
            raise PermanentError(
                f"the connection's settings are invalid: {_explain(exc)}",
                remedy="correct them with PATCH /api/connections/{id}/settings, then replay",
            ) from None

    def winner(self, group: Literal["contact", "document", "payment"]) -> Side:
        """The side whose value a field changed on both sides takes."""
        side: Side = getattr(self.conflict_winners, group)
        return side

    def syncs_status(self, status: str) -> bool:
        """Whether a Re-Leased document in ``status`` goes to QBO (PAID is APPROVED with the
        money in: it syncs whenever APPROVED does)."""
        if status == "PAID":
            return "APPROVED" in self.synced_statuses
        return status in self.synced_statuses


def default_settings(sync_from_date: dt.date | None = None) -> ConnectionSettings:
    return ConnectionSettings(sync_from_date=sync_from_date or dt.datetime.now(dt.UTC).date())


def _explain(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )


def merge_settings(stored: dict[str, Any], patch: Any) -> ConnectionSettings:
    """Apply a partial update (``conflict_winners`` merges per group) and validate the result."""
    if not isinstance(patch, dict):
        raise InvalidSettings("body must be a JSON object")
    # Rows written before settings existed hold {}: fill the defaults in first.
    base = {**default_settings().document(), **stored}
    merged = {**base, **patch}
    winners = patch.get("conflict_winners")
    if isinstance(winners, dict):
        merged["conflict_winners"] = {**base.get("conflict_winners", {}), **winners}
    try:
        return ConnectionSettings.model_validate(merged, strict=False)
    except ValidationError as exc:
        raise InvalidSettings(_explain(exc)) from None


def effective_settings(stored: dict[str, Any]) -> ConnectionSettings:
    """What applies to a connection: the stored document with defaults for anything missing."""
    return merge_settings(stored, {})
