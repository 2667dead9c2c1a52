"""Resolving a conflict by choosing a side, end to end: the admin API and syncctl queue it, the
engine writes the kept value to the other sandbox (and back to its own side, which held the
winner), and the conflict closes; a choice the ownership table forbids is refused at once."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from services.syncctl.app import app
from tests.e2e.builders import qbo_customer
from tests.e2e.conftest import Linked
from tests.e2e.readers import linked_released, settle
from tests.e2e.stack import Stack, consumers, eventually
from tests.integration.admin_helpers import ADMIN_TOKEN, running_admin, stack_settings

pytestmark = pytest.mark.e2e
LOST = "billing@harbour.example"


async def seed_conflict(
    pool: asyncpg.Pool, linked: Linked, qbo_id: str, fields: dict[str, Any]
) -> int:
    """A contact field conflict as the engine records one."""
    async with pool.acquire() as conn:
        link_id = await conn.fetchval(
            "SELECT id FROM links WHERE connection_id = $1 AND qbo_type = 'Customer' "
            "AND qbo_id = $2",
            linked.connection.id,
            qbo_id,
        )
        conflict_id: int = await conn.fetchval(
            "INSERT INTO conflicts (connection_id, link_id, entity, event_id, kind, fields, "
            "winner, detail) VALUES ($1, $2, 'contact', 'evt-clash', 'field_conflict', $3, "
            "$4, 'changed on both sides') RETURNING id",
            linked.connection.id,
            link_id,
            fields,
            str(fields["source"]),
        )
        return conflict_id


async def closed(pool: asyncpg.Pool, conflict_id: int) -> asyncpg.Record | None:
    async with pool.acquire() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT resolved_by, resolution FROM conflicts WHERE id = $1 AND resolved_at "
            "IS NOT NULL",
            conflict_id,
        )
        return row


async def test_keeping_the_losing_side_puts_its_value_in_the_other_sandbox(
    stack: Stack, linked: Linked, pool: asyncpg.Pool
) -> None:
    async with consumers(stack.settings), running_admin(stack_settings(stack)) as admin:
        customer = await qbo_customer(linked.qbo)
        rl_id = await linked_released(pool, "Customer", str(customer["Id"]), linked.connection)
        await settle()
        # Both sides changed the e-mail; Re-Leased's change (none) won and is on both sides;
        # QuickBooks' address lost.
        clash = {"field": "email", "base": None, "source": None, "target": LOST}
        conflict = await seed_conflict(
            pool, linked, str(customer["Id"]), {**clash, "source_side": "released"}
        )
        args = ["--json", "conflicts", "resolve", str(conflict), "--keep", "qbo", "--by", "ana"]
        result = await syncctl_json(admin.base, args)
        assert result["status"] == "queued", result
        row = await eventually(lambda: closed(pool, conflict), timeout=30)
        assert row["resolved_by"] == "ana"
        assert row["resolution"] == ("kept QuickBooks's email; written to QuickBooks and Re-Leased")
        contact = await stack.released_api(linked.company, "GET", f"/contacts/{rl_id}")
        assert contact["email"] == LOST, "the other sandbox holds the kept value"
        qbo = await linked.qbo.get("Customer", str(customer["Id"]))
        assert qbo["PrimaryEmailAddr"]["Address"] == LOST

        # Archiving is QuickBooks' alone: Re-Leased's "archived" cannot be kept.
        archive = {"field": "active", "base": True, "source": False, "target": True}
        flagged = await seed_conflict(
            pool, linked, str(customer["Id"]), {**archive, "source_side": "released"}
        )
        status, body = await admin.api(
            "POST", f"/api/conflicts/{flagged}/resolve", json={"side": "released"}
        )
        assert status == 409, body
        assert "archive only in QBO" in body["reason"]
        assert await closed(pool, flagged) is None


async def syncctl_json(base: str, args: list[str]) -> Any:
    """The CLI in a thread: it blocks on HTTP while this loop serves the admin API."""
    env = {"ADMIN_URL": base, "ADMIN_TOKEN": ADMIN_TOKEN, "COLUMNS": "200"}
    result = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)
