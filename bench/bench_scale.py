"""Scale-out: what 1, 2 and 4 consumer processes per direction do to throughput and ordering.

Runs the real processes (both sandboxes with their real rate limits ON, both receivers, and N
consumer processes per direction) with a throw-away database and vhost, BENCH_COMPANIES
connected companies (a QBO realm + a Re-Leased company each, two linked contacts). Then for each
N, a steady open-loop mix for BENCH_SECONDS at BENCH_RATE edits/s: half change a customer's
e-mail in QBO, half a contact's e-mail in Re-Leased (different records, so no conflicts), spread
over all companies. Every e-mail carries (record, sequence number).

The consumers reach the sandboxes through a recording proxy in this process, which sees every
write the engine makes: propagation = first write carrying that edit's value or a newer one,
minus the time the edit was sent; a DUPLICATE is the same value written twice to one record; an
OUT-OF-ORDER application is a write carrying an older value after a newer one (both must be 0).
Events applied/s = `applied` outcomes in sync_outcomes during the window. CPU share = each part's
CPU seconds over the window / (window x cores); PostgreSQL and RabbitMQ are the machine's shared
servers (other users' load shows up there and in "machine").

Environment: BENCH_COMPANIES (200), BENCH_RATE (20), BENCH_SECONDS (30), BENCH_REPLICAS ("1,2,4").
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg
import psutil
from aiohttp import web
from cpu_usage import cpu_seconds as shared_cpu_seconds
from cryptography.fernet import Fernet

from shared.adapters.crypto import TokenCipher
from shared.adapters.http.auth import basic_authorization
from shared.adapters.qbo.tokens import QboOAuth, QboTokens, QboTokenStore
from shared.infra.migrations import migrate
from shared.infra.settings import read_env_file

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
COMPANIES = int(os.environ.get("BENCH_COMPANIES", "200"))
RATE = float(os.environ.get("BENCH_RATE", "20"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
REPLICAS = [int(n) for n in os.environ.get("BENCH_REPLICAS", "1,2,4").split(",")]
MARK = re.compile(r"bench-(\d+)-(\d+)@bench\.example")
HOP = {"host", "content-length", "transfer-encoding", "content-encoding", "connection"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORTS = {n: free_port() for n in ("qbo", "rl", "qbo_hook", "rl_hook", "qbo_proxy", "rl_proxy")}
BASE = {n: f"http://127.0.0.1:{p}" for n, p in PORTS.items()}


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"port {port} did not open")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


class RecordingProxy:
    """Forwards the consumers' calls to a sandbox; remembers (time, record, seq) of each write."""

    def __init__(self, target: str, http: aiohttp.ClientSession) -> None:
        self.target, self.http = target, http
        self.writes: list[tuple[float, int, int]] = []
        self.calls = 0  # every API call the consumers made through this proxy
        self.errors = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.calls += 1
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        url = self.target + request.path_qs
        try:
            async with self.http.request(request.method, url, headers=headers, data=body) as ans:
                payload = await ans.read()
                out = {k: v for k, v in ans.headers.items() if k.lower() not in HOP}
                if request.method != "GET" and ans.status < 300:
                    now = time.time()
                    for record, seq in MARK.findall(body.decode("utf-8", "replace")):
                        self.writes.append((now, int(record), int(seq)))
                return web.Response(status=ans.status, body=payload, headers=out)
        except aiohttp.ClientError:
            # The sandbox closed a kept-alive connection as we reused it: the caller sees a 502
            # and retries (its writes carry idempotency keys), as it would behind a real proxy.
            self.errors += 1
            return web.Response(status=502, text="upstream connection lost")

    async def serve(self, port: int) -> web.AppRunner:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner


def environment(dsn: str, amqp: str) -> dict[str, str]:
    env = {**os.environ, **read_env_file(ROOT / "deploy" / "sandbox.env")}
    env.update(
        DATABASE_URL=dsn,
        AMQP_URL=amqp,
        LOG_LEVEL="WARNING",
        LOG_FORMAT="json",
        TOKEN_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        QBO_SANDBOX_PORT=str(PORTS["qbo"]),
        QBO_SANDBOX_PUBLIC_URL=BASE["qbo"],
        QBO_SANDBOX_WEBHOOK_URL=BASE["qbo_hook"] + "/webhooks/qbo",
        QBO_WEBHOOKS_PORT=str(PORTS["qbo_hook"]),
        RELEASED_SANDBOX_PORT=str(PORTS["rl"]),
        RELEASED_SANDBOX_PUBLIC_URL=BASE["rl"],
        RELEASED_WEBHOOKS_PORT=str(PORTS["rl_hook"]),
        # The consumers call the sandboxes through the recording proxies.
        QBO_API_BASE=BASE["qbo_proxy"],
        QBO_OAUTH_BASE=BASE["qbo_proxy"],
        RELEASED_API_BASE=BASE["rl_proxy"] + "/api/v1",
        OPS_PORT="0",
    )
    return env


