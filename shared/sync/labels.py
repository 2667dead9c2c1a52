"""What a person calls a record: its number (documents) or its name (contacts, accounts, ...).

The engine wraps the source side's API in a ``LabelTap`` for each event: when a handler reads the
event's own record, the tap keeps its label, and the engine writes it with the outcome (applied or
failed alike), so sync results can be searched by number even for a record that never linked.
"""

from __future__ import annotations

from typing import Any

LABEL_KEYS = ("DocNumber", "number", "DisplayName", "name", "Name", "FullyQualifiedName")


def record_label(record: dict[str, Any]) -> str | None:
    for key in LABEL_KEYS:
        value = record.get(key)
        if isinstance(value, str | int) and str(value).strip():
            return str(value).strip()[:200]
    return None


class LabelTap:
    """Passes every call through to ``api``; remembers the label of the first read of the
    record whose id is ``entity_id`` (``get(type, id)`` on QBO, ``get(".../id")`` on Re-Leased)."""

    def __init__(self, api: Any, entity_id: str) -> None:
        self._api = api
        self._entity_id = entity_id
        self.label: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    async def get(self, *args: Any, **kw: Any) -> Any:
        found = await self._api.get(*args, **kw)
        if self.label is None and args and isinstance(found, dict):
            last = str(args[-1]).rstrip("/")
            if last == self._entity_id or last.endswith("/" + self._entity_id):
                self.label = record_label(found)
        return found
