"""The whole stack of deploy/Procfile as real child processes, on ports of its own.

Every service runs as ``make run`` runs it (the same Procfile, the sandbox configuration), but on
ports 58xxx so a developer's ``make run`` on the machine is left alone, with its ops servers on
OS-chosen ports, and on the bench's own database and broker. ``kill9`` is a real SIGKILL of the
process, which is then started again at once, as a supervisor (Kubernetes) would.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from shared.bootstrap.launcher import read_procfile
from shared.infra.settings import read_env_file

ROOT = Path(__file__).resolve().parents[1]
ADMIN, QBO_HOOKS, RL_HOOKS, QBO_SBX, RL_SBX = 58000, 58001, 58002, 58101, 58102
# What kill -9 is aimed at: every product process (the sandboxes stand for the platforms).
PRODUCT = (
    "qbo_webhooks",
    "released_webhooks",
    "qbo_to_released",
    "released_to_qbo",
    "reconciler",
    "admin",
)


def stack_env(database_url: str, amqp_url: str, logs: Path) -> dict[str, str]:
    env = read_env_file(ROOT / "deploy" / "sandbox.env")
    local = "http://127.0.0.1"
    env.update(
        DATABASE_URL=database_url,
        AMQP_URL=amqp_url,
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        OPS_PORT="0",
        ADMIN_PORT=str(ADMIN),
        ADMIN_PUBLIC_URL=f"{local}:{ADMIN}",
        QBO_WEBHOOKS_PORT=str(QBO_HOOKS),
        RELEASED_WEBHOOKS_PORT=str(RL_HOOKS),
        QBO_SANDBOX_PORT=str(QBO_SBX),
        RELEASED_SANDBOX_PORT=str(RL_SBX),
        QBO_API_BASE=f"{local}:{QBO_SBX}",
        QBO_OAUTH_BASE=f"{local}:{QBO_SBX}",
        QBO_AUTHORIZE_URL=f"{local}:{QBO_SBX}/connect/oauth2",
        QBO_SANDBOX_PUBLIC_URL=f"{local}:{QBO_SBX}",
        QBO_SANDBOX_WEBHOOK_URL=f"{local}:{QBO_HOOKS}/webhooks/qbo",
        RELEASED_API_BASE=f"{local}:{RL_SBX}/api/v1",
        RELEASED_SANDBOX_PUBLIC_URL=f"{local}:{RL_SBX}",
        RELEASED_WEBHOOK_PUBLIC_URL=f"{local}:{RL_HOOKS}/webhooks/released",
        # The platforms' published limits, both in the sandboxes and in the product's budgets.
        QBO_SANDBOX_RATE_LIMITS="false",
        RELEASED_SANDBOX_RATE_LIMITS="false",
        RELEASED_REQUESTS_PER_MINUTE="6000",
        RELEASED_CONCURRENCY="10",
        QBO_REQUESTS_PER_MINUTE="6000",
        RECONCILE_INTERVAL_S="30",
    )
    env["BENCH_FAULTS_LOGS"] = str(logs)
    return env


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.specs = {s.name: s.argv for s in read_procfile(ROOT / "deploy" / "Procfile")}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: dict[str, int] = {}

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            self.specs[name], cwd=ROOT, env={**os.environ, **self.env}, stdout=log, stderr=log
        )
        log.close()

    def start_all(self) -> None:
        for name in self.specs:
            self.start(name)

    def kill9(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait(30)
        self.kills[name] = self.kills.get(name, 0) + 1
        self.start(name)

    def died(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


async def demo_pair(database_url: str, timeout: float = 180) -> tuple[str, str]:
    """(Re-Leased company, QBO realm) of the connection the admin service's demo made."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(database_url)
            try:
                row = await conn.fetchrow(
                    "SELECT released_company_id, qbo_realm_id FROM connections "
                    "WHERE status = 'active' AND qbo_realm_id IS NOT NULL"
                )
            finally:
                await conn.close()
            if row is not None:
                return str(row["released_company_id"]), str(row["qbo_realm_id"])
        except (OSError, asyncpg.PostgresError):
            pass
        await asyncio.sleep(1)
    sys.stderr.write("the admin service's demo connection did not come up\n")
    raise SystemExit(1)
