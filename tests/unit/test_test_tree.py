"""No module under tests/ or bench/ imports a ``test_*`` module: what tests share lives in helper
modules (tests/e2e/readers.py, builders.py, tests/integration/*_helpers.py, ...), so running,
moving or deleting one test module never changes another."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("tests", "bench")


def _package_of(path: Path) -> list[str]:
    return list(path.relative_to(ROOT).with_suffix("").parts[:-1])


def imported_modules(path: Path, tree: ast.Module) -> list[str]:
    """Every module ``path`` imports, as a dotted name (relative imports resolved)."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = _package_of(path)
            base = package[: len(package) - node.level + 1] if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            found.append(".".join(module))
            # ``from tests.e2e import test_x`` imports the module ``tests.e2e.test_x`` (and a
            # ``test_*`` function imported from anywhere would be collected, and run, twice).
            found.extend(".".join([*module, alias.name]) for alias in node.names)
    return found


def imports_of_test_modules() -> list[str]:
    offences: list[str] = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for module in imported_modules(path, tree):
                if module.rsplit(".", 1)[-1].startswith("test_"):
                    offences.append(f"{path.relative_to(ROOT)} imports {module}")
    return offences


def test_the_scan_sees_imports_in_all_their_forms() -> None:
    sample = ROOT / "tests" / "e2e" / "sample.py"
    source = (
        "import tests.e2e.test_a\n"
        "from tests.e2e.test_b import helper\n"
        "from tests.e2e import test_c\n"
        "from .test_d import helper\n"
        "from . import test_e\n"
        "from tests.e2e.readers import rl_doc\n"
    )
    found = [
        m
        for m in imported_modules(sample, ast.parse(source))
        if m.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert found == [
        "tests.e2e.test_a",
        "tests.e2e.test_b",
        "tests.e2e.test_c",
        "tests.e2e.test_d",
        "tests.e2e.test_e",
    ]


def test_no_module_imports_a_test_module() -> None:
    offences = imports_of_test_modules()
    assert not offences, "move what tests share into a helper module:\n" + "\n".join(offences)
