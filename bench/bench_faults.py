"""Faults under load: what the ingest path loses, duplicates or reorders when things die.

A steady load of BENCH_EVENTS single-event webhooks (half QBO, half Re-Leased) over
BENCH_CONNECTIONS connections goes to both receivers, each running as its own process on a
throw-away database and vhost. Each sender behaves like the platforms: it retries a delivery
until it gets 200, and sends a record's next version only after the previous one was accepted.
While the load runs, faults are injected in turn:
- always: kill -9 of each receiver process BENCH_KILLS times (restarted at once);
- only with FAULTS_RESTART_SERVICES=1 (it restarts the machine's shared RabbitMQ and
  PostgreSQL; never run it while anyone else uses them): ``rabbitmqctl stop_app``/``start_app``,
  a full RabbitMQ restart, a PostgreSQL restart.
Afterwards the work queues are drained and compared with what was acknowledged:
- lost: an event answered 200 that never reached its work queue (must be 0);
- duplicated: extra copies of an event on the queue (at-least-once; the consumers' idempotency
  absorbs them, counted here so a regression shows);
- reordered: records whose versions first reached the queue out of the order they were sent
  (message order; events are thin and the consumer fetches the current record, so an inversion
  here is not a wrong effect, but it shows how much order the faults cost);
- webhooks answered non-2xx (retried by the sender), and the time each fault took to recover
  (first 200 after the fault).
Not covered here: kill -9 of consumers and the reconciler, and the 60 s Re-Leased outage (they
need the engine and both sandboxes; tests/e2e/test_faults_*.py cover them at small scale).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import aiohttp
import asyncpg

from shared.adapters.broker import QBO_TO_RELEASED, RELEASED_TO_QBO
from shared.domain.signatures import sign
from shared.infra.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
EVENTS = int(os.environ.get("BENCH_EVENTS", "10000"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "50"))
KILLS = int(os.environ.get("BENCH_KILLS", "10"))
# Events per second over all senders: steady, and slow enough that every fault lands in the load.
RATE = float(os.environ.get("BENCH_RATE", "120"))
RESTART_SERVICES = os.environ.get("FAULTS_RESTART_SERVICES") == "1"
PORTS = {"qbo": 8931, "released": 8932}
KEYS = {"qbo": "faults-verifier", "released": "faults-rl-key"}
HEADERS = {"qbo": "intuit-signature", "released": "x-released-signature"}
REALM, COMPANY = "faults-realm", "faults-company"


class Receivers:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        module = f"services.{name}_webhooks"
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=ROOT,
            env={**os.environ, **self.env, "LOG_LEVEL": "ERROR", "LOG_FORMAT": "json"},
            stdout=subprocess.DEVNULL,
        )

    def kill9(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(10)
        self.start(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
            proc.wait(30)


class Load:
    """The senders: per record, versions in order; every delivery retried until 200."""

    def __init__(self) -> None:
        self.acked: set[str] = set()
        self.sent_order: dict[str, list[str]] = defaultdict(list)  # record -> event ids
        self.answers: Counter[int] = Counter()
        self.last_ok = {"qbo": time.monotonic(), "released": time.monotonic()}

    def body(self, receiver: str, record: str, version: int, event_id: str) -> bytes:
        if receiver == "qbo":
            return json.dumps(
                [
                    {
                        "specversion": "1.0",
                        "id": event_id,
                        "type": "qbo.invoice.updated.v1",
                        "time": f"2026-11-26T11:{version // 60:02d}:{version % 60:02d}Z",
                        "intuitentityid": record,
                        "intuitaccountid": REALM,
                    }
                ]
            ).encode()
        return json.dumps({"events": [{
            "eventId": event_id, "eventCategory": "INVOICE", "eventType": "UPDATE",
            "eventName": "invoice.approved", "resourceId": record, "companyId": COMPANY,
            "resourceVersion": version, "eventDateUtc": "2026-11-26T11:00:00Z",
        }]}).encode()  # fmt: skip

    async def deliver(self, session: aiohttp.ClientSession, receiver: str, body: bytes) -> None:
        url = f"http://127.0.0.1:{PORTS[receiver]}/webhooks/{receiver}"
        headers = {
            "Content-Type": "application/json",
            HEADERS[receiver]: sign(KEYS[receiver], body),
        }
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    self.answers[response.status] += 1
                    if response.status == 200:
                        self.last_ok[receiver] = time.monotonic()
                        return
            except (aiohttp.ClientError, TimeoutError):
                self.answers[-1] += 1  # refused or dropped connection: the process is down
            await asyncio.sleep(0.2)
        raise RuntimeError("a delivery was not accepted within 300 s")

    async def sender(self, session: aiohttp.ClientSession, n: int, count: int) -> None:
        receiver = "qbo" if n % 2 == 0 else "released"
        records = [f"{receiver}-r{n}-{k}" for k in range(5)]
        interval = CONNECTIONS / RATE
        for i in range(count):
            next_at = time.monotonic() + interval
            record = records[i % len(records)]
            event_id = f"{receiver}-{uuid.uuid4().hex}"
            await self.deliver(session, receiver, self.body(receiver, record, i, event_id))
            self.acked.add(event_id)
            self.sent_order[record].append(event_id)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def faults(receivers: Receivers, load: Load, done: asyncio.Event) -> list[str]:
    notes: list[str] = []

    async def recovered(label: str, since: float) -> None:
        """Until both receivers answered 200 again since the fault (or the load ended)."""
        while min(load.last_ok.values()) <= since and not done.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        back = max(min(load.last_ok.values()) - since, 0)
        notes.append(f"{label}: both receivers answering 200 again after {back:.2f} s")

    plan: list[tuple[str, list[str]]] = []
    for k in range(KILLS):
        plan.append((f"kill -9 qbo_webhooks #{k + 1}", ["kill", "qbo"]))
        plan.append((f"kill -9 released_webhooks #{k + 1}", ["kill", "released"]))
    if RESTART_SERVICES:
        plan.append(
            ("rabbitmqctl stop_app/start_app", ["rabbitmqctl stop_app", "rabbitmqctl start_app"])
        )
        plan.append(("RabbitMQ full restart", ["rabbitmqctl stop", "rabbitmq-server -detached"]))
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        restart = f"pg_ctlcluster --skip-systemctl-redirect {version} main restart"
        plan.append(("PostgreSQL restart", [restart]))
    for label, steps in plan:
        if done.is_set():
            notes.append(f"{label}: skipped, the load had finished")
            continue
        await asyncio.sleep(random.uniform(0.5, 1.5))
        since = time.monotonic()
        if steps[0] == "kill":
            receivers.kill9(steps[1])
        else:
            for step in steps:
                await asyncio.to_thread(
                    subprocess.run, step.split(), check=False, capture_output=True, timeout=120
                )
                await asyncio.sleep(2)
        await recovered(label, since)
    return notes


async def drain(amqp: str) -> list[tuple[str, str]]:
    """(record, event id) of every message on both work queues, in queue order."""
    connection = await aio_pika.connect_robust(amqp)
    seen: list[tuple[str, str]] = []
    async with connection:
        channel = await connection.channel()
        for name in (QBO_TO_RELEASED, RELEASED_TO_QBO):
            queue = await channel.get_queue(name)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                event = json.loads(message.body)
                seen.append((str(event["entity_id"]), str(event["event_id"])))
    return seen


def reordered(load: Load, seen: list[tuple[str, str]]) -> int:
    first: dict[str, int] = {}
    for position, (_, event_id) in enumerate(seen):
        first.setdefault(event_id, position)
    bad = 0
    for ids in load.sent_order.values():
        positions = [first[i] for i in ids if i in first]
        bad += positions != sorted(positions)
    return bad


async def run(dsn: str, amqp: str) -> None:
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
        "VALUES ($1, $2, 'active')",
        COMPANY,
        REALM,
    )
    await conn.close()
    env = {
        "DATABASE_URL": dsn,
        "AMQP_URL": amqp,
        "QBO_WEBHOOK_VERIFIER_TOKEN": KEYS["qbo"],
        "RELEASED_WEBHOOK_KEY": KEYS["released"],
        "QBO_WEBHOOKS_PORT": str(PORTS["qbo"]),
        "RELEASED_WEBHOOKS_PORT": str(PORTS["released"]),
    }
    receivers = Receivers(env)
    receivers.start("qbo")
    receivers.start("released")
    await asyncio.sleep(3)
    load = Load()
    done = asyncio.Event()
    per_sender = EVENTS // CONNECTIONS
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONNECTIONS), timeout=timeout
    ) as session:
        injector = asyncio.create_task(faults(receivers, load, done))
        await asyncio.gather(*(load.sender(session, n, per_sender) for n in range(CONNECTIONS)))
        done.set()
        notes = await injector
    took = time.monotonic() - started
    await asyncio.sleep(10)  # the relays publish what the killed processes left pending
    seen = await drain(amqp)
    receivers.stop()
    copies = Counter(event_id for _, event_id in seen)
    lost = load.acked - set(copies)
    print(f"{len(load.acked)} events acknowledged over {CONNECTIONS} connections in {took:.1f} s")
    print(f"mode: {'with' if RESTART_SERVICES else 'WITHOUT'} shared-service restarts")
    for note in notes:
        print(f"  {note}")
    print(f"lost (acknowledged, never queued): {len(lost)}")
    print(
        f"duplicated: {sum(c - 1 for c in copies.values())} extra copies "
        f"of {sum(1 for c in copies.values() if c > 1)} events"
    )
    print(f"reordered records: {reordered(load, seen)} of {len(load.sent_order)}")
    print(f"webhook answers: {dict(sorted(load.answers.items()))} (-1: connection refused)")


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(sql)
    await conn.close()


def main() -> None:
    db, vhost = f"bench_ft_{uuid.uuid4().hex[:8]}", f"bench_ft_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{db}"'))
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    try:
        asyncio.run(
            run(
                urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{db}")),
                urlunsplit(urlsplit(AMQP)._replace(path="/" + quote(vhost, safe=""))),
            )
        )
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


if __name__ == "__main__":
    main()
