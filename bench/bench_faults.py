"""Real outages under load: lost, duplicated or reordered EFFECTS on the platforms, and recovery.

The whole stack (deploy/Procfile: both sandboxes, both receivers, both consumers, the reconciler,
the admin service with its demo connection) runs as real processes on a PostgreSQL cluster and
a RabbitMQ node of the bench's own (bench/faults_infra.py), so restarting them disturbs nobody.
People edit contacts on both platforms at a steady rate over --connections concurrent senders
(bench/faults_load.py), and a QBO bookkeeper pays half of each new invoice every
--payments-every seconds (bench/faults_payments.py), while each fault is injected in turn:
- rabbit-app: ``rabbitmqctl stop_app``, 10 s, ``start_app``;
- rabbit-restart: ``rabbitmqctl stop`` and ``rabbitmq-server -detached``;
- pg-restart: ``pg_ctl restart -m fast``;
- kill: kill -9 of each product process (receivers, consumers, reconciler, admin) --kills times
  each, round robin, restarted at once as a supervisor would;
- released-outage: Re-Leased answers 503 to every API call for 60 s (its fault switch).
After each fault a probe record is edited on both platforms; the fault's recovery time is until
both edits are visible on the other platform (it includes the normal end-to-end latency, printed
as the baseline, and the platforms' webhook retry schedules: Re-Leased retries after 30 s).
Once the load stops and everything has settled, the effects are counted (see faults_load.py)
together with the webhook deliveries the platforms saw answered non-2xx.

    PYTHONPATH=. .venv/bin/python bench/bench_faults.py --events 3000 --rate 6 --kills 3
    PYTHONPATH=. .venv/bin/python bench/bench_faults.py --faults kill --kills 10   # only the kills
    # the machine's own PostgreSQL and RabbitMQ (it restarts them: only on a machine of your own)
    PYTHONPATH=. .venv/bin/python bench/bench_faults.py --system-services
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg
from faults_infra import Services, private_services, system_services
from faults_load import Load, Platforms, Record, Watcher, WriteLog
from faults_payments import Payments
from faults_stack import PRODUCT, QBO_SBX, RL_SBX, Processes, demo_pair, stack_env

from shared.infra.migrations import migrate

FAULTS = ("rabbit-app", "rabbit-restart", "pg-restart", "kill", "released-outage")
RECOVERY_TIMEOUT_S = 300.0


class Bench:
    def __init__(self, args: argparse.Namespace, services: Services, procs: Processes) -> None:
        self.args, self.services, self.procs = args, services, procs
        # (fault, seconds until each direction showed a fresh edit, counted from the fault)
        self.results: list[tuple[str, tuple[float, float] | None]] = []
        self.probes = [Record("Q999999"), Record("R999999")]
        self.probe_version = 0

    async def probe(self, load: Load, watcher: Watcher) -> tuple[float, float] | None:
        """Seconds until a fresh edit of each probe is visible on the other platform (QBO to
        Re-Leased, Re-Leased to QBO); None when one never showed."""
        started = time.monotonic()
        self.probe_version += 1
        for record in self.probes:
            await load.write(record, self.probe_version)
        shown_at: dict[str, float] = {}
        while time.monotonic() - started < RECOVERY_TIMEOUT_S:
            try:
                seen = await watcher.observe()
            except (aiohttp.ClientError, RuntimeError, TimeoutError):
                seen = {}
            for probe in self.probes:
                if max(seen.get(probe.key, {}).values(), default=-1) >= self.probe_version:
                    shown_at.setdefault(probe.key, time.monotonic())
            if len(shown_at) == len(self.probes):
                to_rl, to_qbo = (shown_at[p.key] - started for p in self.probes)
                return to_rl, to_qbo
            await asyncio.sleep(0.5)
        return None

    def plan(self) -> list[str]:
        chosen = self.args.faults.split(",")
        steps: list[str] = []
        for fault in FAULTS:
            if fault not in chosen:
                continue
            if fault == "kill":
                steps += [f"kill:{name}" for _ in range(self.args.kills) for name in PRODUCT]
            else:
                steps.append(fault)
        return steps

    async def inject(self, fault: str, platforms: Platforms) -> None:
        s = self.services
        if fault.startswith("kill:"):
            self.procs.kill9(fault.removeprefix("kill:"))
        elif fault == "rabbit-app":
            await asyncio.to_thread(s.rabbit_stop_app)
            await asyncio.sleep(10)
            await asyncio.to_thread(s.rabbit_start_app)
        elif fault == "rabbit-restart":
            await asyncio.to_thread(s.rabbit_restart)
        elif fault == "pg-restart":
            await asyncio.to_thread(s.pg_restart)
        elif fault == "released-outage":
            url = f"{platforms.rl_base}/_sandbox/companies/{platforms.company}/faults"
            await platforms.call("PUT", url, json={"errorRate": 1.0, "errorStatus": 503})
            await asyncio.sleep(60)
            await platforms.call("PUT", url, json={"errorRate": 0.0})

    async def faults(self, load: Load, watcher: Watcher, platforms: Platforms) -> None:
        baseline = await self.probe(load, watcher)
        self.results.append(("baseline (no fault)", baseline))
        for fault in self.plan():
            await asyncio.sleep(self.args.gap)
            started = time.monotonic()
            await self.inject(fault, platforms)
            injected = time.monotonic() - started
            seen = await self.probe(load, watcher)
            took = None if seen is None else (seen[0] + injected, seen[1] + injected)
            self.results.append((fault, took))
            print(f"  {fault}: {recovery(took)}", flush=True)


def recovery(took: tuple[float, float] | None) -> str:
    if took is None:
        return "NOT RECOVERED"
    return f"QBO->RL {took[0]:6.1f} s   RL->QBO {took[1]:6.1f} s"


async def deliveries(platforms: Platforms) -> dict[str, Counter[str]]:
    """Webhook delivery attempts per answer, as each platform logged them."""
    qbo = await platforms.call(
        "GET", f"{platforms.qbo_base}/_sandbox/deliveries", params={"realmId": platforms.realm}
    )
    rl = await platforms.call(
        "GET", f"{platforms.rl_base}/_sandbox/deliveries", params={"companyId": platforms.company}
    )
    return {
        "qbo": Counter(str(d["httpStatus"]) for d in qbo["deliveries"]),
        "released": Counter(str(d["status"]) for d in rl["items"] if d["kind"] == "DELIVERY"),
    }


async def settle(
    records: list[Record], watcher: Watcher, timeout: float
) -> tuple[list[str], float]:
    """Wait until every target shows its source's last version; the records that never did."""
    started = time.monotonic()
    behind: list[str] = [r.key for r in records]
    while time.monotonic() - started < timeout:
        try:
            seen = await watcher.observe()
        except (aiohttp.ClientError, RuntimeError, TimeoutError):
            await asyncio.sleep(1)
            continue
        behind = [
            r.key for r in records if max(seen.get(r.key, {}).values(), default=-1) < r.version
        ]
        if not behind:
            break
        await asyncio.sleep(2)
    return behind, time.monotonic() - started


