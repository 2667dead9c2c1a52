"""Both receivers on a real socket, real PostgreSQL and RabbitMQ (guarantees 1 and 2)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import QBO_TO_RELEASED, RELEASED_TO_QBO
from shared.bootstrap.receiver import create_qbo_receiver as create_qbo_app
from shared.bootstrap.receiver import create_released_receiver as create_released_app
from shared.domain.signatures import sign
from shared.infra.settings import QboWebhookSettings, ReleasedWebhookSettings
from tests.support.proxy import TcpProxy
from tests.support.servers import serving

pytestmark = pytest.mark.integration

VERIFIER = "test-verifier-token"
RELEASED_KEY = "test-released-key"
ROOT = Path(__file__).resolve().parents[2]


def cloud_event(n: int | str, realm: str, kind: str = "qbo.invoice.updated.v1") -> dict[str, str]:
    return {
        "specversion": "1.0",
        "id": f"ce-{n}-{uuid.uuid4().hex[:8]}",
        "source": "intuit.test",
        "type": kind,
        "time": "2026-11-26T11:59:00Z",
        "intuitentityid": str(n),
        "intuitaccountid": realm,
    }


def released_body(n: int, company: str) -> dict[str, object]:
    return {
        "events": [
            {
                "eventId": str(uuid.uuid4()),
                "eventCategory": "INVOICE",
                "eventType": "UPDATE",
                "eventName": "invoice.approved",
                "resourceId": f"inv-{n}",
                "resourceUrl": f"http://x/api/v1/invoices/inv-{n}",
                "companyId": company,
                "resourceVersion": 2,
                "eventDateUtc": "2026-11-26T11:00:00Z",
            }
        ],
        "firstEventSequence": n,
        "lastEventSequence": n,
        "entropy": "x",
    }


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    key: str | None = VERIFIER,
    header: str = "intuit-signature",
    content_type: str = "application/json",
) -> tuple[int, bytes]:
    headers = {"Content-Type": content_type}
    if key is not None:
        headers[header] = sign(key, body)
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()


@pytest.fixture
async def connection_for(pool: asyncpg.Pool) -> tuple[str, str]:
    """A connection row binding a fresh company to a fresh realm."""
    realm, company = f"r-{uuid.uuid4().hex[:8]}", f"co-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ($1, $2, 'active')",
            company,
            realm,
        )
    return realm, company


async def inbox_rows(pool: asyncpg.Pool, account: str) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT event_id, status, ignore_reason FROM inbox WHERE account_id = $1", account
        )


async def drain_queue(broker: AbstractRobustConnection, name: str) -> list[dict[str, object]]:
    channel = await broker.channel()
    queue = await channel.get_queue(name)
    bodies: list[dict[str, object]] = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        bodies.append(json.loads(message.body))
    await channel.close()
    return bodies


async def wait_for_queue(
    broker: AbstractRobustConnection, name: str, expected: int, timeout: float = 20
) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(seen) < expected and asyncio.get_running_loop().time() < deadline:
        seen += await drain_queue(broker, name)
        await asyncio.sleep(0.1)
    return seen


@pytest.fixture
async def qbo_url(
    database_url: str, amqp_url: str, broker: AbstractRobustConnection
) -> AsyncIterator[str]:
    settings = QboWebhookSettings(
        database_url=database_url,
        amqp_url=amqp_url,
        qbo_webhook_verifier_token=VERIFIER,
        webhook_max_body_bytes=64 * 1024,
    )
    async with serving(create_qbo_app(settings, relay_interval_s=0.2)) as base:
        yield f"{base}/webhooks/qbo"


@pytest.fixture
async def released_url(
    database_url: str, amqp_url: str, broker: AbstractRobustConnection
) -> AsyncIterator[str]:
    settings = ReleasedWebhookSettings(
        database_url=database_url, amqp_url=amqp_url, released_webhook_key=RELEASED_KEY
    )
    async with serving(create_released_app(settings)) as base:
        yield f"{base}/webhooks/released"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def test_signed_cloudevents_are_stored_and_published(
    qbo_url: str,
    session: aiohttp.ClientSession,
    connection_for: tuple[str, str],
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
) -> None:
    realm, _ = connection_for
    body = json.dumps([cloud_event(1, realm), cloud_event(2, realm)]).encode()
    status, _ = await post(session, qbo_url, body, content_type="application/cloudevents+json")
    assert status == 200
    published = await wait_for_queue(broker, QBO_TO_RELEASED, 2)
    assert sorted(str(m["entity_id"]) for m in published) == ["1", "2"]
    assert all(m["connection_id"] for m in published)
    await asyncio.sleep(0.5)  # the marker flushes in batches
    assert {r["status"] for r in await inbox_rows(pool, realm)} == {"published"}


@pytest.mark.parametrize("signature", ["missing", "wrong", "altered"])
async def test_bad_signatures_are_401_and_record_nothing(
    qbo_url: str,
    session: aiohttp.ClientSession,
    connection_for: tuple[str, str],
    pool: asyncpg.Pool,
    signature: str,
) -> None:
    realm, _ = connection_for
    body = json.dumps([cloud_event(1, realm)]).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "wrong":
        headers["intuit-signature"] = sign("not-the-token", body)
    elif signature == "altered":
        headers["intuit-signature"] = sign(VERIFIER, body)
        body = body.replace(b'"1"', b'"7"', 1)  # one byte changed after signing
    async with session.post(qbo_url, data=body, headers=headers) as response:
        assert response.status == 401
        assert "intuit-signature" in (await response.json())["error"]
    assert await inbox_rows(pool, realm) == []


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"unexpected": true}', "application/json", 400),
        (b"x" * (65 * 1024), "application/json", 413),
        (b"[]", "text/plain", 415),
        (b"[]", "", 415),
    ],
)
async def test_bad_requests_record_nothing(
    qbo_url: str,
    session: aiohttp.ClientSession,
    pool: asyncpg.Pool,
    body: bytes,
    content_type: str,
    status: int,
) -> None:
    async with pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM inbox")
    got, reply = await post(session, qbo_url, body, content_type=content_type)
    assert got == status
    assert json.loads(reply)["error"]
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM inbox") == before


async def test_mixed_realms_hundred_events_and_unknown_realm_ignored(
    qbo_url: str,
    session: aiohttp.ClientSession,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
) -> None:
    realms = []
    async with pool.acquire() as conn:
        for i in range(3):
            realm = f"mix-{i}-{uuid.uuid4().hex[:6]}"
            realms.append(realm)
            await conn.execute(
                "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
                "VALUES ($1, $2, 'active')",
                f"co-{realm}",
                realm,
            )
    stranger = f"unknown-{uuid.uuid4().hex[:6]}"
    events = [cloud_event(i, realms[i % 3]) for i in range(99)] + [cloud_event(99, stranger)]
    status, reply = await post(session, qbo_url, json.dumps(events).encode())
    assert status == 200
    assert json.loads(reply) == {"accepted": 100, "duplicates": 0}
    published = await wait_for_queue(broker, QBO_TO_RELEASED, 99)
    assert len(published) == 99
    assert stranger not in {m["account_id"] for m in published}
    ignored = await inbox_rows(pool, stranger)
    assert [(r["status"], r["ignore_reason"]) for r in ignored] == [("ignored", "no_connection")]


async def test_redelivered_batch_is_deduplicated(
    qbo_url: str,
    session: aiohttp.ClientSession,
    connection_for: tuple[str, str],
    broker: AbstractRobustConnection,
) -> None:
    realm, _ = connection_for
    body = json.dumps([cloud_event(i, realm) for i in range(5)]).encode()
    assert (await post(session, qbo_url, body))[0] == 200
    status, reply = await post(session, qbo_url, body)
    assert status == 200
    assert json.loads(reply) == {"accepted": 0, "duplicates": 5}
    await asyncio.sleep(0.5)
    assert len(await wait_for_queue(broker, QBO_TO_RELEASED, 5, timeout=3)) == 5


async def test_legacy_envelope_is_accepted(
    qbo_url: str,
    session: aiohttp.ClientSession,
    connection_for: tuple[str, str],
    broker: AbstractRobustConnection,
) -> None:
    realm, _ = connection_for
    body = {
        "eventNotifications": [
            {
                "realmId": realm,
                "dataChangeEvent": {
                    "entities": [
                        {
                            "name": "Customer",
                            "id": "4",
                            "operation": "Create",
                            "lastUpdated": "2026-11-26T10:00:00.000Z",
                        },
                    ]
                },
            }
        ]
    }
    assert (await post(session, qbo_url, json.dumps(body).encode()))[0] == 200
    (message,) = await wait_for_queue(broker, QBO_TO_RELEASED, 1)
    assert (message["entity"], message["operation"]) == ("customer", "create")


async def test_released_handshake_answers_with_empty_bodies(
    released_url: str, session: aiohttp.ClientSession
) -> None:
    body = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0}).encode()
    header = "X-Released-Signature"
    answers = []
    for key in (RELEASED_KEY, "wrong-key", RELEASED_KEY, "wrong-key"):
        answers.append(await post(session, released_url, body, key=key, header=header))
    assert answers == [(200, b""), (401, b""), (200, b""), (401, b"")]


async def test_released_events_are_published(
    released_url: str,
    session: aiohttp.ClientSession,
    connection_for: tuple[str, str],
    broker: AbstractRobustConnection,
) -> None:
    _, company = connection_for
    body = json.dumps(released_body(1, company)).encode()
    status, _ = await post(
        session, released_url, body, key=RELEASED_KEY, header="X-Released-Signature"
    )
    assert status == 200
    (message,) = await wait_for_queue(broker, RELEASED_TO_QBO, 1)
    assert message["entity"] == "invoice"
    assert message["operation"] == "approved"


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    return urlunsplit(parts._replace(netloc=netloc))


async def test_broker_outage_keeps_answering_and_loses_nothing(
    database_url: str,
    amqp_url: str,
    broker: AbstractRobustConnection,
    session: aiohttp.ClientSession,
    connection_for: tuple[str, str],
) -> None:
    realm, _ = connection_for
    proxy = TcpProxy("127.0.0.1", urlsplit(amqp_url).port or 5672)
    await proxy.start()
    settings = QboWebhookSettings(
        database_url=database_url,
        amqp_url=_with_port(amqp_url, proxy.port),
        qbo_webhook_verifier_token=VERIFIER,
    )
    sent = 0
    async with serving(create_qbo_app(settings, relay_interval_s=0.2)) as base:
        url = f"{base}/webhooks/qbo"
        for i in range(5):
            assert (await post(session, url, json.dumps([cloud_event(i, realm)]).encode()))[
                0
            ] == 200
            sent += 1
        await proxy.cut()
        for i in range(5, 25):
            status, _ = await post(session, url, json.dumps([cloud_event(i, realm)]).encode())
            assert status == 200, "the inbox keeps accepting while RabbitMQ is away"
            sent += 1
        await asyncio.sleep(0.5)
        await proxy.restore()
        # Duplicates count too, so wait for every event rather than for as many messages: a
        # publish the cut left waiting on a confirm reaches the relay only after the late window.
        received: list[dict[str, object]] = []
        deadline = asyncio.get_running_loop().time() + 45
        while {int(str(m["entity_id"])) for m in received} != set(range(sent)):
            if asyncio.get_running_loop().time() > deadline:
                break
            received += await drain_queue(broker, QBO_TO_RELEASED)
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
        received += await drain_queue(broker, QBO_TO_RELEASED)
    await proxy.close()
    # At least once: a publish whose confirm was cut off may arrive twice; none may be missing.
    assert {int(str(m["entity_id"])) for m in received} == set(range(sent))


async def test_both_stores_down_is_503(
    database_url: str,
    amqp_url: str,
    broker: AbstractRobustConnection,
    session: aiohttp.ClientSession,
    connection_for: tuple[str, str],
) -> None:
    realm, _ = connection_for
    pg = TcpProxy("127.0.0.1", urlsplit(database_url).port or 5432)
    mq = TcpProxy("127.0.0.1", urlsplit(amqp_url).port or 5672)
    await pg.start()
    await mq.start()
    settings = QboWebhookSettings(
        database_url=_with_port(database_url, pg.port),
        amqp_url=_with_port(amqp_url, mq.port),
        qbo_webhook_verifier_token=VERIFIER,
    )
    async with serving(create_qbo_app(settings)) as base:
        url = f"{base}/webhooks/qbo"
        await pg.cut()
        # Broker alone still makes the event durable: 200.
        assert (await post(session, url, json.dumps([cloud_event(1, realm)]).encode()))[0] == 200
        await mq.cut()
        status, _ = await post(session, url, json.dumps([cloud_event(2, realm)]).encode())
        assert status == 503
        await pg.restore()
        await mq.restore()
    await pg.close()
    await mq.close()
    received = await wait_for_queue(broker, QBO_TO_RELEASED, 1)
    assert [m["entity_id"] for m in received] == ["1"]


def test_receiver_refuses_to_start_without_its_secret(database_url: str, amqp_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_", "RELEASED_"))}
    env.update(DATABASE_URL=database_url, AMQP_URL=amqp_url)
    for module, name in (
        ("services.qbo_webhooks", "QBO_WEBHOOK_VERIFIER_TOKEN"),
        ("services.released_webhooks", "RELEASED_WEBHOOK_KEY"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 1
        assert f"{name} is required" in proc.stderr
        assert "Traceback" not in proc.stderr
