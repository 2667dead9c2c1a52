"""The console over HTTP (no browser): the session gate, sign-in, CSRF, every page renders,
errors are messages. The browser tests (tests/browser) drive the same pages in Chromium."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import markupsafe
import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.broker import QBO_TO_RELEASED, RELEASED_TO_QBO
from tests.integration.admin_helpers import Admin, running_admin, standalone_settings
from tests.integration.broker_helpers import get_one
from tests.integration.console_helpers import ConsoleClient
from tests.integration.results_helpers import REMEDY, Seeded, seed_results
from tests.support.proxy import TcpProxy
from tests.support.scrape import through

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(
    database_url: str, amqp_url: str, broker: AbstractRobustConnection
) -> AsyncIterator[Admin]:
    async with running_admin(standalone_settings(database_url, amqp_url)) as running:
        yield running


@pytest.fixture
async def client(admin: Admin) -> AsyncIterator[ConsoleClient]:
    console = ConsoleClient(admin.base)
    yield console
    await console.close()


@pytest.fixture
async def seeded(pool: asyncpg.Pool) -> Seeded:
    return await seed_results(pool)


async def status_of(pool: asyncpg.Pool, seeded: Seeded) -> str:
    async with pool.acquire() as conn:
        found: str = await conn.fetchval(
            "SELECT status FROM connections WHERE id = $1", seeded.connection_id
        )
        return found


async def test_nothing_without_a_session(
    client: ConsoleClient, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    status, _, response = await client.get("/console/connections")
    assert status == 303
    assert response.headers["Location"] == "/console/login?next=%2Fconsole%2Fconnections"
    status, html, _ = await client.post(
        f"/console/connections/{seeded.connection_id}/pause", {"csrf": "anything"}
    )
    assert status == 403
    assert "Sign in first" in html
    assert await status_of(pool, seeded) == "active"
    # A forged cookie is no session either.
    client.http.cookie_jar.update_cookies({"console_session": "s:9999999999:x.forged"})
    assert (await client.get("/console/dead-letters"))[0] == 303


async def test_sign_in_sets_a_strict_http_only_cookie(client: ConsoleClient) -> None:
    status, response = await client.sign_in("not-the-token")
    assert status == 401
    status, response = await client.sign_in()
    assert status == 303
    cookie = response.headers["Set-Cookie"]
    assert "console_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    status, html, page = await client.get("/console/connections")
    assert status == 200
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<svg" in html


async def test_sign_in_form_needs_its_own_csrf(client: ConsoleClient) -> None:
    status, html, _ = await client.post(
        "/console/login", {"csrf": "guess", "token": "test-admin-token"}
    )
    assert status == 403
    assert "CSRF" in html


async def test_actions_need_the_sessions_csrf_token(
    client: ConsoleClient, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    await client.sign_in()
    path = f"/console/connections/{seeded.connection_id}/pause"
    for forged in ({}, {"csrf": "not-the-token"}):
        status, html, _ = await client.post(path, forged)
        assert status == 403
        assert "CSRF" in html
    assert await status_of(pool, seeded) == "active"
    status, _, response = await client.post(path, {"csrf": await client.csrf()})
    assert status == 303
    assert "Paused" in response.headers["Location"] or "msg=" in response.headers["Location"]
    assert await status_of(pool, seeded) == "paused"


async def test_every_page_renders_and_finds_the_record_by_number(
    client: ConsoleClient, seeded: Seeded
) -> None:
    await client.sign_in()
    base = f"/console/connections/{seeded.connection_id}/results"
    status, html, _ = await client.get(base, params={"q": "INV-1042"})
    assert status == 200
    assert "INV-1042" in html
    assert "Harbour Cafe" not in html
    status, html, _ = await client.get(f"{base}/released_to_qbo/invoice/rl-inv-1042")
    assert status == 200
    assert str(markupsafe.escape(REMEDY)) in html
    assert f"Replay dead letter #{seeded.dead_letter}" in html
    for path in (
        "/console/dead-letters",
        f"/console/dead-letters/{seeded.dead_letter}",
        "/console/conflicts",
    ):
        status, html, _ = await client.get(path)
        assert status == 200, path
    status, html, _ = await client.get(base, params={"since": "yesterday"})
    assert status == 400
    assert "not an ISO-8601 time" in html
    assert (await client.get(f"{base}/sideways/invoice/x"))[0] == 404
    assert (await client.get("/console/dead-letters/999999"))[0] == 404


async def test_bulk_replay_shows_the_count_before_it_replays(
    client: ConsoleClient, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    await client.sign_in()
    form = {"csrf": await client.csrf(), "connection_id": str(seeded.connection_id)}
    status, html, _ = await client.post("/console/dead-letters/replay", form)
    assert status == 200
    assert "1 dead letter match" in html
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT status FROM dead_letters WHERE id = $1", seeded.dead_letter)
            == "dead"
        )
    status, _, response = await client.post(
        "/console/dead-letters/replay", {**form, "confirm": "yes"}
    )
    assert status == 303
    assert "Replayed+1" in response.headers["Location"]
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT status FROM dead_letters WHERE id = $1", seeded.dead_letter)
            == "replayed"
        )


async def test_connections_show_catch_up_progress_with_an_eta(
    client: ConsoleClient, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        for n in range(3):
            event_id = f"import-{seeded.connection_id}-{n}"
            await conn.execute(
                "INSERT INTO inbox (event_id, source, account_id, connection_id, entity, "
                "entity_id, operation, origin, routing_key, event) VALUES ($1, 'released', 'a', "
                "$2, 'contact', $3, 'import', 'reconciler', 'released.contact.import', '{}')",
                event_id,
                seeded.connection_id,
                str(n),
            )
        await conn.execute(
            "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
            "outcome, created_at) VALUES ($1, $2, 'released_to_qbo', 'contact', '0', 'applied', "
            "now() - interval '1 minute')",
            seeded.connection_id,
            f"import-{seeded.connection_id}-0",
        )
    await client.sign_in()
    status, html, _ = await client.get("/console/connections")
    assert status == 200
    # One handled in the last five minutes: two to go at that pace is ten minutes.
    assert "1 of 3, 2 to go, about 10 min left" in html


async def test_a_connection_needing_reauthorisation_offers_reconnect(
    client: ConsoleClient, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE connections SET status = 'paused', status_reason = $2 WHERE id = $1",
            seeded.connection_id,
            "needs re-authorisation: invalid_grant",
        )
    await client.sign_in()
    status, html, _ = await client.get("/console/connections")
    assert "needs re-authorisation" in html
    reconnect = f"/console/connections/{seeded.connection_id}/reconnect"
    assert f'action="{reconnect}"' in html
    status, _, response = await client.post(reconnect, {"csrf": await client.csrf()})
    assert status == 303
    assert "state=" in response.headers["Location"]


async def test_purge_counts_first_and_an_unreachable_broker_is_a_message(
    admin: Admin, seeded: Seeded, pool: asyncpg.Pool
) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    await proxy.start()
    amqp = through(admin.settings.amqp_url, proxy.port)
    values = standalone_settings(admin.settings.database_url, amqp)
    async with running_admin(values) as cut_admin:
        console = ConsoleClient(cut_admin.base)
        try:
            await console.sign_in()
            await proxy.cut()
            letter = f"/console/dead-letters/{seeded.dead_letter}/replay"
            status, _, response = await console.post(letter, {"csrf": await console.csrf()})
            assert status == 303
            assert "Nothing+was+changed" in response.headers["Location"]
            status, html, _ = await console.get(response.headers["Location"])
            assert status == 200
            assert "Nothing was changed" in html
            form = {"csrf": await console.csrf(), "connection_id": str(seeded.connection_id)}
            status, html, _ = await console.post("/console/dead-letters/purge", form)
            assert "1 dead letter match" in html
            status, _, response = await console.post(
                "/console/dead-letters/purge", {**form, "confirm": "yes"}
            )
            assert "Purged+1" in response.headers["Location"]
        finally:
            await console.close()
            await proxy.close()
    async with pool.acquire() as conn:
        assert (
            await conn.fetchval("SELECT status FROM dead_letters WHERE id = $1", seeded.dead_letter)
            == "purged"
        )


async def _conflict(pool: asyncpg.Pool, seeded: Seeded, kind: str, field: str = "due_date") -> int:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
            "outcome) VALUES ($1, $2, 'released_to_qbo', 'invoice', 'rl-inv-1042', 'applied')",
            seeded.connection_id,
            f"evt-{kind}-{field}-{seeded.connection_id}",
        )
        found: int = await conn.fetchval(
            "INSERT INTO conflicts (connection_id, link_id, entity, event_id, kind, fields, "
            "winner, detail) VALUES ($1, $2, 'invoice', $3, $4, $5, $6, $7) RETURNING id",
            seeded.connection_id,
            seeded.invoice_link,
            f"evt-{kind}-{field}-{seeded.connection_id}",
            kind,
            {"field": field, "base": "A", "source": "RL-value", "target": "QBO-value"},
            "RL-value",
            f"{field} changed on both sides",
        )
        return found


async def test_conflicts_side_by_side_and_resolved_by_choosing_a_side(
    client: ConsoleClient, seeded: Seeded, pool: asyncpg.Pool, broker: AbstractRobustConnection
) -> None:
    field = await _conflict(pool, seeded, "field_conflict")
    lines = await _conflict(pool, seeded, "field_conflict", "total_tax")
    flag = await _conflict(pool, seeded, "policy_flag")
    await client.sign_in()
    status, html, _ = await client.get("/console/conflicts")
    # The change came from Re-Leased: its value is "source", QuickBooks' the "target".
    assert '<td class="qbo">QBO-value</td>' in html
    assert '<td class="released">RL-value</td>' in html
    assert '<td class="base">A</td>' in html
    csrf = await client.csrf()
    status, _, response = await client.post(
        f"/console/conflicts/{field}/resolve", {"csrf": csrf, "side": "qbo"}
    )
    location = response.headers["Location"]
    assert "kept+QuickBooks" in location
    assert "closes+once+both+sides+hold+it" in location
    # Keeping QuickBooks' value is a change from QuickBooks, for the engine to write to Re-Leased.
    queued = json.loads((await get_one(broker, QBO_TO_RELEASED)).body)
    assert (queued["operation"], queued["related_id"]) == ("resolve", str(field))
    assert (queued["entity"], queued["entity_id"]) == ("invoice", "101")
    status, html, _ = await client.get("/console/conflicts")
    assert "Keeping QuickBooks: being written" in html
    status, _, response = await client.post(
        f"/console/conflicts/{lines}/resolve", {"csrf": csrf, "side": "released"}
    )
    assert "not+resolved" in response.headers["Location"]
    status, _, response = await client.post(
        f"/console/conflicts/{flag}/resolve", {"csrf": csrf, "side": "ack"}
    )
    assert "acknowledged" in response.headers["Location"]
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT id, resolved_by, requested_side, requested_by FROM conflicts "
            "WHERE id = ANY($1::bigint[]) ORDER BY id",
            [field, lines, flag],
        )
    # Open until the engine has written the value (no consumer runs in this test).
    assert [tuple(r)[1:] for r in rows] == [
        (None, "qbo", "console: kept qbo"),
        (None, None, None),
        ("console: acknowledged", None, None),
    ]


async def test_resync_from_the_record_page_queues_the_record(
    client: ConsoleClient, seeded: Seeded, broker: AbstractRobustConnection
) -> None:
    await client.sign_in()
    results = f"/console/connections/{seeded.connection_id}/results"
    record = f"{results}/released_to_qbo/invoice/rl-inv-1042"
    status, html, _ = await client.get(record)
    assert 'action="' + record + '/resync"' in html
    status, _, response = await client.post(record + "/resync", {"csrf": await client.csrf()})
    assert status == 303
    assert response.headers["Location"].startswith(record + "?msg=Resync+queued")
    message = await get_one(broker, RELEASED_TO_QBO)
    assert json.loads(message.body)["entity_id"] == "rl-inv-1042"
