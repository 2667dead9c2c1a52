"""A connection with sync results seeded straight into the tables the engine writes: an invoice
whose last change failed (with a dead letter), a contact applied, an invoice ignored."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from shared.adapters.broker import RELEASED_TO_QBO
from shared.adapters.postgres.dead_letters import DeadLetter, DeadLetterRepository
from shared.infra.db import DbConnection
from tests.integration.broker_helpers import make_event

REMEDY = "give the invoice's line a tax rate QuickBooks knows, then replay"


@dataclass
class Seeded:
    connection_id: UUID
    realm: str
    company: str
    invoice_link: int
    contact_link: int
    dead_letter: int
    invoice_rl: str = "rl-inv-1042"


async def _outcome(conn: DbConnection, connection_id: UUID, age_min: int, **row: Any) -> None:
    await conn.execute(
        "INSERT INTO sync_outcomes (connection_id, event_id, direction, entity, source_id, "
        "target_id, outcome, reason, remedy, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() - $10::interval)",
        connection_id,
        row.get("event_id") or f"evt-{uuid.uuid4().hex}",
        row["direction"],
        row["entity"],
        row["source_id"],
        row.get("target_id"),
        row["outcome"],
        row.get("reason"),
        row.get("remedy"),
        timedelta(minutes=age_min),
    )


async def _link(conn: DbConnection, connection_id: UUID, **row: Any) -> int:
    link_id: int = await conn.fetchval(
        "INSERT INTO links (connection_id, entity, qbo_type, qbo_id, released_id, qbo_version, "
        "released_version, snapshot, last_synced_at) VALUES ($1, $2, $3, $4, $5, '1', '1', $6, "
        "now()) RETURNING id",
        connection_id,
        row["entity"],
        row["qbo_type"],
        row["qbo_id"],
        row["released_id"],
        json.loads(json.dumps(row["snapshot"])),
    )
    return link_id


async def seed_results(pool: asyncpg.Pool) -> Seeded:
    realm, company = f"realm-{uuid.uuid4().hex[:8]}", f"co-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        connection_id: UUID = await conn.fetchval(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ($1, $2, 'active') RETURNING id",
            company,
            realm,
        )
        invoice = await _link(
            conn,
            connection_id,
            entity="invoice",
            qbo_type="Invoice",
            qbo_id="101",
            released_id="rl-inv-1042",
            snapshot={"number": "INV-1042", "total": "250.00"},
        )
        contact = await _link(
            conn,
            connection_id,
            entity="contact",
            qbo_type="Customer",
            qbo_id="7",
            released_id="rl-c-7",
            snapshot={"name": "Harbour Cafe"},
        )
        common = {"direction": "released_to_qbo", "entity": "invoice", "source_id": "rl-inv-1042"}
        await _outcome(conn, connection_id, 60, **common, target_id="101", outcome="applied")
        failed = make_event(1042, source="released", account_id=company, entity="invoice")
        failed = failed.model_copy(
            update={"entity_id": "rl-inv-1042", "connection_id": connection_id}
        )
        await _outcome(
            conn,
            connection_id,
            5,
            **common,
            event_id=failed.event_id,
            outcome="error",
            reason="QuickBooks refused the invoice: tax code 9 does not exist",
            remedy=REMEDY,
        )
        letter = await DeadLetterRepository(conn).record(
            DeadLetter(
                event_id=failed.event_id,
                routing_key=failed.routing_key,
                queue=RELEASED_TO_QBO,
                event=failed.model_dump(mode="json"),
                error_class="ValidationRefused",
                error="QuickBooks refused the invoice: tax code 9 does not exist",
                remedy=REMEDY,
                attempts=1,
                connection_id=str(connection_id),
            )
        )
        await _outcome(
            conn,
            connection_id,
            30,
            direction="qbo_to_released",
            entity="customer",
            source_id="7",
            target_id="rl-c-7",
            outcome="applied",
        )
        await _outcome(
            conn,
            connection_id,
            90,
            direction="qbo_to_released",
            entity="invoice",
            source_id="55",
            outcome="ignored",
            reason="dated before the sync-from date",
        )
    return Seeded(connection_id, realm, company, invoice, contact, letter)
