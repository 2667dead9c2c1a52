"""The webhook endpoint both receivers share: check, verify, parse, ingest, one log line.

Checks run cheapest-first and before anything is recorded: content type (415), a signature
header of the right form (401, before a byte of body is read), declared size (413), the body
itself under a read deadline (408) and a budget for all bodies not yet verified (503), the
signature over the raw bytes (401), shape (400, also for nesting too deep or numbers too long).
Only then does the delivery touch storage. So an unsigned sender costs nothing, and senders
with a plausible but wrong signature can hold at most the budget in memory between them.

The endpoint is a bare ASGI application, not a Starlette route: every webhook passes through
it, and the request and response objects, routing and middleware of the framework cost more
than the checks themselves (measured in bench/bench_ingest.py). The receiver app sends the
webhook path here and everything else (ops routes, 405s) to Starlette.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import Receive, Scope, Send

from shared.domain.events import ChangeEvent
from shared.domain.qbo_notifications import MalformedPayload
from shared.domain.signatures import verify
from shared.infra.logging import bind_unit_of_work, get_logger
from shared.ingest.pipeline import Ingestor, IngestResult

log = get_logger("webhooks")
_info = logging.getLogger("webhooks")  # the stdlib logger under ``log``: its level, cached


@dataclass
class Parsed:
    events: list[ChangeEvent]
    skipped: list[str] = field(default_factory=list)
    format: str = ""
    is_handshake: bool = False


@dataclass(frozen=True)
class ReceiverSpec:
    source: str
    signature_header: str
    content_types: frozenset[str]
    parse: Callable[[bytes], Parsed]
    delivery_header: str | None = None
    max_body_bytes: int = 5 * 1024 * 1024
    # A body must arrive within this; a sender trickling bytes gets 408.
    read_timeout_s: float = 10.0
    # Bytes of bodies being read whose signature is not checked yet, over all requests.
    unverified_budget_bytes: int = 64 * 1024 * 1024
    # Re-Leased's handshake expects bare status codes; QBO gets a reason in JSON.
    empty_bodies: bool = False


class _Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


_SIGNATURE_BYTES = 32  # HMAC-SHA256


def plausible_signature(header: str | None) -> bool:
    """The header decodes as base64 to an HMAC-SHA256 digest (the check proper needs the body)."""
    if not header or len(header) > 128:
        return False
    try:
        return len(base64.b64decode(header.strip(), validate=True)) == _SIGNATURE_BYTES
    except (binascii.Error, ValueError):
        return False


class _Budget:
    """Bytes held by bodies that are not verified yet, across every request of the endpoint."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, size: int) -> None:
        if self.held + size > self.limit:
            raise _Rejected(503, "too many unverified bodies in flight, retry later")
        self.held += size


async def _read_limited(
    receive: Receive, declared: str | None, limit: int, budget: _Budget
) -> bytes:
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Rejected(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = held = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Rejected(400, "client disconnected mid-body")
            chunk: bytes = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _Rejected(413, f"body larger than {limit} bytes")
                budget.take(len(chunk))
                held += len(chunk)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
    finally:
        budget.held -= held
    # One chunk is the usual case for a webhook: no copy.
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@dataclass
class _Headers:
    content_type: str = ""
    signature: str | None = None
    length: str | None = None
    delivery: str | None = None


class WebhookEndpoint:
    def __init__(
        self,
        spec: ReceiverSpec,
        key: str,
        ingestor: Ingestor,
        *,
        on_status: Callable[[int], None] = lambda status: None,
    ) -> None:
        self._spec = spec
        self._key = key
        self._ingestor = ingestor
        self._budget = _Budget(spec.unverified_budget_bytes)
        self._on_status = on_status
        self._signature = spec.signature_header.lower().encode("latin-1")
        self._delivery = (spec.delivery_header or "").lower().encode("latin-1") or None

    def _headers(self, scope: Scope) -> _Headers:
        """The four headers the endpoint reads, in one pass over the raw list."""
        found = _Headers()
        for name, value in scope["headers"]:
            if name == b"content-type":
                found.content_type = value.decode("latin-1")
            elif name == self._signature:
                found.signature = value.decode("latin-1")
            elif name == b"content-length":
                found.length = value.decode("latin-1")
            elif name == self._delivery:
                found.delivery = value.decode("latin-1")
        return found

    async def _send(self, send: Send, status: int, payload: dict[str, object]) -> None:
        self._on_status(status)
        if self._spec.empty_bodies:
            body, headers = b"", [(b"content-length", b"0")]
        else:
            body = json.dumps(payload).encode("utf-8")
            headers = [
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"content-type", b"application/json"),
            ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _checked_body(self, headers: _Headers, receive: Receive) -> bytes:
        spec = self._spec
        ctype = headers.content_type.split(";", 1)[0].strip().lower()
        if ctype not in spec.content_types:
            raise _Rejected(415, f"content type {ctype or 'missing'} is not accepted")
        if not plausible_signature(headers.signature):
            raise _Rejected(401, f"missing or invalid {spec.signature_header}")
        try:
            async with asyncio.timeout(spec.read_timeout_s):
                body = await _read_limited(
                    receive, headers.length, spec.max_body_bytes, self._budget
                )
        except TimeoutError:
            raise _Rejected(408, f"body not received within {spec.read_timeout_s:g} s") from None
        if not verify(self._key, body, headers.signature):
            raise _Rejected(401, f"missing or invalid {spec.signature_header}")
        return body

    async def _parsed(self, headers: _Headers, receive: Receive) -> Parsed:
        body = await self._checked_body(headers, receive)
        # Only a verified sender is held back, and before the work a delivery costs.
        await self._ingestor.pace()
        try:
            return self._spec.parse(body)
        except MalformedPayload as exc:
            raise _Rejected(400, str(exc)[:300]) from None
        except RecursionError:  # a structure deep enough to defeat even the parser's checks
            raise _Rejected(400, "body is nested too deeply") from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = self._headers(scope)
        bind_unit_of_work(source=self._spec.source, delivery_id=headers.delivery)
        try:
            parsed = await self._parsed(headers, receive)
        except _Rejected as rejected:
            log.warning(
                "webhook_received",
                outcome="rejected",
                status=rejected.status,
                reason=rejected.reason,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            await self._send(send, rejected.status, {"error": rejected.reason})
            return
        result = await self._ingestor.ingest(parsed.events)
        _log_accepted(parsed, result, started)
        if result.status != 200:
            await self._send(send, result.status, {"error": "storage unavailable, retry later"})
            return
        await self._send(send, 200, {"accepted": result.new, "duplicates": result.duplicate})


def _log_accepted(parsed: Parsed, result: IngestResult, started: float) -> None:
    # Every delivery passes here: with INFO off, skip assembling a line nobody will write.
    if not _info.isEnabledFor(logging.INFO):
        return
    log.info(
        "webhook_received",
        outcome="accepted" if result.status == 200 else "unavailable",
        status=result.status,
        format=parsed.format,
        handshake=parsed.is_handshake,
        events=len(parsed.events),
        new=result.new,
        duplicate=result.duplicate,
        ignored=result.ignored,
        published=result.published,
        queued=result.queued,
        rejected=result.rejected,
        skipped=len(parsed.skipped),
        skipped_reasons=parsed.skipped[:5],
        stored=result.stored,
        accounts=sorted({e.account_id for e in parsed.events}),
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
    )
