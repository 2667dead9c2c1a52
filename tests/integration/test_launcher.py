"""`make run`'s launcher: clear failure when infrastructure is down, clean start and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def launcher(
    tmp_path: Path, procfile: str, env: dict[str, str], *extra: str
) -> subprocess.Popen[str]:
    (tmp_path / "Procfile").write_text(procfile)
    (tmp_path / "empty.env").write_text("# nothing\n")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.launcher",
            "--env-file",
            str(tmp_path / "empty.env"),
            "--procfile",
            str(tmp_path / "Procfile"),
            "--drain-seconds",
            "5",
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "LOG_FORMAT": "json", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(
    ("variable", "url", "names"),
    [
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/test", "PostgreSQL"),
        ("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/", "RabbitMQ"),
    ],
)
def test_unreachable_infrastructure_is_one_clear_line(
    tmp_path: Path, database_url: str, amqp_url: str, variable: str, url: str, names: str
) -> None:
    env = {"DATABASE_URL": database_url, "AMQP_URL": amqp_url, variable: url}
    proc = launcher(tmp_path, "x: python -c pass\n", env, "--check")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert names in lines[0]
    assert "127.0.0.1:1" in lines[0]
    assert "Traceback" not in err


def test_ctrl_c_drains_children_and_exits_zero(
    tmp_path: Path, database_url: str, amqp_url: str
) -> None:
    marker = tmp_path / "stopped"
    child = (
        "import signal,sys,time,pathlib\n"
        "signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path(sys.argv[1]).write_text('ok'),"
        " sys.exit(0)))\n"
        "time.sleep(60)\n"
    )
    (tmp_path / "child.py").write_text(child)
    procfile = f"worker: python {tmp_path / 'child.py'} {marker}\n"
    proc = launcher(tmp_path, procfile, {"DATABASE_URL": database_url, "AMQP_URL": amqp_url})
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    for line in proc.stdout:
        if "service_started" in line or time.monotonic() > deadline:
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert marker.read_text() == "ok", "the child got SIGTERM and drained"


def test_a_service_that_dies_stops_the_stack(
    tmp_path: Path, database_url: str, amqp_url: str
) -> None:
    (tmp_path / "sleeper.py").write_text("import time\ntime.sleep(60)\n")
    procfile = f"dies: python -c raise(SystemExit(3))\nsleeper: python {tmp_path / 'sleeper.py'}\n"
    started = time.monotonic()
    proc = launcher(tmp_path, procfile, {"DATABASE_URL": database_url, "AMQP_URL": amqp_url})
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert time.monotonic() - started < 25, "the sleeper was stopped, not waited for"
    assert '"service": "dies"' in out
