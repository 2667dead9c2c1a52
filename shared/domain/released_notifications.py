"""Re-Leased webhook bodies -> change events. Pure: bytes in, events out.

Body (our Re-Leased contract: docs/released_sandbox.md): ``{"events": [{eventId, eventCategory,
eventType, eventName, resourceId, resourceUrl, companyId, resourceVersion, eventDateUtc}],
"firstEventSequence", "lastEventSequence", "entropy"}``. An empty ``events`` array is the
intent-to-receive handshake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shared.domain.events import ChangeEvent
from shared.domain.qbo_notifications import MalformedPayload, load_json, parse_time

_PAST_TENSE = {"created": "create", "updated": "update", "deleted": "delete"}
_WORD = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class ParsedDelivery:
    events: list[ChangeEvent]
    skipped: list[str] = field(default_factory=list)
    is_handshake: bool = False

    @property
    def accounts(self) -> list[str]:
        return sorted({e.account_id for e in self.events})


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def operation_of(event_name: str | None, event_type: str | None) -> str | None:
    """``invoice.approved`` -> ``approved``; ``contact.created`` -> ``create``; else the type."""
    if event_name and "." in event_name:
        word = event_name.rsplit(".", 1)[1].lower()
        word = _PAST_TENSE.get(word, word)
        if _WORD.match(word):
            return word
    if event_type and _WORD.match(event_type.lower()):
        return event_type.lower()
    return None


def event_from_item(item: object, now: datetime) -> ChangeEvent | str:
    """One webhook or change-feed event object -> a change event, or why it is unusable."""
    if not isinstance(item, dict):
        return "event is not an object"
    event_id = _text(item.get("eventId"))
    category = _text(item.get("eventCategory"))
    resource, company = _text(item.get("resourceId")), _text(item.get("companyId"))
    operation = operation_of(_text(item.get("eventName")), _text(item.get("eventType")))
    if not (event_id and category and resource and company and operation):
        return f"event {(event_id or '?')[:80]} lacks id, category, resource, company or type"
    try:
        return ChangeEvent.checked(
            event_id=event_id,
            source="released",
            account_id=company,
            entity=category.lower(),
            entity_id=resource,
            operation=operation,
            occurred_at=parse_time(item.get("eventDateUtc"), now),
            received_at=now,
            version=_text(item.get("resourceVersion")),
            resource_url=_text(item.get("resourceUrl")),
        )
    except ValueError as exc:
        return f"event {event_id[:80]}: {exc}"


def parse_released_payload(body: bytes, *, now: datetime | None = None) -> ParsedDelivery:
    moment = now or datetime.now(UTC)
    document = load_json(body)
    if not isinstance(document, dict) or not isinstance(document.get("events"), list):
        raise MalformedPayload("body must be an object with an 'events' array")
    items = document["events"]
    parsed = ParsedDelivery([], is_handshake=not items)
    for item in items:
        result = event_from_item(item, moment)
        if isinstance(result, str):
            parsed.skipped.append(result)
        else:
            parsed.events.append(result)
    return parsed
