"""The initial import's bulk path for QBO documents: batches of 50 from one listing per kind.

At one request per record (and one more per record for the lookup before create) 10,000 QBO
invoices take Re-Leased's 60 requests a minute for over five hours. Here the import lists the
Re-Leased documents of a collection once (the lookup before create: same number and type, as the
engine's ``shared.sync.documents.to_released`` does), maps each QBO invoice, bill, credit memo and
vendor credit the way the engine does, and creates those Re-Leased lacks with
``POST /invoices/batch`` or ``/credit-notes/batch``, up to 50 a request.

Each batch runs in one database transaction holding the engine's lock on every QBO record in it
and, before committing, on every Re-Leased document it made; it records the twins and saves the
links the engine would have saved, so the webhooks of these creates find their link and are echoes.

Only what is plain goes in a batch; the rest is published for the engine as before, which then
applies it (or records its per-record outcome, with its reason and remedy): records already
linked, voided ones, ones without a number (Re-Leased numbers them and the engine writes it back),
ones whose number Re-Leased already has (the engine adopts those), a number twice in one stage,
ones whose references are not all linked yet (the engine resolves those first), ones the mapping
refuses, and any item the batch refused (logged with its reason; it never sinks the batch).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any, cast

import asyncpg

from shared.adapters.postgres.sync_store import PgSyncStore
from shared.adapters.postgres.twins import TwinLedger
from shared.adapters.released.client import BATCH_LIMIT, ReleasedClient
from shared.domain.connections import Connection, ConnectionSettings
from shared.domain.errors import PermanentError
from shared.domain.events import ChangeEvent
from shared.domain.mapping.document_writes import document_to_released
from shared.domain.mapping.documents import is_qbo_void, references
from shared.domain.mapping.kinds import BY_QBO_WORD, DocKind
from shared.domain.ownership import Op, Outcome, OwnershipPolicy
from shared.infra.db import DbConnection
from shared.infra.logging import get_logger
from shared.ingest.batch_writer import write_batched
from shared.sync import routes
from shared.sync.company import company_prefs
from shared.sync.context import SyncContext
from shared.sync.dependencies import released_id_for, released_ids
from shared.sync.documents.references import fields_of_qbo
from shared.sync.ports import QboApi, ReleasedApi

log = get_logger("import")
Record = dict[str, Any]


class _KeptReads:
    """The QBO client with the import's reads of tax codes kept: thousands of documents use a
    handful of codes, and each would otherwise cost a request."""

    def __init__(self, qbo: QboApi) -> None:
        self._qbo = qbo
        self._kept: dict[tuple[str, str], Record] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._qbo, name)

    async def get(self, qbo_type: str, qbo_id: str) -> Record:
        if qbo_type != "TaxCode":
            return await self._qbo.get(qbo_type, qbo_id)
        if (qbo_type, qbo_id) not in self._kept:
            self._kept[(qbo_type, qbo_id)] = await self._qbo.get(qbo_type, qbo_id)
        return self._kept[(qbo_type, qbo_id)]


@dataclass
class _Planned:
    record: Record
    fields: Record
    body: Record


@dataclass
class BatchedDocuments:
    pool: asyncpg.Pool
    released: ReleasedClient
    qbo: QboApi
    connection: Connection
    event: ChangeEvent  # the import's own event: where the engine's helpers want one
    requests: int = 0
    refused: int = 0
    # Re-Leased's documents by collection, and their (type, number), from one listing of each.
    listed: dict[str, list[Record]] = field(default_factory=dict)
    numbers: dict[str, set[tuple[str, str]]] = field(default_factory=dict)
    _ids: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._reads = _KeptReads(self.qbo)

    def context(self, conn: DbConnection) -> SyncContext:
        return SyncContext(
            event=self.event,
            connection=self.connection,
            store=PgSyncStore(conn, TwinLedger(self.pool)),
            qbo=cast(QboApi, self._reads),
            released=cast(ReleasedApi, self.released),
            policy=OwnershipPolicy(),
            settings=ConnectionSettings.applied(self.connection.settings),
            resolve=routes.resolve,
        )

    async def run(self, qbo_type: str, records: list[Record]) -> list[Record]:
        """Create what is plain in batches; the records left for the engine."""
        kind = BY_QBO_WORD[qbo_type.lower()]
        await self.listing(kind.released_path)
        if OwnershipPolicy().decide(kind.entity, Op.UPSERT, "qbo").outcome is not Outcome.APPLY:
            return records  # the engine says how the table ends these
        return await write_batched(
            self.connection,
            qbo_type,
            len(records),
            await self._plan(kind, records),
            partial(self._write, kind),
            limit=BATCH_LIMIT,
            requests=lambda: self.requests,
        )

    async def listing(self, path: str) -> list[Record]:
        """Re-Leased's documents of a collection, from one listing for the whole import (every
        state: a number Re-Leased has in any state is the engine's to judge)."""
        if path not in self.listed:
            self.listed[path] = await self.released.list_all(path)
            self.numbers[path] = {
                (str(d.get("type")), str(d.get("number")))
                for d in self.listed[path]
                if d.get("number")
            }
        return self.listed[path]

    async def not_up_to_date(self, documents: list[Record]) -> list[Record]:
        """Leave out documents linked at their current version (this import's own creates, or
        ones already synced): an event for them would only cost the engine a read."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT released_id, released_version FROM links "
                "WHERE connection_id = $1 AND released_id = ANY($2::text[])",
                self.connection.id,
                [str(d["id"]) for d in documents],
            )
        linked = {str(r["released_id"]): str(r["released_version"]) for r in rows}
        return [d for d in documents if linked.get(str(d["id"])) != str(d.get("version"))]

    async def _plan(
        self, kind: DocKind, records: list[Record]
    ) -> tuple[list[_Planned], list[Record]]:
        taken = self.numbers[kind.released_path]
        planned: list[_Planned] = []
        left: list[Record] = []
        async with self.pool.acquire() as conn:
            linked = await _linked(conn, self.connection, kind, [str(r["Id"]) for r in records])
            ctx = self.context(conn)
            currency = (await company_prefs(ctx)).home_currency
            for record in records:
                number = str(record.get("DocNumber") or "")
                plain = number and (kind.released_type, number) not in taken
                if not plain or str(record["Id"]) in linked or is_qbo_void(record):
                    left.append(record)
                    continue
                body = await self._body(ctx, kind, record, currency)
                if body is None:
                    left.append(record)
                    continue
                taken.add((kind.released_type, number))
                planned.append(_Planned(record, body[0], body[1]))
        return planned, left

    async def _body(
        self, ctx: SyncContext, kind: DocKind, record: Record, currency: str
    ) -> tuple[Record, Record] | None:
        """The canonical fields and the Re-Leased create, as the engine builds them; None when
        the engine must see to it (a refusal, or a reference not linked yet)."""
        try:
            fields = await fields_of_qbo(ctx, kind, record)
        except PermanentError:
            return None
        ids: dict[str, str] = {}
        for key in references(fields):
            if key not in self._ids:
                self._ids[key] = await released_id_for(ctx, key) or await self._resolve(key)
            found = self._ids[key]
            if found is None:
                return None
            ids[key] = found
        body = {
            **document_to_released(kind, fields, ids),
            "type": kind.released_type,
            "status": "APPROVED",  # QBO documents are posted: nothing to approve
            "currency": fields.get("currency") or currency,
        }
        return fields, body

    async def _resolve(self, key: str) -> str | None:
        """A reference not linked yet (the master data and contacts the import queued may not be
        applied yet): applied now by the engine's own handler, in a transaction of its own, as the
        engine does for a dependency; None when it cannot be (the engine will say why)."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                return (await released_ids(self.context(conn), [key]))[key]
        except PermanentError:
            return None

    async def _write(self, kind: DocKind, chunk: list[_Planned]) -> list[Record]:
        left: list[Record] = []
        async with self.pool.acquire() as conn, conn.transaction():
            ctx = self.context(conn)
            for planned in chunk:
                # The engine's own lock for this record: its handling of the same record (a live
                # edit, this import's event for a refused item) waits, then finds the link.
                await ctx.lock("qbo", kind.qbo_word, str(planned.record["Id"]))
            # A live change may have linked some since the plan: the engine did those.
            ids = [str(p.record["Id"]) for p in chunk]
            done = await _linked(conn, self.connection, kind, ids)
            chunk = [p for p in chunk if str(p.record["Id"]) not in done]
            if not chunk:
                return left
            results = await self._send(kind, [p.body for p in chunk])
            made = [
                (str(r["item"]["id"]), str(p.record["Id"]))
                for p, r in zip(chunk, results, strict=True)
                if written(r)
            ]
            # Known as ours at once (committed apart from this transaction), then locked: their
            # notifications wait for these links, or come back later, never copy them to QBO.
            await TwinLedger(self.pool).record_many(
                self.connection.id, "released", kind.entity, made
            )
            for made_id, _ in made:
                await ctx.lock("released", kind.released_category, made_id)
            for planned, result in zip(chunk, results, strict=True):
                if not written(result):
                    self.refused += 1
                    log.info(
                        "import_item_refused",
                        connection_id=str(self.connection.id),
                        entity=kind.qbo_type,
                        entity_id=str(planned.record["Id"]),
                        status=int(result.get("status", 0)),
                        reason=refusal_reason(result),
                    )
                    left.append(planned.record)
                    continue
                await ctx.links.save(
                    self.connection.id,
                    kind.entity,
                    kind.qbo_type,
                    qbo=(str(planned.record["Id"]), str(planned.record.get("SyncToken"))),
                    released=(str(result["item"]["id"]), str(result["item"].get("version"))),
                    snapshot=planned.fields,
                )
        return left

    async def _send(self, kind: DocKind, items: list[Record]) -> list[Record]:
        self.requests += 1
        material = json.dumps([str(self.connection.id), kind.qbo_type, items], sort_keys=True)
        key = f"import-docs:{hashlib.sha256(material.encode()).hexdigest()[:32]}"
        return await self.released.batch(kind.released_path, items, idempotency_key=key)


async def _linked(
    conn: DbConnection, connection: Connection, kind: DocKind, ids: list[str]
) -> set[str]:
    rows = await conn.fetch(
        "SELECT qbo_id FROM links WHERE connection_id = $1 AND qbo_type = $2 "
        "AND qbo_id = ANY($3::text[])",
        connection.id,
        kind.qbo_type,
        ids,
    )
    return {str(r["qbo_id"]) for r in rows}


def written(result: Record) -> bool:
    """Whether a batch item was written (its answer carries the record)."""
    return int(result.get("status", 0)) < 300 and isinstance(result.get("item"), dict)


def refusal_reason(result: Record) -> str:
    error = result.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "refused")[:300]
    return "refused"