async def qbo_extra_writes(platforms: Platforms, records: list[Record], people_writes: int) -> int:
    """Customer writes QBO accepted beyond the users' own and one per Re-Leased version (QBO's
    request log does not name the record, so this one is counted over all of them)."""
    url = f"{platforms.qbo_base}/_sandbox/realms/{platforms.realm}/requests"
    body = await platforms.call("GET", url, params={"entity": "Customer"})
    product = int(body["writes"]) - people_writes
    return max(0, product - sum(r.version + 1 for r in records if r.key.startswith("R")))


def report(bench: Bench, load: Load, watcher: Watcher, log: WriteLog, took: float) -> None:
    records = [*load.records, *bench.probes]
    print(f"\n{load.sent} edits by {bench.args.connections} senders in {took:.0f} s "
          f"({load.retries} retried by the people)")  # fmt: skip
    print("  recovery: a fresh edit visible on the other platform, counted from the fault")
    for fault, seconds in bench.results:
        print(f"  {fault:28s} {recovery(seconds)}")
    twins = {k: ids for k, ids in watcher.targets.items() if len(ids) > 1}
    extra = 0
    for record in records:
        if not record.key.startswith("Q"):
            continue
        for target in watcher.targets.get(record.key, set()):
            # One create plus one update per later version at most.
            extra += max(0, log.per_path[f"/api/v1/contacts/{target}"] - record.version)
    print(f"duplicated: {len(twins)} records created twice {sorted(twins)[:5]}, "
          f"{extra} Re-Leased contact updates beyond the versions sent")  # fmt: skip
    print(f"reordered: {len(watcher.regressions)} {watcher.regressions[:5]} "
          f"({watcher.polls} looks at every target)")  # fmt: skip


