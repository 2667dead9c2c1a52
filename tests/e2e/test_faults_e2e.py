"""Faults against the running stack: a killed consumer, RabbitMQ and PostgreSQL outages, a 429
storm on one realm. Each test reports events sent / applied / duplicates / losses.

The load is Re-Leased contacts created through the sandbox API: each one is a signed webhook to
our receiver, a change event, and a QBO Customer written by the ``released_to_qbo`` engine.
"Applied" counts distinct names found in QBO, "duplicates" extra Customers with one name.
Outages are made with ``TcpProxy`` between our processes and the shared servers, never by
stopping the servers themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection
from pydantic import SecretStr

from shared.adapters.broker import EventPublisher
from shared.domain.connections import Connection
from shared.infra.settings import EngineSettings
from shared.ops import dead_letters, replay
from shared.ops.dead_letters import DeadLetterFilter
from shared.ops.replay import Throttle
from tests.e2e.stack import Stack, consumers, running_stack
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Figures:
    name: str
    sent: int
    applied: int
    duplicates: int
    extra: dict[str, Any]

    @property
    def losses(self) -> int:
        return self.sent - self.applied

    def line(self) -> str:
        return json.dumps(
            {
                "fault_test": self.name,
                "sent": self.sent,
                "applied": self.applied,
                "duplicates": self.duplicates,
                "losses": self.losses,
                **self.extra,
            }
        )


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Iterator[list[Figures]]:
    """Figures go straight to the terminal (not captured), so the lead can read them in any run."""
    found: list[Figures] = []
    yield found
    with capsys.disabled():
        for figures in found:
            sys.stdout.write(f"\nFAULT FIGURES {figures.line()}\n")


async def create_contacts(
    stack: Stack, company: str, names: list[str], spacing_s: float = 0.0
) -> dict[str, float]:
    """Create the contacts (a few at a time); when each was created."""
    created: dict[str, float] = {}
    sem = asyncio.Semaphore(4)

    async def one(name: str) -> None:
        async with sem:
            await stack.released_api(company, "POST", "/contacts", json={"name": name})
            created[name] = time.monotonic()

    tasks = []
    for name in names:
        tasks.append(asyncio.create_task(one(name)))
        if spacing_s:
            await asyncio.sleep(spacing_s)
    await asyncio.gather(*tasks)
    return created


async def customers_named(stack: Stack, connection: Connection, prefix: str) -> Counter[str]:
    qbo = stack.factory.qbo(connection)
    rows = await qbo.query_all("Customer", f"DisplayName like '{prefix}%'")
    return Counter(str(r["DisplayName"]) for r in rows)


async def settle(
    stack: Stack, connection: Connection, prefix: str, expected: int, timeout: float
) -> Counter[str]:
    """Poll QBO until ``expected`` names arrived (or time is up, then report what is there)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await customers_named(stack, connection, prefix)
        if len(found) >= expected or time.monotonic() > deadline:
            await asyncio.sleep(1.0)  # anything still in flight shows up as a duplicate now
            return await customers_named(stack, connection, prefix)
        await asyncio.sleep(0.3)


def figures(name: str, names: list[str], found: Counter[str], **extra: Any) -> Figures:
    applied = sum(1 for n in names if found.get(n))
    duplicates = sum(count - 1 for n, count in found.items() if n in names and count > 1)
    return Figures(name, len(names), applied, duplicates, extra)


async def link_pair(stack: Stack) -> tuple[str, str, Connection]:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    await asyncio.sleep(1.1)  # CDC works in whole seconds: keep seed data before the connection
    return realm, company, await stack.connect(realm, tokens, company)


def proxied(url: str, port: int) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))


@asynccontextmanager
async def proxy_for(url: str, default_port: int) -> AsyncIterator[TcpProxy]:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or default_port)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


# -- kill -9 a consumer in the middle of applying ----------------------------------------------


