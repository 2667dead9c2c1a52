"""``make run``: one command that starts every service of the stack and stops them together.

It loads the sandbox configuration (without overriding what the environment already sets),
checks that PostgreSQL and RabbitMQ answer (one clear line and exit 1 if not), applies migrations,
then runs each entry of ``deploy/Procfile`` as a child process. Ctrl-C (or SIGTERM) is passed on
as SIGTERM; children get a bounded time to drain, then are killed. Exit 0 after a clean stop,
1 when a service died on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from shared.bootstrap.serve import check_infrastructure
from shared.infra.errors import ConfigError, InfraUnavailable
from shared.infra.logging import configure_logging, get_logger
from shared.infra.migrations import migrate
from shared.infra.settings import InfraSettings, load_settings, read_env_file

ROOT = Path(__file__).resolve().parents[2]
log = get_logger("launcher")


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]


def read_procfile(path: Path) -> list[ProcessSpec]:
    """``name: command args`` per line; ``python`` means this interpreter."""
    specs: list[ProcessSpec] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not command.strip():
            raise ConfigError(f"{path}: expected 'name: command', got {line!r}")
        argv = command.split()
        if argv[0] == "python":
            argv[0] = sys.executable
        specs.append(ProcessSpec(name.strip(), argv))
    return specs


def apply_env_file(path: Path) -> None:
    for key, value in read_env_file(path).items():
        os.environ.setdefault(key, value)


async def preflight(settings: InfraSettings) -> None:
    """Fail with one line naming the URL when a backing service is down; then migrate."""
    await check_infrastructure(settings)
    await migrate(settings.database_url)


async def supervise(specs: list[ProcessSpec], drain_seconds: float) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    children: dict[str, asyncio.subprocess.Process] = {}
    for spec in specs:
        children[spec.name] = await asyncio.create_subprocess_exec(*spec.argv, cwd=ROOT)
        log.info("service_started", service=spec.name, pid=children[spec.name].pid)
    waiters = {asyncio.create_task(p.wait()): name for name, p in children.items()}
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *waiters], return_when=asyncio.FIRST_COMPLETED)
    died = [waiters[t] for t in done if t in waiters]
    for name in died:
        log.error("service_exited", service=name, returncode=children[name].returncode)
    for proc in children.values():
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    pending = [t for t in waiters if not t.done()]
    if pending:
        _, still = await asyncio.wait(pending, timeout=drain_seconds)
        for task in still:
            log.warning("service_killed", service=waiters[task])
            children[waiters[task]].kill()
        if still:
            await asyncio.wait(still)
    stopper.cancel()
    log.info("stack_stopped", clean=not died)
    return 1 if died else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.launcher")
    parser.add_argument("--env-file", type=Path, default=ROOT / "deploy" / "sandbox.env")
    parser.add_argument("--procfile", type=Path, default=ROOT / "deploy" / "Procfile")
    parser.add_argument("--drain-seconds", type=float, default=20.0)
    parser.add_argument("--check", action="store_true", help="preflight only, then exit")
    args = parser.parse_args(argv)
    try:
        if args.env_file.exists():
            apply_env_file(args.env_file)
        settings = load_settings(InfraSettings)
        configure_logging(settings.log_level, settings.log_format)
        specs = read_procfile(args.procfile)
        asyncio.run(preflight(settings))
    except (ConfigError, InfraUnavailable) as exc:
        sys.stderr.write(f"make run: {exc}\n")
        return 1
    if args.check:
        return 0
    log.info("stack_starting", services=[s.name for s in specs])
    sys.stderr.write(where_to_look())
    return asyncio.run(supervise(specs, args.drain_seconds))


def where_to_look() -> str:
    env = os.environ.get
    admin = env("ADMIN_PUBLIC_URL", "http://127.0.0.1:8000")
    return f"""
  Re-Leased <-> QBO sync: the whole stack on the sandboxes (Ctrl-C drains and stops it)
    admin API        {admin}/api/connections   (Authorization: Bearer $ADMIN_TOKEN)
    console          {admin}/console           (sign in with $ADMIN_TOKEN)
    health, metrics  /healthz /readyz /metrics on every port; consumers and reconciler 9001-9003
    QBO sandbox      {env("QBO_SANDBOX_PUBLIC_URL", "http://127.0.0.1:8101")}
    Re-Leased sbx    {env("RELEASED_SANDBOX_PUBLIC_URL", "http://127.0.0.1:8102")}/api/v1/openapi.json
    webhooks in      {env("QBO_SANDBOX_WEBHOOK_URL", "http://127.0.0.1:8001/webhooks/qbo")}
                     {env("RELEASED_WEBHOOK_PUBLIC_URL", "http://127.0.0.1:8002/webhooks/released")}
    logs             JSON lines below; event names in docs/logging.md
                     (demo_connection_ready says which companies are connected)

"""
