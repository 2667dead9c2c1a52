"""The lock files cover every dependency pyproject.toml declares, with hashes, and every install
path (make install, CI through it, the image) installs from them. A dependency added to
pyproject.toml without `make lock` fails here, not in a build a month later."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DEV_LOCK = ROOT / "requirements" / "dev.lock"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
BUILD_IN = ROOT / "requirements" / "build.in"

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def locked(path: Path) -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes) for every pin in a uv/pip-tools lock file."""
    pins: dict[str, tuple[Version, int]] = {}
    current: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in pins, f"{path.name}: {current} pinned twice"
            pins[current] = (Version(match.group(2)), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return pins


def declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    dev = [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    build = [
        Requirement(line.strip())
        for line in BUILD_IN.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return runtime + build, dev


def _problems(requirements: list[Requirement], pins: dict[str, tuple[Version, int]]) -> list[str]:
    problems = []
    for req in requirements:
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name} is not locked")
            continue
        version, hashes = pins[name]
        if version not in req.specifier:
            problems.append(f"{req.name}=={version} is outside {req.specifier}")
        if hashes == 0:
            problems.append(f"{req.name} has no hash")
    return problems


def test_the_dev_lock_pins_every_declared_dependency_in_range_with_hashes() -> None:
    runtime, dev = declared()
    pins = locked(DEV_LOCK)
    assert not _problems(runtime + dev, pins), "run `make lock`"
    assert all(hashes > 0 for _, hashes in pins.values()), "every pin carries its hashes"


def test_the_runtime_lock_pins_the_runtime_at_the_dev_lock_versions() -> None:
    runtime, _ = declared()
    runtime_pins, dev_pins = locked(RUNTIME_LOCK), locked(DEV_LOCK)
    assert not _problems(runtime, runtime_pins), "run `make lock`"
    differing = {
        name: (str(v), str(dev_pins[name][0]))
        for name, (v, _) in runtime_pins.items()
        if name in dev_pins and dev_pins[name][0] != v
    }
    assert not differing, "the image and the dev venv would run different versions"


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("Makefile", "pip install --quiet --require-hashes -r $(LOCK_DEV)"),
        ("Makefile", "pip install --quiet --no-deps --no-build-isolation -e ."),
        ("deploy/Dockerfile", "pip install --require-hashes -r requirements/runtime.lock"),
        ("deploy/Dockerfile", "pip install --no-deps --no-build-isolation ."),
        (".ci/run", "make install"),
    ],
)
def test_every_install_path_installs_from_the_lock(path: str, needle: str) -> None:
    assert needle in (ROOT / path).read_text(encoding="utf-8")


def test_the_lock_parser_reads_pins_markers_and_hashes(tmp_path: Path) -> None:
    sample = tmp_path / "x.lock"
    sample.write_text(
        "# header\n"
        "uvloop==0.23.0 ; sys_platform != 'win32' \\\n"
        "    --hash=sha256:aa \\\n"
        "    --hash=sha256:bb\n"
        "    # via uvicorn\n"
        "Typing_Extensions==4.15.0 \\\n"
        "    --hash=sha256:cc\n",
        encoding="utf-8",
    )
    assert locked(sample) == {
        "uvloop": (Version("0.23.0"), 2),
        "typing-extensions": (Version("4.15.0"), 1),
    }
