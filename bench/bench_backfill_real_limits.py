"""Initial import at both platforms' real limits, with live edits during it.

Both sandboxes enforce their limits (QBO 500/minute and 10 at once per realm, Re-Leased
60/minute and 5 at once per company) and the product runs on its real budgets, the import on the
bulk lane's (which leave live traffic its reserved share). A QBO realm with BENCH_CUSTOMERS
customers and BENCH_INVOICES invoices (the issue's full size by default: 2,000 and 10,000), each
invoice paid by its own payment (BENCH_PAYMENTS=0: none), and a Re-Leased company with
BENCH_RL_CONTACTS contacts of its own (default 100) and BENCH_RL_BILLS approved bills QBO lacks
(default 0), are connected through the real flow and imported with ``InitialImport``;
consumers run both lanes, BENCH_REPLICAS per direction (default 2, production's minimum), with
the product's prefetch and database pools. From the import's start a live edit is made every
BENCH_LIVE_EVERY_S seconds (default 10), alternating a new QBO customer and a new Re-Leased
customer; each edit's propagation time is measured (Re-Leased is polled through the
sandbox's as-user routes, which spend no limit).

Prints: wall time; requests per side (Re-Leased split into reads, single writes and batches);
the share of Re-Leased's 60/minute used while the import was backlogged (from its first to its
last batch) and the busiest sliding minute; 429s (any is ours: nothing else calls); records
written per Re-Leased write request, against the baseline of one request per record; live-edit
propagation p50/p99 overall, then per direction (QBO->RL, RL->QBO, with the max) and the five
slowest edits with their direction and when into the import they were made. Figures only,
asserts nothing.

Run from the repository root: ``PYTHONPATH=. .venv/bin/python bench/bench_backfill_real_limits.py``
(it imports bench_backfill from beside it and the e2e stack from tests/).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# The issue's full size: documents and payments go to Re-Leased in batches of 50.
os.environ.setdefault("BENCH_CUSTOMERS", "2000")
os.environ.setdefault("BENCH_INVOICES", "10000")

import trace_requests
from bench_backfill import (
    CUSTOMERS,
    INVOICES,
    _admin,
    _count,
    _qbo_requests,
    _rabbitmqctl,
    _services_item,
)

from shared.adapters.broker import EventPublisher, Topology, connect_broker, declare_topology
from shared.adapters.clients import ClientFactory
from shared.admin.store import AdminConnections
from shared.infra.db import create_pool
from shared.infra.logging import configure_logging
from shared.infra.migrations import migrate
from shared.ingest.importer import InitialImport
from tests.e2e.stack import Stack, consumers, running_stack

RL_CONTACTS = int(os.environ.get("BENCH_RL_CONTACTS", "100"))
# Re-Leased bills of its own (QBO lacks them), over RL_SUPPLIERS suppliers, on the expense account
# alignment maps to a QBO account by code: the import creates them in QBO (``/batch`` of 30).
RL_BILLS = int(os.environ.get("BENCH_RL_BILLS", "0"))
RL_SUPPLIERS = 20  # the suppliers they are spread over
PAYMENTS = os.environ.get("BENCH_PAYMENTS", "1") != "0"
SEED_AT_ONCE = 16
LOST_AFTER_S = 180.0  # a live edit not seen by then is reported (and counted at that time)
LIVE_EVERY_S = float(os.environ.get("BENCH_LIVE_EVERY_S", "10"))
# Consumer replicas per direction: production's minimum (deploy/k8s/overlays/production/keda.yaml),
# here in this one process.
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))
# BENCH_TRACE=1: also print the live lane's Re-Leased requests grouped by what caused them.
TRACE = os.environ.get("BENCH_TRACE", "0") != "0"
TIMEOUT_S = float(os.environ.get("BENCH_TIMEOUT_S", "1800"))
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


async def _rl(stack: Stack, company: str, method: str, path: str, body: Any = None) -> Any:
    url = f"{stack.released_base}/_sandbox/companies/{company}/as-user{path}"
    if body is None:
        return await stack.call(method, url)
    return await stack.call(method, url, json=body)


async def _rl_log(stack: Stack, company: str) -> dict[str, Any]:
    """Everything Re-Leased's API received for the company, reads included."""
    log: dict[str, Any] = await stack.call(
        "GET", f"{stack.released_base}/_sandbox/companies/{company}/requests?includeReads=true"
    )
    return log


