"""List queries: filters, the (updatedAt, id) order and the paging envelope; JSON helpers."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import QueryParams
from starlette.responses import JSONResponse

from sandboxes.released.clock import format_ts, parse_ts
from sandboxes.released.errors import ApiError, invalid
from sandboxes.released.store import Record

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


def record_response(record: Record, status: int = 200) -> JSONResponse:
    headers = {"ETag": f'"{record["version"]}"'} if "version" in record else None
    return JSONResponse(record, status_code=status, headers=headers)


def check_version(if_match: str | None, record: Record) -> None:
    """``If-Match: "<version>"``: refuse to change a record the caller has not seen."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != str(record["version"]):
        raise ApiError(
            412,
            "VERSION_MISMATCH",
            f"version is {record['version']}, not {wanted}",
            element_id=str(record["id"]),
        )


def _int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid("INVALID_QUERY", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise invalid("INVALID_QUERY", f"{name} must be between {low} and {high}")
    return value


def _bool(params: QueryParams, name: str) -> bool:
    raw = (params.get(name) or "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise invalid("INVALID_QUERY", f"{name} must be true or false")
    return raw in ("true", "1")


def _csv(params: QueryParams, name: str) -> set[str] | None:
    raw = params.get(name)
    if not raw:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def filtered(records: Iterable[Record], params: QueryParams) -> list[Record]:
    statuses = _csv(params, "status")
    ids = _csv(params, "ids")
    numbers = _csv(params, "numbers")
    since_raw = params.get("modifiedSince")
    since = None
    if since_raw:
        parsed = parse_ts(since_raw)
        if parsed is None:
            raise invalid("INVALID_QUERY", "modifiedSince must be an ISO-8601 timestamp")
        since = format_ts(parsed)
    include_archived = _bool(params, "includeArchived") or bool(statuses and "ARCHIVED" in statuses)
    out = []
    for record in records:
        status = record.get("status")
        if statuses is not None and status not in statuses:
            continue
        if ids is not None and record["id"] not in ids:
            continue
        if numbers is not None and record.get("number") not in numbers:
            continue
        if since is not None and record["updatedAt"] < since:
            continue
        if status == "ARCHIVED" and not include_archived:
            continue
        out.append(record)
    out.sort(key=lambda r: (r["updatedAt"], r["id"]))
    return out


def page_response(records: Iterable[Record], params: QueryParams) -> JSONResponse:
    page = _int(params, "page", 1, 1, 1_000_000)
    size = _int(params, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    items = filtered(records, params)
    start = (page - 1) * size
    body: dict[str, Any] = {
        "pagination": {
            "page": page,
            "pageSize": size,
            "pageCount": math.ceil(len(items) / size),
            "itemCount": len(items),
        },
        "items": items[start : start + size],
    }
    return JSONResponse(body)
