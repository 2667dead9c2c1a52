"""Webhook ingest throughput and latency, beside a bare Starlette endpoint, same load generator.

Starts each server as its own uvicorn process (one worker), then drives it from this process with
aiohttp for a fixed time at a fixed concurrency:
- baseline: a Starlette endpoint that only verifies ``intuit-signature`` and answers 200;
- qbo_webhooks: the real receiver (verify, parse, inbox insert + commit, confirmed publish).
Two loads: single-event CloudEvents posts (webhooks/s) and 100-event posts (events/s).
Every event id is unique, so the receiver does full work (no dedupe shortcut).

Uses a throw-away database and RabbitMQ vhost on the local servers; loopback only; bounded time.
Environment: BENCH_SECONDS (default 10), BENCH_CONCURRENCY (default 32).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg

from shared.domain.signatures import sign
from shared.infra.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
TOKEN = "bench-verifier"
REALM = "bench-realm"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def body(batch: int) -> bytes:
    events = [
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
    return json.dumps(events).encode()


async def load(url: str, batch: int) -> tuple[int, int, list[float], float, int]:
    """Returns (requests ok, events ok, latencies ms, elapsed s, errors)."""
    latencies: list[float] = []
    ok = errors = 0
    stop_at = time.perf_counter() + SECONDS
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok, errors
            while time.perf_counter() < stop_at:
                data = body(batch)
                headers = {
                    "Content-Type": "application/json",
                    "intuit-signature": sign(TOKEN, data),
                }
                t0 = time.perf_counter()
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        ok += 1
                        latencies.append((time.perf_counter() - t0) * 1000)
                    else:
                        errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return ok, ok * batch, latencies, elapsed, errors


def report(name: str, result: tuple[int, int, list[float], float, int], batch: int) -> None:
    requests, events, latencies, elapsed, errors = result
    rate = f"{requests / elapsed:8.0f} req/s" + (
        f" {events / elapsed:8.0f} events/s" if batch > 1 else ""
    )
    print(
        f"{name:<34} {rate}   p50 {statistics.median(latencies):6.2f} ms"
        f"   p99 {pct(latencies, 0.99):6.2f} ms   errors {errors}"
    )


def start(module_args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, *module_args],
        cwd=ROOT,
        env={**os.environ, **env, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    import socket

    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{module_args} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(30)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


async def prepare_db(dsn: str) -> None:
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
        "VALUES ('bench-co', $1, 'active')",
        REALM,
    )
    await conn.close()


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(sql)
    await conn.close()


def main() -> None:
    db = f"bench_{uuid.uuid4().hex[:8]}"
    vhost = f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{db}"'))
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    dsn = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{db}"))
    amqp = urlunsplit(urlsplit(AMQP)._replace(path="/" + quote(vhost, safe="")))
    try:
        asyncio.run(prepare_db(dsn))
        env = {
            "DATABASE_URL": dsn,
            "AMQP_URL": amqp,
            "QBO_WEBHOOK_VERIFIER_TOKEN": TOKEN,
            "QBO_WEBHOOKS_PORT": "8911",
            "DB_POOL_MAX": "20",
            "BENCH_BASELINE_PORT": "8910",
        }
        print(f"{SECONDS:.0f} s per run, {CONCURRENCY} concurrent connections, 1 server process")
        for batch in (1, 100):
            base = start(["bench/baseline_receiver.py"], env, 8910)
            report(
                f"baseline verify-only, batch {batch}",
                asyncio.run(load("http://127.0.0.1:8910/", batch)),
                batch,
            )
            stop(base)
            recv = start(["-m", "services.qbo_webhooks"], env, 8911)
            result = asyncio.run(load("http://127.0.0.1:8911/webhooks/qbo", batch))
            report(f"qbo_webhooks, batch {batch}", result, batch)
            print(f"{'':34} receiver RSS {rss_mb(recv.pid):.0f} MiB")
            stop(recv)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


if __name__ == "__main__":
    main()
