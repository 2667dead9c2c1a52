"""The reconciler's daily sweep schedule and how it reads QBO objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.ingest.reconciler import qbo_change
from shared.ingest.schedule import sweep_due

NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_sweep_runs_once_a_day_after_its_time() -> None:
    assert not sweep_due(NOON.replace(hour=3, minute=29), "03:30", None)
    assert sweep_due(NOON.replace(hour=3, minute=30), "03:30", None)
    assert sweep_due(NOON, "03:30", "2026-11-25")
    assert not sweep_due(NOON, "03:30", "2026-11-26"), "already swept today"


def test_qbo_change_reads_operation_and_version() -> None:
    created: dict[str, Any] = {
        "Id": "7",
        "SyncToken": "0",
        "MetaData": {
            "CreateTime": "2026-11-26T01:00:00-07:00",
            "LastUpdatedTime": "2026-11-26T01:00:00-07:00",
        },
    }
    updated = {
        **created,
        "SyncToken": "3",
        "MetaData": {**created["MetaData"], "LastUpdatedTime": "2026-11-26T02:00:00-07:00"},
    }
    deleted = {
        "Id": "8",
        "status": "Deleted",
        "MetaData": {"LastUpdatedTime": "2026-11-26T02:00:00-07:00"},
    }
    assert qbo_change("r", "Customer", created, NOON).operation == "create"
    event = qbo_change("r", "Customer", updated, NOON)
    assert (event.operation, event.version, event.origin) == ("update", "3", "reconciler")
    assert qbo_change("r", "Invoice", deleted, NOON).operation == "delete"
    # The same object at the same version always gets the same id: passes never republish it.
    assert qbo_change("r", "Customer", updated, NOON).event_id == event.event_id
