"""QBO webhook bodies -> change events. Pure: bytes in, events out.

Two formats, told apart by shape (Intuit's webhook pages: https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks,
its managing-webhooks-notifications and data-objects pages):
- CloudEvents: a JSON array of ``{"specversion", "id", "type": "qbo.<entity>.<op>.v1", "time",
  "intuitentityid", "intuitaccountid", "data"?}``; may mix realms; up to 100 events.
- legacy: ``{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [...]}}]}``.

Intuit retries a whole batch when any part of it is refused, so one unusable event inside a
well-formed body is skipped and reported, never a reason to reject the delivery.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from shared.domain.events import ChangeEvent, derive_event_id

# Both spellings Intuit is known to send map to one operation word.
_OPERATIONS = {
    "create": "create",
    "created": "create",
    "update": "update",
    "updated": "update",
    "delete": "delete",
    "deleted": "delete",
    "merge": "merge",
    "merged": "merge",
    "void": "void",
    "voided": "void",
    "emailed": "emailed",
}
_DELETED_ID_KEYS = ("deletedId", "deletedid", "deletedID")

QboFormat = Literal["cloudevents", "legacy"]


class MalformedPayload(ValueError):
    """The body is not a QBO notification at all (answered 400)."""


# No id or sequence number of either platform needs more digits; Python refuses to turn an
# integer of more than 4,300 digits into text anyway, and a long one costs quadratic time.
MAX_INT_DIGITS = 40


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise MalformedPayload(f"integer of {len(text)} digits; at most {MAX_INT_DIGITS}")
    return int(text)


def load_json(body: bytes) -> Any:
    """``json.loads`` for bodies from outside: every failure is ``MalformedPayload`` (400),
    including nesting deeper than the interpreter's recursion limit and huge integers."""
    try:
        return json.loads(body, parse_int=_bounded_int)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedPayload(f"body is not JSON: {exc}") from None
    except RecursionError:
        raise MalformedPayload("body is nested too deeply") from None


@dataclass
class ParsedNotifications:
    format: QboFormat
    events: list[ChangeEvent]
    skipped: list[str] = field(default_factory=list)  # why each unusable entry was skipped

    @property
    def accounts(self) -> list[str]:
        return sorted({e.account_id for e in self.events})


def parse_time(value: object, fallback: datetime) -> datetime:
    """ISO-8601 in the styles Intuit uses (``Z``, ``-0700``, ``-07:00``); naive means UTC."""
    if not isinstance(value, str) or not value:
        return fallback
    text = value.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and ":" not in text[-5:]:
        text = f"{text[:-2]}:{text[-2:]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return fallback
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _deleted_id(container: object) -> str | None:
    if not isinstance(container, dict):
        return None
    for key in _DELETED_ID_KEYS:
        found = _text(container.get(key))
        if found:
            return found
    return None


def _cloud_event(item: object, now: datetime) -> ChangeEvent | str:
    if not isinstance(item, dict):
        return "entry is not an object"
    kind = item.get("type")
    parts = kind.split(".") if isinstance(kind, str) else []
    if len(parts) not in (3, 4) or parts[0] != "qbo":
        shown = kind[:80] if isinstance(kind, str) else type(kind).__name__
        return f"unrecognised type {shown!r}"
    operation = _OPERATIONS.get(parts[2].lower())
    event_id, entity_id = _text(item.get("id")), _text(item.get("intuitentityid"))
    realm = _text(item.get("intuitaccountid"))
    if operation is None or not (event_id and entity_id and realm):
        return f"entry {(event_id or '?')[:80]} lacks id, entity id, realm or a known operation"
    occurred = parse_time(item.get("time"), now)
    try:
        return ChangeEvent.checked(
            event_id=event_id,
            source="qbo",
            account_id=realm,
            entity=parts[1].lower(),
            entity_id=entity_id,
            operation=operation,
            occurred_at=occurred,
            received_at=now,
            version=_text(item.get("time")),
            related_id=_deleted_id(item.get("data")),
        )
    except ValueError as exc:
        return f"entry {event_id[:80]}: {exc}"


def _legacy_entity(realm: str, item: object, now: datetime) -> ChangeEvent | str:
    if not isinstance(item, dict):
        return "entity is not an object"
    name, entity_id = _text(item.get("name")), _text(item.get("id"))
    operation = _OPERATIONS.get(str(item.get("operation", "")).lower())
    if not (name and entity_id and operation):
        return f"entity {(entity_id or '?')[:80]} lacks name, id or a known operation"
    stamp = _text(item.get("lastUpdated")) or ""
    try:
        return ChangeEvent.checked(
            event_id=derive_event_id("qbo", realm, name, entity_id, operation, stamp),
            source="qbo",
            account_id=realm,
            entity=name.lower(),
            entity_id=entity_id,
            operation=operation,
            occurred_at=parse_time(stamp, now),
            received_at=now,
            version=stamp or None,
            related_id=_deleted_id(item),
        )
    except ValueError as exc:
        return f"entity {entity_id[:80]}: {exc}"


def _legacy(document: dict[str, Any], now: datetime) -> ParsedNotifications:
    notifications = document.get("eventNotifications")
    if not isinstance(notifications, list):
        raise MalformedPayload("eventNotifications must be an array")
    parsed = ParsedNotifications("legacy", [])
    for notification in notifications:
        realm = _text(notification.get("realmId")) if isinstance(notification, dict) else None
        change = notification.get("dataChangeEvent") if isinstance(notification, dict) else None
        entities = change.get("entities") if isinstance(change, dict) else None
        if realm is None or not isinstance(entities, list):
            parsed.skipped.append("notification lacks realmId or dataChangeEvent.entities")
            continue
        for item in entities:
            result = _legacy_entity(realm, item, now)
            _collect(parsed, result)
    return parsed


def _collect(parsed: ParsedNotifications, result: ChangeEvent | str) -> None:
    if isinstance(result, str):
        parsed.skipped.append(result)
    else:
        parsed.events.append(result)


def parse_qbo_payload(body: bytes, *, now: datetime | None = None) -> ParsedNotifications:
    """Detect the format by shape and turn every usable entry into a change event."""
    moment = now or datetime.now(UTC)
    document = load_json(body)
    if isinstance(document, list):
        parsed = ParsedNotifications("cloudevents", [])
        for item in document:
            _collect(parsed, _cloud_event(item, moment))
        return parsed
    if isinstance(document, dict) and "eventNotifications" in document:
        return _legacy(document, moment)
    if isinstance(document, dict) and "specversion" in document:
        # A single CloudEvent not wrapped in an array: accept it rather than bounce a batch.
        parsed = ParsedNotifications("cloudevents", [])
        _collect(parsed, _cloud_event(document, moment))
        return parsed
    raise MalformedPayload("body is neither a CloudEvents array nor an eventNotifications object")
