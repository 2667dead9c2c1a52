"""The initial import's bulk path for Re-Leased documents QBO lacks: ``POST /batch`` of 30.

The mirror of ``shared.ingest.import_documents``. One request per document costs a company's
realm 10,000 requests for 10,000 invoices; here a plain Re-Leased invoice, bill, credit note or
vendor credit (approved or awaiting approval as the connection syncs, dated from the sync-from
date, no attachments, not linked, never made by the engine, its contact linked to a QBO party of
the right kind and every account and tax rate linked) is mapped exactly as the engine's
``shared.sync.documents.to_qbo`` maps it (its reference lookups, tax code and company settings)
and created in QBO in batches of up to 30.

What the engine does after a create is done here per batch: the engine's lock on each document
(held, so its notifications come back later rather than wait in a consumer slot), the twin
record, what QBO filled in (its number for invoices and credit memos, a default due date) written
back to Re-Leased in one ``/invoices/batch`` or ``/credit-notes/batch`` of updates, and the links
the engine saves, all in one transaction. QBO's notifications of these creates then find their
link at the version QBO announced (echoes), and so do Re-Leased's of the write-backs.

A document QBO refused in its batch (a Fault of its own; the rest of the batch stands) is left for
the engine, which records why and what to do; so is one whose write-back Re-Leased refused (the
engine adopts the QBO twin it finds recorded, then merges).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from shared.adapters.postgres.budgets import ApiBudget
from shared.adapters.postgres.twins import TwinLedger
from shared.adapters.qbo.batch import BATCH_LIMIT
from shared.adapters.qbo.client import QboClient
from shared.domain.errors import PermanentError
from shared.domain.mapping.document_writes import document_to_qbo, document_to_released
from shared.domain.mapping.documents import references, tax_rates_of
from shared.domain.mapping.kinds import BY_RELEASED_TYPE, DocKind
from shared.domain.mapping.tax import QboTaxCode
from shared.domain.ownership import Op, Outcome
from shared.infra.logging import get_logger
from shared.ingest.batch_writer import fault_reason, qbo_batch_id, send_qbo_batch, write_batched
from shared.ingest.import_documents import BatchedDocuments, refusal_reason, written
from shared.sync.company import company_prefs
from shared.sync.context import SyncContext
from shared.sync.dependencies import released_ids
from shared.sync.documents.common import LOCKED, keep_own_tracking, save_link
from shared.sync.documents.references import fields_of_qbo, fields_of_released, tax_code_for

log = get_logger("import")
Record = dict[str, Any]


@dataclass
class _Planned:
    record: Record  # the Re-Leased document, as listed
    fields: Record  # its canonical fields, as the engine reads them
    body: Record  # the QBO create, as the engine writes it


@dataclass
class _Made:
    planned: _Planned
    created: Record  # the QBO document
    filled: Record  # canonical fields QBO filled in (its number, a due date)


@dataclass
class BatchedDocumentsToQbo:
    documents: BatchedDocuments  # its pool, Re-Leased client and engine context
    qbo: QboClient
    batch_budget: ApiBudget | None = None
    # QBO's accounts and items by the code alignment gave their Re-Leased counterparts (empty:
    # only what is linked already is used).
    qbo_codes: dict[str, str] = field(default_factory=dict)
    requests: int = 0  # QBO batches
    write_backs: int = 0  # Re-Leased batches of what QBO filled in
    _tax_codes: dict[frozenset[str], QboTaxCode | None] = field(default_factory=dict)
    _codes: dict[str, str] | None = None  # Re-Leased account id -> its code, from one listing
    _tried: set[str] = field(default_factory=set)

    async def run(self, documents: list[Record]) -> list[Record]:
        """Create what is plain in batches; the documents left for the engine."""
        by_kind: dict[DocKind, list[Record]] = defaultdict(list)
        left: list[Record] = []
        for document in documents:
            kind = BY_RELEASED_TYPE.get(str(document.get("type")))
            (by_kind[kind] if kind else left).append(document)
        for kind, group in by_kind.items():
            left += await write_batched(
                self.documents.connection,
                f"released_{kind.entity}",
                len(group),
                await self._plan(kind, group),
                partial(self._write, kind),
                limit=BATCH_LIMIT,
                requests=lambda: self.requests,
            )
        return left

    async def _plan(
        self, kind: DocKind, documents: list[Record]
    ) -> tuple[list[_Planned], list[Record]]:
        planned: list[_Planned] = []
        left: list[Record] = []
        async with self.documents.pool.acquire() as conn:
            ctx = self.documents.context(conn)
            if ctx.policy.decide(kind.entity, Op.UPSERT, "released").outcome is not Outcome.APPLY:
                return [], documents  # the engine says how the table ends these
            for record in documents:
                body = None
                if await _plain(ctx, kind, record):
                    await self._link_accounts(record)
                    body = await self._body(ctx, kind, record)
                if body is None:
                    left.append(record)
                else:
                    planned.append(_Planned(record, *body))
        return planned, left

    async def _link_accounts(self, record: Record) -> None:
        """Accounts and items the document uses that alignment mapped to QBO's (same code) but
        the engine has not linked yet (QBO's master data is still queued): linked now by the
        engine's own handler for QBO's record, each in its own transaction, as a dependency
        would be; one that cannot be is the engine's to report with the document."""
        if not self.qbo_codes:
            return
        if self._codes is None:
            listed = await self.documents.released.list_all("/accounts")
            self._codes = {str(a["id"]): str(a.get("code") or "") for a in listed}
        for line in record.get("lines") or []:
            account = str(line.get("accountId") or "")
            key = self.qbo_codes.get(self._codes.get(account, ""))
            if not key or key in self._tried:
                continue
            self._tried.add(key)
            try:
                async with self.documents.pool.acquire() as conn, conn.transaction():
                    await released_ids(self.documents.context(conn), [key])
            except PermanentError:
                continue

    async def _body(
        self, ctx: SyncContext, kind: DocKind, record: Record
    ) -> tuple[Record, Record] | None:
        """The canonical fields and the QBO create, as ``to_qbo`` builds them (invoices and
        credit memos take QBO's number); None when the mapping refuses (the engine says why)."""
        try:
            fields = await fields_of_released(ctx, kind, record)
            rates = frozenset(tax_rates_of(fields))
            if rates not in self._tax_codes:
                self._tax_codes[rates] = await tax_code_for(ctx, set(rates))
            outgoing = {**fields, "number": None if kind.sales else fields["number"]}
            global_tax = (await company_prefs(ctx)).tax_inclusive
            body = document_to_qbo(kind, outgoing, self._tax_codes[rates], global_tax=global_tax)
        except PermanentError:
            return None
        return fields, body

    async def _write(self, kind: DocKind, chunk: list[_Planned]) -> list[Record]:
        docs = self.documents
        async with docs.pool.acquire() as conn, conn.transaction():
            ctx = docs.context(conn)
            for planned in chunk:
                await ctx.hold("released", kind.released_category, str(planned.record["id"]))
            # A live change may have linked some since the plan: the engine did those.
            ids = [str(p.record["id"]) for p in chunk]
            done = {
                str(r["released_id"])
                for r in await conn.fetch(
                    "SELECT released_id FROM links WHERE connection_id = $1 AND entity = $2 "
                    "AND released_id = ANY($3::text[])",
                    docs.connection.id,
                    kind.entity,
                    ids,
                )
            }
            chunk = [p for p in chunk if str(p.record["id"]) not in done]
            if not chunk:
                return []
            made, left = await self._create(ctx, kind, chunk)
            for one, record in zip(made, await self._fill(ctx, kind, made), strict=True):
                if record is None:
                    left.append(one.planned.record)
                    continue
                whole = {**one.planned.fields, **one.filled}
                await save_link(ctx, kind, one.created, record, whole)
        return left

    async def _create(
        self, ctx: SyncContext, kind: DocKind, chunk: list[_Planned]
    ) -> tuple[list[_Made], list[Record]]:
        """One QBO batch for ``chunk``: what it made (known as ours and held at once, as the
        engine does after a create), and the documents whose item QBO refused."""
        docs = self.documents
        items = [
            {"bId": str(n), "operation": "create", kind.qbo_type: p.body}
            for n, p in enumerate(chunk)
        ]
        request_id = qbo_batch_id("imd", [str(docs.connection.id), kind.qbo_type, items])
        self.requests += 1
        answers = await send_qbo_batch(self.qbo, self.batch_budget, items, request_id)
        pairs = [
            (str(a[kind.qbo_type]["Id"]), str(p.record["id"]))
            for p, a in zip(chunk, answers, strict=True)
            if isinstance(a.get(kind.qbo_type), dict)
        ]
        await TwinLedger(docs.pool).record_many(docs.connection.id, "qbo", kind.entity, pairs)
        for qbo_id, _ in pairs:
            await ctx.hold("qbo", kind.qbo_word, qbo_id)
        made: list[_Made] = []
        left: list[Record] = []
        for planned, answer in zip(chunk, answers, strict=True):
            created = answer.get(kind.qbo_type)
            if not isinstance(created, dict):
                _refused(docs, kind, planned.record, 400, fault_reason(answer))
                left.append(planned.record)
                continue
            theirs = await fields_of_qbo(ctx, kind, created)
            filled = {
                k: v for k, v in theirs.items() if v != planned.fields.get(k) and k != "lines"
            }
            made.append(_Made(planned, created, filled))
        return made, left

    async def _fill(
        self, ctx: SyncContext, kind: DocKind, made: list[_Made]
    ) -> list[Record | None]:
        """What QBO filled in, written back to each Re-Leased document in one batch of updates
        (the engine's ``patch_released``): each document as it now is, None where refused."""
        items: list[Record] = []
        for one in made:
            if not one.filled:
                continue
            record, whole = one.planned.record, {**one.planned.fields, **one.filled}
            ids = await released_ids(ctx, references(whole))
            body = document_to_released(kind, one.filled, ids, whole)
            await keep_own_tracking(ctx, record, body)
            items.append({"id": record["id"], "version": record.get("version"), **body})
        results: dict[str, Record] = {}
        if items:
            self.write_backs += 1
            material = [str(self.documents.connection.id), kind.qbo_type, "filled", items]
            key = qbo_batch_id("import-fill", material)
            answers = await self.documents.released.batch(
                kind.released_path, items, idempotency_key=key
            )
            results = {str(i["id"]): r for i, r in zip(items, answers, strict=True)}
        out: list[Record | None] = []
        for one in made:
            result = results.get(str(one.planned.record["id"]))
            if result is None:
                out.append(one.planned.record)
            elif written(result):
                out.append(result["item"])
            else:
                reason = refusal_reason(result)
                _refused(self.documents, kind, one.planned.record, result.get("status"), reason)
                out.append(None)
        return out


async def _plain(ctx: SyncContext, kind: DocKind, record: Record) -> bool:
    """Whether the engine would simply create this document in QBO, with nothing to resolve
    first: a synced status (not paid: QBO would take its number), dated from the sync-from
    date, no attachments, never linked or made by the engine, its references all linked."""
    status, date = str(record.get("status")), str(record.get("date") or "")
    start = ctx.settings.sync_from_date
    if status in LOCKED or not ctx.settings.syncs_status(status) or record.get("hasAttachments"):
        return False
    if start is not None and (not date or dt.date.fromisoformat(date[:10]) < start):
        return False
    rl_id, connection = str(record["id"]), ctx.connection.id
    if await ctx.links.by_released(connection, kind.entity, rl_id):
        return False
    if await ctx.made_by_us("released", kind.entity, rl_id) or (
        await ctx.twin_made_from("qbo", kind.entity, rl_id)
    ):
        return False
    contact = str(record.get("contactId") or "")
    parties = await ctx.links.by_released(connection, "contact", contact) if contact else []
    # An unlinked contact is the engine's to resolve first (``to_qbo`` runs it as a dependency).
    return any(link.qbo_type == kind.party for link in parties)


def _refused(docs: BatchedDocuments, kind: DocKind, record: Record, status: Any, why: str) -> None:
    log.info(
        "import_item_refused",
        connection_id=str(docs.connection.id),
        entity=kind.qbo_type,
        entity_id=str(record["id"]),
        status=int(status or 0),
        reason=why,
    )
