"""What differs between the two receivers: headers, content types, parsers."""

from __future__ import annotations

from shared.domain.qbo_notifications import parse_qbo_payload
from shared.domain.released_notifications import parse_released_payload
from shared.ingest.http import Parsed, ReceiverSpec


def _qbo(body: bytes) -> Parsed:
    parsed = parse_qbo_payload(body)
    return Parsed(parsed.events, parsed.skipped, parsed.format)


def _released(body: bytes) -> Parsed:
    parsed = parse_released_payload(body)
    return Parsed(parsed.events, parsed.skipped, "released", parsed.is_handshake)


def qbo_spec(max_body_bytes: int) -> ReceiverSpec:
    return ReceiverSpec(
        source="qbo",
        signature_header="intuit-signature",
        content_types=frozenset({"application/json", "application/cloudevents+json"}),
        parse=_qbo,
        max_body_bytes=max_body_bytes,
    )


def released_spec(max_body_bytes: int) -> ReceiverSpec:
    return ReceiverSpec(
        source="released",
        signature_header="x-released-signature",
        content_types=frozenset({"application/json"}),
        parse=_released,
        delivery_header="x-released-delivery-id",
        max_body_bytes=max_body_bytes,
        empty_bodies=True,
    )
