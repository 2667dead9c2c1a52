"""What the deployment files must agree with, read from the code itself: the processes of
deploy/Procfile, the settings class each one loads, the environment names those classes read,
which of them have no default, and the port each process listens on.

The compose and Kubernetes tests compare their files with these facts, so a new process, a new
required secret or a moved port fails a test instead of a deployment.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from sandboxes.qbo.settings import SandboxSettings as QboSandboxSettings
from sandboxes.released.settings import SandboxSettings as ReleasedSandboxSettings
from shared.admin.settings import AdminServiceSettings
from shared.bootstrap.launcher import read_procfile
from shared.infra.settings import (
    EngineSettings,
    InfraSettings,
    QboWebhookSettings,
    ReconcilerSettings,
    ReleasedWebhookSettings,
)

ROOT = Path(__file__).resolve().parents[2]
PROCFILE = ROOT / "deploy" / "Procfile"

# The settings class each process loads (checked against its entrypoint's source below).
SETTINGS_OF: dict[str, type[BaseSettings]] = {
    "qbo_sandbox": QboSandboxSettings,
    "released_sandbox": ReleasedSandboxSettings,
    "qbo_webhooks": QboWebhookSettings,
    "released_webhooks": ReleasedWebhookSettings,
    "qbo_to_released": EngineSettings,
    "released_to_qbo": EngineSettings,
    "reconciler": ReconcilerSettings,
    "admin": AdminServiceSettings,
}
STAND_INS = frozenset({"qbo_sandbox", "released_sandbox"})
HEALTH_PATHS = ("/healthz", "/readyz", "/metrics")
# In containers every ops server listens here (the contract with the health endpoints).
CONTAINER_OPS_PORT = 9000


@dataclass(frozen=True)
class Process:
    name: str
    module: str
    settings: type[BaseSettings]

    @property
    def product(self) -> bool:
        return self.name not in STAND_INS

    @property
    def required_env(self) -> set[str]:
        """Names the process refuses to start without (fields with no default)."""
        return {n.upper() for n, f in self.settings.model_fields.items() if f.is_required()}

    @property
    def known_env(self) -> set[str]:
        return {n.upper() for n in self.settings.model_fields}

    @property
    def listener(self) -> tuple[str, str]:
        """(HOST variable, PORT variable) of the server that answers /healthz: the class's own
        ``*_port`` field, or the ops server's for a process without an HTTP port."""
        own = [n for n in self.settings.model_fields if n.endswith("_port") and n != "ops_port"]
        if own:
            assert len(own) == 1, f"{self.name}: which port is it? {own}"
            port = own[0]
            return port.removesuffix("_port").upper() + "_HOST", port.upper()
        assert issubclass(self.settings, InfraSettings), self.name
        return "OPS_HOST", "OPS_PORT"

    def default_port(self) -> int | None:
        default = self.settings.model_fields[self.listener[1].lower()].default
        return default if isinstance(default, int) else None

    def entrypoint_source(self) -> str:
        """The ``__main__`` of the process, or the composition-root function it calls."""
        main = ROOT / Path(*self.module.split(".")) / "__main__.py"
        text = main.read_text(encoding="utf-8")
        found = re.search(r"^from (shared\.bootstrap\.\w+) import (\w+)", text, re.M)
        if not found:
            return text
        source = (ROOT / Path(*found.group(1).split("."))).with_suffix(".py")
        root = source.read_text(encoding="utf-8")
        for node in ast.parse(root).body:
            if isinstance(node, ast.FunctionDef) and node.name == found.group(2):
                return ast.get_source_segment(root, node) or ""
        raise AssertionError(f"{self.module}: {found.group(2)} not found in {source}")


def processes() -> list[Process]:
    found = []
    for spec in read_procfile(PROCFILE):
        assert spec.argv[1:2] == ["-m"], spec
        assert len(spec.argv) == 3, spec
        assert spec.name in SETTINGS_OF, f"{spec.name}: add its settings class to SETTINGS_OF"
        found.append(Process(spec.name, spec.argv[2], SETTINGS_OF[spec.name]))
    return found


def all_known_env() -> set[str]:
    names: set[str] = set()
    for cls in SETTINGS_OF.values():
        names |= {n.upper() for n in cls.model_fields}
    return names


def settings_accept(process: Process, env: dict[str, str]) -> BaseSettings:
    """Build the process's settings from ``env`` alone (values passed in, so nothing from this
    machine's environment fills a gap); raises if a value does not validate."""
    known: dict[str, Any] = {k.lower(): v for k, v in env.items() if k.upper() in process.known_env}
    return process.settings(**known)
