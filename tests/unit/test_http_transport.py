"""The budgeted HTTP transport without a network: the Retry-After parser, how an answer is read
and classified, and the send/retry/resend steps over a scripted session and a recording budget."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import aiohttp
import pytest
from multidict import CIMultiDict

from shared.adapters.http.transport import (
    Answer,
    ApiRules,
    Outgoing,
    Transport,
    outcome,
    parse_retry_after,
)
from shared.adapters.postgres.budgets import ApiBudget
from shared.domain.errors import ConnectionRevoked, PermanentError, TransientError

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
KEY = "api:1"

# -- Retry-After ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("0", 0.0), ("7", 7.0), ("120", 120.0), (" 30 ", 30.0)],
)
def test_delta_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(("value", "seconds"), [("1.5", 1.5), ("0.25", 0.25), (".5", 0.5)])
def test_decimal_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    "value",
    [
        "Wed, 01 May 2024 12:01:30 GMT",  # IMF-fixdate, the preferred form
        "Wednesday, 01-May-24 12:01:30 GMT",  # obsolete RFC 850 form
        "Wed May  1 12:01:30 2024",  # obsolete asctime form (no zone: GMT)
    ],
)
def test_http_date_in_the_future_is_the_time_until_it(value: str) -> None:
    assert parse_retry_after(value, now=NOW) == 90.0


def test_an_asctime_date_is_gmt_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_retry_after("Wed May  1 12:01:30 2024", now=NOW) == 90.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_http_date_follows_the_clock() -> None:
    later = NOW + timedelta(seconds=60)
    assert parse_retry_after("Wed, 01 May 2024 12:01:30 GMT", now=later) == 30.0


def test_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 01 May 2024 11:59:00 GMT", now=NOW) == 0.0
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now=NOW) == 0.0


@pytest.mark.parametrize(
    "value",
    [None, "", "soon", "-5", "1e3", "inf", "nan", "12abc", "1.2.3", "Wed, 32 May 2024 12:00 GMT"],
)
def test_anything_else_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


# -- reading an answer ------------------------------------------------------------------------


@dataclass
class Classified(Exception):
    status: int
    body: Any
    retry_after: float | None


def _classify(status: int, body: Any, retry_after: float | None) -> Exception:
    if status == 401 and isinstance(body, dict) and body.get("type") == "Expired":
        return ConnectionRevoked("expired")
    if status == 503:
        return TransientError("unavailable", retry_after=retry_after)
    return Classified(status, body, retry_after)


RULES = ApiRules(
    name="Test",
    classify=_classify,
    default_retry_after_s=42.0,
    stale=lambda exc: isinstance(exc, ConnectionRevoked),
)


def test_a_2xx_body_is_returned() -> None:
    assert outcome(RULES, Answer(200, b'{"a": [1]}', None)) == {"a": [1]}
    assert outcome(RULES, Answer(201, b"[1, 2]", None)) == [1, 2]


def test_an_empty_body_is_an_empty_object() -> None:
    assert outcome(RULES, Answer(204, b"", None)) == {}


def test_a_refusal_is_the_clients_classification() -> None:
    with pytest.raises(Classified) as caught:
        outcome(RULES, Answer(400, b'{"type": "Bad"}', 3.0))
    assert (caught.value.status, caught.value.body, caught.value.retry_after) == (
        400,
        {"type": "Bad"},
        3.0,
    )


def test_a_refusal_that_is_not_json_is_classified_by_its_status() -> None:
    with pytest.raises(Classified) as caught:
        outcome(RULES, Answer(502, b"<html>Bad gateway</html>", None))
    assert (caught.value.status, caught.value.body) == (502, "<html>Bad gateway</html>")


def test_a_2xx_that_is_not_json_is_permanent() -> None:
    with pytest.raises(PermanentError, match="Test answered 200"):
        outcome(RULES, Answer(200, b"<html>", None))


# -- sending: a scripted session and a recording budget ---------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)


class _Content:
    def __init__(self, body: bytes) -> None:
        self._body = body

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        for start in range(0, len(self._body), size):
            yield self._body[start : start + size]


class _Response:
    def __init__(self, reply: Reply) -> None:
        self.status = reply.status
        self.headers = CIMultiDict(reply.headers)
        self.content = _Content(reply.body)
        self._body = reply.body

    async def read(self) -> bytes:
        return self._body


class ScriptedSession:
    """Answers each request with the next reply, or raises the next exception."""

    def __init__(self, *script: Reply | BaseException) -> None:
        self.script = list(script)
        self.sent: list[dict[str, Any]] = []

    @asynccontextmanager
    async def request(self, method: str, url: str, **kwargs: Any) -> AsyncIterator[_Response]:
        self.sent.append({"method": method, "url": url, **kwargs})
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        yield _Response(step)


class RecordingBudget:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, float | None]] = []

    @asynccontextmanager
    async def acquire(self, key: str) -> AsyncIterator[None]:
        self.events.append(("acquire", key, None))
        try:
            yield
        finally:
            self.events.append(("release", key, None))

    async def block(self, key: str, seconds: float) -> None:
        self.events.append(("block", key, seconds))


@dataclass
class Rig:
    session: ScriptedSession
    budget: RecordingBudget
    transport: Transport
    builds: list[bool] = field(default_factory=list)

    async def build(self, fresh: bool) -> Outgoing:
        self.builds.append(fresh)
        token = "fresh" if fresh else "cached"
        return Outgoing("GET", "http://api/x", {"Authorization": f"Bearer {token}"})

    def acquired(self) -> int:
        return sum(1 for e in self.budget.events if e[0] == "acquire")


def rig(*script: Reply | BaseException) -> Rig:
    session, budget = ScriptedSession(*script), RecordingBudget()
    transport = Transport(
        cast(aiohttp.ClientSession, session), cast(ApiBudget, budget), KEY, RULES, timeout_s=5
    )
    return Rig(session, budget, transport)


EXPIRED = Reply(401, b'{"type": "Expired"}')


async def test_one_budget_token_and_one_call_per_request_sent() -> None:
    r = rig(Reply(200, b'{"ok": true}'))
    assert await r.transport.call(r.build) == {"ok": True}
    assert r.budget.events == [("acquire", KEY, None), ("release", KEY, None)]
    assert r.transport.calls == 1
    sent = r.session.sent[0]
    assert (sent["method"], sent["url"], sent["headers"]) == (
        "GET",
        "http://api/x",
        {"Authorization": "Bearer cached"},
    )
    assert sent["timeout"].total == 5


async def test_stale_credentials_are_renewed_and_sent_once_more() -> None:
    r = rig(EXPIRED, Reply(200, b'{"ok": 1}'))
    assert await r.transport.call(r.build) == {"ok": 1}
    assert r.builds == [False, True]
    assert [s["headers"]["Authorization"] for s in r.session.sent] == [
        "Bearer cached",
        "Bearer fresh",
    ]
    assert (r.transport.calls, r.acquired()) == (2, 2)


async def test_still_stale_after_renewal_is_raised() -> None:
    r = rig(EXPIRED, EXPIRED, Reply(200))
    with pytest.raises(ConnectionRevoked):
        await r.transport.call(r.build)
    assert r.builds == [False, True]
    assert r.transport.calls == 2


async def test_credentials_that_cannot_be_had_are_renewed_once() -> None:
    r = rig(Reply(200, b'{"ok": 1}'))
    attempts: list[bool] = []

    async def build(fresh: bool) -> Outgoing:
        attempts.append(fresh)
        if not fresh:
            raise ConnectionRevoked("no usable token")
        return Outgoing("GET", "http://api/x")

    assert await r.transport.call(build) == {"ok": 1}
    assert attempts == [False, True]
    assert r.transport.calls == 1


async def test_another_refusal_is_not_resent() -> None:
    r = rig(Reply(404, b'{"type": "Missing"}'), Reply(200))
    with pytest.raises(Classified):
        await r.transport.call(r.build)
    assert r.builds == [False]
    assert r.transport.calls == 1


async def test_a_429_blocks_the_key_for_retry_after_after_the_slot_is_freed() -> None:
    r = rig(Reply(429, b"{}", {"Retry-After": "30"}))
    with pytest.raises(Classified) as caught:
        await r.transport.send(await r.build(False))
    assert caught.value.retry_after == 30.0
    assert r.budget.events == [
        ("acquire", KEY, None),
        ("release", KEY, None),
        ("block", KEY, 30.0),
    ]


async def test_a_429_without_a_usable_retry_after_blocks_for_the_default() -> None:
    for headers in ({}, {"Retry-After": "later"}, {"Retry-After": "0"}):
        r = rig(Reply(429, b"{}", headers))
        with pytest.raises(Classified):
            await r.transport.send(await r.build(False))
        assert r.budget.events[-1] == ("block", KEY, 42.0), headers


async def test_no_block_but_for_a_429() -> None:
    r = rig(Reply(503, b"{}", {"Retry-After": "30"}))
    with pytest.raises(TransientError):
        await r.transport.send(await r.build(False))
    assert all(e[0] != "block" for e in r.budget.events)


@pytest.mark.parametrize(
    "error", [aiohttp.ClientConnectionError("refused"), TimeoutError(), aiohttp.ClientError()]
)
async def test_network_errors_are_transient(error: BaseException) -> None:
    r = rig(error)
    with pytest.raises(TransientError, match="Test unreachable") as caught:
        await r.transport.send(await r.build(False))
    assert caught.value.__cause__ is error
    assert r.budget.events[-1] == ("release", KEY, None), "the slot is freed"


async def test_a_short_blip_is_retried_in_process() -> None:
    r = rig(Reply(503), Reply(200, b'{"ok": 2}'))
    assert await r.transport.call(r.build) == {"ok": 2}
    assert r.transport.calls == 2


async def test_retries_stop_at_the_policys_attempts() -> None:
    r = rig(Reply(503), Reply(503), Reply(503), Reply(200))
    with pytest.raises(TransientError):
        await r.transport.call(r.build)
    assert r.transport.calls == 3


async def test_a_request_outside_the_api_takes_no_budget() -> None:
    r = rig(Reply(200, b'{"ok": 3}'))
    assert await r.transport.send(Outgoing("GET", "http://files/x", api_call=False)) == {"ok": 3}
    assert r.budget.events == []
    assert r.transport.calls == 0


# -- streaming --------------------------------------------------------------------------------


async def _collect(chunks: AsyncIterator[bytes]) -> list[bytes]:
    return [c async for c in chunks]


async def test_a_stream_yields_the_body_in_chunks_inside_one_slot() -> None:
    r = rig(Reply(200, b"abcdefg"))
    assert await _collect(r.transport.stream(r.build, 3)) == [b"abc", b"def", b"g"]
    assert r.budget.events == [("acquire", KEY, None), ("release", KEY, None)]
    assert r.transport.calls == 1


async def test_a_stream_with_stale_credentials_is_opened_once_more() -> None:
    r = rig(EXPIRED, Reply(200, b"xyz"))
    assert await _collect(r.transport.stream(r.build, 2)) == [b"xy", b"z"]
    assert r.builds == [False, True]


async def test_a_refused_stream_raises_before_any_chunk() -> None:
    r = rig(Reply(429, b"", {"Retry-After": "9"}))
    with pytest.raises(Classified) as caught:
        await _collect(r.transport.stream(r.build, 2))
    assert (caught.value.status, caught.value.retry_after) == (429, 9.0)
    assert r.budget.events[-1] == ("block", KEY, 9.0)
    assert r.builds == [False]


async def test_a_429_outside_the_api_blocks_nothing() -> None:
    r = rig(Reply(429, b"", {"Retry-After": "9"}))
    link = Outgoing("GET", "http://files/x", api_call=False)
    with pytest.raises(Classified):
        await r.transport.send(link)
    assert r.budget.events == []


async def test_a_signed_link_is_not_renewed() -> None:
    r = rig(EXPIRED, Reply(200, b"never"))

    async def link(fresh: bool) -> Outgoing:
        r.builds.append(fresh)
        return Outgoing("GET", "http://files/x", api_call=False)

    with pytest.raises(ConnectionRevoked):
        await _collect(r.transport.stream(link, 2))
    assert r.builds == [False]
    assert r.budget.events == []
