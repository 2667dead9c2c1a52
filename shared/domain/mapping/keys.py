"""QBO keys: how canonical records name what they refer to (``"<QBO type>:<QBO id>"``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def ref_key(qbo_type: str, ref: Mapping[str, Any] | None) -> str | None:
    value = (ref or {}).get("value")
    return f"{qbo_type}:{value}" if value not in (None, "") else None


def split_key(key: str) -> tuple[str, str]:
    qbo_type, _, qbo_id = key.partition(":")
    return qbo_type, qbo_id
