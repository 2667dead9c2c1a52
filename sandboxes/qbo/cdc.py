"""Change data capture: what changed in a realm since a moment, within QBO's limits."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sandboxes.qbo import errors
from sandboxes.qbo.clock import parse_time, qbo_time, utcnow
from sandboxes.qbo.entities import ENTITIES, canonical
from sandboxes.qbo.store import Obj, Realm

LOOKBACK = timedelta(days=30)
MAX_OBJECTS = 1000


def parse_request(entities: str | None, changed_since: str | None) -> tuple[list[str], datetime]:
    if not entities:
        raise errors.required("entities")
    if not changed_since:
        raise errors.required("changedSince")
    names = []
    for raw in entities.split(","):
        name = canonical(raw.strip())
        if name is None or not ENTITIES[name].cdc:
            raise errors.invalid(f"CDC is not supported for entity {raw.strip()}", "4001")
        names.append(name)
    since = parse_time(changed_since)
    if since is None:
        raise errors.invalid(f"Invalid changedSince value: {changed_since}", "2040")
    if since < utcnow() - LOOKBACK:
        raise errors.invalid(
            "changedSince is more than 30 days in the past; CDC looks back 30 days at most.",
            "4001",
        )
    return names, since


def changes(realm: Realm, names: list[str], since: datetime) -> list[dict[str, Any]]:
    """One QueryResponse element per entity: live objects by update time, then deletions."""
    budget = MAX_OBJECTS
    responses: list[dict[str, Any]] = []
    for name in names:
        live = sorted(
            (o for o in realm.table(name).values() if o["_updated"] >= since),
            key=lambda o: o["_updated"],
        )
        gone = sorted(
            (
                (obj_id, when)
                for obj_id, when in realm.tombstones.get(name, {}).items()
                if when >= since
            ),
            key=lambda item: item[1],
        )
        rows: list[Obj] = list(live[: max(budget, 0)])
        for obj_id, when in gone[: max(budget - len(rows), 0)]:
            rows.append(
                {
                    "domain": "QBO",
                    "status": "Deleted",
                    "Id": obj_id,
                    "MetaData": {"LastUpdatedTime": qbo_time(when)},
                }
            )
        budget -= len(rows)
        element: dict[str, Any] = {"startPosition": 1, "maxResults": len(rows)}
        if rows:
            element = {name: rows, **element}
        responses.append(element)
    return [{"QueryResponse": responses}]
