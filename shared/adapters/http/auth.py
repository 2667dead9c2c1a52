"""HTTP Basic client authentication for the token endpoints (RFC 6749 section 2.3.1)."""

from __future__ import annotations

import base64
from urllib.parse import quote


def basic_authorization(client_id: str, secret: str) -> str:
    """The ``Authorization`` header value; both parts form-encoded as the RFC asks."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")
