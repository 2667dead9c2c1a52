"""Sync results on the admin API and in ``syncctl``: filters, search, paging, one record in full,
resync; on real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection
from typer.testing import CliRunner

from services.syncctl.app import app
from shared.adapters.broker import RELEASED_TO_QBO
from tests.integration.admin_helpers import ADMIN_TOKEN, Admin, running_admin, standalone_settings
from tests.integration.broker_helpers import get_one
from tests.integration.results_helpers import REMEDY, Seeded, seed_results

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(
    database_url: str, amqp_url: str, broker: AbstractRobustConnection
) -> AsyncIterator[Admin]:
    async with running_admin(standalone_settings(database_url, amqp_url)) as running:
        yield running


@pytest.fixture
async def seeded(pool: asyncpg.Pool) -> Seeded:
    return await seed_results(pool)


async def results(admin: Admin, seeded: Seeded, **query: Any) -> tuple[int, Any]:
    return await admin.api("GET", f"/api/connections/{seeded.connection_id}/results", params=query)


def ids(body: Any) -> list[str]:
    return [item["source_id"] for item in body["items"]]


async def test_every_record_once_with_its_latest_outcome_newest_first(
    admin: Admin, seeded: Seeded
) -> None:
    status, body = await results(admin, seeded)
    assert status == 200, body
    assert body["count"] == 3
    assert ids(body) == ["rl-inv-1042", "7", "55"]
    failed = body["items"][0]
    assert failed["outcome"] == "error"
    assert failed["remedy"] == REMEDY
    assert failed["error_class"] == "ValidationRefused"
    assert failed["dead_letter_id"] == seeded.dead_letter
    assert failed["label"] == "INV-1042"
    assert (failed["qbo_id"], failed["released_id"]) == ("101", "rl-inv-1042")
    assert failed["qbo_url"].endswith("/invoice?txnId=101")
    assert failed["released_url"].endswith("/invoices/rl-inv-1042")
    assert body["items"][1]["label"] == "Harbour Cafe"
    assert body["items"][2]["link_id"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "inv-1042"}, ["rl-inv-1042"]),  # the number, any case
        ({"q": "harbour"}, ["7"]),  # the name
        ({"q": "rl-c-7"}, ["7"]),  # the other side's id
        ({"q": "101"}, ["rl-inv-1042"]),  # the QBO id of a Re-Leased record
        ({"q": "%"}, []),  # a wildcard is a character, not a pattern
        ({"outcome": "error"}, ["rl-inv-1042"]),
        ({"error_class": "ValidationRefused"}, ["rl-inv-1042"]),
        ({"entity": "customer"}, ["7"]),
        ({"direction": "qbo_to_released"}, ["7", "55"]),
        ({"limit": "1", "offset": "1"}, ["7"]),
    ],
)
async def test_filters_search_and_paging(
    admin: Admin, seeded: Seeded, query: dict[str, str], expected: list[str]
) -> None:
    status, body = await results(admin, seeded, **query)
    assert status == 200, body
    assert ids(body) == expected


async def test_time_range(admin: Admin, seeded: Seeded, pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        since = await conn.fetchval("SELECT (now() - interval '45 minutes')")
        until = await conn.fetchval("SELECT (now() - interval '10 minutes')")
    _, body = await results(admin, seeded, since=since.isoformat())
    assert ids(body) == ["rl-inv-1042", "7"]
    _, body = await results(admin, seeded, since=since.isoformat(), until=until.isoformat())
    assert ids(body) == ["7"]


@pytest.mark.parametrize(
    "query",
    [
        {"outcome": "exploded"},
        {"since": "yesterday"},
        {"limit": "ten"},
        {"q": "x" * 201},
        {"offset": str(2**63)},
        {"limit": "-1"},
    ],
)
async def test_bad_filters_are_400_with_a_reason(
    admin: Admin, seeded: Seeded, query: dict[str, str]
) -> None:
    status, body = await results(admin, seeded, **query)
    assert status == 400
    assert body["error"] == "invalid_request"
    assert body["reason"]


async def test_record_detail_has_both_ids_history_and_snapshot(
    admin: Admin, seeded: Seeded
) -> None:
    path = f"/api/connections/{seeded.connection_id}/results/released_to_qbo/invoice/rl-inv-1042"
    status, body = await admin.api("GET", path)
    assert status == 200, body
    assert body["snapshot"] == {"number": "INV-1042", "total": "250.00"}
    assert [h["outcome"] for h in body["history"]] == ["error", "applied"]
    assert body["history"][0]["remedy"] == REMEDY
    assert body["link_id"] == seeded.invoice_link
    missing = path.replace("rl-inv-1042", "nope")
    assert (await admin.api("GET", missing))[0] == 404
    assert (await admin.api("GET", path.replace("released_to_qbo", "sideways")))[0] == 404
    assert (await admin.api("GET", "/api/connections/not-a-uuid/results"))[0] == 404


async def test_resync_publishes_a_fresh_event_for_the_record(
    admin: Admin, seeded: Seeded, broker: AbstractRobustConnection
) -> None:
    path = f"/api/connections/{seeded.connection_id}/results/released_to_qbo/invoice/rl-inv-1042"
    status, body = await admin.api("POST", path + "/resync")
    assert status == 202, body
    message = await get_one(broker, RELEASED_TO_QBO)
    event = json.loads(message.body)
    assert event["event_id"] == body["event_id"]
    assert (event["source"], event["entity"], event["entity_id"]) == (
        "released",
        "invoice",
        "rl-inv-1042",
    )
    assert event["account_id"] == seeded.company
    assert event["origin"] == "replay"


async def test_syncctl_finds_a_record_by_number_and_shows_its_remedy(
    admin: Admin, seeded: Seeded
) -> None:
    env = {"ADMIN_URL": admin.base, "ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "250"}
    runner = CliRunner()
    found = await asyncio.to_thread(
        runner.invoke,
        app,
        ["--json", "results", "list", str(seeded.connection_id), "-q", "INV-1042"],
        env=env,
    )
    assert found.exit_code == 0, found.output
    assert [i["remedy"] for i in json.loads(found.stdout)["items"]] == [REMEDY]
    shown = await asyncio.to_thread(
        runner.invoke,
        app,
        ["results", "show", str(seeded.connection_id), "released_to_qbo", "invoice", "rl-inv-1042"],
        env=env,
    )
    assert shown.exit_code == 0, shown.output
    assert "tax rate QuickBooks knows" in shown.stdout
    assert "ValidationRefused" in shown.stdout
    bad = await asyncio.to_thread(
        runner.invoke,
        app,
        ["results", "list", str(seeded.connection_id), "--outcome", "exploded"],
        env=env,
    )
    assert bad.exit_code == 1


async def test_history_keeps_apart_qbo_records_of_other_types_with_the_same_id(
    admin: Admin, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
            "outcome) VALUES ($1, 'evt-invoice-7', 'qbo_to_released', 'invoice', '7', 'ignored')",
            seeded.connection_id,
        )
    path = f"/api/connections/{seeded.connection_id}/results/qbo_to_released/customer/7"
    status, body = await admin.api("GET", path)
    assert status == 200, body
    assert [(h["entity"], h["outcome"]) for h in body["history"]] == [("customer", "applied")]
