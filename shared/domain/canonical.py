"""Canonical records: the side-neutral field sets the engine compares, merges and hashes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

CONTACT_FIELDS = ("name", "first_name", "last_name", "email", "phone", "active")
ACCOUNT_FIELDS = ("code", "name", "kind", "type", "active")
TAX_RATE_FIELDS = ("name", "rate", "active")
TRACKING_FIELDS = ("name", "active")


def canonical_hash(fields: Mapping[str, Any]) -> str:
    """Stable across processes and key order; what the write ledger compares."""
    text = json.dumps(dict(fields), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_name(name: str) -> str:
    """Natural-key form of a display name: case and inner whitespace do not matter."""
    return " ".join(name.split()).casefold()
