"""Slow and stalled senders against a real receiver process: memory and connections held.

Starts ``services.qbo_webhooks`` (throw-away database and vhost) and measures its RSS:
- baseline: idle, after start-up;
- 60 connections each announcing a 5 MiB body with a plausible but wrong signature, sending
  4 MiB of it and then stalling (what the budget for unverified bodies and the read deadline
  bound): answers by status and the peak RSS while they hang;
- 60 unsigned 5 MiB bodies (refused before a byte is read);
- 200 connections trickling their request headers one byte a second: how many are still open
  after 15 s (the header deadline closes them).
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from shared.infra.migrations import migrate

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PORT = 8951
PLAUSIBLE = base64.b64encode(b"\x01" * 32).decode()


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def _head(signature: str | None, length: int) -> bytes:
    lines = [
        "POST /webhooks/qbo HTTP/1.1",
        "Host: bench",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if signature:
        lines.append(f"intuit-signature: {signature}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _stalled_body(signature: str | None, answers: Counter[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    try:
        writer.write(_head(signature, 5 * 1024 * 1024))
        chunk = b" " * 65536
        for _ in range(64):  # 4 MiB, then nothing more
            if reader.at_eof():
                break
            writer.write(chunk)
            await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 30)
        answers[line.decode().strip() or "closed"] += 1
    except (ConnectionError, TimeoutError) as exc:
        answers[type(exc).__name__] += 1
    finally:
        writer.close()


async def _trickle(open_after: list[bool]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    request = _head(None, 2)
    started = time.monotonic()
    try:
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                    break
            except TimeoutError:
                pass
            if time.monotonic() - started > 15:
                open_after.append(True)
                break
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _peak(pid: int, stop: asyncio.Event, into: list[float]) -> None:
    while not stop.is_set():
        into.append(_rss_mb(pid))
        await asyncio.sleep(0.1)


async def run(pid: int) -> None:
    print(f"baseline: idle receiver RSS {_rss_mb(pid):.0f} MiB")
    for label, signature in (("plausible wrong signature", PLAUSIBLE), ("unsigned", None)):
        answers: Counter[str] = Counter()
        samples: list[float] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(_peak(pid, stop, samples))
        started = time.monotonic()
        await asyncio.gather(*(_stalled_body(signature, answers) for _ in range(60)))
        stop.set()
        await sampler
        took = time.monotonic() - started
        print(
            f"60 stalled 5 MiB bodies, {label}: answers {dict(answers)} within {took:.1f} s, "
            f"peak RSS {max(samples):.0f} MiB, after {_rss_mb(pid):.0f} MiB"
        )
    still_open: list[bool] = []
    started = time.monotonic()
    await asyncio.gather(*(_trickle(still_open) for _ in range(200)))
    print(
        f"200 header tricklers: {len(still_open)} still open after 15 s "
        f"(all done in {time.monotonic() - started:.1f} s), RSS {_rss_mb(pid):.0f} MiB"
    )


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(sql)
    await conn.close()


def main() -> None:
    db, vhost = f"bench_ss_{uuid.uuid4().hex[:8]}", f"bench_ss_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{db}"'))
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    dsn = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{db}"))
    amqp = urlunsplit(urlsplit(AMQP)._replace(path="/" + quote(vhost, safe="")))
    proc = None
    try:
        asyncio.run(migrate(dsn))
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "AMQP_URL": amqp,
            "QBO_WEBHOOK_VERIFIER_TOKEN": "slow-senders",
            "QBO_WEBHOOKS_PORT": str(PORT),
            "LOG_LEVEL": "ERROR",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.qbo_webhooks"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(4)
        asyncio.run(run(proc.pid))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


if __name__ == "__main__":
    main()
