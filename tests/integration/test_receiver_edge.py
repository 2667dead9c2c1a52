"""Issue 17, findings 3 and 4: what a hostile sender can cost a receiver. Unsigned bodies are
refused before they are read, bodies and headers have deadlines, unverified bodies share a
memory budget, and every malformed signed body is a 400, never a 500."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import aiohttp
import asyncpg
import pytest

from tests.support.receivers import (
    add_connection,
    cloud_event,
    post_signed,
    qbo_receiver,
    released_event,
    released_receiver,
)

pytestmark = pytest.mark.integration

PLAUSIBLE = base64.b64encode(b"\x00" * 32).decode()  # right form, wrong value


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def _read_all(reader: asyncio.StreamReader, timeout: float) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, b"nested too deeply"),
        (b'{"events": [' + b"7" * 5000 + b"]}", b"integer of 5000 digits"),
        (b'[{"specversion": "1.0", "id": ' + b"1" * 41 + b"}]", b"integer of 41 digits"),
        (b'{"events": [{"eventId": {"a": [[[[[[]]]]]]}}]}', b""),
    ],
    ids=["nested-100000", "int-5000-digits", "int-41-digits", "id-is-a-structure"],
)
async def test_finding4_hostile_signed_bodies_are_400_not_500(
    database_url: str, amqp_url: str, body: bytes, reason: bytes
) -> None:
    async with (
        qbo_receiver(database_url, amqp_url) as qbo,
        released_receiver(database_url, amqp_url) as released,
        aiohttp.ClientSession() as session,
    ):
        q_status, q_text = await post_signed(session, qbo, body)
        r_status, _ = await post_signed(session, released, body, released=True)
    assert q_status in (200, 400)
    assert r_status in (200, 400)
    if reason:
        assert (q_status, r_status) == (400, 400)
        assert reason in q_text


async def test_finding3_an_unsigned_body_is_refused_before_it_is_read(
    database_url: str, amqp_url: str
) -> None:
    async with qbo_receiver(database_url, amqp_url) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(url))
        writer.write(
            b"POST /webhooks/qbo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000000\r\n\r\n"
        )  # and not one byte of the announced body
        await writer.drain()
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 401")


async def test_finding3_a_trickled_body_gets_408_and_is_not_stored(
    database_url: str, amqp_url: str, pool: asyncpg.Pool
) -> None:
    realm, _ = await add_connection(pool)
    body = json.dumps([cloud_event(1, realm)]).encode()
    async with qbo_receiver(database_url, amqp_url, webhook_read_timeout_s=0.5) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(url))
        writer.write(
            b"POST /webhooks/qbo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"intuit-signature: {PLAUSIBLE}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        started = time.monotonic()
        answer = b""
        for byte in body:  # one byte every 0.1 s: the whole body would take minutes
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)
            if reader.at_eof() or time.monotonic() - started > 5:
                break
            try:
                answer = await asyncio.wait_for(reader.read(200), 0.01)
            except TimeoutError:
                continue
            if answer:
                break
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE account_id = $1", realm) == 0


async def test_finding3_trickled_headers_are_cut_off(database_url: str, amqp_url: str) -> None:
    async with qbo_receiver(database_url, amqp_url, http_header_timeout_s=0.5) as url:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(url))
        started = time.monotonic()
        closed_after = None
        for piece in [b"POST /webhooks/qbo HTTP/1.1\r\n", *[b"X-Slow: 1\r\n"] * 40]:
            try:
                writer.write(piece)
                await writer.drain()
            except ConnectionError:
                closed_after = time.monotonic() - started
                break
            if reader.at_eof() or await _closed(reader):
                closed_after = time.monotonic() - started
                break
        writer.close()
    assert closed_after is not None
    assert closed_after < 3


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        data = await asyncio.wait_for(reader.read(1), 0.1)
    except TimeoutError:
        return False
    return data == b""


async def test_finding3_unverified_bodies_share_a_budget(database_url: str, amqp_url: str) -> None:
    async with (
        released_receiver(database_url, amqp_url, webhook_unverified_budget_bytes=4096) as url,
        aiohttp.ClientSession() as session,
    ):
        big = json.dumps({"events": [released_event(n, "co-x") for n in range(40)]}).encode()
        headers = {"Content-Type": "application/json", "x-released-signature": PLAUSIBLE}
        async with session.post(url, data=big, headers=headers) as response:
            over = response.status
        small = json.dumps({"events": []}).encode()
        async with session.post(url, data=small, headers=headers) as response:
            under = response.status
    assert len(big) > 4096
    assert (over, under) == (503, 401)
