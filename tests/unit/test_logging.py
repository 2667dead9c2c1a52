"""Redaction: secrets never reach a log line, whatever shape they arrive in."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import SecretStr

from shared.infra.logging import configure_logging, get_logger, redact_mapping

TOKEN = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.sig-Zx9"
REFRESH = "AB11728394756refreshsecretvalue"
SIGNATURE = "k3Y5q0l9w+R2vQe0Zb1lJ8x7m2n4p6Q8s0t2u4v6w8y="


@pytest.fixture
def captured() -> io.StringIO:
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", stream=buffer)
    return buffer


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_secret_named_fields_are_masked(captured: io.StringIO) -> None:
    get_logger("t").info(
        "token_refreshed",
        access_token=TOKEN,
        refresh_token=REFRESH,
        intuit_signature=SIGNATURE,
        realm_id="9130",
    )
    text = captured.getvalue()
    assert TOKEN not in text
    assert REFRESH not in text
    assert SIGNATURE not in text
    assert lines(captured)[0]["realm_id"] == "9130"


def test_nested_headers_and_free_text_are_scrubbed(captured: io.StringIO) -> None:
    get_logger("t").warning(
        "qbo_request_failed",
        headers={"Authorization": f"Bearer {TOKEN}", "intuit-signature": SIGNATURE},
        error=f"401 for Authorization: Bearer {TOKEN}",
        url="https://x.example/token?code=abc123&state=s&refresh_token=" + REFRESH,
        dsn="postgresql://app:hunter2pw@db:5432/sync",
    )
    text = captured.getvalue()
    for secret in (TOKEN, SIGNATURE, REFRESH, "hunter2pw", "abc123"):
        assert secret not in text
    assert "state=s" in text


def test_stdlib_records_are_redacted_too(captured: io.StringIO) -> None:
    logging.getLogger("uvicorn.error").error("bad header Authorization: Bearer %s", TOKEN)
    assert TOKEN not in captured.getvalue()
    assert str(lines(captured)[0]["event"]).startswith("bad header")


def test_secretstr_never_prints(captured: io.StringIO) -> None:
    get_logger("t").info("settings_loaded", verifier=SecretStr("abc"), other=SecretStr("xyz-1"))
    assert "xyz-1" not in captured.getvalue()


def test_redact_mapping_keeps_safe_keys() -> None:
    out = redact_mapping({"token_type": "bearer", "expires_in": 3600, "client_secret": "s3"})
    assert out == {"token_type": "bearer", "expires_in": 3600, "client_secret": "[REDACTED]"}
