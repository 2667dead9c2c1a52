"""The initial import's bulk path for Re-Leased contacts that QBO lacks: ``POST /batch`` of 30.

The mirror of ``shared.ingest.import_batch``: the import already listed QBO's customers and
vendors (active or not), so a Re-Leased contact whose name none of them carries, with one role,
active and not yet linked, is created in QBO in batches of up to 30 (one request against the realm's
budget, and one of its 40 batches a minute when that allowance is configured). Each batch runs in
one database transaction holding the engine's lock on every name in it and saves the links the
engine would have saved, so QBO's webhooks for these creates are echoes.

A contact already linked at its current version (one this import just wrote from QBO) needs
nothing and is left out altogether. Everything else (both roles, archived, linked at another
version, a name QBO has, a refused item) is queued for the engine as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.adapters.postgres.budgets import ApiBudget
from shared.adapters.postgres.links import LinkRepository
from shared.adapters.qbo.batch import BATCH_LIMIT
from shared.adapters.qbo.client import QboClient
from shared.domain.canonical import normalise_name
from shared.domain.connections import Connection
from shared.domain.errors import PermanentError
from shared.domain.mapping.contacts import contact_from_released, contact_to_qbo
from shared.infra.logging import get_logger
from shared.ingest.batch_writer import qbo_batch_id, send_qbo_batch, write_batched

log = get_logger("import")
Record = dict[str, Any]


@dataclass
class _Planned:
    contact: Record
    fields: Record
    qbo_type: str


@dataclass
class BatchedToQbo:
    pool: asyncpg.Pool
    qbo: QboClient
    connection: Connection
    batch_budget: ApiBudget | None = None
    requests: int = 0
    up_to_date: int = 0

    async def run(self, contacts: list[Record], qbo_found: dict[str, list[Record]]) -> list[Record]:
        """Create what is plain in batches; the contacts left for the engine."""
        taken = {
            normalise_name(str(r.get("DisplayName", "")))
            for qbo_type in ("Customer", "Vendor")
            for r in qbo_found.get(qbo_type, [])
        }
        plan = await self._plan(contacts, taken)
        return await write_batched(
            self.connection,
            "Contact",
            len(contacts),
            plan,
            self._write,
            limit=BATCH_LIMIT,
            requests=lambda: self.requests,
            up_to_date=self.up_to_date,
        )

    async def _plan(
        self, contacts: list[Record], taken: set[str]
    ) -> tuple[list[_Planned], list[Record]]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT released_id, released_version FROM links "
                "WHERE connection_id = $1 AND entity = 'contact' AND released_id = ANY($2::text[])",
                self.connection.id,
                [str(c["id"]) for c in contacts],
            )
        linked = {str(r["released_id"]): str(r["released_version"]) for r in rows}
        planned: list[_Planned] = []
        left: list[Record] = []
        for contact in contacts:
            if linked.get(str(contact["id"])) == str(contact.get("version")):
                # Linked at this very version (this import wrote it from QBO): nothing to do, and
                # an event would only cost the engine a read to find its echo.
                self.up_to_date += 1
                continue
            roles = [
                t
                for t, f in (("Customer", "isCustomer"), ("Vendor", "isSupplier"))
                if contact.get(f)
            ]
            try:
                fields = contact_from_released(contact)
            except PermanentError:
                left.append(contact)
                continue
            name = normalise_name(fields["name"])
            plain = len(roles) <= 1 and contact.get("status", "ACTIVE") == "ACTIVE"
            if not plain or str(contact["id"]) in linked or not name or name in taken:
                left.append(contact)
                continue
            taken.add(name)
            planned.append(_Planned(contact, fields, roles[0] if roles else "Customer"))
        return planned, left

    async def _write(self, chunk: list[_Planned]) -> list[Record]:
        left: list[Record] = []
        async with self.pool.acquire() as conn, conn.transaction():
            for name in sorted({normalise_name(p.fields["name"]) for p in chunk}):
                key = f"{self.connection.id}:contact-name:{name}"
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
            # A live change may have linked some since the plan: the engine did those.
            taken = await conn.fetch(
                "SELECT released_id FROM links WHERE connection_id = $1 AND entity = 'contact' "
                "AND released_id = ANY($2::text[])",
                self.connection.id,
                [str(p.contact["id"]) for p in chunk],
            )
            done = {str(r["released_id"]) for r in taken}
            chunk = [p for p in chunk if str(p.contact["id"]) not in done]
            if not chunk:
                return left
            items = [
                {"bId": str(n), "operation": "create", p.qbo_type: _body(p)}
                for n, p in enumerate(chunk)
            ]
            request_id = qbo_batch_id("imp", [str(self.connection.id), items])
            self.requests += 1
            answers = await send_qbo_batch(self.qbo, self.batch_budget, items, request_id)
            links = LinkRepository(conn)
            for planned, answer in zip(chunk, answers, strict=True):
                made = answer.get(planned.qbo_type)
                if not isinstance(made, dict):
                    left.append(planned.contact)  # a Fault (say, a name an Employee has)
                    continue
                await links.save(
                    self.connection.id,
                    "contact",
                    planned.qbo_type,
                    qbo=(str(made["Id"]), str(made.get("SyncToken"))),
                    released=(str(planned.contact["id"]), str(planned.contact.get("version"))),
                    snapshot=planned.fields,
                )
        return left


def _body(planned: _Planned) -> Record:
    return contact_to_qbo(planned.fields, planned.fields["name"])
