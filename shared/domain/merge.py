"""Field-level three-way merge against the last-synced snapshot (guarantee 8).

``base`` is what both sides agreed on at the last sync; ``source`` is the side whose change we are
applying, ``target`` the other side now. A field changed on one side only takes that side's value;
a field changed on both sides to different values is a conflict, decided by ``winner`` and
reported so it can be recorded and logged. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Winner = Literal["source", "target"]


@dataclass(frozen=True)
class FieldConflict:
    field: str
    base: Any
    source: Any
    target: Any
    chosen: Any


@dataclass
class MergeResult:
    merged: dict[str, Any]
    conflicts: list[FieldConflict] = field(default_factory=list)
    # Fields whose merged value differs from the target's: what must be written to the target.
    target_changes: dict[str, Any] = field(default_factory=dict)
    # Fields whose merged value differs from the source's: the source must be updated too.
    source_changes: dict[str, Any] = field(default_factory=dict)


def three_way_merge(
    base: Mapping[str, Any] | None,
    source: Mapping[str, Any],
    target: Mapping[str, Any] | None,
    winner: Winner,
) -> MergeResult:
    if target is None:
        return MergeResult(dict(source), target_changes=dict(source))
    known = base or {}
    merged: dict[str, Any] = {}
    conflicts: list[FieldConflict] = []
    for name in sorted(set(source) | set(target)):
        before, ours, theirs = known.get(name), source.get(name), target.get(name)
        if ours == theirs:
            merged[name] = ours
        elif base is None:
            # Never synced: nothing to compare against, the change being applied wins.
            merged[name] = ours
        elif theirs == before:
            merged[name] = ours
        elif ours == before:
            merged[name] = theirs
        else:
            chosen = ours if winner == "source" else theirs
            conflicts.append(FieldConflict(name, before, ours, theirs, chosen))
            merged[name] = chosen
    return MergeResult(
        merged,
        conflicts,
        target_changes={k: v for k, v in merged.items() if target.get(k) != v},
        source_changes={k: v for k, v in merged.items() if source.get(k) != v},
    )
