"""What differs between the two receivers: headers, content types, parsers."""

from __future__ import annotations

from shared.domain.qbo_notifications import parse_qbo_payload
from shared.domain.released_notifications import parse_released_payload
from shared.infra.settings import WebhookLimits
from shared.ingest.http import Parsed, ReceiverSpec


def _qbo(body: bytes) -> Parsed:
    parsed = parse_qbo_payload(body)
    return Parsed(parsed.events, parsed.skipped, parsed.format)


def _released(body: bytes) -> Parsed:
    parsed = parse_released_payload(body)
    return Parsed(parsed.events, parsed.skipped, "released", parsed.is_handshake)


def qbo_spec(limits: WebhookLimits) -> ReceiverSpec:
    return ReceiverSpec(
        source="qbo",
        signature_header="intuit-signature",
        content_types=frozenset({"application/json", "application/cloudevents+json"}),
        parse=_qbo,
        max_body_bytes=limits.webhook_max_body_bytes,
        read_timeout_s=limits.webhook_read_timeout_s,
        unverified_budget_bytes=limits.webhook_unverified_budget_bytes,
    )


def released_spec(limits: WebhookLimits) -> ReceiverSpec:
    return ReceiverSpec(
        source="released",
        signature_header="x-released-signature",
        content_types=frozenset({"application/json"}),
        parse=_released,
        delivery_header="x-released-delivery-id",
        max_body_bytes=limits.webhook_max_body_bytes,
        read_timeout_s=limits.webhook_read_timeout_s,
        unverified_budget_bytes=limits.webhook_unverified_budget_bytes,
        empty_bodies=True,
    )
