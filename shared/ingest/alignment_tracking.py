"""Connecting a company: its tracking categories meet QBO's classes.

QBO models tracking as classes (``Class``: a name, a parent, ``FullyQualifiedName``
"Parent:Child"); the QBO sandbox keeps no departments or locations (``TrackDepartments`` off), so a
class is the only counterpart a Re-Leased tracking option can have. A property manager's classes
are usually the properties, which Re-Leased keeps as options of its property-matching category,
so every category is looked at, option by option:

- an option is *mapped* to a class when its name is the class's full path, or
  "<category>:<option>" is (the category is the parent class), or it is the short name of exactly
  one class (case and spacing aside); each class is taken once;
- a category with a mapped option stays (its mapped options are linked to their classes now, so
  the engine adopts them when QBO's classes arrive instead of adding twins to "QBO Classes");
  its other active options are archived;
- the engine's own "QBO Classes" category is mapped as a whole (the engine adopts its options by
  name), and a category with no option QBO has is archived, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shared.domain.canonical import normalise_name

Record = dict[str, Any]
QBO_CLASSES = "QBO Classes"  # the category the engine keeps QBO classes in (shared.sync)


def _class_keys(classes: Iterable[Record]) -> tuple[dict[str, Record], dict[str, Record]]:
    """(full path -> class, short name -> class where only one class has that short name)."""
    full: dict[str, Record] = {}
    short: dict[str, list[Record]] = {}
    for record in classes:
        if not record.get("Active", True):
            continue
        name = str(record.get("Name", ""))
        full.setdefault(normalise_name(str(record.get("FullyQualifiedName") or name)), record)
        short.setdefault(normalise_name(name), []).append(record)
    return full, {key: found[0] for key, found in short.items() if len(found) == 1}


def match_options(
    category: Record, classes: Iterable[Record], taken: set[str]
) -> dict[str, Record]:
    """Option id -> the QBO class it stands for (classes in ``taken`` are skipped; the ones
    matched here are added to it)."""
    full, short = _class_keys(classes)
    parent = normalise_name(str(category.get("name", "")))
    matched: dict[str, Record] = {}
    for option in category.get("options") or []:
        if option.get("status") == "ARCHIVED":
            continue
        name = normalise_name(str(option.get("name", "")))
        for found in (full.get(name), full.get(f"{parent}:{name}"), short.get(name)):
            if found is not None and str(found["Id"]) not in taken:
                taken.add(str(found["Id"]))
                matched[str(option["id"])] = found
                break
    return matched


def is_engine_category(category: Record) -> bool:
    return normalise_name(str(category.get("name", ""))) == normalise_name(QBO_CLASSES)