async def _ui(stack: Stack, realm: str, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    url = f"{stack.qbo_base}/_sandbox/realms/{realm}/ui/{entity}"
    async with stack.http.post(url, json=body) as r:
        if r.status >= 300:
            raise SystemExit(f"seeding failed: {r.status} {await r.text()}")
        found: dict[str, Any] = await r.json()
        return found


async def _bank(stack: Stack, realm: str) -> str:
    """The seeded "Checking" account, found by peeking (no token exists yet)."""
    for candidate in range(1, 120):
        url = f"{stack.qbo_base}/_sandbox/realms/{realm}/objects/Account/{candidate}"
        async with stack.http.get(url) as r:
            if r.status == 200 and (await r.json())["Account"].get("Name") == "Checking":
                return str(candidate)
    raise SystemExit("the seeded Checking account was not found")


async def _seed(stack: Stack) -> str:
    """A realm with CUSTOMERS customers, INVOICES invoices and (PAYMENTS) a payment of each,
    made as a user before the grant (no webhooks), SEED_AT_ONCE at a time."""
    async with stack.http.post(f"{stack.qbo_base}/_sandbox/realms", json={"companyName": "B"}) as r:
        realm = str((await r.json())["realmId"])
    customers: list[str] = []
    for start in range(0, CUSTOMERS, SEED_AT_ONCE):
        made = await asyncio.gather(
            *(
                _ui(stack, realm, "customer", {"DisplayName": f"Tenant {n:05d}"})
                for n in range(start, min(start + SEED_AT_ONCE, CUSTOMERS))
            )
        )
        customers.extend(str(m["Customer"]["Id"]) for m in made)
    item, bank = await _services_item(stack.http, stack, realm), await _bank(stack, realm)
    if RL_BILLS:
        # Re-Leased's "Repairs and maintenance" has code 400: the same code maps the two.
        repairs = {"Name": "Repairs", "AccountType": "Expense", "AcctNum": "400"}
        await _ui(stack, realm, "account", repairs)

    async def invoice(n: int) -> None:
        amount = f"{100 + n % 900}.{n % 100:02d}"
        detail = {"ItemRef": {"value": item}, "Qty": 1, "UnitPrice": amount}
        line = {"Amount": amount, "DetailType": "SalesItemLineDetail"}
        customer = {"value": customers[n % CUSTOMERS]}
        body = {"CustomerRef": customer, "Line": [{**line, "SalesItemLineDetail": detail}]}
        made = (await _ui(stack, realm, "invoice", body))["Invoice"]
        if PAYMENTS:
            paid = {"Amount": amount, "LinkedTxn": [{"TxnId": made["Id"], "TxnType": "Invoice"}]}
            body = {"CustomerRef": customer, "TotalAmt": amount, "Line": [paid]}
            await _ui(stack, realm, "payment", {**body, "DepositToAccountRef": {"value": bank}})

    for start in range(0, INVOICES, SEED_AT_ONCE):
        await asyncio.gather(
            *(invoice(n) for n in range(start, min(start + SEED_AT_ONCE, INVOICES)))
        )
    return realm


async def _rl_bills(stack: Stack, company: str) -> None:
    """RL_BILLS approved Re-Leased bills over RL_SUPPLIERS suppliers, made as a user."""
    if not RL_BILLS:
        return
    accounts = await _rl(stack, company, "GET", "/accounts?pageSize=1000")
    repairs = next(a["id"] for a in accounts["items"] if a["code"] == "400")
    suppliers = [
        (await _rl(stack, company, "POST", "/contacts", supplier))["id"]
        for supplier in (
            {"name": f"Supplier {n:03d}", "isSupplier": True} for n in range(RL_SUPPLIERS)
        )
    ]

    async def bill(n: int) -> None:
        amount = f"{50 + n % 400}.{n % 100:02d}"
        line = {"description": "Repairs", "quantity": "1", "unitAmount": amount}
        body = {
            "type": "EXPENSE",
            "contactId": suppliers[n % RL_SUPPLIERS],
            "date": datetime.now(UTC).date().isoformat(),
            "status": "APPROVED",
            "lines": [{**line, "accountId": repairs}],
        }
        await _rl(stack, company, "POST", "/invoices", body)

    for start in range(0, RL_BILLS, SEED_AT_ONCE):
        await asyncio.gather(*(bill(n) for n in range(start, min(start + SEED_AT_ONCE, RL_BILLS))))


def _stamp(row: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(row["time"]).replace("Z", "+00:00")).timestamp()


def _backlog_share(rows: list[dict[str, Any]]) -> tuple[float, float, int]:
    """Over the import's batches (first to last): minutes, the share of 60/minute used by every
    request in that span, and the most requests any sliding 60 s held over the whole run."""
    times = sorted(_stamp(r) for r in rows)
    batches = sorted(_stamp(r) for r in rows if str(r["path"]).endswith("/batch"))
    peak = max(
        (len([t for t in times[i:] if t < start + 60]) for i, start in enumerate(times)), default=0
    )
    if len(batches) < 2:
        return 0.0, 0.0, peak
    first, last = batches[0], batches[-1]
    span = [t for t in times if first <= t <= last]
    minutes = (last - first) / 60
    return minutes, len(span) / (60 * minutes) if minutes > 0 else 0.0, peak


async def _landed(
    stack: Stack, company: str, qbo: Any, name: str, in_released: bool, since: str
) -> bool:
    if in_released:
        # Only what changed since the edit: the company holds thousands of contacts. Every page:
        # the import may have written more than a page since, and the newest come last.
        query = f"/contacts?pageSize=1000&modifiedSince={since}"
        first = await _rl(stack, company, "GET", query)
        pages = int(first["pagination"]["pageCount"] or 1)
        items = list(first["items"])
        for n in range(2, pages + 1):
            items += (await _rl(stack, company, "GET", f"{query}&page={n}"))["items"]
        return any(c["name"] == name for c in items)
    return bool(await qbo.query_all("Customer", f"DisplayName = '{name}'"))


@dataclass(frozen=True)
class LiveEdit:
    direction: str  # "QBO->RL" or "RL->QBO"
    offset: float  # seconds into the import when the edit was made
    seconds: float  # until it was seen on the other side
    record_id: str = ""  # the new customer's id where it was made


async def _live_edits(
    stack: Stack, company: str, qbo: Any, done: asyncio.Event, t0: float, edits: list[LiveEdit]
) -> None:
    """A new customer every LIVE_EVERY_S, alternately in QBO and in Re-Leased, until ``done``."""
    n = 0
    while not done.is_set():
        n += 1
        name = f"Live {uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        from_qbo = n % 2 == 1
        if from_qbo:
            made = await qbo.write("Customer", {"DisplayName": name}, request_id=f"live-{name}")
        else:
            made = await _rl(
                stack, company, "POST", "/contacts", {"name": name, "isCustomer": True}
            )
        record_id = str(made.get("Id") or made.get("id") or "")
        since = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        while not await _landed(stack, company, qbo, name, from_qbo, since):
            if time.perf_counter() - started > LOST_AFTER_S:
                print(f"live edit not seen after {LOST_AFTER_S:.0f} s: {name}")
                break
            await asyncio.sleep(0.2)
        direction = "QBO->RL" if from_qbo else "RL->QBO"
        edits.append(LiveEdit(direction, started - t0, time.perf_counter() - started, record_id))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), LIVE_EVERY_S)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _figures(values: list[float]) -> str:
    return (
        f"p50 {statistics.median(values):.2f} s, p99 {_percentile(values, 0.99):.2f} s, "
        f"max {max(values):.2f} s"
    )


