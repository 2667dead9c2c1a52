"""What a faster JSON parser for webhook bodies would have to keep (orjson was measured for
issue 18 and not kept, see docs/ingest.md): integers beyond 64 bits read exactly (orjson reads
them as floats), the bodies the standard parser accepts and refuses (orjson refuses a lone
surrogate, NaN, a byte order mark, UTF-16, 1e400; it nests deeper than the recursion limit)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.qbo_notifications import MalformedPayload, load_json, parse_qbo_payload
from shared.domain.released_notifications import parse_released_payload

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


def _reference(body: bytes) -> Any:
    """What the standard parser alone makes of ``body`` (the behaviour before orjson)."""
    return json.loads(body, parse_int=_bounded)


def _bounded(text: str) -> int:
    if len(text.lstrip("-")) > 40:
        raise ValueError(text)
    return int(text)


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to itself and ints never equal to floats (1 == 1.0 in Python)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


@pytest.mark.parametrize(
    "text",
    [
        "18446744073709551616",  # one past 64 bits unsigned
        "-9223372036854775809",  # one below 64 bits signed
        "1234567890123456789012345678901234567890",  # 40 digits: the most accepted
        "[123456789012345678901, 1]",
    ],
)
def test_integers_beyond_64_bits_stay_exact_integers(text: str) -> None:
    parsed = load_json(text.encode())
    assert _same(parsed, json.loads(text))


def test_a_qbo_id_sent_as_a_long_integer_keeps_every_digit() -> None:
    body = json.dumps(
        [
            {
                "specversion": "1.0",
                "id": 123456789012345678901234,
                "type": "qbo.invoice.updated.v1",
                "time": "2026-11-26T11:59:00Z",
                "intuitentityid": 98765432109876543210,
                "intuitaccountid": "9130",
            }
        ]
    ).encode()
    parsed = parse_qbo_payload(body, now=NOW)
    assert [(e.event_id, e.entity_id) for e in parsed.events] == [
        ("123456789012345678901234", "98765432109876543210")
    ]


def test_a_released_sequence_beyond_64_bits_is_read_exactly() -> None:
    body = (
        b'{"events": [], "firstEventSequence": 1, '
        b'"lastEventSequence": 123456789012345678901234567890}'
    )
    assert load_json(body)["lastEventSequence"] == 123456789012345678901234567890
    assert parse_released_payload(body, now=NOW).events == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"events": [], "note": "\\ud800"}',  # a lone surrogate escape
        b'{"events": [], "x": NaN, "y": -Infinity}',  # non-standard constants
        b'\xef\xbb\xbf{"events": []}',  # a UTF-8 byte order mark
        '{"events": []}'.encode("utf-16"),  # UTF-16 with its BOM
        b'{"events": [], "big": 1e400}',  # read as infinity by the standard parser
    ],
    ids=["lone-surrogate", "nan", "utf8-bom", "utf16", "infinite-float"],
)
def test_non_standard_bodies_are_read_as_the_standard_parser_reads_them(body: bytes) -> None:
    assert _same(load_json(body), _reference(body))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"a": 1,}',
        b'"\x01"',
        b"\xff\xfe\xfd",
        b"[" + b"7" * 41 + b"]",
        # Past the interpreter's recursion limit (orjson would take up to 1,024 levels).
        b"[" * 1000 + b"]" * 1000,
        b'{"a":' * 1010 + b"1" + b"}" * 1010,
    ],
    ids=[
        "empty",
        "unclosed",
        "trailing-comma",
        "control-char",
        "not-utf",
        "41-digits",
        "depth-1000",
        "depth-1010",
    ],
)
def test_what_was_refused_is_still_refused(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        load_json(body)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**45), max_value=10**45)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(_json)
def test_any_document_reads_as_the_standard_parser_reads_it(document: Any) -> None:
    body = json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        expected = _reference(body)
    except (ValueError, UnicodeDecodeError):
        with pytest.raises(MalformedPayload):
            load_json(body)
        return
    assert _same(load_json(body), expected)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet='{}[]",:0123456789.eE+-tfnrulasNIyi\\ u\x00\x7f\ud800é', max_size=40))
def test_any_text_is_accepted_or_refused_as_before(text: str) -> None:
    body = text.encode("utf-8", "surrogatepass")
    try:
        expected = _reference(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        with pytest.raises(MalformedPayload):
            load_json(body)
        return
    assert _same(load_json(body), expected)
