"""Fuzz benchmark: >= 100,000 hostile requests against both real receiver processes.

Starts ``services.qbo_webhooks`` and ``services.released_webhooks`` as their own processes on a
throw-away database and RabbitMQ vhost, then, from this process:
1. baseline: BENCH_BASELINE valid signed one-event deliveries (req/s, statuses);
2. fuzz: BENCH_REQUESTS bodies from ``tests/support/fuzz_bodies`` (seeded, so a run can be
   repeated: BENCH_SEED), at BENCH_CONCURRENCY connections;
3. afterwards: a good delivery to each receiver must be stored and published (no stall).
Prints answers by status and receiver, 5xx and stalls (no answer within 15 s), rows stored by
refused requests, the time to publish the final deliveries, and each receiver's RSS.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg

from shared.infra.migrations import migrate
from tests.support.fuzz_bodies import FuzzCase, fuzz_case, headers_for
from tests.support.receivers import RELEASED_KEY, VERIFIER

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "100000"))
BASELINE = int(os.environ.get("BENCH_BASELINE", "5000"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))
SEED = int(os.environ.get("BENCH_SEED", "17"))
PORTS = {"qbo": 8921, "released": 8922}
PATHS = {"qbo": "/webhooks/qbo", "released": "/webhooks/released"}
STALL_S = 15.0


def _start(module: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    import socket

    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env={**os.environ, **env, "LOG_LEVEL": "ERROR", "LOG_FORMAT": "json"},
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{module} did not start")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def _url(receiver: str) -> str:
    return f"http://127.0.0.1:{PORTS[receiver]}{PATHS[receiver]}"


async def _drive(cases: list[FuzzCase]) -> tuple[Counter[tuple[str, int]], list[str], float]:
    """Post every case; (answers by receiver and status, markers of refused cases, seconds)."""
    answers: Counter[tuple[str, int]] = Counter()
    refused: list[str] = []
    queue = iter(cases)
    timeout = aiohttp.ClientTimeout(total=STALL_S)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=CONCURRENCY), timeout=timeout
    ) as session:

        async def worker() -> None:
            for case in queue:
                try:
                    async with session.post(
                        _url(case.receiver), data=case.body, headers=headers_for(case)
                    ) as response:
                        await response.read()
                        status = response.status
                except TimeoutError:
                    status = -1  # a stall
                except aiohttp.ClientError:
                    status = -2  # connection closed without an answer
                answers[(case.receiver, status)] += 1
                if status != 200:
                    refused.append(case.marker)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return answers, refused, time.perf_counter() - started


def _report(title: str, answers: Counter[tuple[str, int]], seconds: float) -> None:
    total = sum(answers.values())
    print(f"{title}: {total} requests in {seconds:.1f} s = {total / seconds:.0f} req/s")
    for (receiver, status), count in sorted(answers.items()):
        label = {-1: "stall (no answer in 15 s)", -2: "closed without answer"}.get(status)
        print(f"    {receiver:<9} {label or status!s:<28} {count:>8}")
    fivexx = sum(c for (_, s), c in answers.items() if s >= 500)
    stalls = sum(c for (_, s), c in answers.items() if s < 0)
    print(f"    5xx: {fivexx}   stalls/no answer: {stalls}")


async def _prepare(dsn: str) -> tuple[str, str]:
    await migrate(dsn)
    conn = await asyncpg.connect(dsn)
    realm, company = "bench-fz-realm", "bench-fz-company"
    await conn.execute(
        "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
        "VALUES ($1, $2, 'active')",
        company,
        realm,
    )
    await conn.close()
    return realm, company


def _valid(receiver: str, realm: str, company: str, n: int) -> FuzzCase:
    if receiver == "qbo":
        body: object = [
            {
                "specversion": "1.0",
                "id": f"ok-{uuid.uuid4().hex}",
                "type": "qbo.invoice.updated.v1",
                "time": "2026-11-26T11:59:00Z",
                "intuitentityid": str(n),
                "intuitaccountid": realm,
            }
        ]
    else:
        body = {
            "events": [
                {
                    "eventId": str(uuid.uuid4()),
                    "eventCategory": "INVOICE",
                    "eventType": "UPDATE",
                    "eventName": "invoice.approved",
                    "resourceId": f"inv-{n}",
                    "companyId": company,
                    "resourceVersion": 2,
                    "eventDateUtc": "2026-11-26T11:00:00Z",
                }
            ]
        }
    return FuzzCase(
        receiver, json.dumps(body).encode(), True, realm if receiver == "qbo" else company
    )


async def _after(dsn: str, refused: list[str], realm: str, company: str) -> None:
    conn = await asyncpg.connect(dsn)
    stored = await conn.fetchval(
        "SELECT count(*) FROM inbox WHERE account_id = ANY($1::text[])", refused
    )
    print(f"rows stored by the {len(refused)} refused requests: {stored}")
    finals = [_valid(r, realm, company, 10**6 + n) for r in ("qbo", "released") for n in range(50)]
    answers, _, _ = await _drive(finals)
    started = time.perf_counter()
    published = 0
    while time.perf_counter() - started < 60:
        published = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE entity_id IN (SELECT unnest($1::text[])) "
            "AND status = 'published'",
            [str(10**6 + n) for n in range(50)] + [f"inv-{10**6 + n}" for n in range(50)],
        )
        if published >= 100:
            break
        await asyncio.sleep(0.2)
    took = time.perf_counter() - started
    print(
        f"after the fuzz: 100 good deliveries answered {dict(answers)}, {published} published "
        f"within {took:.1f} s"
    )
    await conn.close()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(sql)
    await conn.close()


def main() -> None:
    db, vhost = f"bench_fz_{uuid.uuid4().hex[:8]}", f"bench_fz_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{db}"'))
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    dsn = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{db}"))
    amqp = urlunsplit(urlsplit(AMQP)._replace(path="/" + quote(vhost, safe="")))
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        realm, company = asyncio.run(_prepare(dsn))
        env = {
            "DATABASE_URL": dsn,
            "AMQP_URL": amqp,
            "QBO_WEBHOOK_VERIFIER_TOKEN": VERIFIER,
            "RELEASED_WEBHOOK_KEY": RELEASED_KEY,
            "QBO_WEBHOOKS_PORT": str(PORTS["qbo"]),
            "RELEASED_WEBHOOKS_PORT": str(PORTS["released"]),
            "DB_POOL_MAX": "10",
        }
        procs["qbo"] = _start("services.qbo_webhooks", env, PORTS["qbo"])
        procs["released"] = _start("services.released_webhooks", env, PORTS["released"])
        print(f"{CONCURRENCY} connections, seed {SEED}, both receivers as their own processes")
        baseline = [
            _valid(rng_receiver, realm, company, n)
            for n in range(BASELINE)
            for rng_receiver in ("qbo" if n % 2 else "released",)
        ]
        answers, _, seconds = asyncio.run(_drive(baseline))
        _report("baseline (valid signed deliveries)", answers, seconds)
        rng = random.Random(SEED)
        cases = [fuzz_case(rng) for _ in range(REQUESTS)]
        answers, refused, seconds = asyncio.run(_drive(cases))
        _report("fuzz", answers, seconds)
        asyncio.run(_after(dsn, refused, realm, company))
        for name, proc in procs.items():
            alive = "alive" if proc.poll() is None else f"exited {proc.returncode}"
            print(f"{name}_webhooks: {alive}, RSS {_rss_mb(proc.pid):.0f} MiB")
    finally:
        for proc in procs.values():
            proc.terminate()
            proc.wait(30)
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


if __name__ == "__main__":
    main()
