"""deploy/docker-compose.yml runs every process of deploy/Procfile with the environment its
settings class needs, reaching the others by service name, after the migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from shared.infra.settings import read_env_file
from tests.support.deploy import (
    CONTAINER_OPS_PORT,
    ROOT,
    Process,
    all_known_env,
    processes,
    settings_accept,
)

COMPOSE = ROOT / "deploy" / "docker-compose.yml"
INFRA = {"postgres": 5432, "rabbitmq": 5672}
ANY_INTERFACE = "0.0.0.0"  # noqa: S104 - inside a container, the only way to be reached


def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"deploy/docker-compose.yml has no service {name}"
    found: dict[str, Any] = services[name]
    return found


def environment_of(name: str) -> dict[str, str]:
    """What the container sees: its env_file, overridden by its `environment` block."""
    svc = service(name)
    env: dict[str, str] = {}
    files = svc.get("env_file", [])
    for file in [files] if isinstance(files, str) else files:
        env.update(read_env_file(COMPOSE.parent / file))
    env.update({k: str(v) for k, v in (svc.get("environment") or {}).items()})
    return env


def listen_port(process: Process, env: dict[str, str]) -> int:
    port = env.get(process.listener[1])
    if port is not None:
        return int(port)
    default = process.default_port()
    assert default is not None, f"{process.name}: set {process.listener[1]}"
    return default


def ports_by_host() -> dict[str, int]:
    ports = dict(INFRA)
    for process in processes():
        ports[process.name] = listen_port(process, environment_of(process.name))
    return ports


PROCESSES = processes()
IDS = [p.name for p in PROCESSES]


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_every_procfile_process_runs_with_its_command(process: Process) -> None:
    svc = service(process.name)
    assert svc["command"] == ["python", "-m", process.module]
    assert svc["build"]["dockerfile"] == "deploy/Dockerfile"


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_every_process_gets_the_env_its_settings_require(process: Process) -> None:
    env = environment_of(process.name)
    missing = process.required_env - env.keys()
    assert not missing, f"{process.name} would refuse to start without {sorted(missing)}"
    settings_accept(process, env)  # and every value validates


def test_every_env_name_set_is_read_by_some_settings_class() -> None:
    known = all_known_env()
    for name in compose()["services"]:
        unknown = set((service(name).get("environment") or {}).keys()) - known
        if name in {"postgres", "rabbitmq"}:
            continue
        assert not unknown, f"{name}: nothing reads {sorted(unknown)} (a typo?)"


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_servers_bind_all_interfaces_publish_and_check_their_port(process: Process) -> None:
    env = environment_of(process.name)
    host_var, _ = process.listener
    assert env.get(host_var) == ANY_INTERFACE, f"{process.name}: {host_var} must be 0.0.0.0"
    port = listen_port(process, env)
    svc = service(process.name)
    if process.listener[0] == "OPS_HOST":
        assert port == CONTAINER_OPS_PORT
    else:
        assert f"{port}:{port}" in svc.get("ports", []), f"{process.name} publishes {port}"
    if process.product:
        probe = " ".join(svc["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in probe


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_urls_name_a_service_of_this_file_at_its_port(process: Process) -> None:
    ports = ports_by_host()
    overrides = service(process.name).get("environment") or {}
    for key, value in overrides.items():
        parts = urlsplit(str(value))
        if not parts.scheme or not parts.hostname:
            continue
        assert parts.hostname in ports, f"{process.name}: {key} names no service: {value}"
        assert parts.port == ports[parts.hostname], f"{process.name}: {key}={value}"


@pytest.mark.parametrize("process", [p for p in PROCESSES if p.product], ids=lambda p: p.name)
def test_product_processes_start_after_the_migrations(process: Process) -> None:
    needs = service(process.name)["depends_on"]
    assert needs == {"migrate": {"condition": "service_completed_successfully"}}
    migrate = service("migrate")
    assert migrate["command"] == ["python", "-m", "shared.infra.migrations"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_the_env_file_the_services_read_exists() -> None:
    assert Path(COMPOSE.parent / "sandbox.env").is_file()


@pytest.mark.parametrize("process", PROCESSES, ids=IDS)
def test_the_settings_class_checked_is_the_one_the_entrypoint_loads(process: Process) -> None:
    assert process.settings.__name__ in process.entrypoint_source()
