"""End-to-end propagation latency: an edit in QBO -> the change written into Re-Leased.

Runs the real processes (both sandboxes, the QBO receiver, both consumers) on loopback ports
of their own, with a throw-away database and vhost. Webhook aggregation is off (as Intuit's own
sandbox). Edits customers' e-mail in QBO at BENCH_RATE edits/s for BENCH_SECONDS, then reads the
Re-Leased sandbox's request log: latency = time of the PATCH that carried the edit - time the edit
was sent. Beside it, in the same run: the QBO sandbox's own round trip for the edit (the floor no
integration can beat), so "added" = end-to-end - that round trip.

The sandboxes' rate limits are off and our API budgets raised for the run (20 edits/s on one
realm would exceed QBO's 500/minute and Re-Leased's 60/minute; the budgets are exercised by the
test suite, this measures our pipeline). Environment: BENCH_RATE (20), BENCH_SECONDS (60),
BENCH_CUSTOMERS (40).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg
from cryptography.fernet import Fernet

from shared.adapters.crypto import TokenCipher
from shared.adapters.qbo.tokens import QboOAuth, QboTokens, QboTokenStore
from shared.infra.migrations import migrate
from shared.infra.settings import read_env_file

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
RATE = float(os.environ.get("BENCH_RATE", "20"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "40"))
QBO, RL, HOOK = 8941, 8942, 8943


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def line(name: str, values: list[float]) -> str:
    return (
        f"{name:<44} n={len(values):<5} p50 {statistics.median(values):7.1f} ms"
        f"   p99 {pct(values, 0.99):7.1f} ms"
    )


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open")


def environment(dsn: str, amqp: str) -> dict[str, str]:
    env = {**os.environ, **read_env_file(ROOT / "deploy" / "sandbox.env")}
    env.update(
        DATABASE_URL=dsn,
        AMQP_URL=amqp,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
        TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        QBO_SANDBOX_PORT=str(QBO),
        QBO_SANDBOX_PUBLIC_URL=f"http://127.0.0.1:{QBO}",
        QBO_API_BASE=f"http://127.0.0.1:{QBO}",
        QBO_OAUTH_BASE=f"http://127.0.0.1:{QBO}",
        QBO_SANDBOX_WEBHOOK_URL=f"http://127.0.0.1:{HOOK}/webhooks/qbo",
        QBO_SANDBOX_AGGREGATION_SECONDS="0",
        QBO_SANDBOX_RATE_LIMITS="false",
        QBO_WEBHOOKS_PORT=str(HOOK),
        RELEASED_SANDBOX_PORT=str(RL),
        RELEASED_SANDBOX_PUBLIC_URL=f"http://127.0.0.1:{RL}",
        RELEASED_API_BASE=f"http://127.0.0.1:{RL}/api/v1",
        RELEASED_SANDBOX_RATE_LIMITS="false",
        QBO_REQUESTS_PER_MINUTE="100000",
        QBO_CONCURRENCY="50",
        RELEASED_REQUESTS_PER_MINUTE="100000",
        RELEASED_CONCURRENCY="50",
        OPS_PORT="0",  # the consumers' ops servers on free ports, beside a `make run`
    )
    return env


async def setup(env: dict[str, str], http: aiohttp.ClientSession) -> dict[str, Any]:
    qbo, rl = f"http://127.0.0.1:{QBO}", f"http://127.0.0.1:{RL}"
    async with http.post(f"{qbo}/_sandbox/realms", json={"companyName": "Bench"}) as r:
        realm = (await r.json())["realmId"]
    async with http.post(f"{qbo}/_sandbox/realms/{realm}/tokens") as r:
        tokens = QboTokens.from_response(await r.json())
    async with http.post(f"{rl}/_sandbox/companies", json={"name": "Bench"}) as r:
        company = (await r.json())["id"]
    pool = await asyncpg.create_pool(env["DATABASE_URL"])
    conn_id = await pool.fetchval(
        "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
        "VALUES ($1, $2, 'active') RETURNING id",
        company,
        realm,
    )
    oauth = QboOAuth(http, qbo, env["QBO_CLIENT_ID"], env["QBO_CLIENT_SECRET"])
    await QboTokenStore(pool, TokenCipher(env["TOKEN_ENCRYPTION_KEY"]), oauth).save(conn_id, tokens)
    return {"realm": realm, "company": company, "pool": pool, "tokens": tokens}


async def qbo_call(
    http: aiohttp.ClientSession, realm: str, token: str, body: dict[str, Any]
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{QBO}/v3/company/{realm}/customer"
    async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as r:
        payload: dict[str, Any] = (await r.json())["Customer"]
        return payload


async def run(env: dict[str, str]) -> None:
    async with aiohttp.ClientSession() as http:
        ctx = await setup(env, http)
        realm, token = ctx["realm"], ctx["tokens"].access_token
        customers = [
            await qbo_call(http, realm, token, {"DisplayName": f"Bench {i} {uuid.uuid4().hex[:4]}"})
            for i in range(CUSTOMERS)
        ]
        pool: asyncpg.Pool = ctx["pool"]
        for _ in range(300):
            linked = await pool.fetchval("SELECT count(*) FROM links WHERE qbo_type = 'Customer'")
            if linked >= CUSTOMERS:
                break
            await asyncio.sleep(0.2)
        rows = await pool.fetch("SELECT qbo_id, released_id FROM links WHERE qbo_type = 'Customer'")
        to_rl = {r["qbo_id"]: r["released_id"] for r in rows}
        tokens_by_id = {c["Id"]: c["SyncToken"] for c in customers}
        sent: list[tuple[float, str]] = []
        round_trips: list[float] = []
        interval, started = 1.0 / RATE, time.time()
        edits = int(RATE * SECONDS)

        async def edit(n: int) -> None:
            customer = customers[n % CUSTOMERS]
            body = {
                "Id": customer["Id"],
                "SyncToken": tokens_by_id[customer["Id"]],
                "sparse": True,
                "PrimaryEmailAddr": {"Address": f"e{n}@bench.example"},
            }
            t0 = time.time()
            written = await qbo_call(http, realm, token, body)
            round_trips.append((time.time() - t0) * 1000)
            tokens_by_id[customer["Id"]] = written["SyncToken"]
            sent.append((t0, to_rl[customer["Id"]]))

        tasks = []
        for n in range(edits):
            await asyncio.sleep(max(0.0, started + n * interval - time.time()))
            tasks.append(asyncio.create_task(edit(n)))
        await asyncio.gather(*tasks)
        await asyncio.sleep(5)
        url = f"http://127.0.0.1:{RL}/_sandbox/companies/{ctx['company']}/requests?method=PATCH"
        async with http.get(url) as r:
            log = (await r.json())["items"]
        patches: dict[str, list[float]] = {}
        for item in log:
            when = datetime.fromisoformat(item["time"].replace("Z", "+00:00")).timestamp()
            patches.setdefault(item["path"].rsplit("/", 1)[-1], []).append(when)
        latencies = []
        for t0, rl_id in sent:
            after = [t for t in patches.get(rl_id, []) if t >= t0]
            if after:
                latencies.append((min(after) - t0) * 1000)
        print(f"{edits} edits at {RATE:.0f}/s over {SECONDS:.0f} s, {CUSTOMERS} customers")
        print(line("QBO sandbox round trip (the floor)", round_trips))
        print(line("edit in QBO -> written in Re-Leased", latencies))
        added = [e - statistics.median(round_trips) for e in latencies]
        print(line("added by webhook+ingest+queue+engine", added))
        print(f"{'propagated':<44} {len(latencies)}/{edits}")
        await pool.close()


async def admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(sql)
    await conn.close()


def main() -> None:
    db, vhost = f"bench_{uuid.uuid4().hex[:8]}", f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{db}"'))
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True
    )
    dsn = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{db}"))
    amqp = urlunsplit(urlsplit(AMQP)._replace(path="/" + quote(vhost, safe="")))
    env = environment(dsn, amqp)
    asyncio.run(migrate(dsn))
    procs = []
    try:
        for module, port in (
            ("sandboxes.qbo", QBO),
            ("sandboxes.released", RL),
            ("services.qbo_webhooks", HOOK),
            ("services.qbo_to_released", None),
            ("services.released_to_qbo", None),
        ):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", module], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
                )
            )
            if port:
                wait_port(port)
        time.sleep(1)
        asyncio.run(run(env))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


if __name__ == "__main__":
    main()
