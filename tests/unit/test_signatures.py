"""Webhook signatures: base64(HMAC-SHA256(key, raw body)), checked on the exact bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.signatures import sign, verify

KEY = "verifier-token-123"


def reference_signature(key: str, body: bytes) -> str:
    # How Intuit's SDKs compute it: HMAC-SHA256 keyed with the UTF-8 token, then base64.
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def test_sign_matches_the_documented_scheme() -> None:
    body = b'[{"id":"1"}]'
    assert sign(KEY, body) == reference_signature(KEY, body)


def test_missing_or_empty_or_garbage_signature_fails() -> None:
    body = b"{}"
    assert not verify(KEY, body, None)
    assert not verify(KEY, body, "")
    assert not verify(KEY, body, "not-base64-ñ")
    assert not verify("other-key", body, sign(KEY, body))


@given(st.binary(min_size=1, max_size=512), st.data())
def test_any_single_byte_change_breaks_the_signature(body: bytes, data: st.DataObject) -> None:
    signature = sign(KEY, body)
    assert verify(KEY, body, signature)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    altered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    assert not verify(KEY, altered, signature)
