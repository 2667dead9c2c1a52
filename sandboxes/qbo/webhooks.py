"""Webhook payloads and signatures, pure and I/O-free (the dispatcher does the sending).

Formats per Intuit (https://developer.intuit.com/app/developer/qbo/docs/develop/webhooks):
CloudEvents (a JSON array) by default, the legacy ``eventNotifications`` envelope when switched;
``intuit-signature`` is base64(HMAC-SHA256(verifier token, raw body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sandboxes.qbo.changes import Change
from sandboxes.qbo.clock import qbo_time
from sandboxes.qbo.entities import CE_OPERATION, ENTITIES

MAX_EVENTS_PER_POST = 100
# Intuit's samples show an opaque, app-specific source; ours is fixed and obviously fake.
CE_SOURCE = "intuit.sandbox-qbo-local"


@dataclass(frozen=True)
class QueuedEvent:
    change: Change
    event_id: str  # stays the same across retries, as Intuit's CE ids do


def notifies(change: Change) -> bool:
    """Whether QBO sends a webhook for this entity and operation (§1.6)."""
    spec = ENTITIES.get(change.entity)
    return spec is not None and change.operation in spec.notifies


def cloudevent(event: QueuedEvent) -> dict[str, Any]:
    change = event.change
    data: dict[str, Any] = {}
    if change.deleted_id is not None:
        data["deletedid"] = change.deleted_id
    return {
        "specversion": "1.0",
        "id": event.event_id,
        "source": CE_SOURCE,
        "type": f"qbo.{change.entity.lower()}.{CE_OPERATION[change.operation]}.v1",
        "datacontenttype": "application/json",
        "time": change.when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "intuitentityid": change.entity_id,
        "intuitaccountid": change.realm_id,
        "data": data,
    }


def legacy(events: list[QueuedEvent]) -> dict[str, Any]:
    """One ``eventNotifications`` element per realm, entities in order of occurrence."""
    by_realm: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        change = event.change
        entity: dict[str, Any] = {
            "name": change.entity,
            "id": change.entity_id,
            "operation": change.operation,
            "lastUpdated": qbo_time(change.when),
        }
        if change.deleted_id is not None:
            entity["deletedId"] = change.deleted_id
        by_realm.setdefault(change.realm_id, []).append(entity)
    return {
        "eventNotifications": [
            {"realmId": realm, "dataChangeEvent": {"entities": entities}}
            for realm, entities in by_realm.items()
        ]
    }


def build_body(events: list[QueuedEvent], fmt: str) -> bytes:
    payload: Any = legacy(events) if fmt == "legacy" else [cloudevent(e) for e in events]
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(body: bytes, verifier_token: str) -> str:
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()