def service_env(settings: EngineSettings) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in settings.model_dump().items():
        if value is None:
            continue  # unset stays unset (str(None) is no valid value for any setting)
        plain = value.get_secret_value() if isinstance(value, SecretStr) else value
        env[key.upper()] = str(plain)
    env.update({"LOG_FORMAT": "json", "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"})
    env["OPS_PORT"] = "0"  # its ops server on a free port, never a fixed one another run holds
    return env


@asynccontextmanager
async def consumer_process(
    settings: EngineSettings, log_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.released_to_qbo",
            cwd=ROOT,
            env=service_env(settings),
            stdout=log,
            stderr=log,
        )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), 25)
            if process.returncode is None:
                process.kill()
                await process.wait()


async def test_kill_9_mid_apply_loses_nothing_and_duplicates_nothing(
    database_url: str,
    amqp_url: str,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
    report: list[Figures],
    tmp_path: Path,
) -> None:
    async with running_stack(database_url, amqp_url, pool) as stack:
        _, company, connection = await link_pair(stack)
        prefix = f"Kill {uuid.uuid4().hex[:5]}"
        names = [f"{prefix} {n:03d}" for n in range(40)]
        async with consumer_process(stack.settings, tmp_path / "a.log") as first:
            await create_contacts(stack, company, names)
            deadline = time.monotonic() + 30
            while len(await customers_named(stack, connection, prefix)) < 5:
                assert time.monotonic() < deadline, (tmp_path / "a.log").read_text()[-3000:]
                await asyncio.sleep(0.05)
            first.kill()  # SIGKILL: no drain, no acks for whatever it held
            await first.wait()
        at_kill = len(await customers_named(stack, connection, prefix))
        async with consumer_process(stack.settings, tmp_path / "b.log"):
            found = await settle(stack, connection, prefix, len(names), timeout=60)
    result = figures("kill_9_consumer", names, found, applied_before_kill=at_kill)
    report.append(result)
    assert at_kill < len(names), "the kill landed while work was still in flight"
    assert (result.losses, result.duplicates) == (0, 0)


# -- RabbitMQ outage under load ----------------------------------------------------------------


async def test_broker_outage_under_load_keeps_webhooks_answered_and_loses_nothing(
    database_url: str,
    amqp_url: str,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
    report: list[Figures],
) -> None:
    async with (
        proxy_for(amqp_url, 5672) as proxy,
        running_stack(database_url, proxied(amqp_url, proxy.port), pool) as stack,
    ):
        _, company, connection = await link_pair(stack)
        prefix = f"Bunny {uuid.uuid4().hex[:5]}"
        names = [f"{prefix} {n:03d}" for n in range(30)]
        async with consumers(stack.settings):

            async def outage() -> None:
                await asyncio.sleep(1.5)
                await proxy.cut()
                await asyncio.sleep(4.0)
                await proxy.restore()

            cut = asyncio.create_task(outage())
            await create_contacts(stack, company, names, spacing_s=0.2)
            await cut
            found = await settle(stack, connection, prefix, len(names), timeout=60)
        deliveries = await stack.call(
            "GET", f"{stack.released_base}/_sandbox/deliveries?companyId={company}"
        )
    refused = [d for d in deliveries["items"] if d["events"] and not 200 <= int(d["status"]) < 300]
    result = figures(
        "rabbitmq_outage",
        names,
        found,
        webhook_deliveries=len(deliveries["items"]),
        webhook_non_2xx=len(refused),
        outage_s=4.0,
    )
    report.append(result)
    assert refused == [], "receivers answered 200 throughout"
    assert (result.losses, result.duplicates) == (0, 0)


# -- PostgreSQL outage under load --------------------------------------------------------------


