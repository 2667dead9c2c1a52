"""Conflicts as a person compares them: the base and each side's value side by side.

A field conflict stores the value of the side whose change the engine was applying (``source``)
and of the other side (``target``); which side was which is in its fields (``source_side``), or
for conflicts recorded before that, the direction of the outcome written in the same transaction.
"""

from __future__ import annotations

from typing import Any

from shared.infra.db import DbConnection


async def side_by_side(conn: DbConnection, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (event_id) event_id, direction FROM sync_outcomes "
        "WHERE event_id = ANY($1::text[]) ORDER BY event_id, id",
        [i["event_id"] for i in items],
    )
    direction = {r["event_id"]: r["direction"] for r in rows}
    shown = []
    for item in items:
        fields = item.get("fields") or {}
        side = fields.get("source_side")
        from_qbo = (
            side == "qbo"
            if side
            else direction.get(item["event_id"], "qbo_to_released") == "qbo_to_released"
        )
        source, target = fields.get("source"), fields.get("target")
        shown.append(
            {
                **item,
                "field": fields.get("field"),
                "base": fields.get("base"),
                "qbo": source if from_qbo else target,
                "released": target if from_qbo else source,
            }
        )
    return shown
