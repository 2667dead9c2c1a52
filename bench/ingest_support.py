"""Pieces of bench_ingest: signed bodies on disk, wrk runs, bare publishing and the counts that
prove nothing was lost or duplicated."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import asyncpg
from cpu_usage import cpu_seconds

from shared.adapters.broker import WORK_QUEUES
from shared.domain.signatures import sign

LUA = Path(__file__).with_name("ingest_wrk.lua")
TOKEN = "bench-verifier"
REALM = "bench-realm"
COMPANY = "bench-co"


def _qbo_events(batch: int) -> list[dict[str, str]]:
    return [
        {
            "specversion": "1.0",
            "id": uuid.uuid4().hex,
            "source": "intuit.bench",
            "type": "qbo.invoice.updated.v1",
            "time": "2026-11-26T11:59:00Z",
            "intuitentityid": str(i),
            "intuitaccountid": REALM,
        }
        for i in range(batch)
    ]


def _released_body(batch: int) -> dict[str, object]:
    events = [
        {
            "eventId": uuid.uuid4().hex,
            "eventCategory": "contact",
            "eventType": "updated",
            "eventName": "contact.updated",
            "resourceId": str(i),
            "resourceUrl": f"https://api.example/contacts/{i}",
            "companyId": COMPANY,
            "resourceVersion": "7",
            "eventDateUtc": "2026-11-26T11:59:00Z",
        }
        for i in range(batch)
    ]
    return {"events": events, "firstEventSequence": 1, "lastEventSequence": batch}


def body(source: str, batch: int) -> bytes:
    document: object = _qbo_events(batch) if source == "qbo" else _released_body(batch)
    return json.dumps(document, separators=(",", ":")).encode()


def body_file(source: str, batch: int, count: int) -> Path:
    """``count`` unique signed bodies, one ``signature<TAB>body`` line each, for the Lua script."""
    handle, name = tempfile.mkstemp(prefix=f"bench_{source}_{batch}_", suffix=".tsv")
    with os.fdopen(handle, "wb") as out:
        for _ in range(count):
            data = body(source, batch)
            out.write(sign(TOKEN, data).encode() + b"\t" + data + b"\n")
    return Path(name)


_SERVERS = ("rabbitmq", "postgresql")


def _cpu_seconds(server_pid: int | None) -> dict[str, float]:
    """CPU seconds used so far by the server, RabbitMQ's and PostgreSQL's processes."""
    used = cpu_seconds({server_pid: "server"} if server_pid is not None else {})
    return {group: used.get(group, 0.0) for group in ("server", *_SERVERS)}


def settle(limit_s: float = 30.0, quiet_cores: float = 0.2) -> None:
    """Wait (at most ``limit_s``) until RabbitMQ and PostgreSQL together use under
    ``quiet_cores`` over half a second: a purge or a checkpoint left over from the last load
    must not take the next one's CPU (the bare endpoint measured right after bare publishing
    lost half its rate to the broker's clean-up)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = _cpu_seconds(None)
        time.sleep(0.5)
        after = _cpu_seconds(None)
        busy = sum(after[g] - before[g] for g in _SERVERS) / 0.5
        if busy < quiet_cores:
            return


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    # Cores used during the run: the server, RabbitMQ, PostgreSQL and wrk itself.
    cores: dict[str, float] | None = None

    @property
    def ok(self) -> int:
        return self.requests - self.non2xx


def wrk(
    url: str,
    header: str,
    bodies: Path,
    connections: int,
    seconds: float,
    server_pid: int | None = None,
) -> WrkResult:
    """One wrk thread (the load generator takes at most one core), ``connections`` open,
    once the broker and the database are quiet; with the cores each side used."""
    settle()
    before, children, started = (
        _cpu_seconds(server_pid),
        resource.getrusage(resource.RUSAGE_CHILDREN),
        time.monotonic(),
    )
    done = subprocess.run(
        [
            "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "10s",
            "-s", str(LUA), url, "--", header, str(bodies),
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    took = time.monotonic() - started
    after, children_after = _cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    cores = {group: (after[group] - before[group]) / took for group in before}
    cores["wrk"] = (
        children_after.ru_utime + children_after.ru_stime - children.ru_utime - children.ru_stime
    ) / took
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    raw = json.loads(line)
    return WrkResult(
        raw["requests"],
        raw["duration_us"] / 1e6,
        raw["non2xx"],
        raw["socket_errors"],
        raw["p50_us"] / 1000,
        raw["p99_us"] / 1000,
        cores,
    )


async def queued(amqp: str) -> int:
    """Messages waiting in the work queues (nothing consumes them during the bench)."""
    connection = await aio_pika.connect(amqp)
    async with connection:
        channel = await connection.channel()
        total = 0
        for name in WORK_QUEUES:
            queue = await channel.declare_queue(name, passive=True)
            total += queue.declaration_result.message_count or 0
        return total


async def purge(amqp: str, dsn: str) -> None:
    connection = await aio_pika.connect(amqp)
    async with connection:
        channel = await connection.channel()
        for name in WORK_QUEUES:
            queue = await channel.declare_queue(name, passive=True)
            await queue.purge()
    conn = await asyncpg.connect(dsn)
    await conn.execute("TRUNCATE inbox")
    await conn.close()


async def inbox_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    rows = await conn.fetch("SELECT status, count(*) AS n FROM inbox GROUP BY status")
    await conn.close()
    return {r["status"]: r["n"] for r in rows}


@dataclass
class Drained:
    seconds: float
    rows: int
    queued: int
    pending: int


async def drain(dsn: str, amqp: str, limit_s: float) -> Drained:
    """Wait until no inbox row is pending (every event published and marked), then count."""
    started = time.perf_counter()
    counts = await inbox_counts(dsn)
    while counts.get("pending", 0) and time.perf_counter() - started < limit_s:
        await asyncio.sleep(0.5)
        counts = await inbox_counts(dsn)
    took = time.perf_counter() - started
    await asyncio.sleep(1.0)  # a late relay pass would show up as duplicates now
    counts = await inbox_counts(dsn)
    return Drained(took, sum(counts.values()), await queued(amqp), counts.get("pending", 0))


async def bare_confirmed_publish(amqp: str, seconds: float, in_flight: int = 256) -> float:
    """Messages/s of bare aio-pika publishing with confirms, persistent, to the quorum work
    queue the receivers feed (default exchange, straight to the queue); purged afterwards."""
    settle()
    payload = body("qbo", 1)
    connection = await aio_pika.connect(amqp)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = next(iter(WORK_QUEUES))
        sent = 0
        stop_at = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal sent
            while time.perf_counter() < stop_at:
                message = aio_pika.Message(
                    payload, delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=uuid.uuid4().hex,
                )  # fmt: skip
                await channel.default_exchange.publish(message, routing_key=target)
                sent += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        rate = sent / (time.perf_counter() - started)
        queue = await channel.declare_queue(target, passive=True)
        await queue.purge()
    return rate


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0
