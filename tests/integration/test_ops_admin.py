"""The operations on the admin API, and ``syncctl`` driving them over HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection
from typer.testing import CliRunner, Result

from services.syncctl.app import app
from shared.adapters.broker import BULK_SUFFIX, DEAD_QUEUE, QBO_TO_RELEASED, EventPublisher
from shared.delivery import parking
from shared.ops import status
from tests.conftest import TEST_TOPOLOGY
from tests.integration.admin_helpers import ADMIN_TOKEN, Admin, running_admin, standalone_settings
from tests.integration.broker_helpers import make_event, queue_depth
from tests.integration.ops_helpers import seed_letters

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(
    database_url: str, amqp_url: str, broker: AbstractRobustConnection
) -> AsyncIterator[Admin]:
    async with running_admin(
        standalone_settings(database_url, amqp_url), replay_rate_per_minute=400
    ) as running:
        yield running


async def syncctl(admin: Admin, *args: str) -> Result:
    """Run the CLI in a thread: it blocks on HTTP while this loop serves the admin API."""
    env = {"ADMIN_URL": admin.base, "ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def syncctl_json(admin: Admin, *args: str) -> Any:
    result = await syncctl(admin, "--json", *args)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


async def bound_connection(pool: asyncpg.Pool, status: str = "active") -> tuple[UUID, str]:
    realm = f"realm-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        connection_id: UUID = await conn.fetchval(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status, qbo_tokens) "
            "VALUES ($1, $2, $3, 'sealed'::bytea) RETURNING id",
            f"co-{realm}",
            realm,
            status,
        )
    return connection_id, realm


async def test_status_shows_what_needs_a_person(admin: Admin, pool: asyncpg.Pool) -> None:
    connection_id = await seed_letters(pool, [{}, {}])
    async with pool.acquire() as conn:
        realm = f"realm-{uuid.uuid4().hex[:8]}"
        await conn.execute(
            "UPDATE connections SET qbo_realm_id = $2, status = 'paused' WHERE id = $1",
            connection_id,
            realm,
        )
        await parking.park(
            conn,
            make_event(401, account_id=realm),
            queue=QBO_TO_RELEASED,
            routing_key="qbo.invoice.update",
            reason="paused",
        )
        await conn.execute(
            "INSERT INTO conflicts (connection_id, entity, kind) VALUES ($1, 'contact', 'x')",
            connection_id,
        )
    status, body = await admin.api("GET", "/api/status")
    assert status == 200
    mine = next(c for c in body["connections"] if c["id"] == str(connection_id))
    assert (mine["dead_letters"], mine["parked"], mine["open_conflicts"]) == (2, 1, 1)
    assert mine["status"] == "paused"
    assert mine["lag_s"] == 0.0
    assert body["queues"][QBO_TO_RELEASED] == 0
    assert "sync.dead" in body["queues"]
    through_cli = await syncctl_json(admin, "status")
    assert str(connection_id) in {c["id"] for c in through_cli["connections"]}
    table = await syncctl(admin, "status")
    assert table.exit_code == 0
    assert "Queues" in table.stdout


async def test_dlq_list_show_dry_run_replay_and_purge(
    admin: Admin, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    connection_id = await seed_letters(
        pool, [{"entity": "invoice"}, {"entity": "invoice"}, {"entity": "bill"}]
    )
    cid = str(connection_id)
    status, listed = await admin.api("GET", f"/api/dlq?connection_id={cid}")
    assert (status, listed["count"]) == (200, 3)
    status, shown = await admin.api("GET", f"/api/dlq/{listed['items'][0]['id']}")
    assert status == 200
    assert shown["history"][0]["outcome"] == "dead"

    status, plan = await admin.api(
        "POST", "/api/dlq/replay", json={"connection_id": cid, "entity": "invoice", "dry_run": True}
    )
    assert (status, plan["matched"], len(plan["ids"])) == (200, 2, 2)
    dry = await syncctl(admin, "dlq", "replay", "--connection", cid, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "3 dead letter(s) would be replayed" in dry.stdout
    assert await queue_depth(broker, QBO_TO_RELEASED) == 0, "a dry run publishes nothing"
    _, still = await admin.api("GET", f"/api/dlq?connection_id={cid}")
    assert still["count"] == 3, "a dry run changes nothing"

    done = await syncctl_json(
        admin, "dlq", "replay", "--connection", cid, "--entity", "invoice", "--batch", "1"
    )
    assert (done["matched"], len(done["replayed"]), done["skipped"]) == (2, 2, {})
    # Replays of many go in the bulk lane: live changes never wait behind them.
    assert await queue_depth(broker, QBO_TO_RELEASED + BULK_SUFFIX) == 2
    assert await queue_depth(broker, QBO_TO_RELEASED) == 0
    _, left = await admin.api("GET", f"/api/dlq?connection_id={cid}")
    assert [i["entity"] for i in left["items"]] == ["bill"]

    refused = await syncctl(admin, "dlq", "purge")
    assert refused.exit_code != 0, "purging everything needs an explicit filter"
    purged = await syncctl_json(admin, "dlq", "purge", "--connection", cid, "--entity", "bill")
    assert purged["purged"] == 1
    _, empty = await admin.api("GET", f"/api/dlq?connection_id={cid}")
    assert empty["count"] == 0
    _, replayed = await admin.api("GET", f"/api/dlq?connection_id={cid}&status=replayed")
    assert replayed["count"] == 2


async def test_single_replay_and_errors(admin: Admin, pool: asyncpg.Pool) -> None:
    connection_id = await seed_letters(pool, [{}])
    _, listed = await admin.api("GET", f"/api/dlq?connection_id={connection_id}")
    letter_id = listed["items"][0]["id"]
    status, body = await admin.api("POST", f"/api/dlq/{letter_id}/replay")
    assert status == 200
    assert body["replay_id"].startswith("replay-")
    assert (await admin.api("GET", "/api/dlq/999999999"))[0] == 404
    assert (await admin.api("GET", "/api/dlq?since=yesterday"))[0] == 400
    assert (await admin.api("GET", "/api/dlq", token="wrong"))[0] == 401


async def test_resume_republishes_parked_events(
    admin: Admin, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    connection_id, realm = await bound_connection(pool, status="paused")
    async with pool.acquire() as conn:
        for n in range(3):
            await parking.park(
                conn,
                make_event(410 + n, account_id=realm),
                queue=QBO_TO_RELEASED,
                routing_key="qbo.invoice.update",
                reason="paused",
            )
    _, parked = await admin.api("GET", f"/api/connections/{connection_id}/parked")
    assert len(parked["items"]) == 3
    answer = await syncctl_json(admin, "connections", "resume", str(connection_id))
    assert (answer["status"], answer["released"]) == ("active", 3)
    assert await queue_depth(broker, QBO_TO_RELEASED) == 3
    _, parked = await admin.api("GET", f"/api/connections/{connection_id}/parked")
    assert parked["items"] == []
    paused = await syncctl_json(admin, "connections", "pause", str(connection_id))
    assert paused["status"] == "paused"
    listed = await syncctl_json(admin, "connections", "list")
    assert str(connection_id) in {c["id"] for c in listed}


async def test_conflicts_and_links(admin: Admin, pool: asyncpg.Pool) -> None:
    connection_id, _ = await bound_connection(pool)
    async with pool.acquire() as conn:
        conflict_id = await conn.fetchval(
            "INSERT INTO conflicts (connection_id, entity, kind, detail) "
            "VALUES ($1, 'contact', 'field_conflict', 'email differs') RETURNING id",
            connection_id,
        )
        link_id = await conn.fetchval(
            "INSERT INTO links (connection_id, entity, qbo_type, qbo_id, released_id, "
            "qbo_version, released_version) VALUES ($1, 'contact', 'Customer', '58', 'c-9', "
            "'3', 'v7') RETURNING id",
            connection_id,
        )
    cid = str(connection_id)
    listed = await syncctl_json(admin, "conflicts", "list", "--connection", cid)
    assert [c["id"] for c in listed["items"]] == [conflict_id]
    resolved = await syncctl_json(admin, "conflicts", "resolve", str(conflict_id), "--by", "ana")
    assert resolved["resolved_by"] == "ana"
    assert (await syncctl_json(admin, "conflicts", "list", "--connection", cid))["items"] == []
    again = await admin.api("POST", f"/api/conflicts/{conflict_id}/resolve")
    assert again[0] == 404

    shown = await syncctl_json(admin, "links", "show", cid, "--record", "c-9")
    assert [link["id"] for link in shown["items"]] == [link_id]
    unlinked = await syncctl_json(admin, "links", "unlink", str(link_id))
    assert unlinked["status"] == "unlinked"
    relinked = await syncctl_json(admin, "links", "relink", str(link_id), "--qbo-id", "61")
    assert (relinked["status"], relinked["qbo_id"], relinked["qbo_version"]) == (
        "linked",
        "61",
        None,
    )
    assert relinked["released_version"] == "v7", "the unchanged side keeps its version"
    table = await syncctl(admin, "links", "show", cid)
    assert table.exit_code == 0
    assert "Customer" in table.stdout


async def test_lag_is_the_age_of_the_oldest_unhandled_event(pool: asyncpg.Pool) -> None:
    connection_id, realm = await bound_connection(pool)
    async with pool.acquire() as conn:
        for n, age_s, handled in ((1, 40, True), (2, 30, False), (3, 5, False)):
            event_id = f"lag-{uuid.uuid4().hex[:8]}-{n}"
            event = make_event(n, event_id=event_id, account_id=realm, entity="customer")
            # Status 'published': a pending row would be picked up by receivers' relays.
            await conn.execute(
                "INSERT INTO inbox (event_id, source, connection_id, account_id, entity, "
                "entity_id, operation, routing_key, event, status, received_at) VALUES ($1, "
                "'qbo', $2, $3, 'customer', $4, 'update', 'qbo.customer.update', $5, "
                "'published', now() - make_interval(secs => $6))",
                event_id,
                connection_id,
                realm,
                str(n),
                event.model_dump(mode="json"),
                float(age_s),
            )
            if handled:
                await conn.execute(
                    "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, "
                    "source_id, outcome) VALUES ($1, $2, 'qbo_to_released', 'customer', $3, "
                    "'applied')",
                    connection_id,
                    event_id,
                    str(n),
                )
        rows = await status.connections_status(conn)
    mine = next(r for r in rows if r["id"] == str(connection_id))
    assert 29.0 <= mine["lag_s"] < 40.0, "the handled 40 s old event does not count"
    assert mine["last_webhook_at"] is not None


async def test_a_message_that_kept_crashing_its_consumer_becomes_a_dead_letter(
    admin: Admin, pool: asyncpg.Pool, broker: AbstractRobustConnection, amqp_url: str
) -> None:
    """The delivery limit dead-letters it with no consumer ever recording a row: absorb does."""
    publisher = await EventPublisher.open(broker)
    event = make_event(420)
    await publisher.publish(event)
    await publisher.close()
    for _ in range(TEST_TOPOLOGY.delivery_limit + 2):
        connection = await aio_pika.connect(amqp_url)
        channel = await connection.channel()
        queue = await channel.get_queue(QBO_TO_RELEASED)
        await queue.get(fail=False)
        await connection.close()  # dies holding it, as a kill -9 would
        await asyncio.sleep(0.05)
    deadline = asyncio.get_running_loop().time() + 10
    while await queue_depth(broker, DEAD_QUEUE) == 0:
        assert asyncio.get_running_loop().time() < deadline, "never dead-lettered"
        await asyncio.sleep(0.1)
    answer = await syncctl_json(admin, "dlq", "absorb")
    assert answer["created"] == 1
    assert await queue_depth(broker, DEAD_QUEUE) == 0
    _, listed = await admin.api("GET", "/api/dlq?error_class=DeliveryLimitExceeded&limit=1000")
    (row,) = [i for i in listed["items"] if i["event_id"] == event.event_id]
    assert row["queue"] == QBO_TO_RELEASED
    status_code, replay = await admin.api("POST", f"/api/dlq/{row['id']}/replay")
    assert status_code == 200, replay
    assert (await syncctl_json(admin, "dlq", "absorb"))["created"] == 0
