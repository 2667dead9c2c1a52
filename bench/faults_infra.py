"""The PostgreSQL and RabbitMQ that bench_faults.py restarts: its own, unless told otherwise.

By default the bench makes a private PostgreSQL cluster (``initdb`` in a temporary directory, run
as the ``postgres`` user when we are root, on port 55432) and a second RabbitMQ node
(``faults@localhost`` on port 55672, no plugins, its own Mnesia and log directories), so stopping
and restarting them cannot break anyone else's tests on the machine. ``--system-services`` uses
the machine's own instead (and restarts them: only on a machine nobody else is using).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_PORT, AMQP_PORT, DIST_PORT = 55432, 55672, 55673
NODE = "faults@localhost"


def _run(argv: list[str], env: dict[str, str] | None = None, timeout: float = 180) -> None:
    # No pipes: a daemon started here (postgres, beam) would hold them open and hang the call.
    subprocess.run(
        argv,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _as_user(user: str, argv: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as their own user then."""
    return ["runuser", "-u", user, "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Services:
    """Where the stack connects, and the three outages the bench can cause."""

    database_url: str
    amqp_url: str
    rabbitmqctl: list[str]
    restart_pg: list[list[str]]
    rabbit_start: list[list[str]]
    env: dict[str, str] = field(default_factory=dict)
    cleanup: list[list[str]] = field(default_factory=list)
    workdir: Path | None = None

    def rabbit_stop_app(self) -> None:
        _run([*self.rabbitmqctl, "stop_app"])

    def rabbit_start_app(self) -> None:
        _run([*self.rabbitmqctl, "start_app"])

    def rabbit_restart(self) -> None:
        _run([*self.rabbitmqctl, "stop"])
        # ``stop`` can return while the node still holds its name: start only once it is gone.
        deadline = time.monotonic() + 60
        while self._rabbit_answers() and time.monotonic() < deadline:
            time.sleep(0.5)
        for step in self.rabbit_start:
            _run(step, env=self.env)
        self.rabbit_wait()

    def _rabbit_answers(self) -> bool:
        argv = [*self.rabbitmqctl, "ping"]
        done = subprocess.run(argv, check=False, capture_output=True, timeout=60)
        return done.returncode == 0

    def rabbit_wait(self) -> None:
        """``await_startup`` fails at once while the node is not up at all: ask until it is."""
        deadline = time.monotonic() + 180
        while True:
            try:
                _run([*self.rabbitmqctl, "await_startup", "--timeout", "60"])
                return
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def pg_restart(self) -> None:
        for step in self.restart_pg:
            _run(step)

    def close(self) -> None:
        for step in self.cleanup:
            subprocess.run(
                step,
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=120,
                env=self.env_all(),
            )
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def env_all(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def private_services() -> Services:
    """A PostgreSQL cluster and a RabbitMQ node of our own, started; ``close`` removes both."""
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    work.chmod(0o755)
    pg_bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
    data, sockets = work / "pg" / "data", work / "pg"
    sockets.mkdir()
    rmq = work / "rmq"
    rmq.mkdir()
    (rmq / "plugins").write_text("\n")  # no management or prometheus listeners to clash
    (rmq / "rabbitmq.conf").write_text(f"listeners.tcp.default = {AMQP_PORT}\n")
    if os.geteuid() == 0:
        shutil.chown(sockets, "postgres")
        for path in (rmq, rmq / "plugins", rmq / "rabbitmq.conf"):
            shutil.chown(path, "rabbitmq")
    pg_log = work / "pg" / "log"
    pg_ctl = _as_user("postgres", [f"{pg_bin}/pg_ctl", "-D", str(data), "-w", "-t", "120"])
    options = (
        f"-p {PG_PORT} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=300 "
        "-c shared_buffers=64MB"
    )
    env = {
        "RABBITMQ_NODENAME": NODE,
        "RABBITMQ_NODE_PORT": str(AMQP_PORT),
        "RABBITMQ_DIST_PORT": str(DIST_PORT),
        "RABBITMQ_MNESIA_BASE": str(rmq / "mnesia"),
        "RABBITMQ_LOG_BASE": str(rmq / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(rmq / "plugins"),
        "RABBITMQ_CONFIG_FILE": str(rmq / "rabbitmq"),
        "RABBITMQ_PID_FILE": str(rmq / "pid"),
    }
    services = Services(
        database_url=f"postgresql://postgres@127.0.0.1:{PG_PORT}/postgres",
        amqp_url=f"amqp://guest:guest@127.0.0.1:{AMQP_PORT}/",
        rabbitmqctl=["rabbitmqctl", "-n", NODE],
        restart_pg=[[*pg_ctl, "-o", options, "-l", str(pg_log), "-m", "fast", "restart"]],
        rabbit_start=[["rabbitmq-server", "-detached"]],
        env=env,
        cleanup=[["rabbitmqctl", "-n", NODE, "stop"], [*pg_ctl, "-m", "immediate", "stop"]],
        workdir=work,
    )
    try:
        _run(_as_user("postgres", [f"{pg_bin}/initdb", "-D", str(data), "-A", "trust",
                                   "-U", "postgres"]))  # fmt: skip
        _run([*pg_ctl, "-o", options, "-l", str(pg_log), "start"])
        _run(["rabbitmq-server", "-detached"], env=env)
        services.rabbit_wait()
    except BaseException:
        services.close()
        raise
    return services


def system_services() -> Services:
    """The machine's own PostgreSQL and RabbitMQ (restarting them breaks others' test runs)."""
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return Services(
        database_url=os.environ.get(
            "TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
        amqp_url=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        rabbitmqctl=["rabbitmqctl"],
        restart_pg=[["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]],
        rabbit_start=[["rabbitmq-server", "-detached"]],
    )