async def messages(dsn: str) -> None:
    """What the faults did to MESSAGES (not effects): events handled more than once, and records
    whose events were handled in another order than the receivers stored them."""
    conn = await asyncpg.connect(dsn)
    try:
        extra = await conn.fetchval(
            "SELECT count(*) - count(DISTINCT event_id) FROM sync_outcomes WHERE outcome <> 'error'"
        )
        rows = await conn.fetch(
            "SELECT o.source_id, i.received_at FROM ("
            "  SELECT DISTINCT ON (event_id) event_id, source_id, id FROM sync_outcomes"
            "  WHERE outcome <> 'error' ORDER BY event_id, id) o "
            "JOIN inbox i USING (event_id) ORDER BY o.id"
        )
    finally:
        await conn.close()
    last: dict[str, object] = {}
    out_of_order: set[str] = set()
    for row in rows:
        before = last.get(row["source_id"])
        if before is not None and row["received_at"] < before:
            out_of_order.add(row["source_id"])
        last[row["source_id"]] = max(row["received_at"], before or row["received_at"])
    print(
        f"messages: {extra} events handled again (at-least-once), {len(out_of_order)} of "
        f"{len(last)} records had an event handled after a later one"
    )


def dead_lettered(logs: Path) -> Counter[str]:
    """Events the consumers gave up on, by error class, from their logs (the dead_letters table
    misses those mirrored while PostgreSQL was down)."""
    found: Counter[str] = Counter()
    for path in logs.glob("*.log"):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"event_dead_lettered"' in line:
                found[str(json.loads(line).get("error_class"))] += 1
    return found


async def run(args: argparse.Namespace, services: Services, logs: Path) -> None:
    admin = await asyncpg.connect(services.database_url)
    await admin.execute("DROP DATABASE IF EXISTS bench_faults WITH (FORCE)")
    await admin.execute("CREATE DATABASE bench_faults")
    await admin.close()
    dsn = services.database_url.rsplit("/", 1)[0] + "/bench_faults"
    await migrate(dsn)
    procs = Processes(stack_env(dsn, services.amqp_url, logs), logs)
    procs.start_all()
    try:
        company, realm = await demo_pair(dsn)
        await asyncio.sleep(5)  # the webhook subscription validates just after the connection
        await measure(args, services, procs, company, realm, dsn)
        await messages(dsn)
        print(f"dead-lettered events: {dict(dead_lettered(logs)) or 0}")
    finally:
        died = procs.died()
        procs.stop()
        print(f"processes that exited on their own: {died or 'none'}; logs in {logs}")


