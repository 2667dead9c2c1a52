"""Webhook signatures: base64(HMAC-SHA256(key, raw body)), as both platforms sign.

Pure functions, no I/O: the receivers call them on the exact bytes that arrived, before parsing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def sign(key: str, body: bytes) -> str:
    digest = hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(key: str, body: bytes, header: str | None) -> bool:
    """True only when ``header`` is the signature of ``body``; compared in constant time."""
    if not header:
        return False
    expected = sign(key, body).encode("ascii")
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, given)
