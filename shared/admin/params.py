"""Parsing of admin API parameters (query strings and JSON bodies): every value is checked for
type and range before it reaches SQL, so a bad one is a 400 with a reason, never a 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.infra.errors import InfraUnavailable

# Ids are PostgreSQL bigints; a listing returns at most this many rows.
MAX_ID = 2**63 - 1
MAX_LIMIT = 10_000


class BadRequest(ValueError):
    """A parameter could not be parsed."""


def _uuid(raw: Any) -> UUID | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise BadRequest(f"not a connection id: {raw!r}"[:200])
    try:
        return UUID(raw)
    except ValueError as exc:
        raise BadRequest(f"not a connection id: {raw!r}") from exc


def _time(raw: Any) -> datetime | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise BadRequest(f"not an ISO-8601 time: {raw!r}"[:200])
    try:
        return datetime.fromisoformat(raw)
    except ValueError as exc:
        raise BadRequest(f"not an ISO-8601 time: {raw!r}") from exc


def _int(raw: Any, default: int, name: str, low: int = 1, high: int = MAX_ID) -> int:
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise BadRequest(f"{name} must be an integer")
    try:
        value = int(raw) if isinstance(raw, int) or len(raw) <= 20 else None
    except ValueError:
        value = None
    if value is None:
        raise BadRequest(f"{name} must be an integer")
    if not low <= value <= high:
        raise BadRequest(f"{name} must be between {low} and {high}")
    return value


def _limit(raw: Any, default: int = 100) -> int:
    return _int(raw, default, "limit", 1, MAX_LIMIT)


def _text(raw: Any, name: str) -> str | None:
    """An optional text parameter: a string or nothing (a list or number is refused)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > 500:
        raise BadRequest(f"{name} must be a string of at most 500 characters")
    return raw


def error_response(status_code: int, code: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": code, "reason": reason}, status_code=status_code)


Handler = Callable[[Request], Awaitable[Response]]


def guarded(handler: Handler, *bad_input: type[Exception]) -> Handler:
    """Bad parameters (``BadRequest`` and ``bad_input``) answer 400, an unreachable broker 503;
    the rest reaches RequestLog."""
    refused: tuple[type[Exception], ...] = (BadRequest, *bad_input)

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except refused as exc:
            return error_response(400, "invalid_request", str(exc))
        except InfraUnavailable as exc:
            return error_response(503, "broker_unavailable", f"{exc}; nothing was changed")

    return run
