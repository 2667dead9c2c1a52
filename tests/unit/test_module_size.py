"""Modules stay small: one concept each, about 300 lines at most. A module that must be longer
says why at its top (a docstring paragraph starting "One module because"), so the exception is
a decision someone wrote down, not drift."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "services", "sandboxes")
LIMIT = 300
REASON = "One module because"


def _too_long() -> dict[str, int]:
    found: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            lines = text.count("\n")
            if lines <= LIMIT:
                continue
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if REASON not in docstring:
                found[str(path.relative_to(ROOT))] = lines
    return found


def test_no_module_is_over_the_limit_without_a_reason() -> None:
    offenders = _too_long()
    assert not offenders, f"split these or write why at their top ({REASON} ...): {offenders}"