async def check_payments(payments: Payments, timeout: float) -> None:
    started = time.monotonic()
    while True:
        try:
            missing, extra = await payments.check()
            unlinked = await payments.still_unlinked()
        except (aiohttp.ClientError, RuntimeError, TimeoutError):
            missing, extra, unlinked = payments.paid, 0, payments.unlinked
        if not (missing or unlinked) or time.monotonic() - started > timeout:
            break
        await asyncio.sleep(3)
    late = len(payments.unlinked) - len(unlinked)
    print(
        f"payments: {len(payments.paid)} made in QBO; lost {len(missing)} {missing[:5]}, "
        f"applied twice {extra}; invoices not in Re-Leased when due to be paid (3 min): "
        f"{len(payments.unlinked)}, of which {late} arrived before the end (waited "
        f"{time.monotonic() - started:.0f} s), {len(unlinked)} never {unlinked[:5]}"
    )


async def measure(
    args: argparse.Namespace,
    services: Services,
    procs: Processes,
    company: str,
    realm: str,
    dsn: str,
) -> None:
    timeout = aiohttp.ClientTimeout(total=20)
    connector = aiohttp.TCPConnector(limit=args.connections + 10)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        local = "http://127.0.0.1"
        platforms = Platforms(f"{local}:{QBO_SBX}", f"{local}:{RL_SBX}", realm, company, http)
        await platforms.tokens()
        load = Load(platforms, args.rate, args.versions)
        watcher, log, bench = Watcher(platforms), WriteLog(platforms), Bench(args, services, procs)
        background = asyncio.Event()
        helpers = [asyncio.create_task(t.run(background)) for t in (watcher, log)]
        payments = Payments(platforms, dsn, args.payments_every)
        if args.payments_every > 0:
            helpers.append(asyncio.create_task(payments.run(load.stop)))
        started = time.monotonic()
        senders = [
            asyncio.create_task(load.sender(n, args.connections)) for n in range(args.connections)
        ]
        await bench.faults(load, watcher, platforms)
        while load.sent < args.events:  # noqa: ASYNC110 (a count, polled once a second)
            await asyncio.sleep(1)
        load.stop.set()
        await asyncio.gather(*senders, *helpers[2:])
        took = time.monotonic() - started
        behind, settled = await settle([*load.records, *bench.probes], watcher, args.settle)
        background.set()
        await asyncio.gather(*helpers)
        await log.read()
        report(bench, load, watcher, log, took)
        await check_payments(payments, args.settle)
        people = load.user_qbo_writes + payments.customers_made
        extra = await qbo_extra_writes(platforms, [*load.records, *bench.probes], people)
        print(f"duplicated: {extra} QBO customer writes beyond the Re-Leased versions sent")
        print(f"lost: {len(behind)} records not at their last version after {settled:.0f} s "
              f"{behind[:5]}")  # fmt: skip
        for side, answers in (await deliveries(platforms)).items():
            print(f"webhook deliveries by {side}: {dict(sorted(answers.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/bench_faults.py")
    parser.add_argument("--events", type=int, default=3000, help="edits, at least")
    parser.add_argument("--connections", type=int, default=50, help="concurrent senders")
    parser.add_argument("--rate", type=float, default=6.0, help="edits per second, all senders")
    parser.add_argument("--versions", type=int, default=10, help="edits per record")
    parser.add_argument("--payments-every", type=float, default=5.0,
                        help="seconds between QBO invoice payments (0: none)")  # fmt: skip
    parser.add_argument("--kills", type=int, default=10, help="kill -9 per process type")
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"any of {', '.join(FAULTS)}")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between faults")
    parser.add_argument("--settle", type=float, default=600.0, help="seconds to settle at most")
    parser.add_argument("--system-services", action="store_true",
                        help="restart the machine's own PostgreSQL and RabbitMQ")  # fmt: skip
    args = parser.parse_args()
    services = system_services() if args.system_services else private_services()
    logs = Path(tempfile.mkdtemp(prefix="bench-faults-logs-"))
    try:
        asyncio.run(run(args, services, logs))
    finally:
        services.close()


if __name__ == "__main__":
    main()
