"""Webhook signatures and envelopes: pure functions, so receivers' tests can use them too."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import string
from typing import Any

Record = dict[str, Any]


def sign(key: str, body: bytes) -> str:
    """``X-Released-Signature``: base64 of HMAC-SHA256 over the raw body."""
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(key: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, body), signature)


def envelope(events: list[Record], rng: random.Random) -> bytes:
    sequences = [int(e["sequence"]) for e in events]
    body = {
        "events": events,
        "firstEventSequence": min(sequences, default=0),
        "lastEventSequence": max(sequences, default=0),
        # Random per payload so that two payloads never share a signature.
        "entropy": "".join(rng.choice(string.ascii_uppercase) for _ in range(20)),
    }
    return json.dumps(body, separators=(",", ":")).encode()
