"""The product never calls a sandbox's control API.

``/_sandbox`` exists only in the stand-ins (sandboxes/); a real Re-Leased or QBO has no such route,
so product code (shared/, services/) naming it would be a path that works in tests and fails in
production. The accounting side's writes go through the public API (docs/released_sandbox.md).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("shared", "services")
CONTROL_API = "/_sandbox"


def _naming_the_control_api() -> list[str]:
    found = []
    for package in PRODUCT:
        for path in sorted((ROOT / package).rglob("*")):
            if path.suffix not in (".py", ".sql", ".html", ".js", ".toml", ".json", ".txt"):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if CONTROL_API in line:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_product_code_names_the_sandbox_control_api() -> None:
    assert _naming_the_control_api() == []


def test_the_check_would_see_a_control_api_call() -> None:
    # The scan reads the product's real files: prove it looks where the clients live.
    scanned = {p.name for p in (ROOT / "shared" / "adapters" / "released").rglob("*.py")}
    assert "client.py" in scanned
    assert CONTROL_API in (ROOT / "sandboxes" / "released" / "app.py").read_text(encoding="utf-8")