def _report_live(edits: list[LiveEdit]) -> None:
    """Propagation of the live edits: overall, per direction, and the five slowest."""
    latencies = [e.seconds for e in edits]
    print(
        f"live edits during the import: {len(edits)}; propagation p50 "
        f"{statistics.median(latencies):.2f} s, p99 {_percentile(latencies, 0.99):.2f} s"
    )
    for direction in ("QBO->RL", "RL->QBO"):
        own = [e.seconds for e in edits if e.direction == direction]
        if own:
            print(f"  {direction}: {len(own)} edits; {_figures(own)}")
    for edit in sorted(edits, key=lambda e: e.seconds, reverse=True)[:5]:
        print(f"  slow: {edit.direction} at +{edit.offset:.0f} s took {edit.seconds:.2f} s")


async def run(database_url: str, amqp_url: str) -> None:
    if TRACE:
        trace_requests.install()
    async with (
        create_pool(database_url, min_size=1, max_size=10) as pool,
        running_stack(database_url, amqp_url, pool, real_limits=True, product_pools=True) as stack,
    ):
        seeded = time.perf_counter()
        realm = await _seed(stack)
        company = await stack.released_company(user_subscribes=False)
        for n in range(RL_CONTACTS):
            body = {"name": f"Owner {n:05d}", "isCustomer": True}
            await _rl(stack, company, "POST", "/contacts", body)
        await _rl_bills(stack, company)
        print(f"seeded in {time.perf_counter() - seeded:.0f} s")
        connection = await stack.connect(realm, None, company)
        qbo = stack.factory.qbo(connection)
        # The import runs on the bulk lane's budgets, as the reconciler runs it.
        bulk = ClientFactory(stack.settings, pool, stack.http, bulk=True)
        qbo_before = len(await _qbo_requests(stack, realm))
        rl_before = await _rl_log(stack, company)
        edits: list[LiveEdit] = []
        done = asyncio.Event()
        async with connect_broker(amqp_url) as broker, consumers(stack.settings, REPLICAS):
            publisher = await EventPublisher.open(broker)
            t0 = time.perf_counter()
            live = asyncio.create_task(_live_edits(stack, company, qbo, done, t0, edits))
            progress = await InitialImport(pool, publisher).run(
                connection, bulk.qbo(connection), bulk.released(connection)
            )
            queued = time.perf_counter() - t0
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
        _report(progress, state, elapsed, queued, rl_before, rl_after, qbo_rows, edits)
        if TRACE:
            trace_requests.summary(t0)
            trace_requests.queues(t0)
            for edit in sorted(edits, key=lambda e: e.seconds, reverse=True)[:5]:
                print(f"  {edit.direction} +{edit.offset:.0f} s took {edit.seconds:.2f} s:")
                trace_requests.story(edit.record_id, t0 + edit.offset)
        print(
            f"contacts linked: {await _count(pool, connection.id, 'contact')}, invoices linked: "
            f"{await _count(pool, connection.id, 'invoice')}, payments linked: "
            f"{await _count(pool, connection.id, 'payment')}, bills linked: "
            f"{await _count(pool, connection.id, 'bill')}"
        )


