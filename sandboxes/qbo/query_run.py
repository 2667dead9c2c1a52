"""Running a parsed QBO query over a realm's table: matching, ordering, paging, projection.

Comparisons follow QBO: strings case-insensitively, numbers and dates as such, dotted fields
(``MetaData.LastUpdatedTime``) and lists of references (``Line.*``) looked into.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxes.qbo.clock import parse_time
from sandboxes.qbo.entities import ENTITIES, Kind
from sandboxes.qbo.query import Condition, Query
from sandboxes.qbo.store import Obj


def values_at(obj: Obj, path: str) -> list[Any]:
    """Every value at a dotted path; arrays (e.g. AttachableRef) fan out, as in QBO."""
    current: list[Any] = [obj]
    for part in path.split("."):
        lowered = part.lower()
        found: list[Any] = []
        for value in current:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    found.extend(v for k, v in item.items() if k.lower() == lowered)
        current = found
    flat: list[Any] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return [v for v in flat if v is not None]


def lookup(obj: Obj, path: str) -> Any:
    found = values_at(obj, path)
    return found[0] if found else None


def _comparable(value: Any, like: Any) -> Any:
    """Bring a stored value and a literal to one comparable type."""
    if isinstance(like, bool) or isinstance(value, bool):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if isinstance(like, Decimal):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if isinstance(like, datetime):
        return parse_time(str(value)) if "T" in str(value) else None
    if isinstance(value, dict) and "value" in value:  # refs compare by id
        return str(value["value"]).lower()
    return str(value).lower()


def _coerce(actual: Any, literal: Any) -> Any:
    """Quoted literals compare as the stored type: Balance > '0' is numeric, Active = 'true'."""
    if not isinstance(literal, str):
        return literal
    if isinstance(actual, bool):
        return literal.lower() == "true"
    if isinstance(actual, Decimal | int):
        try:
            return Decimal(literal)
        except InvalidOperation:
            return literal
    return literal


def _literal_form(literal: Any) -> Any:
    if isinstance(literal, str) and "T" in literal and parse_time(literal) is not None:
        return parse_time(literal)
    return literal.lower() if isinstance(literal, str) else literal


def matches(obj: Obj, cond: Condition) -> bool:
    return any(_matches_value(actual, cond) for actual in values_at(obj, cond.path))


def _matches_value(actual: Any, cond: Condition) -> bool:
    if cond.op == "like":
        pattern = "".join(".*" if ch == "%" else re.escape(ch) for ch in str(cond.values[0]))
        return re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
    for raw in cond.values:
        literal = _literal_form(_coerce(actual, raw))
        value = _comparable(actual, literal)
        if value is None:
            continue
        if _compare(value, cond.op, literal):
            return True
    return False


def _compare(value: Any, op: str, literal: Any) -> bool:
    if op in ("=", "in"):
        return bool(value == literal)
    if op == "!=":
        return bool(value != literal)
    try:
        return bool(
            {"<": value < literal, ">": value > literal, "<=": value <= literal}.get(
                op, value >= literal
            )
        )
    except TypeError:
        return False


def _sort_key(obj: Obj, path: str) -> tuple[int, Any]:
    value = lookup(obj, path)
    if value is None:
        return (3, "")
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return (0, Decimal(value))
    when = parse_time(str(value)) if "T" in str(value) else None
    if when is not None:
        return (1, when)
    text = str(value)
    return (0, Decimal(text)) if text.isdigit() else (2, text.lower())


def _by_id(query: Query, table: dict[str, Obj]) -> list[Obj]:
    """Candidate rows: straight from the table for ``Id = v`` / ``Id in (...)`` (QBO indexes
    Id; scanning a 10,000-row table per lookup would make the sandbox, not the client, the
    bottleneck). Every condition is still checked on the candidates, so answers are unchanged."""
    for cond in query.where:
        if cond.path.lower() != "id" or cond.op not in ("=", "in"):
            continue
        keys = []
        for value in cond.values:
            if isinstance(value, bool):
                break
            key = str(value)
            if not key.isdigit() and not isinstance(value, str):
                break  # e.g. 5.0, which compares numerically: leave it to the scan
            keys.append(key)
        else:
            return [table[k] for k in dict.fromkeys(keys) if k in table]
    return list(table.values())


def run(query: Query, table: dict[str, Obj]) -> tuple[list[Obj], int]:
    """Rows of the requested page and the total number that matched."""
    rows = _by_id(query, table)
    mentions_active = any(c.path.lower() == "active" for c in query.where)
    if ENTITIES[query.entity].kind is Kind.NAME_LIST and not mentions_active:
        # QBO returns only active name-list records unless the query asks about Active.
        rows = [r for r in rows if r.get("Active", True)]
    rows = [r for r in rows if all(matches(r, c) for c in query.where)]
    rows.sort(key=lambda r: _sort_key(r, "Id"))
    for path, descending in reversed(query.order):
        rows.sort(key=lambda r, p=path: _sort_key(r, p), reverse=descending)  # type: ignore[misc]
    total = len(rows)
    page = rows[query.start - 1 : query.start - 1 + query.max_results]
    if query.fields is not None:
        page = [_project(r, query.fields) for r in page]
    return page, total


def _project(obj: Obj, fields: list[str]) -> Obj:
    out: Obj = {"Id": obj["Id"]}
    for path in fields:
        head = path.split(".")[0]
        key = next((k for k in obj if k.lower() == head.lower()), None)
        if key is not None:
            out[key] = obj[key]
    out["domain"] = "QBO"
    out["sparse"] = True
    return out
