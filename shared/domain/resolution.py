"""Resolving a field conflict by choosing a side: what may be forced which way. Pure: no I/O.

When both sides changed a field since the last sync, the engine kept the connection's winner and
wrote it to both sides (``shared.domain.merge``). A person who chooses the other side's value
asks for that value to be written where it is missing. The same ownership table that governs
every change governs this one: the chosen value flows *from* the chosen side, so it is the change
(entity, operation, chosen side) that must be allowed. Refused when it is not (master data from
Re-Leased, a contact's archive state from Re-Leased), with the rule's reason, before anything is
queued; the engine checks again before it writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.domain.mapping.kinds import KINDS
from shared.domain.ownership import Op, Outcome, OwnershipPolicy, Side

# The operation word of the change event that carries a resolution to the engine.
RESOLVE_OPERATION = "resolve"
SIDE_NAMES: dict[str, str] = {"qbo": "QuickBooks", "released": "Re-Leased"}
DOCUMENT_ENTITIES = {k.entity: k for k in KINDS}
# Entities whose field conflicts the engine can write back (the ones whose merges record them).
RESOLVABLE = ("contact", *DOCUMENT_ENTITIES)
# A document's fields a side can be kept for. Its tax total, whether amounts include tax and its
# currency follow from its lines and its company: they are corrected in the document itself.
DOCUMENT_FIELDS = ("number", "date", "due_date", "contact", "lines")


@dataclass(frozen=True)
class OpenConflict:
    """An open field conflict as the resolution reads it: the value each side had."""

    id: int
    connection_id: Any
    link_id: int | None
    entity: str
    field: str
    base: Any
    values: dict[str, Any]  # side -> the value that side had when the engine met the clash
    kind: str = "field_conflict"
    requested_by: str | None = None

    def chosen(self, side: str) -> Any:
        return self.values[side]


def values_by_side(fields: dict[str, Any], source_side: str) -> dict[str, Any]:
    """The stored ``source``/``target`` values keyed by side (``source_side`` made the change)."""
    other = "released" if source_side == "qbo" else "qbo"
    return {source_side: fields.get("source"), other: fields.get("target")}


def _operation(entity: str, field: str, value: Any) -> Op:
    if entity == "contact" and field == "active":
        return Op.UNARCHIVE if value else Op.ARCHIVE
    return Op.UPSERT


def refusal(
    policy: OwnershipPolicy, conflict: OpenConflict, side: str, *, kind: str | None = None
) -> str | None:
    """Why choosing ``side`` cannot be carried out, or None when it can."""
    if side not in SIDE_NAMES:
        return "choose qbo or released"
    if (kind or conflict.kind) != "field_conflict":
        return "only a field conflict is resolved by choosing a side; acknowledge this flag"
    if conflict.entity not in RESOLVABLE:
        return f"{conflict.entity} conflicts cannot be written back; correct the record by hand"
    if conflict.entity in DOCUMENT_ENTITIES and conflict.field not in DOCUMENT_FIELDS:
        return (
            f"a document's {conflict.field} is not written back by choosing a side; "
            "correct it in the document and the change syncs"
        )
    if conflict.link_id is None:
        return "the conflict's records are no longer linked; relink them first"
    chosen: Side = "qbo" if side == "qbo" else "released"
    op = _operation(conflict.entity, conflict.field, conflict.chosen(side))
    decision = policy.decide(conflict.entity, op, chosen)
    if decision.outcome is not Outcome.APPLY:
        return (
            f"{conflict.field} of a {conflict.entity} flows only from the other side "
            f"({decision.why}): {SIDE_NAMES[side]}'s value cannot be written over it"
        )
    return None
