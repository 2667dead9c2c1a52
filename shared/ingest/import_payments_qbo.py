"""The initial import's bulk path for Re-Leased payments QBO lacks: ``POST /batch`` of 30.

Runs after the Re-Leased documents (``shared.ingest.import_documents_qbo``), so the invoices and
bills these payments settle are linked by then. A plain Re-Leased payment (active, on an invoice
or bill linked to QBO, its bank account linked to a QBO account, not linked, not recorded by us
from QBO, never sent by the engine) becomes the QBO Payment or BillPayment the engine's
``shared.sync.payments.to_qbo`` writes (its own body function), and the link and twin record the
engine saves, in one transaction per batch holding the engine's locks (the payments held, and the
QBO payments once made), so QBO's notifications of them are echoes.

Everything else is queued for the engine as before: refunds (payments on credit notes: two QBO
transactions each), payments whose document or bank is not linked (the engine resolves the one
and falls back for the other, saying so), and any item QBO refused (logged; the engine then
records the payment's own outcome).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import Any

from shared.adapters.postgres.budgets import ApiBudget
from shared.adapters.postgres.twins import TwinLedger
from shared.adapters.qbo.batch import BATCH_LIMIT
from shared.adapters.qbo.client import QboClient
from shared.domain.errors import PermanentError
from shared.domain.links import Link
from shared.domain.mapping.kinds import BY_RELEASED_TYPE, DocKind
from shared.domain.mapping.payments import ENTITY, payment_from_qbo
from shared.domain.ownership import Op, Outcome
from shared.infra.logging import get_logger
from shared.ingest.batch_writer import fault_reason, qbo_batch_id, send_qbo_batch, write_batched
from shared.ingest.import_documents import BatchedDocuments
from shared.sync.context import SyncContext
from shared.sync.payments.common import save_payment_link
from shared.sync.payments.to_qbo import qbo_payment_body

log = get_logger("import")
Record = dict[str, Any]


@dataclass
class _Planned:
    record: Record  # the Re-Leased payment
    body: Record  # the QBO payment, as the engine writes it


@dataclass
class BatchedPaymentsToQbo:
    documents: BatchedDocuments  # its pool, listings and engine context
    qbo: QboClient
    batch_budget: ApiBudget | None = None
    requests: int = 0

    async def run(self, payments: list[Record]) -> list[Record]:
        """Record what is plain in QBO in batches; the payments left for the engine."""
        types = {str(d["id"]): d.get("type") for d in await self.documents.listing("/invoices")}
        by_type: dict[str, list[tuple[DocKind, Record]]] = defaultdict(list)
        left: list[Record] = []
        for payment in payments:
            kind = BY_RELEASED_TYPE.get(str(types.get(str(payment.get("documentId")))))
            if payment.get("documentType") != "INVOICE" or kind is None:
                left.append(payment)  # a refund of credit, or a document not listed
                continue
            by_type["Payment" if kind.sales else "BillPayment"].append((kind, payment))
        for qbo_type, group in by_type.items():
            left += await write_batched(
                self.documents.connection,
                f"released_{ENTITY[qbo_type]}",
                len(group),
                await self._plan(qbo_type, group),
                partial(self._write, qbo_type),
                limit=BATCH_LIMIT,
                requests=lambda: self.requests,
            )
        return left

    async def _plan(
        self, qbo_type: str, group: list[tuple[DocKind, Record]]
    ) -> tuple[list[_Planned], list[Record]]:
        planned: list[_Planned] = []
        left: list[Record] = []
        async with self.documents.pool.acquire() as conn:
            ctx = self.documents.context(conn)
            decision = ctx.policy.decide(ENTITY[qbo_type], Op.UPSERT, "released")
            if decision.outcome is not Outcome.APPLY:
                return [], [payment for _, payment in group]
            for kind, payment in group:
                document = await _plain(ctx, qbo_type, kind, payment)
                body = None
                if document is not None:
                    try:
                        body = await qbo_payment_body(ctx, qbo_type, payment, document)
                    except PermanentError:
                        body = None
                if body is None:
                    left.append(payment)
                else:
                    planned.append(_Planned(payment, body))
        return planned, left

    async def _write(self, qbo_type: str, chunk: list[_Planned]) -> list[Record]:
        docs = self.documents
        entity = ENTITY[qbo_type]
        async with docs.pool.acquire() as conn, conn.transaction():
            ctx = docs.context(conn)
            for planned in chunk:
                await ctx.hold("released", "payment", str(planned.record["id"]))
            # A live change may have sent some since the plan: the engine did those.
            chunk = [p for p in chunk if not await _sent(ctx, str(p.record["id"]))]
            if not chunk:
                return []
            items = [
                {"bId": str(n), "operation": "create", qbo_type: p.body}
                for n, p in enumerate(chunk)
            ]
            request_id = qbo_batch_id("imq", [str(docs.connection.id), qbo_type, items])
            self.requests += 1
            answers = await send_qbo_batch(self.qbo, self.batch_budget, items, request_id)
            pairs = [
                (str(a[qbo_type]["Id"]), str(p.record["id"]))
                for p, a in zip(chunk, answers, strict=True)
                if isinstance(a.get(qbo_type), dict)
            ]
            # Known as ours at once, then held: their notifications come back for the links.
            await TwinLedger(docs.pool).record_many(docs.connection.id, "qbo", entity, pairs)
            for qbo_id, _ in pairs:
                await ctx.hold("qbo", qbo_type.lower(), qbo_id)
            left: list[Record] = []
            for planned, answer in zip(chunk, answers, strict=True):
                made, record = answer.get(qbo_type), planned.record
                if not isinstance(made, dict):
                    log.info(
                        "import_item_refused",
                        connection_id=str(docs.connection.id),
                        entity=qbo_type,
                        entity_id=str(record["id"]),
                        status=400,
                        reason=fault_reason(answer),
                    )
                    left.append(record)
                    continue
                fields = payment_from_qbo(qbo_type, made)
                version = str(record.get("version"))
                await save_payment_link(ctx, qbo_type, made, str(record["id"]), version, fields)
        return left


async def _sent(ctx: SyncContext, payment_id: str) -> bool:
    """Linked, or already a twin one way or the other (the engine's to finish)."""
    for entity in ("payment", "bill_payment"):
        if await ctx.links.by_released(ctx.connection.id, entity, payment_id):
            return True
        if await ctx.made_by_us("released", entity, payment_id):
            return True
        if await ctx.twin_made_from("qbo", entity, payment_id):
            return True
    return False


async def _plain(ctx: SyncContext, qbo_type: str, kind: DocKind, payment: Record) -> Link | None:
    """The link of the document a plain payment settles; None when the payment is not plain."""
    if payment.get("status") != "ACTIVE" or str(payment.get("reference") or "").startswith("QBO "):
        return None  # reversed, or one we recorded from QBO (its link comes with it)
    if await _sent(ctx, str(payment["id"])):
        return None
    connection = ctx.connection.id
    bank = str(payment.get("bankAccountId") or "")
    banks = await ctx.links.by_released(connection, "account", bank) if bank else []
    if not any(link.qbo_type == "Account" and link.qbo_id for link in banks):
        return None  # the engine falls back to QBO's first bank, and says so
    found = await ctx.links.by_released(connection, kind.entity, str(payment["documentId"]))
    if not found or found[0].status == "voided":
        return None
    return found[0]