async def test_postgres_outage_is_survived_without_a_restart(
    database_url: str,
    amqp_url: str,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
    report: list[Figures],
) -> None:
    async with (
        proxy_for(database_url, 5432) as proxy,
        running_stack(proxied(database_url, proxy.port), amqp_url, pool) as stack,
    ):
        _, company, connection = await link_pair(stack)
        prefix = f"Elephant {uuid.uuid4().hex[:5]}"
        names = [f"{prefix} {n:03d}" for n in range(30)]
        async with consumers(stack.settings):

            async def outage() -> None:
                await asyncio.sleep(1.5)
                await proxy.cut()
                await asyncio.sleep(3.0)
                await proxy.restore()

            cut = asyncio.create_task(outage())
            await create_contacts(stack, company, names, spacing_s=0.2)
            await cut
            found = await settle(stack, connection, prefix, len(names), timeout=60)
        deliveries = await stack.call(
            "GET", f"{stack.released_base}/_sandbox/deliveries?companyId={company}"
        )
    refused = [d for d in deliveries["items"] if d["events"] and not 200 <= int(d["status"]) < 300]
    async with pool.acquire() as conn:
        dead = await conn.fetchval(
            "SELECT count(*) FROM dead_letters WHERE connection_id = $1", connection.id
        )
    result = figures(
        "postgres_outage",
        names,
        found,
        webhook_non_2xx=len(refused),
        dead_letters=dead,
        outage_s=3.0,
    )
    report.append(result)
    assert (result.losses, result.duplicates) == (0, 0)


# -- a 429 storm on one realm ------------------------------------------------------------------


@pytest.mark.timeout(200)  # the stormy realm honours QBO's 60 s default Retry-After once
async def test_a_429_storm_on_one_realm_does_not_delay_another(
    database_url: str,
    amqp_url: str,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
    report: list[Figures],
) -> None:
    async with running_stack(database_url, amqp_url, pool) as stack:
        stormy_realm, stormy_company, stormy = await link_pair(stack)
        _, calm_company, calm = await link_pair(stack)
        tag = uuid.uuid4().hex[:5]
        stormy_names = [f"Storm {tag} {n:03d}" for n in range(12)]
        calm_names = [f"Calm {tag} {n:03d}" for n in range(12)]
        faults = f"{stack.qbo_base}/_sandbox/realms/{stormy_realm}/faults"
        await stack.call("PUT", faults, json={"error_429_rate": 1.0})
        async with consumers(stack.settings):
            # The stormy realm's events go first, so they are the ones holding the consumers.
            await create_contacts(stack, stormy_company, stormy_names)
            created = await create_contacts(stack, calm_company, calm_names, spacing_s=0.1)
            latencies: dict[str, float] = {}
            deadline = time.monotonic() + 30
            while len(latencies) < len(calm_names) and time.monotonic() < deadline:
                found = await customers_named(stack, calm, f"Calm {tag}")
                for name in found:
                    latencies.setdefault(name, time.monotonic() - created[name])
                await asyncio.sleep(0.1)
            calm_found = await customers_named(stack, calm, f"Calm {tag}")
            await stack.call("PUT", faults, json={"error_429_rate": 0.0})
            # What the storm pushed into the dead-letter queue is replayed once it passes.
            await asyncio.sleep(3)
            async with pool.acquire() as conn:
                stuck = await dead_letters.ids(conn, DeadLetterFilter(connection_id=stormy.id))
            publisher = await EventPublisher.open(broker)
            await replay.replay_many(pool, publisher, stuck, Throttle(600))
            await publisher.close()
            stormy_found = await settle(stack, stormy, f"Storm {tag}", len(stormy_names), 120)
    worst = max(latencies.values(), default=float("inf"))
    calm_result = figures(
        "429_storm_other_realm",
        calm_names,
        calm_found,
        max_latency_s=round(worst, 2),
        p50_latency_s=round(sorted(latencies.values())[len(latencies) // 2], 2),
    )
    storm_result = figures(
        "429_storm_stormy_realm",
        stormy_names,
        stormy_found,
        dead_lettered_then_replayed=len(stuck),
    )
    report.extend([calm_result, storm_result])
    assert (calm_result.losses, calm_result.duplicates) == (0, 0)
    assert worst < 10.0, "the calm realm's events were not held up by the storm"
    assert (storm_result.losses, storm_result.duplicates) == (0, 0)
