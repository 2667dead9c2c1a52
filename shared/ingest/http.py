"""The webhook endpoint both receivers share: check, verify, parse, ingest, one log line.

Checks run cheapest-first and before anything is recorded: content type (415), a signature
header of the right form (401, before a byte of body is read), declared size (413), the body
itself under a read deadline (408) and a budget for all bodies not yet verified (503), the
signature over the raw bytes (401), shape (400, also for nesting too deep or numbers too long).
Only then does the delivery touch storage. So an unsigned sender costs nothing, and senders
with a plausible but wrong signature can hold at most the budget in memory between them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shared.domain.events import ChangeEvent
from shared.domain.qbo_notifications import MalformedPayload
from shared.domain.signatures import verify
from shared.infra.logging import bind_unit_of_work, get_logger
from shared.ingest.pipeline import Ingestor

log = get_logger("webhooks")


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


async def _read_limited(request: Request, limit: int, budget: _Budget) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Rejected(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _Rejected(413, f"body larger than {limit} bytes")
            budget.take(len(chunk))
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Rejected(400, "client disconnected mid-body") from None
    finally:
        budget.held -= sum(len(c) for c in chunks)
    return b"".join(chunks)


class WebhookEndpoint:
    def __init__(self, spec: ReceiverSpec, key: str, ingestor: Ingestor) -> None:
        self._spec = spec
        self._key = key
        self._ingestor = ingestor
        self._budget = _Budget(spec.unverified_budget_bytes)

    def _reply(self, status: int, payload: dict[str, object]) -> Response:
        if self._spec.empty_bodies:
            return Response(status_code=status)
        return Response(json.dumps(payload), status, media_type="application/json")

    async def _checked_body(self, request: Request) -> bytes:
        spec = self._spec
        ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype not in spec.content_types:
            raise _Rejected(415, f"content type {ctype or 'missing'} is not accepted")
        signature = request.headers.get(spec.signature_header)
        if not plausible_signature(signature):
            raise _Rejected(401, f"missing or invalid {spec.signature_header}")
        try:
            async with asyncio.timeout(spec.read_timeout_s):
                body = await _read_limited(request, spec.max_body_bytes, self._budget)
        except TimeoutError:
            raise _Rejected(408, f"body not received within {spec.read_timeout_s:g} s") from None
        if not verify(self._key, body, signature):
            raise _Rejected(401, f"missing or invalid {spec.signature_header}")
        return body

    async def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        spec = self._spec
        delivery = request.headers.get(spec.delivery_header) if spec.delivery_header else None
        bind_unit_of_work(source=spec.source, delivery_id=delivery)
        try:
            body = await self._checked_body(request)
            try:
                parsed = spec.parse(body)
            except MalformedPayload as exc:
                raise _Rejected(400, str(exc)[:300]) from None
            except RecursionError:  # a structure deep enough to defeat even the parser's checks
                raise _Rejected(400, "body is nested too deeply") from None
        except _Rejected as rejected:
            log.warning(
                "webhook_received",
                outcome="rejected",
                status=rejected.status,
                reason=rejected.reason,
                latency_ms=round((time.perf_counter() - started) * 1000, 2),
            )
            return self._reply(rejected.status, {"error": rejected.reason})
        result = await self._ingestor.ingest(parsed.events)
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
        if result.status != 200:
            return self._reply(result.status, {"error": "storage unavailable, retry later"})
        return self._reply(200, {"accepted": result.new, "duplicates": result.duplicate})
