"""Initial import (backfill) of a QBO realm's documents: documents linked per minute, and how
close the run comes to QBO's per-realm budget (requests used / requests allowed).

Runs in one process: both sandboxes, both webhook receivers and both engine directions (the e2e
stack), against a throw-away PostgreSQL database and RabbitMQ vhost. The realm is seeded through
the QBO sandbox's UI routes before it is connected (no webhooks, nothing in the request log), then
connected and imported with ``InitialImport``; the clock runs from the import's start until every
invoice is linked.

Our QBO budget runs at QBO's real limits (500 requests/minute, 10 concurrent); Re-Leased's sandbox
limit (60/minute) is switched off and our Re-Leased budget raised, as bench_e2e_latency.py does,
because at 60/minute Re-Leased alone would cap any backfill at under 60 documents a minute: this
measures our pipeline and the QBO budget. Prints figures; asserts nothing.

Environment: BENCH_CUSTOMERS (default 200), BENCH_INVOICES (default 1000): the issue's full size
is BENCH_CUSTOMERS=2000 BENCH_INVOICES=10000 (much longer). BENCH_COALESCE=0 switches coalesced
QBO reads off (QBO_COALESCE_READS, default on) to compare. BENCH_TIMEOUT_S caps the wait for the
links (default 1800). TEST_PG_ADMIN_URL, TEST_AMQP_URL as for the tests. Run from the repository
root with ``PYTHONPATH=.`` (it imports the e2e stack from tests/).
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg

from shared.adapters.broker import EventPublisher, Topology, connect_broker, declare_topology
from shared.adapters.clients import ClientFactory
from shared.adapters.qbo.tokens import QboTokens
from shared.infra.db import create_pool
from shared.infra.logging import configure_logging
from shared.infra.migrations import migrate
from shared.ingest.importer import InitialImport
from tests.e2e.stack import Stack, consumers, running_stack

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "200"))
INVOICES = int(os.environ.get("BENCH_INVOICES", "1000"))
QBO_PER_MINUTE = 500
TIMEOUT_S = float(os.environ.get("BENCH_TIMEOUT_S", "1800"))
COALESCE = os.environ.get("BENCH_COALESCE", "1") not in ("0", "false", "off", "no")
# The sandbox's per-realm request log keeps this many entries.
REQUEST_LOG_SIZE = 10_000


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl")
    if exe is None:
        raise SystemExit("rabbitmqctl not found: the bench creates a private vhost with it")
    subprocess.run([exe, "-q", *args], check=True, capture_output=True, timeout=60)


async def _seed(http: aiohttp.ClientSession, stack: Stack) -> str:
    """A realm with CUSTOMERS customers and INVOICES invoices, created as a user (no grant yet,
    so no webhooks)."""
    async with http.post(f"{stack.qbo_base}/_sandbox/realms", json={"companyName": "B"}) as r:
        realm = str((await r.json())["realmId"])
    ui = f"{stack.qbo_base}/_sandbox/realms/{realm}/ui"
    customers: list[str] = []
    for n in range(CUSTOMERS):
        async with http.post(f"{ui}/customer", json={"DisplayName": f"Tenant {n:05d}"}) as r:
            customers.append(str((await r.json())["Customer"]["Id"]))
    item = await _services_item(http, stack, realm)
    for n in range(INVOICES):
        amount = f"{100 + n % 900}.{n % 100:02d}"
        line = {
            "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": amount},
        }
        body = {"CustomerRef": {"value": customers[n % CUSTOMERS]}, "Line": [line]}
        async with http.post(f"{ui}/invoice", json=body) as r:
            if r.status >= 300:
                raise SystemExit(f"seeding failed: {r.status} {await r.text()}")
    return realm


async def _services_item(http: aiohttp.ClientSession, stack: Stack, realm: str) -> str:
    """The seeded "Services" item, found by peeking (no token exists yet)."""
    for candidate in range(1, 60):
        url = f"{stack.qbo_base}/_sandbox/realms/{realm}/objects/Item/{candidate}"
        async with http.get(url) as r:
            if r.status == 200 and (await r.json())["Item"].get("Name") == "Services":
                return str(candidate)
    raise SystemExit("the seeded Services item was not found")


async def _count(pool: asyncpg.Pool, connection_id: Any, entity: str) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM links WHERE connection_id = $1 AND entity = $2",
        connection_id,
        entity,
    )
    return count


async def _qbo_requests(stack: Stack, realm: str) -> list[dict[str, Any]]:
    """The API requests the realm received, oldest first (the sandbox keeps 10,000)."""
    async with stack.http.get(f"{stack.qbo_base}/_sandbox/realms/{realm}/requests") as r:
        rows: list[dict[str, Any]] = (await r.json())["requests"]
    return rows


def _times(rows: list[dict[str, Any]]) -> list[float]:
    return sorted(datetime.fromisoformat(str(row["time"])).timestamp() for row in rows)


def _kinds(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Requests by kind: single reads, queries, batches, other."""
    kinds = {"read": 0, "query": 0, "batch": 0}
    for row in rows:
        operation = str(row["operation"])
        key = operation if operation in kinds else "other"
        kinds[key] = kinds.get(key, 0) + 1
    return kinds


