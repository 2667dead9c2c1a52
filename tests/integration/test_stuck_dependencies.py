"""Issue 17, findings 5 and 9: a stuck dependency costs a bounded, short time and is a
retryable failure. A locked inbox gives the webhook a fast 503 (the sender retries) instead of
a late 200; a token endpoint that goes quiet is a ``TransientError`` within its deadline."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from shared.adapters.http.session import outgoing_session
from shared.adapters.qbo.tokens import QboOAuth
from shared.domain.errors import TransientError
from tests.support.receivers import add_connection, cloud_event, post_signed, qbo_receiver

pytestmark = pytest.mark.integration


async def test_finding5_a_locked_inbox_answers_503_fast_not_200_late(
    database_url: str, amqp_url: str, pool: asyncpg.Pool
) -> None:
    realm, _ = await add_connection(pool)
    body = json.dumps([cloud_event(1, realm)]).encode()
    async with (
        qbo_receiver(database_url, amqp_url, webhook_lock_timeout_ms=300) as url,
        aiohttp.ClientSession() as session,
    ):
        locker = await asyncpg.connect(database_url)
        try:
            transaction = locker.transaction()
            await transaction.start()
            await locker.execute("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            status, _ = await post_signed(session, url, body)
            took = time.monotonic() - started
            await transaction.rollback()
        finally:
            await locker.close()
        assert status == 503
        assert took < 3.0  # QBO's whole budget; before: 200 after the lock was released
        again, _ = await post_signed(session, url, body)  # the sender's retry
    assert again == 200
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE account_id = $1", realm) == 1


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _silent(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(3)  # far past the client's deadline
    return web.Response(text="{}")


async def _garbled(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>not a token</html>", content_type="text/html")


async def _half(request: web.Request) -> web.StreamResponse:
    return web.json_response({"token_type": "bearer"})  # no access_token


@asynccontextmanager
async def _serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/oauth2/v1/tokens/bearer", handler)
    app.router.add_post("/oauth2/v1/tokens/revoke", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("call", ["exchange", "refresh", "revoke"])
async def test_finding9_a_quiet_token_endpoint_is_transient_within_its_deadline(
    call: str,
) -> None:
    async with _serve(_silent) as base, aiohttp.ClientSession() as http:  # 300 s default
        oauth = QboOAuth(http, base, "id", "secret", timeout_s=0.3)
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "exchange": lambda: oauth.exchange_code("code", "http://x/cb"),
            "refresh": lambda: oauth.refresh("rt"),
            "revoke": lambda: oauth.revoke("rt"),
        }
        started = time.monotonic()
        with pytest.raises(TransientError, match="unreachable"):
            await calls[call]()
        assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("handler", [_garbled, _half], ids=["not-json", "no-tokens"])
async def test_finding9_a_garbled_token_answer_is_transient(handler: Handler) -> None:
    async with _serve(handler) as base, aiohttp.ClientSession() as http:
        with pytest.raises(TransientError):
            await QboOAuth(http, base, "id", "secret").refresh("rt")


async def test_finding9_outgoing_sessions_have_a_deadline_well_under_aiohttps_default() -> None:
    async with outgoing_session() as session:
        assert session.timeout.total is not None
        assert session.timeout.total <= 60
        assert session.timeout.sock_read is not None
