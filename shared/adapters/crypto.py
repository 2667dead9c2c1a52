"""Encryption at rest for OAuth tokens and API credentials (guarantee 12)."""

from __future__ import annotations

import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from shared.infra.errors import ConfigError


class TokenCipher:
    """Fernet (AES-128-CBC + HMAC-SHA256) over JSON documents."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise ConfigError(
                "TOKEN_ENCRYPTION_KEY must be a urlsafe-base64 32-byte Fernet key "
                "(python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')"
            ) from exc

    def seal(self, document: dict[str, Any]) -> bytes:
        return self._fernet.encrypt(json.dumps(document, sort_keys=True).encode("utf-8"))

    def open(self, blob: bytes) -> dict[str, Any]:
        try:
            decoded = json.loads(self._fernet.decrypt(blob))
        except InvalidToken as exc:
            raise ConfigError(
                "stored tokens cannot be decrypted with TOKEN_ENCRYPTION_KEY"
            ) from exc
        if not isinstance(decoded, dict):
            raise ConfigError("stored token document is not an object")
        return decoded
