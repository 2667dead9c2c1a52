"""Initial import at both platforms' real limits, with live edits during it.

Both sandboxes enforce their limits (QBO 500/minute and 10 at once per realm, Re-Leased
60/minute and 5 at once per company) and the product runs on its real budgets. A QBO realm
with BENCH_CUSTOMERS customers (default 300 here) and BENCH_INVOICES invoices (default 40
here), and a Re-Leased company with BENCH_RL_CONTACTS contacts of its own (default 100), are
connected through the real flow and imported with ``InitialImport``; consumers run both
lanes. While the import is applied a live edit is made every BENCH_LIVE_EVERY_S seconds
(default 10), alternating a new QBO customer and a new Re-Leased customer; each edit's
propagation time is measured (Re-Leased is polled through the sandbox's as-user routes,
which spend no limit).

Prints: wall time; requests per side; each side's share of its budget over the run; 429s
(any is ours: nothing else calls); records per Re-Leased write request; live-edit
propagation p50/p99. Figures only, asserts nothing. The issue's full size (2,000 customers
and 10,000 invoices) needs hours at 60/minute, because documents still go one per request.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python bench/bench_backfill_real_limits.py``
(it imports bench_backfill from beside it and the e2e stack from tests/).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from typing import Any

# Smaller defaults than bench_backfill's: at 60/minute documents still go one per request.
os.environ.setdefault("BENCH_CUSTOMERS", "300")
os.environ.setdefault("BENCH_INVOICES", "40")

from bench_backfill import (
    CUSTOMERS,
    INVOICES,
    _admin,
    _count,
    _qbo_requests,
    _rabbitmqctl,
    _seed,
)

from shared.adapters.broker import EventPublisher, Topology, connect_broker, declare_topology
from shared.admin.store import AdminConnections
from shared.infra.db import create_pool
from shared.infra.logging import configure_logging
from shared.infra.migrations import migrate
from shared.ingest.importer import InitialImport
from tests.e2e.stack import Stack, consumers, running_stack

RL_CONTACTS = int(os.environ.get("BENCH_RL_CONTACTS", "100"))
LIVE_EVERY_S = float(os.environ.get("BENCH_LIVE_EVERY_S", "10"))
TIMEOUT_S = float(os.environ.get("BENCH_TIMEOUT_S", "1800"))
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def _rl(stack: Stack, company: str, method: str, path: str, body: Any = None) -> Any:
    url = f"{stack.released_base}/_sandbox/companies/{company}/as-user{path}"
    if body is None:
        return await stack.call(method, url)
    return await stack.call(method, url, json=body)


async def _rl_log(stack: Stack, company: str) -> dict[str, Any]:
    log: dict[str, Any] = await stack.call(
        "GET", f"{stack.released_base}/_sandbox/companies/{company}/requests"
    )
    return log


async def _landed(stack: Stack, company: str, qbo: Any, name: str, in_released: bool) -> bool:
    if in_released:
        page = await _rl(stack, company, "GET", "/contacts?pageSize=1000")
        return any(c["name"] == name for c in page["items"])
    return bool(await qbo.query_all("Customer", f"DisplayName = '{name}'"))


async def _live_edits(
    stack: Stack, company: str, qbo: Any, done: asyncio.Event, latencies: list[float]
) -> None:
    """A new customer every LIVE_EVERY_S, alternately in QBO and in Re-Leased, until ``done``."""
    n = 0
    while not done.is_set():
        n += 1
        name = f"Live {uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        from_qbo = n % 2 == 1
        if from_qbo:
            await qbo.write("Customer", {"DisplayName": name}, request_id=f"live-{name}")
        else:
            await _rl(stack, company, "POST", "/contacts", {"name": name, "isCustomer": True})
        while not await _landed(stack, company, qbo, name, in_released=from_qbo):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        latencies.append(time.perf_counter() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), LIVE_EVERY_S)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


async def run(database_url: str, amqp_url: str) -> None:
    async with (
        create_pool(database_url, min_size=1, max_size=10) as pool,
        running_stack(database_url, amqp_url, pool, real_limits=True) as stack,
    ):
        realm = await _seed(stack.http, stack)
        company = await stack.released_company()
        for n in range(RL_CONTACTS):
            body = {"name": f"Owner {n:05d}", "isCustomer": True}
            await _rl(stack, company, "POST", "/contacts", body)
        connection = await stack.connect(realm, None, company)
        qbo = stack.factory.qbo(connection)
        qbo_before = len(await _qbo_requests(stack, realm))
        rl_before = await _rl_log(stack, company)
        latencies: list[float] = []
        done = asyncio.Event()
        async with connect_broker(amqp_url) as broker, consumers(stack.settings):
            publisher = await EventPublisher.open(broker)
            t0 = time.perf_counter()
            progress = await InitialImport(pool, publisher).run(
                connection, qbo, stack.factory.released(connection)
            )
            live = asyncio.create_task(_live_edits(stack, company, qbo, done, latencies))
            while time.perf_counter() - t0 < TIMEOUT_S:
                state = await AdminConnections(pool).import_state(connection.id)
                if state["progress"]["stage"] == "done":
                    break
                await asyncio.sleep(1.0)
            elapsed = time.perf_counter() - t0
            done.set()
            await live
            await publisher.close()
        rl_after = await _rl_log(stack, company)
        qbo_rows = (await _qbo_requests(stack, realm))[qbo_before:]
        rl_requests = int(rl_after["total"]) - int(rl_before["total"])
        rl_writes = len(rl_after["items"]) - len(rl_before["items"])
        minutes = elapsed / 60
        qbo_429 = len([r for r in qbo_rows if r.get("status") == 429])
        records = int(state["progress"]["total"])
        sizes = f"{CUSTOMERS} QBO customers, {INVOICES} QBO invoices"
        print(f"sizes: {sizes}, {RL_CONTACTS} Re-Leased contacts")
        batched = progress.batched
        print(f"import: {records} records ({batched} written in batches) in {elapsed:.1f} s")
        print(
            f"Re-Leased: {rl_requests} requests, {rl_writes} writes; "
            f"{rl_requests / (60 * max(minutes, 1.0)) * 100:.0f}% of 60/min over the run; "
            f"429s: {int(rl_after['rateLimited']) - int(rl_before['rateLimited'])}"
        )
        qbo_share = len(qbo_rows) / (500 * max(minutes, 1.0)) * 100
        print(f"QBO: {len(qbo_rows)} requests; {qbo_share:.0f}% of 500/min; 429s: {qbo_429}")
        print(f"records per Re-Leased write request: {records / max(rl_writes, 1):.1f}")
        # The baseline: one Re-Leased request per record (no batches) at 60 a minute.
        print(
            f"baseline, one request per record at 60/min: >= {records / 60:.1f} min; "
            f"this run: {minutes:.1f} min"
        )
        contacts = await _count(pool, connection.id, "contact")
        print(f"contacts linked: {contacts}")
        if latencies:
            print(
                f"live edits during the import: {len(latencies)}; propagation p50 "
                f"{statistics.median(latencies):.2f} s, p99 {_percentile(latencies, 0.99):.2f} s"
            )


def main() -> None:
    configure_logging("WARNING", "json")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    from urllib.parse import quote, urlsplit, urlunsplit

    dsn = urlunsplit(urlsplit(PG_ADMIN)._replace(path=f"/{name}"))
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
