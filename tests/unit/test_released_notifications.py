"""Parsing Re-Leased webhook bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.domain.qbo_notifications import MalformedPayload
from shared.domain.released_notifications import operation_of, parse_released_payload

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def released_event(n: int, name: str = "invoice.approved", **extra: object) -> dict[str, object]:
    event: dict[str, object] = {
        "eventId": f"00000000-0000-0000-0000-{n:012d}",
        "eventCategory": "INVOICE",
        "eventType": "UPDATE",
        "eventName": name,
        "resourceId": f"inv-{n}",
        "resourceUrl": f"http://127.0.0.1:8102/api/v1/invoices/inv-{n}",
        "companyId": "co-1",
        "resourceVersion": 4,
        "eventDateUtc": "2026-11-26T11:00:00Z",
    }
    event.update(extra)
    return event


def test_events_become_change_events() -> None:
    body = {"events": [released_event(1)], "firstEventSequence": 1, "lastEventSequence": 1}
    parsed = parse_released_payload(json.dumps(body).encode(), now=NOW)
    (event,) = parsed.events
    assert not parsed.is_handshake
    assert event.routing_key == "released.invoice.approved"
    assert (event.account_id, event.entity_id, event.version) == ("co-1", "inv-1", "4")
    assert event.resource_url is not None


def test_empty_events_is_the_handshake() -> None:
    parsed = parse_released_payload(b'{"events": [], "firstEventSequence": 0}', now=NOW)
    assert parsed.is_handshake
    assert parsed.events == []


@pytest.mark.parametrize(
    ("name", "kind", "expected"),
    [
        ("contact.created", "CREATE", "create"),
        ("invoice.voided", "UPDATE", "voided"),
        ("payment.reversed", "UPDATE", "reversed"),
        (None, "DELETE", "delete"),
        ("weird.Ünïcode", "UPDATE", "update"),
    ],
)
def test_operation_words(name: str | None, kind: str, expected: str) -> None:
    assert operation_of(name, kind) == expected


def test_incomplete_event_is_skipped() -> None:
    body = {"events": [released_event(1), {"eventId": "x"}]}
    parsed = parse_released_payload(json.dumps(body).encode(), now=NOW)
    assert len(parsed.events) == 1
    assert len(parsed.skipped) == 1


@pytest.mark.parametrize("body", [b"[]", b"{}", b"nope", b'{"events": {}}'])
def test_malformed(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_released_payload(body, now=NOW)
