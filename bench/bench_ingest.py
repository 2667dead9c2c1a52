"""Webhook ingest beside a bare verify-only endpoint and bare confirmed publishing, one run.

Every server is its own uvicorn process (one worker); the load comes from wrk (one thread, so
the generator takes at most one core and not the server's) driving a Lua script that cycles
through pre-signed bodies with unique event ids, so the receivers do full work (no dedupe
shortcut) until a file wraps (reported). Measured, in this order:
1. bare aio-pika confirmed publishing to the quorum work queue (msg/s): what the broker takes;
2. the baseline (bench/baseline_receiver.py: verify the signature, answer 200);
3. each receiver (qbo_webhooks, released_webhooks): single-event posts and 100-event posts at
   BENCH_CONNECTIONS, then the drain of the backlog and the counts: inbox rows against queued
   messages (nothing consumes the queues), so lost and duplicated events are counted, not
   assumed;
4. qbo_webhooks under a sustained stream of 100-event posts (BENCH_STREAM_SECONDS): events
   published per second during the stream against bare publishing, then the drain time;
5. (BENCH_PYTHON=1, default) the same single-event and 100-event loads from an aiohttp
   generator in this process, as before wrk, for continuity with earlier figures.

Every load starts once RabbitMQ and PostgreSQL are quiet (a purge's clean-up must not take
the next load's CPU), and each wrk line says how many cores the server, RabbitMQ, PostgreSQL
and wrk used meanwhile: whether a load was bound by the machine or by waiting.

Uses a throw-away database and RabbitMQ vhost on the local servers; loopback only; bounded time.
Environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (16), BENCH_STREAM_SECONDS (60),
BENCH_DRAIN_LIMIT_S (300), BENCH_PYTHON (1), BENCH_RECEIVERS (qbo,released).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from ingest_python import python_section
from ingest_support import (
    COMPANY,
    REALM,
    TOKEN,
    Drained,
    WrkResult,
    bare_confirmed_publish,
    body_file,
    drain,
    purge,
    queued,
    rss_mb,
    wrk,
)

from shared.infra.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
STREAM_SECONDS = float(os.environ.get("BENCH_STREAM_SECONDS", "60"))
DRAIN_LIMIT_S = float(os.environ.get("BENCH_DRAIN_LIMIT_S", "300"))
PYTHON = os.environ.get("BENCH_PYTHON", "1") == "1"
BASE_PORT = 8910
RECEIVERS = {
    # source: (module, port, path, signature header)
    "qbo": ("services.qbo_webhooks", 8911, "/webhooks/qbo", "intuit-signature"),
    "released": ("services.released_webhooks", 8912, "/webhooks/released", "x-released-signature"),
}
# Bodies per file: enough that a 10 s run does not wrap on this machine.
SINGLE_BODIES = int(os.environ.get("BENCH_SINGLE_BODIES", "120000"))
BATCH_BODIES = int(os.environ.get("BENCH_BATCH_BODIES", "12000"))


def start(module_args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, *module_args],
        cwd=ROOT,
        env={**os.environ, **env, "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
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


def line(name: str, result: WrkResult, batch: int, extra: str = "") -> float:
    """Print one wrk result; returns requests/s (or events/s for batches)."""
    reqs = result.ok / result.seconds
    events = reqs * batch
    rate = f"{reqs:8.0f} req/s" + (f" {events:9.0f} events/s" if batch > 1 else " " * 19)
    cores = " ".join(f"{k} {v:.2f}" for k, v in (result.cores or {}).items())
    print(
        f"  {name:<30} {rate}  p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms"
        f"  non-2xx {result.non2xx}  socket errors {result.socket_errors}{extra}"
        f"\n  {'':<30} cores: {cores}"
    )
    return events if batch > 1 else reqs


def proof(label: str, sent: int, drained: Drained) -> None:
    lost = max(0, drained.rows - drained.queued) + max(0, sent - drained.rows)
    duplicated = max(0, drained.queued - drained.rows)
    print(
        f"  {label}: {sent} unique events answered 200, {drained.rows} inbox rows, "
        f"{drained.queued} queued, {drained.pending} still pending -> lost {lost}, "
        f"duplicated {duplicated}; backlog drained in {drained.seconds:.1f} s"
    )


def unique_sent(ok: int, bodies: int, batch: int) -> int:
    return min(ok, bodies) * batch


async def prepare_db(dsn: str) -> None:
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    await conn.execute(
        "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
        "VALUES ($1, $2, 'active')",
        COMPANY,
        REALM,
    )
    await conn.close()


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(sql)
    await conn.close()


def receiver_section(source: str, env: dict[str, str], dsn: str, amqp: str) -> dict[str, float]:
    module, port, path, header = RECEIVERS[source]
    url = f"http://127.0.0.1:{port}{path}"
    single, batch = body_file(source, 1, SINGLE_BODIES), body_file(source, 100, BATCH_BODIES)
    figures: dict[str, float] = {}
    try:
        base = start(["bench/baseline_receiver.py"], env, BASE_PORT)
        base_url = f"http://127.0.0.1:{BASE_PORT}/"
        print(f"{source}: baseline verify-only")
        figures["base_single"] = line("single-event", wrk(base_url, header, single, CONNECTIONS,
                                                          SECONDS, base.pid), 1)  # fmt: skip
        figures["base_batch"] = line("100-event", wrk(base_url, header, batch, CONNECTIONS,
                                                      SECONDS, base.pid), 100)  # fmt: skip
        print(f"  baseline RSS {rss_mb(base.pid):.0f} MiB")
        stop(base)
        recv = start(["-m", module], env, port)
        print(f"{source}_webhooks")
        result = wrk(url, header, single, CONNECTIONS, SECONDS, recv.pid)
        figures["single"] = line("single-event", result, 1)
        proof("single-event", unique_sent(result.ok, SINGLE_BODIES, 1),
              asyncio.run(drain(dsn, amqp, DRAIN_LIMIT_S)))  # fmt: skip
        asyncio.run(purge(amqp, dsn))
        result = wrk(url, header, batch, CONNECTIONS, SECONDS, recv.pid)
        figures["batch"] = line("100-event", result, 100)
        figures["batch_p99"] = result.p99_ms
        print(f"  receiver RSS {rss_mb(recv.pid):.0f} MiB")
        proof("100-event burst", unique_sent(result.ok, BATCH_BODIES, 100),
              asyncio.run(drain(dsn, amqp, DRAIN_LIMIT_S)))  # fmt: skip
        asyncio.run(purge(amqp, dsn))
        if source == "qbo" and STREAM_SECONDS > 0:
            # The broker's own rate swings with the machine's load: measured right before too.
            bare = asyncio.run(bare_confirmed_publish(amqp, SECONDS))
            figures["bare_before_stream"] = bare
            print(f"  bare confirmed publish just before: {bare:.0f} msg/s")
            figures["stream"] = stream(url, header, batch, dsn, amqp, recv.pid)
            print(f"  receiver RSS {rss_mb(recv.pid):.0f} MiB")
            asyncio.run(purge(amqp, dsn))
        stop(recv)
    finally:
        single.unlink()
        batch.unlink()
    return figures


def stream(url: str, header: str, batch: Path, dsn: str, amqp: str, pid: int) -> float:
    """A sustained stream of 100-event posts: events published per second while it lasts."""
    before = asyncio.run(queued(amqp))
    result = wrk(url, header, batch, CONNECTIONS, STREAM_SECONDS, pid)
    published = asyncio.run(queued(amqp)) - before
    rate = published / result.seconds
    line(f"{STREAM_SECONDS:.0f} s stream, 100-event", result, 100,
         f"  published {rate:.0f} events/s")  # fmt: skip
    wrapped = " (body file wrapped: repeats were duplicates)" if result.ok > BATCH_BODIES else ""
    proof("stream" + wrapped, unique_sent(result.ok, BATCH_BODIES, 100),
          asyncio.run(drain(dsn, amqp, DRAIN_LIMIT_S)))  # fmt: skip
    return rate


def summary(bare: float, figures: dict[str, dict[str, float]]) -> None:
    print("\nratios (same run):")
    for source, f in figures.items():
        print(
            f"  {source}: single-event {f['single'] / f['base_single']:.2f} of bare verify-only "
            f"(goal >= 0.5); 100-event {f['batch'] / bare:.1f}x bare confirmed publish "
            f"(goal >= 2), p99 {f['batch_p99']:.0f} ms (goal < 100)"
        )
        if "stream" in f:
            print(
                f"  {source}: stream published {f['stream'] / bare:.2f} of bare confirmed "
                f"publish (goal >= 0.8); {f['stream'] / f['bare_before_stream']:.2f} of the "
                "bare rate measured just before it"
            )


def main() -> None:
    db, vhost = f"bench_{uuid.uuid4().hex[:8]}", f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{db}"'))
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    dsn = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{db}"))
    amqp = urlunsplit(urlsplit(AMQP)._replace(path="/" + quote(vhost, safe="")))
    env = {
        "DATABASE_URL": dsn,
        "AMQP_URL": amqp,
        "QBO_WEBHOOK_VERIFIER_TOKEN": TOKEN,
        "RELEASED_WEBHOOK_KEY": TOKEN,
        "QBO_WEBHOOKS_PORT": str(RECEIVERS["qbo"][1]),
        "RELEASED_WEBHOOKS_PORT": str(RECEIVERS["released"][1]),
        "DB_POOL_MAX": "20",
        "BENCH_BASELINE_PORT": str(BASE_PORT),
    }
    try:
        asyncio.run(prepare_db(dsn))
        print(
            f"wrk -t1 -c{CONNECTIONS}, {SECONDS:.0f} s per run, 1 server process each; "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"
        )
        # Declares the topology the receivers publish to, then measures the broker alone.
        recv = start(["-m", RECEIVERS["qbo"][0]], env, RECEIVERS["qbo"][1])
        stop(recv)
        bare = asyncio.run(bare_confirmed_publish(amqp, SECONDS))
        print(f"bare aio-pika confirmed publish, quorum queue: {bare:.0f} msg/s")
        chosen = os.environ.get("BENCH_RECEIVERS", ",".join(RECEIVERS)).split(",")
        figures = {s: receiver_section(s, env, dsn, amqp) for s in chosen}
        bare_after = asyncio.run(bare_confirmed_publish(amqp, SECONDS))
        print(f"bare aio-pika confirmed publish again at the end: {bare_after:.0f} msg/s")
        summary((bare + bare_after) / 2, figures)
        if PYTHON:
            python_section(env, dsn, amqp, start, stop)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


if __name__ == "__main__":
    main()
