"""The initial import's bulk path for QBO payments: ``POST /payments/batch``, 50 a request.

Runs after the documents (``shared.ingest.import_documents``), so the invoices and bills these
payments settle are linked by then. A plain QBO payment or bill payment (one document paid, no
credit used, no cash left unapplied, not voided, not linked yet) becomes one Re-Leased payment, as
the engine's ``shared.sync.payments.to_released`` would record it: same body, the same link rows
(the whole payment, and the piece keyed by payment, version and document) and the same twin
record, in one transaction per batch holding the engine's locks, so Re-Leased's notifications of
these payments are echoes.

Everything else is published for the engine as before: payments spread over several documents
(their pieces must succeed or fail together), ones that use credit or leave cash unapplied, ones
whose document is not linked, and any item the batch refused (logged; it never sinks the batch;
the engine then records the payment's own outcome, with its reason and remedy).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from shared.adapters.postgres.twins import TwinLedger
from shared.adapters.released.client import BATCH_LIMIT
from shared.domain.canonical import canonical_hash
from shared.domain.errors import PermanentError
from shared.domain.mapping.documents import is_qbo_void
from shared.domain.mapping.kinds import BY_QBO_WORD
from shared.domain.mapping.payments import DOCUMENT, ENTITY, payment_from_qbo, unapplied_cash
from shared.domain.ownership import Op, Outcome, OwnershipPolicy
from shared.infra.logging import get_logger
from shared.ingest.batch_writer import write_batched
from shared.ingest.import_documents import BatchedDocuments, refusal_reason, written
from shared.sync.context import SyncContext
from shared.sync.documents.references import fields_of_released
from shared.sync.payments.common import released_bank

log = get_logger("import")
Record = dict[str, Any]
BANK_KEY = {"Payment": "DepositToAccountRef", "BillPayment": "CheckPayment"}


@dataclass
class _Planned:
    record: Record
    fields: Record
    part: str  # the QBO document key paid
    body: Record


@dataclass
class BatchedPayments:
    documents: BatchedDocuments  # its context, pool and client
    requests: int = 0
    _banks: dict[str | None, str | None] = field(default_factory=dict)

    async def run(self, qbo_type: str, records: list[Record]) -> list[Record]:
        """Record what is plain in batches; the records left for the engine."""
        policy = OwnershipPolicy().decide(ENTITY[qbo_type], Op.UPSERT, "qbo")
        if policy.outcome is not Outcome.APPLY:
            return records  # the engine says how the table ends these
        return await write_batched(
            self.documents.connection,
            qbo_type,
            len(records),
            await self._plan(qbo_type, records),
            partial(self._write, qbo_type),
            limit=BATCH_LIMIT,
            requests=lambda: self.requests,
        )

    async def not_linked(self, payments: list[Record]) -> list[Record]:
        """Leave out Re-Leased payments already linked (recorded from QBO: this import's batches
        among them); payment links keep no version, and a payment is never edited, only
        reversed, which its own notification reports."""
        docs = self.documents
        async with docs.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT released_id FROM links WHERE connection_id = $1 "
                "AND entity IN ('payment', 'bill_payment') AND released_id = ANY($2::text[])",
                docs.connection.id,
                [str(p["id"]) for p in payments],
            )
        linked = {str(r["released_id"]) for r in rows}
        return [p for p in payments if str(p["id"]) not in linked]

    async def _plan(
        self, qbo_type: str, records: list[Record]
    ) -> tuple[list[_Planned], list[Record]]:
        docs = self.documents
        planned: list[_Planned] = []
        left: list[Record] = []
        async with docs.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT qbo_type, qbo_id, released_id FROM links WHERE connection_id = $1 "
                "AND qbo_type = ANY($2::text[])",
                docs.connection.id,
                [qbo_type, "Invoice", "Bill"],
            )
        linked = {f"{r['qbo_type']}:{r['qbo_id']}": str(r["released_id"] or "") for r in rows}
        for record in records:
            fields = payment_from_qbo(qbo_type, record)
            cash = fields["allocations"]
            plain = len(cash) == 1 and not fields["credits"] and unapplied_cash(fields) == 0
            if not plain or f"{qbo_type}:{record['Id']}" in linked or is_qbo_void(record):
                left.append(record)
                continue
            ((doc_key, amount),) = cash.items()
            document, bank = linked.get(doc_key), await self._bank(qbo_type, record)
            if not document or bank is None:
                left.append(record)
                continue
            body = {
                "documentType": "INVOICE",
                "documentId": document,
                "date": fields["date"],
                "amount": amount,
                "bankAccountId": bank,
                "reference": f"QBO {qbo_type} {record['Id']}",
            }
            planned.append(_Planned(record, fields, doc_key, body))
        return planned, left

    async def _bank(self, qbo_type: str, record: Record) -> str | None:
        """The Re-Leased bank account, found once per QBO account for the whole import."""
        holder = record.get(BANK_KEY[qbo_type]) or {}
        ref = holder.get("BankAccountRef", holder) if qbo_type == "BillPayment" else holder
        key = f"Account:{ref['value']}" if isinstance(ref, dict) and ref.get("value") else None
        if key not in self._banks:
            try:
                async with self.documents.pool.acquire() as conn, conn.transaction():
                    self._banks[key] = await released_bank(self.documents.context(conn), key)
            except PermanentError:
                self._banks[key] = None
        return self._banks[key]

    async def _write(self, qbo_type: str, chunk: list[_Planned]) -> list[Record]:
        docs = self.documents
        left: list[Record] = []
        async with docs.pool.acquire() as conn, conn.transaction():
            ctx = docs.context(conn)
            for planned in chunk:
                await ctx.lock("qbo", qbo_type.lower(), str(planned.record["Id"]))
            done = await conn.fetch(
                "SELECT qbo_id FROM links WHERE connection_id = $1 AND qbo_type = $2 "
                "AND qbo_id = ANY($3::text[])",
                docs.connection.id,
                qbo_type,
                [str(p.record["Id"]) for p in chunk],
            )
            taken = {str(r["qbo_id"]) for r in done}
            chunk = [p for p in chunk if str(p.record["Id"]) not in taken]
            if not chunk:
                return left
            # Each payment changes its document, which Re-Leased announces: those notifications
            # must not run until ``_settled`` has the documents' new versions linked, which may
            # wait for a bulk budget token; held, not just locked, so they are handed back to
            # come again rather than wait in a consumer slot ahead of live edits.
            settled = sorted({str(p.body["documentId"]) for p in chunk})
            for document in settled:
                await ctx.hold("released", "invoice", document)
            results = await self._send(qbo_type, [p.body for p in chunk])
            entity = ENTITY[qbo_type]
            made_ids = [
                (str(r["item"]["id"]), str(p.record["Id"]))
                for p, r in zip(chunk, results, strict=True)
                if written(r)
            ]
            # Known as ours at once (see shared.ingest.import_documents), then held, not just
            # locked: the read-back below waits for a bulk token, and these payments'
            # notifications, arriving meanwhile, would each wait in a consumer slot until the
            # commit (a batch's fifty filled every slot and live edits queued behind them).
            await TwinLedger(docs.pool).record_many(
                docs.connection.id, "released", entity, made_ids
            )
            for made_id, _ in made_ids:
                await ctx.hold("released", "payment", made_id)
            for planned, result in zip(chunk, results, strict=True):
                made, record = result.get("item"), planned.record
                if not written(result) or not isinstance(made, dict):
                    log.info(
                        "import_item_refused",
                        connection_id=str(docs.connection.id),
                        entity=qbo_type,
                        entity_id=str(record["Id"]),
                        status=int(result.get("status", 0)),
                        reason=refusal_reason(result),
                    )
                    left.append(record)
                    continue
                made_id, version = str(made["id"]), str(record.get("SyncToken"))
                # The piece, then the whole payment: the rows the engine saves for them.
                await ctx.links.save(
                    docs.connection.id,
                    entity,
                    f"{qbo_type}Line",
                    qbo=(f"{record['Id']}:{version}:{planned.part}", version),
                    released=(made_id, None),
                    snapshot={"part": planned.part, "amount": str(planned.body["amount"])},
                )
                await ctx.links.save(
                    docs.connection.id,
                    entity,
                    qbo_type,
                    qbo=(str(record["Id"]), version),
                    released=(made_id, None),
                    snapshot=planned.fields,
                )
            await self._settled(ctx, qbo_type, settled)
        return left

    async def _settled(self, ctx: SyncContext, qbo_type: str, documents: list[str]) -> None:
        """The documents these payments settled, read back in one listing; where no synced
        field changed (the amount paid is not one), each link moves to the new version, as the
        engine's echo would after a read of its own: their notifications then end as echoes
        with no read each."""
        kind = BY_QBO_WORD[DOCUMENT[qbo_type].lower()]
        connection = self.documents.connection.id
        found = await self.documents.released.list_all(kind.released_path, ids=",".join(documents))
        self.requests += 1
        for record in found:
            links = await ctx.links.by_released(connection, kind.entity, str(record["id"]))
            link = next((x for x in links if x.status == "linked"), None)
            if link is None or link.released_version == str(record.get("version")):
                continue
            try:
                fields = await fields_of_released(ctx, kind, record)
            except PermanentError:
                continue  # the engine's to judge when the notification comes
            if canonical_hash(fields) != link.snapshot_hash:
                continue
            await ctx.links.save(
                connection,
                kind.entity,
                kind.qbo_type,
                qbo=(str(link.qbo_id), link.qbo_version),
                released=(str(record["id"]), str(record.get("version"))),
                snapshot=fields,
            )

    async def _send(self, qbo_type: str, items: list[Record]) -> list[Record]:
        self.requests += 1
        connection = str(self.documents.connection.id)
        material = json.dumps([connection, qbo_type, items], sort_keys=True, default=str)
        key = f"import-pay:{hashlib.sha256(material.encode()).hexdigest()[:32]}"
        return await self.documents.released.batch("/payments", items, idempotency_key=key)
