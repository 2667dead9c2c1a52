"""/healthz, /readyz and /metrics of every process, on real PostgreSQL and RabbitMQ.

Each process is scraped before and after real traffic and the counters must have moved; each
process's dependencies run through a proxy the test cuts, and readiness must turn 503 with a reason
naming what is gone (and liveness must not), then come back when the proxy is restored.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from aio_pika import Message
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import EVENTS_EXCHANGE, QBO_TO_RELEASED
from shared.bootstrap.consumer import run_consumer
from shared.bootstrap.health import OpsServer, ops_port
from shared.bootstrap.receiver import create_qbo_receiver
from shared.bootstrap.reconciler import run as run_reconciler
from shared.domain.signatures import sign
from shared.infra.errors import ConfigError
from shared.infra.migrations import migrate
from shared.infra.settings import (
    OPS_PORT_DEFAULTS,
    EngineSettings,
    QboWebhookSettings,
    ReconcilerSettings,
)
from tests.integration.admin_helpers import running_admin, standalone_settings
from tests.integration.broker_helpers import make_event
from tests.support.proxy import TcpProxy
from tests.support.scrape import probe, scrape, through, value
from tests.support.servers import serving
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration
VERIFIER = "health-verifier"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def proxies() -> AsyncIterator[tuple[TcpProxy, TcpProxy]]:
    """A cuttable PostgreSQL and a cuttable RabbitMQ for the process under test."""
    pg, mq = TcpProxy("127.0.0.1", 5432), TcpProxy("127.0.0.1", 5672)
    await pg.start()
    await mq.start()
    yield pg, mq
    await pg.close()
    await mq.close()


async def ready_is(http: aiohttp.ClientSession, base: str, status: int) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        code, body = await probe(http, base, "/readyz")
        return body if code == status else None

    found: dict[str, Any] = await eventually(check, 20.0, interval=0.2)
    return found


async def test_receiver_counts_webhooks_and_readiness_follows_its_dependencies(
    database_url: str,
    amqp_url: str,
    broker: AbstractRobustConnection,
    proxies: tuple[TcpProxy, TcpProxy],
    http: aiohttp.ClientSession,
) -> None:
    pg, mq = proxies
    settings = QboWebhookSettings(
        database_url=through(database_url, pg.port),
        amqp_url=through(amqp_url, mq.port),
        qbo_webhook_verifier_token=VERIFIER,
    )
    async with serving(create_qbo_receiver(settings, relay_interval_s=0.2)) as base:
        assert await probe(http, base, "/healthz") == (200, {"status": "ok"})
        await ready_is(http, base, 200)
        before = await scrape(http, base)
        body = json.dumps([_cloud_event("4711")]).encode()
        headers = {"Content-Type": "application/json", "intuit-signature": sign(VERIFIER, body)}
        for signed in (True, True, False):
            sent = headers if signed else {"Content-Type": "application/json"}
            async with http.post(f"{base}/webhooks/qbo", data=body, headers=sent) as response:
                assert response.status == (200 if signed else 401)
        after = await scrape(http, base)
        for status, moved in (("200", 2), ("401", 1)):
            key = {"source": "qbo", "status": status}
            assert value(after, "sync_webhooks_total", **key) - value(
                before, "sync_webhooks_total", **key
            ) == pytest.approx(moved)

        await pg.cut()
        unready = await ready_is(http, base, 503)
        assert any("postgresql" in r for r in unready["reasons"]), unready
        assert (await probe(http, base, "/healthz"))[0] == 200
        await pg.restore()
        await ready_is(http, base, 200)

        await mq.cut()
        unready = await ready_is(http, base, 503)
        assert any("rabbitmq" in r for r in unready["reasons"]), unready
        await mq.restore()
        await ready_is(http, base, 200)


def _cloud_event(entity_id: str) -> dict[str, str]:
    return {
        "specversion": "1.0",
        "id": f"ce-{uuid.uuid4().hex}",
        "source": "intuit.test",
        "type": "qbo.invoice.updated.v1",
        "time": "2026-11-26T11:59:00Z",
        "intuitentityid": entity_id,
        "intuitaccountid": f"realm-{uuid.uuid4().hex[:6]}",
    }


def engine_settings(database_url: str, amqp_url: str, **extra: Any) -> dict[str, Any]:
    return {**standalone_settings(database_url, amqp_url), "ops_port": 0, **extra}


async def test_consumer_serves_ops_port_counts_events_and_needs_its_queue(
    database_url: str,
    amqp_url: str,
    broker: AbstractRobustConnection,
    proxies: tuple[TcpProxy, TcpProxy],
    http: aiohttp.ClientSession,
) -> None:
    _, mq = proxies
    settings = EngineSettings(**engine_settings(database_url, through(amqp_url, mq.port)))
    assert ops_port(settings, "qbo_to_released") == 0
    stop = asyncio.Event()
    async with OpsServer(settings.ops_host, 0) as ops:
        base = f"http://127.0.0.1:{ops.port}"
        assert (await probe(http, base, "/readyz"))[0] == 503  # nothing attached yet
        task = asyncio.create_task(
            run_consumer(settings, "qbo_to_released", stop, retry_tiers=(1,), drain_s=2, ops=ops)
        )
        try:
            await ready_is(http, base, 200)
            before = await scrape(http, base)
            # An event for an account nobody connected: the engine records it as ignored.
            channel = await broker.channel()
            exchange = await channel.get_exchange(EVENTS_EXCHANGE)
            event = make_event(81, account_id=f"realm-{uuid.uuid4().hex[:6]}")
            await exchange.publish(
                Message(event.to_bytes(), message_id=event.event_id), event.routing_key
            )
            await channel.close()
            key = {"entity": "invoice", "direction": "qbo_to_released", "outcome": "ignored"}

            async def counted() -> dict[tuple[str, tuple[Any, ...]], float] | None:
                now = await scrape(http, base)
                moved = value(now, "sync_events_total", **key) - value(
                    before, "sync_events_total", **key
                )
                return now if moved >= 1 else None

            after = await eventually(counted, 20.0, interval=0.2)
            handled = {"queue": QBO_TO_RELEASED, "result": "acked"}
            assert value(after, "sync_handler_seconds_count", **handled) > value(
                before, "sync_handler_seconds_count", **handled
            )
            await mq.cut()
            unready = await ready_is(http, base, 503)
            assert any("rabbitmq" in r or QBO_TO_RELEASED in r for r in unready["reasons"])
            assert (await probe(http, base, "/healthz"))[0] == 200
            await mq.restore()
            await ready_is(http, base, 200)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def test_reconciler_serves_ops_port_and_readiness_follows_postgresql(
    empty_database_url: str,
    amqp_url: str,
    broker: AbstractRobustConnection,
    proxies: tuple[TcpProxy, TcpProxy],
    http: aiohttp.ClientSession,
) -> None:
    # A database of its own: the run's shared one holds other tests' connections, whose tokens
    # were sealed with other keys, and the reconciler would rightly refuse to start on them.
    database_url = empty_database_url
    await migrate(database_url)
    pg, _ = proxies
    settings = ReconcilerSettings(
        **engine_settings(through(database_url, pg.port), amqp_url, reconcile_interval_s=0.5)
    )
    assert OPS_PORT_DEFAULTS["reconciler"] == 9003
    stop = asyncio.Event()
    async with OpsServer(settings.ops_host, 0) as ops:
        base = f"http://127.0.0.1:{ops.port}"
        task = asyncio.create_task(run_reconciler(settings, stop, ops))
        try:
            await ready_is(http, base, 200)
            assert "sync_reconcile_repairs" in (await _text(http, base))
            await pg.cut()
            unready = await ready_is(http, base, 503)
            assert any("postgresql" in r for r in unready["reasons"]), unready
            await pg.restore()
            await ready_is(http, base, 200)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _text(http: aiohttp.ClientSession, base: str) -> str:
    async with http.get(f"{base}/metrics") as response:
        return await response.text()


async def test_admin_serves_health_and_samples_state_gauges(
    database_url: str,
    amqp_url: str,
    broker: AbstractRobustConnection,
    pool: asyncpg.Pool,
    proxies: tuple[TcpProxy, TcpProxy],
    http: aiohttp.ClientSession,
) -> None:
    _, mq = proxies
    async with pool.acquire() as conn:
        connection_id = await conn.fetchval(
            "INSERT INTO connections (released_company_id, status, status_reason) "
            "VALUES ($1, 'paused', 'needs re-authorisation: grant revoked') RETURNING id",
            f"co-{uuid.uuid4().hex[:8]}",
        )
        await conn.execute(
            "INSERT INTO inbox (event_id, source, account_id, connection_id, entity, entity_id,"
            " operation, routing_key, received_at, event) VALUES ($1, 'qbo', 'a', $2,"
            " 'invoice', '1', 'update', 'qbo.invoice.update', now() - $3::interval, '{}')",
            f"lagging-{uuid.uuid4().hex}",
            connection_id,
            timedelta(minutes=5),
        )
    values = standalone_settings(database_url, through(amqp_url, mq.port))
    async with running_admin(values, metrics_sample_s=0.2) as admin:
        base = admin.base
        assert await probe(http, base, "/healthz") == (200, {"status": "ok"})
        await ready_is(http, base, 200)

        async def sampled() -> dict[tuple[str, tuple[Any, ...]], float] | None:
            now = await scrape(http, base)
            lag = value(now, "sync_connection_lag_seconds", connection_id=str(connection_id))
            return now if lag >= 299 else None

        found = await eventually(sampled, 20.0, interval=0.2)
        assert value(found, "sync_connections", status="needs_reauth") >= 1
        assert ("sync_queue_messages", (("queue", QBO_TO_RELEASED),)) in found
        await mq.cut()
        unready = await ready_is(http, base, 503)
        assert unready["reasons"] == ["rabbitmq unreachable"]
        assert unready["reason"] == "rabbitmq unreachable"
        await mq.restore()
        await ready_is(http, base, 200)


async def test_an_ops_port_already_taken_is_one_clear_error() -> None:
    async with OpsServer("127.0.0.1", 0) as first:
        with pytest.raises(ConfigError, match="OPS_PORT"):
            async with OpsServer("127.0.0.1", first.port):
                pass
