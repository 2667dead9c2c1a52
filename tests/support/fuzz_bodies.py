"""Hostile webhook bodies for the fuzz test and the fuzz benchmark, driven by a ``Random``.

Three families, each signed with the receiver's key unless the draw says otherwise, so most of
them reach the parser and the inbox, where the damage would be:
- grammar: the receiver's own body shape (CloudEvents array, legacy ``eventNotifications``,
  Re-Leased ``events``) with values drawn from a hostile pool (multi-byte text at and past every
  byte limit, NUL, lone surrogates, huge and negative integers, deep nesting, wrong types);
- mutation: a valid body with bytes flipped, inserted, deleted or truncated;
- raw: arbitrary bytes, nesting bombs and long digit runs.
The named findings of issue 17 are drawn often on purpose.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

from shared.domain.signatures import sign
from tests.support.receivers import RELEASED_KEY, VERIFIER

HOSTILE_TEXT = [
    "é" * 150,  # finding 1: 150 characters, 300 bytes
    "é" * 64,
    "é" * 100,
    "\ud800",  # finding 2: lone surrogate
    "a\u0000b",  # finding 2: NUL
    "x" * 201,
    "x" * 5000,
    "qbo.#",
    "a b",
    "*",
    "",
    " ",
    "\U0001d518\U0001d52b" * 60,  # 4-byte characters
    "\u202e\ufeff",
    "%00",
    "../../etc/passwd",
    "\r\n",
]


@dataclass(frozen=True)
class FuzzCase:
    receiver: str  # "qbo" or "released"
    body: bytes
    signed: bool
    marker: str  # account id of every well-formed entry, to find what was stored


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(HOSTILE_TEXT)
    if roll < 0.5:
        return rng.choice([0, -1, 2**63, -(2**63) - 1, 10**40, 10**39])
    if roll < 0.6:
        return rng.choice([None, True, False, 1.5, -0.0, 1e308])
    if roll < 0.7 and depth < 3:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if roll < 0.75 and depth < 3:
        return {rng.choice(HOSTILE_TEXT): _value(rng, depth + 1)}
    return "".join(chr(rng.randint(0, 0x2FFFF)) for _ in range(rng.randint(0, 12)))


def _maybe(rng: random.Random, good: Any) -> Any:
    return _value(rng) if rng.random() < 0.25 else good


def _cloud_event(rng: random.Random, marker: str) -> dict[str, Any]:
    event = {
        "specversion": "1.0",
        "id": _maybe(rng, f"ce-{uuid.uuid4().hex}"),
        "source": "intuit",
        "type": _maybe(rng, rng.choice(["qbo.invoice.updated.v1", "qbo.customer.created.v1"])),
        "time": _maybe(rng, "2026-11-26T11:59:00Z"),
        "intuitentityid": _maybe(rng, str(rng.randint(1, 10**6))),
        "intuitaccountid": _maybe(rng, marker),
    }
    if rng.random() < 0.2:
        event["data"] = {"deletedId": _value(rng)}
    return event


def _legacy(rng: random.Random, marker: str) -> dict[str, Any]:
    entity = {
        "name": _maybe(rng, "Invoice"),
        "id": _maybe(rng, str(rng.randint(1, 10**6))),
        "operation": _maybe(rng, "Update"),
        "lastUpdated": _maybe(rng, "2026-11-26T11:59:00.000Z"),
    }
    return {
        "eventNotifications": [
            {"realmId": _maybe(rng, marker), "dataChangeEvent": {"entities": [entity]}}
        ]
    }


def _released_event(rng: random.Random, marker: str) -> dict[str, Any]:
    return {
        "eventId": _maybe(rng, str(uuid.uuid4())),
        "eventCategory": _maybe(rng, "INVOICE"),
        "eventType": _maybe(rng, "UPDATE"),
        "eventName": _maybe(rng, "invoice.approved"),
        "resourceId": _maybe(rng, f"inv-{rng.randint(1, 10**6)}"),
        "resourceUrl": _maybe(rng, "http://x/api/v1/invoices/1"),
        "companyId": _maybe(rng, marker),
        "resourceVersion": _maybe(rng, rng.randint(1, 99)),
        "eventDateUtc": _maybe(rng, "2026-11-26T11:00:00Z"),
    }


def _grammar(rng: random.Random, receiver: str, marker: str) -> bytes:
    count = rng.randint(0, 4)
    document: Any
    if receiver == "released":
        document = {"events": [_released_event(rng, marker) for _ in range(count)]}
    elif rng.random() < 0.3:
        document = _legacy(rng, marker)
    else:
        document = [_cloud_event(rng, marker) for _ in range(count)]
    return json.dumps(document).encode()


def _mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        if not data:
            break
        where = rng.randrange(len(data))
        action = rng.random()
        if action < 0.4:
            data[where] = rng.randrange(256)
        elif action < 0.7:
            data.insert(where, rng.randrange(256))
        elif action < 0.9:
            del data[where]
        else:
            del data[where:]
    return bytes(data)


def _raw(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        depth = rng.choice([100, 1000, 100_000])
        return b"[" * depth + b"]" * depth
    if roll < 0.5:
        return b'{"events": [' + b"9" * rng.choice([41, 5000, 50_000]) + b"]}"
    if roll < 0.6:
        return b'[{"specversion": "1.0", "id": ' + b"1" * 5000 + b"}]"
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))


def fuzz_case(rng: random.Random) -> FuzzCase:
    receiver = rng.choice(["qbo", "released"])
    marker = f"fz-{uuid.uuid4().hex[:16]}"  # unique even when the draws repeat
    roll = rng.random()
    if roll < 0.6:
        body = _grammar(rng, receiver, marker)
    elif roll < 0.85:
        body = _mutate(rng, _grammar(rng, receiver, marker))
    else:
        body = _raw(rng)
    return FuzzCase(receiver, body, rng.random() < 0.9, marker)


def headers_for(case: FuzzCase) -> dict[str, str]:
    header, key = (
        ("x-released-signature", RELEASED_KEY)
        if case.receiver == "released"
        else ("intuit-signature", VERIFIER)
    )
    headers = {"Content-Type": "application/json"}
    if case.signed:
        headers[header] = sign(key, case.body)
    return headers
