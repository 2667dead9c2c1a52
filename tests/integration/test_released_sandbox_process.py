"""The real entrypoint: serves on its port, stops cleanly on Ctrl-C, refuses bad settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandboxes.released"],
        cwd=ROOT,
        env={**os.environ, "LOG_FORMAT": "json", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_serves_and_exits_cleanly_on_ctrl_c() -> None:
    port = _free_port()
    process = _start({"RELEASED_SANDBOX_PORT": str(port)})
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/_sandbox/companies", json={"name": "Live"}
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.1)
        assert response.status_code == 201
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "released_sandbox_stopped" in output
    assert "Traceback" not in output


def test_refuses_to_start_with_bad_settings() -> None:
    process = _start({"RELEASED_SANDBOX_PORT": "not-a-port"})
    output, _ = process.communicate(timeout=15)
    assert process.returncode == 2
    assert "RELEASED_SANDBOX_PORT" in output