def _report(
    progress: Any,
    state: dict[str, Any],
    elapsed: float,
    queued: float,
    rl_before: dict[str, Any],
    rl_after: dict[str, Any],
    qbo_rows: list[dict[str, Any]],
    edits: list[LiveEdit],
) -> None:
    seen = {(r["time"], r["method"], r["path"]) for r in rl_before["items"]}
    rows = [r for r in rl_after["items"] if (r["time"], r["method"], r["path"]) not in seen]
    rl_requests = int(rl_after["total"]) - int(rl_before["total"])
    writes = [r for r in rows if r["method"] != "GET"]
    batches = [r for r in writes if str(r["path"]).endswith("/batch")]
    minutes = elapsed / 60
    records = int(state["progress"]["total"])
    batched = sum(progress.batched.values())
    print(
        f"sizes: {CUSTOMERS} QBO customers, {INVOICES} QBO invoices"
        f"{' and a payment of each' if PAYMENTS else ''}, {RL_CONTACTS} Re-Leased contacts"
    )
    print(
        f"import: {records} records ({batched} written in batches: {progress.batched}); "
        f"queued in {queued:.1f} s, done in {elapsed:.1f} s"
    )
    print(
        f"Re-Leased: {rl_requests} requests ({rl_requests - len(writes)} reads, "
        f"{len(writes) - len(batches)} single writes, {len(batches)} batches); 429s: "
        f"{int(rl_after['rateLimited']) - int(rl_before['rateLimited'])}"
    )
    for row in (r for r in rows if r.get("status") == 429):
        print(f"  429: {row['time']} {row['method']} {row['path']}")
    span, share, peak = _backlog_share(rows)
    print(
        f"Re-Leased while backlogged ({span:.1f} min, first to last batch): {share * 100:.0f}% "
        f"of 60/min; busiest sliding 60 s: {peak} requests; over the whole run: "
        f"{rl_requests / (60 * max(minutes, 1e-9)) * 100:.0f}%"
    )
    qbo_429 = len([r for r in qbo_rows if r.get("status") == 429])
    qbo_share = len(qbo_rows) / (500 * max(minutes, 1e-9)) * 100
    print(
        f"QBO: {len(qbo_rows)} requests; {qbo_share:.0f}% of 500/min over the run; 429s: {qbo_429}"
    )
    qbo_writes = [r for r in qbo_rows if r.get("write")]
    qbo_batches = [r for r in qbo_writes if str(r.get("path", "")).endswith("/batch")]
    to_qbo = sum(n for stage, n in progress.batched.items() if stage.startswith("released_"))
    print(
        f"QBO writes: {len(qbo_writes)} ({len(qbo_batches)} batches); records the import wrote "
        f"to QBO in batches: {to_qbo}, {to_qbo / max(len(qbo_batches), 1):.1f} per batch"
    )
    per_write = batched / max(len(writes), 1)
    print(f"records written in batches per Re-Leased write request: {per_write:.1f}")
    # The baseline: one Re-Leased request per record (no batches, no lookups) at 60 a minute.
    print(
        f"baseline, one request per record at 60/min: >= {records / 60:.1f} min; "
        f"this run: {minutes:.1f} min"
    )
    if edits:
        _report_live(edits)


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
    if len(sys.argv) > 1:
        # Sizes come from the environment (module docstring); an argument starts nothing.
        print(__doc__)
        sys.exit(0 if sys.argv[1] in ("-h", "--help") else 2)
    main()
