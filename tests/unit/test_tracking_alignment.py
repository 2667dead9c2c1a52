"""Which of a company's tracking options stand for a QBO class when it connects."""

from __future__ import annotations

from typing import Any

from shared.ingest.alignment_tracking import is_engine_category, match_options


def qbo_class(ident: str, name: str, parent: str | None = None, active: bool = True) -> Any:
    full = f"{parent}:{name}" if parent else name
    return {"Id": ident, "Name": name, "FullyQualifiedName": full, "Active": active}


def category(name: str, *options: str) -> dict[str, Any]:
    return {
        "id": "cat",
        "name": name,
        "options": [{"id": f"o{i}", "name": n, "status": "ACTIVE"} for i, n in enumerate(options)],
    }


def test_options_match_by_full_path_parent_category_or_unique_short_name() -> None:
    classes = [
        qbo_class("1", "12 Quay St"),
        qbo_class("2", "40 Wharf Rd", parent="Property"),
        qbo_class("3", "Unit 4", parent="7 Dock Lane"),
        qbo_class("4", "Retired", active=False),
    ]
    found = match_options(
        category("Property", "12  quay st", "40 Wharf Rd", "Unit 4", "Retired", "Elsewhere"),
        classes,
        set(),
    )
    assert {option: c["Id"] for option, c in found.items()} == {"o0": "1", "o1": "2", "o2": "3"}


def test_a_short_name_two_classes_share_matches_neither_and_a_class_is_taken_once() -> None:
    classes = [qbo_class("1", "Unit 1", parent="A"), qbo_class("2", "Unit 1", parent="B")]
    assert match_options(category("Units", "Unit 1"), classes, set()) == {}
    taken: set[str] = set()
    one = [qbo_class("9", "North")]
    assert list(match_options(category("Region", "North"), one, taken)) == ["o0"]
    assert match_options(category("Area", "North"), one, taken) == {}, "already taken"


def test_archived_options_are_not_matched_and_the_engine_category_is_known() -> None:
    archived = category("Property", "12 Quay St")
    archived["options"][0]["status"] = "ARCHIVED"
    assert match_options(archived, [qbo_class("1", "12 Quay St")], set()) == {}
    assert is_engine_category({"name": "qbo  classes"})
    assert not is_engine_category({"name": "Property"})
