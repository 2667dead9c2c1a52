"""Every event name the code logs is in docs/logging.md: the logs are the ops dashboard, and a
name nobody documented is a panel nobody can build."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# log.info("name", ...) or get_logger(...).error("name", ...), the name maybe on the next line.
CALL = re.compile(
    r"(?:\blog|get_logger\([^)]*\))\.(?:debug|info|warning|error|exception|critical)"
    r"\(\s*\"([a-z0-9_]+)\""
)


def logged_names() -> dict[str, str]:
    found: dict[str, str] = {}
    for folder in ("shared", "services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in CALL.findall(path.read_text(encoding="utf-8")):
                found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_the_scan_finds_the_canonical_lines() -> None:
    names = logged_names()
    for canonical in ("webhook_received", "sync_applied", "reconcile_pass", "document_matched"):
        assert canonical in names


def test_every_logged_event_is_documented() -> None:
    catalogue = (ROOT / "docs" / "logging.md").read_text(encoding="utf-8")
    missing = {n: where for n, where in logged_names().items() if f"`{n}`" not in catalogue}
    assert not missing, f"add to docs/logging.md: {missing}"