def _peak_minute(times: list[float]) -> int:
    """The most requests in any 60-second window (what QBO's per-realm limit counts)."""
    peak, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] > 60:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


async def run(database_url: str, amqp_url: str) -> None:
    async with (
        create_pool(database_url, min_size=1, max_size=10) as pool,
        running_stack(database_url, amqp_url, pool) as stack,
    ):
        started = time.perf_counter()
        realm = await _seed(stack.http, stack)
        seeded_s = time.perf_counter() - started
        async with stack.http.post(f"{stack.qbo_base}/_sandbox/realms/{realm}/tokens") as r:
            tokens = QboTokens.from_response(await r.json())
        company = await stack.released_company()
        connection = await stack.connect(realm, tokens, company)
        settings = stack.settings.model_copy(
            update={
                "qbo_requests_per_minute": QBO_PER_MINUTE,
                "qbo_concurrency": 10,
                "qbo_coalesce_reads": COALESCE,
            }
        )
        async with connect_broker(amqp_url) as broker, consumers(settings, replicas=2):
            publisher = await EventPublisher.open(broker)
            before = len(await _qbo_requests(stack, realm))
            t0 = time.perf_counter()
            # The import's own reads spend the same realm budget, at the same limits.
            factory = ClientFactory(settings, pool, stack.http)
            progress = await InitialImport(pool, publisher).run(
                connection, factory.qbo(connection), factory.released(connection)
            )
            queued_s = time.perf_counter() - t0
            linked = 0
            while linked < INVOICES and time.perf_counter() - t0 < TIMEOUT_S:
                await asyncio.sleep(1.0)
                linked = await _count(pool, connection.id, "invoice")
            elapsed = time.perf_counter() - t0
            rows = (await _qbo_requests(stack, realm))[before:]
            used = len(rows)
            await publisher.close()
        times = _times(rows)
        kinds = _kinds(rows)
        minutes = elapsed / 60
        # A run shorter than a minute may still use a whole minute's budget.
        allowed = QBO_PER_MINUTE * max(minutes, 1.0)
        peak = _peak_minute(times)
        print(f"coalesced QBO reads: {'on' if COALESCE else 'off'}")
        print(f"realm: {CUSTOMERS} customers, {INVOICES} invoices (seeded in {seeded_s:.1f} s)")
        print(f"import queued {progress.total} events in {queued_s:.1f} s: {progress.stages}")
        print(f"invoices linked: {linked}/{INVOICES} in {elapsed:.1f} s")
        print(f"documents per minute: {linked / minutes:.0f}")
        contacts = await _count(pool, connection.id, "contact")
        print(f"contacts linked: {contacts}")
        print(
            f"QBO requests: {used} used / {allowed:.0f} allowed at {QBO_PER_MINUTE}/min over the "
            f"run ({100 * used / allowed:.0f}%); {used / max(linked, 1):.2f} per invoice"
        )
        print(
            f"QBO busiest 60 s: {peak} requests / {QBO_PER_MINUTE} allowed "
            f"({100 * peak / QBO_PER_MINUTE:.0f}% of the per-realm limit)"
        )
        floor = " (the sandbox log was full: a floor)" if before + used >= REQUEST_LOG_SIZE else ""
        print(
            f"QBO requests by kind: {kinds['read']} single reads, {kinds['query']} queries, "
            f"{kinds['batch']} batches, {kinds.get('other', 0)} other{floor}"
        )
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of the bench process (whole stack): {rss_mb:.0f} MiB")
        full = 10000 / max(linked / minutes, 1e-9)
        print(f"extrapolated: 10,000 invoices in ~{full:.0f} min at this rate")


def main() -> None:
    configure_logging("WARNING", "json")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(PG_ADMIN)
    dsn = urlunsplit(parts._replace(path=f"/{name}"))
    vhost = f"bench_{uuid.uuid4().hex[:8]}"
    _rabbitmqctl("add_vhost", vhost)
    user = urlsplit(AMQP).username or "guest"
    _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    amqp = urlunsplit(urlsplit(AMQP)._replace(path="/" + quote(vhost, safe="")))
    try:
        asyncio.run(migrate(dsn))

        async def topology() -> None:
            async with connect_broker(amqp) as broker:
                channel = await broker.channel()
                await declare_topology(channel, Topology(retry_tiers=(1,)))
                await channel.close()

        asyncio.run(topology())
        asyncio.run(run(dsn, amqp))
    finally:
        _rabbitmqctl("delete_vhost", vhost)
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