class Bench:
    def __init__(self, env: dict[str, str], http: aiohttp.ClientSession, pool: asyncpg.Pool):
        self.env, self.http, self.pool = env, http, pool
        self.companies: list[dict[str, Any]] = []  # realm, company, token, two records each
        self.rl_token = ""

    async def call(self, method: str, url: str, **kw: Any) -> Any:
        async with self.http.request(method, url, **kw) as response:
            if response.status >= 400:
                raise RuntimeError(f"{method} {url}: {response.status} {await response.text()}")
            return await response.json(content_type=None)

    async def rl(self, company: str, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.rl_token}", "X-Company-Id": company}
        return await self.call(method, f"{BASE['rl']}/api/v1{path}", headers=headers, **kw)

    async def connect_one(self, n: int) -> None:
        made = await self.call("POST", f"{BASE['qbo']}/_sandbox/realms", json={"companyName": "B"})
        realm = str(made["realmId"])
        tokens = QboTokens.from_response(
            await self.call("POST", f"{BASE['qbo']}/_sandbox/realms/{realm}/tokens")
        )
        made = await self.call("POST", f"{BASE['rl']}/_sandbox/companies", json={"name": f"B{n}"})
        company = str(made["id"])
        hook = {
            "url": BASE["rl_hook"] + "/webhooks/released",
            "key": self.env["RELEASED_WEBHOOK_KEY"],
        }
        await self.rl(company, "POST", "/webhooks", json=hook)
        conn_id = await self.pool.fetchval(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ($1, $2, 'active') RETURNING id",
            company,
            realm,
        )
        oauth = QboOAuth(
            self.http, BASE["qbo"], self.env["QBO_CLIENT_ID"], self.env["QBO_CLIENT_SECRET"]
        )
        cipher = TokenCipher(self.env["TOKEN_ENCRYPTION_KEY"])
        await QboTokenStore(self.pool, cipher, oauth).save(conn_id, tokens)
        entry: dict[str, Any] = {"realm": realm, "company": company, "token": tokens.access_token}
        for side in ("qbo", "rl"):  # record 2n is edited in QBO, 2n+1 in Re-Leased
            record = 2 * n + (side == "rl")
            body = {"DisplayName": f"Bench {record} {uuid.uuid4().hex[:4]}"}
            entry[side] = await self.qbo_write(entry, body)
            entry[side]["record"] = record
        self.companies.append(entry)

    async def qbo_write(self, entry: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        url = f"{BASE['qbo']}/v3/company/{entry['realm']}/customer"
        headers = {"Authorization": f"Bearer {entry['token']}"}
        written: dict[str, Any] = (await self.call("POST", url, json=body, headers=headers))[
            "Customer"
        ]
        return written

    async def setup(self) -> None:
        auth = basic_authorization(
            self.env["RELEASED_CLIENT_ID"], self.env["RELEASED_CLIENT_SECRET"]
        )
        body = await self.call(
            "POST",
            f"{BASE['rl']}/api/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": auth},
        )
        self.rl_token = body["access_token"]
        gate = asyncio.Semaphore(8)

        async def one(n: int) -> None:
            async with gate:
                await self.connect_one(n)

        await asyncio.gather(*(one(n) for n in range(COMPANIES)))

    async def wait_linked(self, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            rows = await self.pool.fetch(
                "SELECT qbo_id, released_id, c.qbo_realm_id FROM links l "
                "JOIN connections c ON c.id = l.connection_id "
                "WHERE qbo_type = 'Customer' AND released_id IS NOT NULL"
            )
            if len(rows) >= 2 * COMPANIES or time.monotonic() > deadline:
                return {f"{r['qbo_realm_id']}/{r['qbo_id']}": r["released_id"] for r in rows}
            await asyncio.sleep(1)

    async def edit(self, entry: dict[str, Any], side: str, seq: int, sent: list[Any]) -> None:
        target = entry[side]
        mail = f"bench-{target['record']}-{seq}@bench.example"
        t0 = time.time()
        try:
            if side == "qbo":
                body = {
                    "Id": target["Id"],
                    "SyncToken": target["SyncToken"],
                    "sparse": True,
                    "PrimaryEmailAddr": {"Address": mail},
                }
                target["SyncToken"] = (await self.qbo_write(entry, body))["SyncToken"]
            else:
                path = f"/contacts/{target['released_id']}"
                await self.rl(entry["company"], "PATCH", path, json={"email": mail})
        except RuntimeError as exc:  # a 429 from the sandbox's real limit: counted, not sent
            sent.append((t0, target["record"], seq, side, str(exc)[:60]))
            return
        sent.append((t0, target["record"], seq, side, None))


ROLES = {
    "sandboxes.qbo": "qbo sandbox",
    "sandboxes.released": "released sandbox",
    "services.qbo_webhooks": "receivers",
    "services.released_webhooks": "receivers",
    "services.qbo_to_released": "consumers",
    "services.released_to_qbo": "consumers",
}


def cpu_seconds(children: dict[int, str]) -> dict[str, float]:
    """CPU seconds so far per part: our children by role, this process, the shared servers."""
    used = shared_cpu_seconds(children)
    me = psutil.Process().cpu_times()
    used["bench + proxies"] = me.user + me.system
    total = psutil.cpu_times()
    used["machine"] = sum(total) - total.idle - getattr(total, "iowait", 0.0)
    return used


def spawn(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )


def ordering(writes: list[tuple[float, int, int]]) -> tuple[int, int]:
    """(duplicates, out-of-order) among one proxy's writes, per record."""
    by_record: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for when, record, seq in writes:
        by_record[record].append((when, seq))
    duplicates = out_of_order = 0
    for seen in by_record.values():
        seen.sort()
        seqs = [s for _, s in seen]
        duplicates += len(seqs) - len(set(seqs))
        out_of_order += sum(1 for a, b in itertools.pairwise(seqs) if b < a)
    return duplicates, out_of_order


def latencies(sent: list[Any], writes: list[tuple[float, int, int]]) -> list[float]:
    by_record: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for when, record, seq in writes:
        by_record[record].append((when, seq))
    found = []
    for t0, record, seq, _, refused in sent:
        if refused:
            continue
        later = [w for w, s in by_record.get(record, []) if s >= seq and w >= t0]
        if later:
            found.append((min(later) - t0) * 1000)
    return found


async def commits(pool: asyncpg.Pool) -> int:
    """Transactions committed in the benchmark's database so far (every process's)."""
    return int(
        await pool.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
    )


async def applied_count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM sync_outcomes WHERE outcome = 'applied'"))


async def run_phase(
    bench: Bench, replicas: int, proxies: list[RecordingProxy], children: dict[int, str]
) -> None:
    procs = []
    for module in ("services.qbo_to_released", "services.released_to_qbo"):
        for _ in range(replicas):
            proc = spawn(module, bench.env)
            procs.append(proc)
            children[proc.pid] = ROLES[module]
    await asyncio.sleep(4)
    for proxy in proxies:
        proxy.writes.clear()
        proxy.calls = 0
    sent: list[Any] = []
    base = 1_000_000 * replicas  # sequence numbers grow across phases too
    commits0 = await commits(bench.pool)
    cpu0, applied0, started = cpu_seconds(children), await applied_count(bench.pool), time.time()
    tasks = []
    for k in range(int(RATE * SECONDS)):
        await asyncio.sleep(max(0.0, started + k / RATE - time.time()))
        entry = bench.companies[(k // 2) % len(bench.companies)]
        side = "qbo" if k % 2 == 0 else "rl"
        tasks.append(asyncio.create_task(bench.edit(entry, side, base + k, sent)))
    await asyncio.gather(*tasks)
    window = time.time() - started
    cpu1, applied1 = cpu_seconds(children), await applied_count(bench.pool)
    calls = [proxy.calls for proxy in proxies]
    committed = await commits(bench.pool) - commits0
    deadline = time.time() + 30
    while time.time() < deadline:
        writes = [w for p in proxies for w in p.writes]
        if len(latencies(sent, writes)) >= sum(1 for s in sent if not s[4]):
            break
        await asyncio.sleep(1)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(60)
        children.pop(proc.pid, None)
    report(replicas, sent, proxies, window, (applied1 - applied0) / window, cpu0, cpu1)
    applied = max(1, applied1 - applied0)
    consumer_cpu = cpu1["consumers"] - cpu0.get("consumers", 0.0)
    print(
        f"    per applied event: {calls[0] / applied:.1f} QBO + {calls[1] / applied:.1f} "
        f"Re-Leased API calls, {1000 * consumer_cpu / applied:.1f} ms of consumer CPU, "
        f"{committed / applied:.1f} PostgreSQL transactions (all processes)"
    )
    twice = await bench.pool.fetchval(
        "SELECT count(*) FROM (SELECT 1 FROM sync_outcomes WHERE outcome = 'applied' "
        "GROUP BY event_id, target_id HAVING count(*) > 1) AS d"
    )
    lost = sum(proxy.errors for proxy in proxies)
    print(f"    events applied twice (sync_outcomes, whole run so far): {twice}; 502s: {lost}")


def report(
    replicas: int,
    sent: list[Any],
    proxies: list[RecordingProxy],
    window: float,
    applied_per_s: float,
    cpu0: dict[str, float],
    cpu1: dict[str, float],
) -> None:
    writes = [w for p in proxies for w in p.writes]
    lat = latencies(sent, writes)
    refused = sum(1 for s in sent if s[4])
    dups = ooo = 0
    for proxy in proxies:
        d, o = ordering(proxy.writes)
        dups, ooo = dups + d, ooo + o
    cores = psutil.cpu_count() or 1
    share = {k: 100 * (cpu1[k] - cpu0.get(k, 0.0)) / (window * cores) for k in cpu1}
    print(
        f"{replicas} consumer(s)/direction: applied {applied_per_s:6.1f}/s   "
        f"propagation p50 {pct(lat, 0.5):7.0f} ms  p99 {pct(lat, 0.99):7.0f} ms   "
        f"propagated {len(lat)}/{len(sent) - refused} (edits refused by the sandbox: {refused})   "
        f"duplicates {dups}  out-of-order {ooo}"
    )
    parts = ", ".join(f"{k} {v:4.1f}%" for k, v in sorted(share.items(), key=lambda kv: -kv[1]))
    print(f"    CPU share of {cores} cores over {window:.0f} s: {parts}")


async def run(env: dict[str, str], children: dict[int, str]) -> None:
    async with aiohttp.ClientSession() as http:
        pool = await asyncpg.create_pool(env["DATABASE_URL"], min_size=1, max_size=4)
        proxies = [RecordingProxy(BASE["qbo"], http), RecordingProxy(BASE["rl"], http)]
        runners = [
            await proxies[0].serve(PORTS["qbo_proxy"]),
            await proxies[1].serve(PORTS["rl_proxy"]),
        ]
        bench = Bench(env, http, pool)
        t0 = time.time()
        await bench.setup()
        seeders = [spawn(m, env) for m in ("services.qbo_to_released", "services.released_to_qbo")]
        links = await bench.wait_linked(600)
        for proc in seeders:
            proc.terminate()
            proc.wait(60)
        for entry in bench.companies:
            for side in ("qbo", "rl"):
                entry[side]["released_id"] = links.get(f"{entry['realm']}/{entry[side]['Id']}")
        bench.companies = [
            e for e in bench.companies if e["qbo"]["released_id"] and e["rl"]["released_id"]
        ]
        print(
            f"{len(bench.companies)} companies connected and linked in {time.time() - t0:.0f} s; "
            f"{RATE:.0f} edits/s for {SECONDS:.0f} s per step (half QBO, half Re-Leased); "
            f"sandboxes' rate limits on, API budgets at the platforms' limits"
        )
        for replicas in REPLICAS:
            await run_phase(bench, replicas, proxies, children)
        await table_growth(pool)
        for runner in runners:
            await runner.cleanup()
        await pool.close()


async def table_growth(pool: asyncpg.Pool) -> None:
    """Rows and bytes (heap + indexes + TOAST) per table after the run: what each event costs."""
    events = await pool.fetchval("SELECT count(*) FROM inbox")
    print(f"tables after the run ({events} events received):")
    for table in ("inbox", "sync_outcomes", "write_ledger", "links", "api_budgets", "api_slots"):
        rows = await pool.fetchval(f"SELECT count(*) FROM {table}")
        size = await pool.fetchval("SELECT pg_total_relation_size($1::regclass)", table)
        per_row = size / rows if rows else 0
        print(f"    {table:<14} {rows:>7} rows  {size / 1024:8.0f} KiB  {per_row:6.0f} B/row")


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
    procs: list[subprocess.Popen[bytes]] = []
    children: dict[int, str] = {}
    try:
        for module in ROLES:
            if "_to_" in module:
                continue
            proc = spawn(module, env)
            procs.append(proc)
            children[proc.pid] = ROLES[module]
        for name in ("qbo", "rl", "qbo_hook", "rl_hook"):
            wait_port(PORTS[name])
        asyncio.run(run(env, children))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


if __name__ == "__main__":
    main()
