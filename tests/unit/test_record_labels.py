"""The engine's label tap: the number or name of the event's own record, read as the handler
reads it, whichever API and whatever else the handler reads."""

from __future__ import annotations

from typing import Any

from shared.sync.labels import LabelTap, record_label


class FakeApi:
    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records
        self.writes = 0

    async def get(self, *args: str) -> dict[str, Any]:
        return self.records[args[-1]]

    async def write(self) -> int:
        self.writes += 1
        return self.writes


def test_labels_prefer_numbers_then_names() -> None:
    assert record_label({"DocNumber": "INV-1042", "DisplayName": "x"}) == "INV-1042"
    assert record_label({"name": " Harbour Cafe "}) == "Harbour Cafe"
    assert record_label({"number": 1042}) == "1042"
    assert record_label({"Id": "7"}) is None


async def test_the_tap_keeps_the_label_of_the_events_own_record_only() -> None:
    api = FakeApi(
        {
            "/contacts/c-1": {"name": "Someone else"},
            "/invoices/rl-9": {"number": "INV-1042"},
        }
    )
    tap = LabelTap(api, "rl-9")
    await tap.get("/contacts/c-1")  # a dependency read first
    first = tap.label
    await tap.get("/invoices/rl-9")
    await tap.get("/contacts/c-1")
    assert (first, tap.label) == (None, "INV-1042")
    assert await tap.write() == 1  # everything else passes through


async def test_qbo_style_reads_by_type_and_id() -> None:
    tap = LabelTap(FakeApi({"55": {"DocNumber": "1001"}}), "55")
    await tap.get("Invoice", "55")
    assert tap.label == "1001"
