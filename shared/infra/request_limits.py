"""ASGI guards for HTTP services that take input from people and scripts (admin, sandboxes).

``BodyLimit`` answers 413 as soon as a body is announced or found to be larger than the cap,
before it is buffered; ``paths`` limits it to some routes (a sandbox's token and control
endpoints, while its attachment upload keeps its own rules).

``InputGuard`` refuses, with 400 and a reason, what the database would otherwise refuse with a
500 deep inside a handler: a NUL character in the query string, the path or any JSON string; a
lone surrogate; an integer outside PostgreSQL's bigint; JSON nested deeper than the interpreter
can walk. It buffers the (already capped) body once, checks it, and replays it to the app.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BIGINT_MAX = 2**63 - 1


async def _answer(send: Send, status: int, code: str, reason: str) -> None:
    raw = json.dumps({"error": code, "reason": reason}).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class _TooLarge(Exception):
    pass


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, paths: tuple[str, ...] = ()) -> None:
        self._app = app
        self._max = max_bytes
        self._paths = paths

    def _applies(self, scope: Scope) -> bool:
        if scope["type"] != "http":
            return False
        return not self._paths or str(scope["path"]).startswith(self._paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._applies(scope):
            await self._app(scope, receive, send)
            return
        declared = _declared_length(scope)
        reason = f"request body larger than {self._max} bytes"
        if declared is not None and declared > self._max:
            await _answer(send, 413, "body_too_large", reason)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self._max:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await _answer(send, 413, "body_too_large", reason)


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why a parsed JSON value cannot be stored as it is, or None."""
    if depth > 64:
        return "JSON nested more than 64 levels deep"
    if isinstance(value, str):
        if "\x00" in value:
            return "a string contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "a string is not valid UTF-8 (lone surrogate)"
        return None
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return None
    if isinstance(value, int):
        return None if -BIGINT_MAX - 1 <= value <= BIGINT_MAX else "an integer is out of range"
    items = [*value.keys(), *value.values()] if isinstance(value, dict) else list(value)
    for item in items:
        problem = json_problem(item, depth + 1)
        if problem:
            return problem
    return None


def _bounded_int(text: str) -> int:
    if len(text) > 40:
        raise ValueError("integer too long")
    return int(text)


class InputGuard:
    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        query = bytes(scope.get("query_string", b"")).lower()
        if b"%00" in query or b"\x00" in query or "\x00" in str(scope["path"]):
            await _answer(send, 400, "invalid_request", "NUL characters are not accepted")
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        problem = _body_problem(body)
        if problem:
            await _answer(send, 400, "invalid_request", problem)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app(scope, replay, send)


def _body_problem(body: bytes) -> str | None:
    if body.strip()[:1] not in (b"{", b"["):
        return None  # not JSON: the handler says what it expected
    try:
        document = json.loads(body, parse_int=_bounded_int)
    except RecursionError:
        return "JSON nested too deeply"
    except ValueError as exc:
        if "integer too long" in str(exc):
            return "an integer is out of range"
        return None  # malformed JSON: the handler answers it as before
    return json_problem(document)
