"""Initial import of a new connection: master data first, then contacts, through the engine.

First the company's own master data is lined up with QBO's (``shared.ingest.alignment``: mapped by
code, then name; the rest archived through the accounting side). Plain QBO customers and vendors
are then written to Re-Leased in batches of 50 from one listing of its contacts
(``shared.ingest.import_batch``); only what is not plain is queued for the engine.

Nothing is written here. Every record found is published as a change event (origin
``reconciler``), in dependency order: accounts, items, tax rates and classes from QBO first, then
QBO customers and vendors, then Re-Leased contacts. The engine applies them like any other change,
and its lookup-before-create (same name, else same e-mail) links contacts that already exist on
both sides instead of creating duplicates. Progress is logged per stage and kept in ``cursors``
(``import:<stage>`` = count published) so an operator can watch it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.adapters.postgres.budgets import ApiBudget
from shared.adapters.postgres.cursors import CursorRepository
from shared.adapters.qbo.client import QboClient
from shared.adapters.released.client import ReleasedClient
from shared.domain.connections import Connection
from shared.domain.events import ChangeEvent, derive_event_id
from shared.domain.mapping.masterdata import account_from_qbo
from shared.infra.logging import get_logger
from shared.ingest.alignment import MasterDataAlignment
from shared.ingest.dispatch import Publisher
from shared.ingest.import_batch import ROLE_FLAG, BatchedContacts
from shared.ingest.import_batch_qbo import BatchedToQbo
from shared.ingest.import_documents import BatchedDocuments
from shared.ingest.import_documents_qbo import BatchedDocumentsToQbo
from shared.ingest.import_payments import BatchedPayments
from shared.ingest.import_payments_qbo import BatchedPaymentsToQbo
from shared.ingest.reconciler import qbo_change
from shared.ingest.relay import publish_new

log = get_logger("import")

# Dependencies first (guarantee 7): what documents and contacts refer to comes before them.
QBO_STAGES = ("Account", "Item", "TaxRate", "Class", "Customer", "Vendor")
# Documents after contacts, payments after the documents they pay (Re-Leased's too).
QBO_DOCUMENT_STAGES = ("Invoice", "Bill", "CreditMemo", "VendorCredit", "Payment", "BillPayment")
OPEN = {"AWAITING_APPROVAL", "APPROVED", "PAID"}  # Re-Leased documents the import takes
BATCHED_DOCUMENTS = {"Invoice", "Bill", "CreditMemo", "VendorCredit"}
RELEASED_DOCUMENT_STAGES = (("/invoices", "invoice"), ("/credit-notes", "creditnote"))
NAME_LISTS = {"Account", "Item", "Class", "Customer", "Vendor"}
# The import's marks in ``cursors``, read by shared.ops.import_progress.
STARTED, STAGE, QUEUED, TOTAL, BATCHED = (
    "import:started_at",
    "import:stage",
    "import:queued_at",
    "import:total",
    "import:batched",
)


def released_import_event(
    company: str, category: str, record: dict[str, Any], now: datetime
) -> ChangeEvent:
    """A Re-Leased record found by the import, as the change event the engine applies."""
    record_id, version = str(record["id"]), str(record.get("version"))
    return ChangeEvent(
        event_id=derive_event_id("released", company, category, record_id, "import", version),
        source="released",
        account_id=company,
        entity=category,
        entity_id=record_id,
        operation="import",
        occurred_at=now,
        origin="reconciler",
        version=version,
    )


@dataclass
class ImportProgress:
    connection_id: str
    stages: dict[str, int] = field(default_factory=dict)
    # Records written in batches by the import itself (not queued for the engine), per stage.
    batched: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.stages.values())


@dataclass
class InitialImport:
    pool: asyncpg.Pool
    publisher: Publisher
    # QBO's allowance for POST /batch (40 a minute per realm); None: not paced apart.
    qbo_batch_budget: ApiBudget | None = None

    async def run(
        self, connection: Connection, qbo: QboClient, released: ReleasedClient
    ) -> ImportProgress:
        started = time.perf_counter()
        progress = ImportProgress(str(connection.id))
        cursors = CursorRepository(self.pool)
        await cursors.set(connection.id, STARTED, datetime.now(UTC).isoformat())
        await cursors.set(connection.id, STAGE, "aligning master data")
        realm = str(connection.qbo_realm_id)
        now = datetime.now(UTC)
        found: dict[str, list[dict[str, Any]]] = {}
        for stage in QBO_STAGES:
            where = "Active in (true, false)" if stage in NAME_LISTS else ""
            found[stage] = await qbo.query_all(stage, where)
        # Before QBO's master data reaches the engine: the company's own lined up with it.
        await MasterDataAlignment(self.pool).run(connection.id, released, found)
        batcher = BatchedContacts(self.pool, released, connection)
        await batcher.load()
        for stage in QBO_STAGES:
            rows = found[stage]
            if stage in ROLE_FLAG:
                # Plain customers and vendors are written in batches; the engine gets the rest.
                rows = await batcher.run(stage, rows)
                progress.batched[stage] = len(found[stage]) - len(rows)
            events = [qbo_change(realm, stage, row, now) for row in rows]
            await self._stage(connection, f"qbo_{stage.lower()}", events, progress)
        contacts = await released.list_all("/contacts")
        # Contacts QBO plainly lacks are created there in batches; the engine gets the rest.
        to_qbo = BatchedToQbo(self.pool, qbo, connection, self.qbo_batch_budget)
        left = await to_qbo.run(contacts, found)
        progress.batched["released_contact"] = len(contacts) - len(left) - to_qbo.up_to_date
        contacts = left
        events = [
            released_import_event(connection.released_company_id, "contact", c, now)
            for c in contacts
        ]
        await self._stage(connection, "released_contact", events, progress)
        codes = {
            account_from_qbo(kind, row)["code"]: f"{kind}:{row['Id']}"
            for kind in ("Account", "Item")
            for row in found[kind]
        }
        await self._documents(connection, (qbo, released), progress, now, codes)
        total = progress.total + sum(progress.batched.values())
        await cursors.set(connection.id, TOTAL, str(total))
        await cursors.set(connection.id, BATCHED, str(sum(progress.batched.values())))
        await cursors.set(connection.id, QUEUED, datetime.now(UTC).isoformat())
        log.info(
            "import_queued",
            connection_id=str(connection.id),
            stages=progress.stages,
            batched=progress.batched,
            total=progress.total,
            latency_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return progress

    async def _documents(
        self,
        connection: Connection,
        clients: tuple[QboClient, ReleasedClient],
        progress: ImportProgress,
        now: datetime,
        codes: dict[str, str],
    ) -> None:
        """Both sides' documents dated from the sync-from date; the engine gates the rest.
        ``codes``: QBO's accounts and items by code, for the Re-Leased documents' accounts."""
        qbo, released = clients
        realm = str(connection.qbo_realm_id)
        start = dict(connection.settings or {}).get("sync_from_date")
        marker = released_import_event(connection.released_company_id, "import", {"id": realm}, now)
        batcher = BatchedDocuments(self.pool, released, qbo, connection, marker)
        payments = BatchedPayments(batcher)
        to_qbo = BatchedDocumentsToQbo(batcher, qbo, self.qbo_batch_budget, codes)
        for stage in QBO_DOCUMENT_STAGES:
            rows = await qbo.query_all(stage, f"TxnDate >= '{start}'" if start else "")
            # Plain documents and payments are written in batches; the engine gets the rest.
            batched = batcher if stage in BATCHED_DOCUMENTS else payments
            where = f"writing {len(rows)} qbo_{stage.lower()} in batches"
            await CursorRepository(self.pool).set(connection.id, STAGE, where)
            left = await batched.run(stage, rows)
            progress.batched[stage] = len(rows) - len(left)
            rows = left
            events = [qbo_change(realm, stage, row, now) for row in rows]
            await self._stage(connection, f"qbo_{stage.lower()}", events, progress)
        company = connection.released_company_id
        for path, category in RELEASED_DOCUMENT_STAGES:
            # The listing the QBO stages made for their lookups (one per import), less what is
            # linked at its current version (what those stages just created, among others).
            listed = await batcher.listing(path)
            docs = await batcher.not_up_to_date([d for d in listed if d.get("status") in OPEN])
            # Plain documents QBO lacks are created there in batches; the engine gets the rest.
            left = await to_qbo.run(docs)
            progress.batched[f"released_{category}"] = len(docs) - len(left)
            events = [released_import_event(company, category, d, now) for d in left]
            await self._stage(connection, f"released_{category}", events, progress)
        # Payments last: on invoices and (refunds) on credit notes, from the sync-from date.
        paid = await payments.not_linked(await released.list_all("/payments", status="ACTIVE"))
        paid = [p for p in paid if not start or str(p.get("date", "")) >= str(start)]
        # Plain ones on documents QBO has are recorded there in batches; the engine gets the rest.
        left = await BatchedPaymentsToQbo(batcher, qbo, self.qbo_batch_budget).run(paid)
        progress.batched["released_payment"] = len(paid) - len(left)
        events = [released_import_event(company, "payment", p, now) for p in left]
        await self._stage(connection, "released_payment", events, progress)

    async def _stage(
        self,
        connection: Connection,
        stage: str,
        events: list[ChangeEvent],
        progress: ImportProgress,
    ) -> None:
        await CursorRepository(self.pool).set(connection.id, STAGE, f"queueing {stage}")
        # The bulk lane: live changes of this company never wait behind its import.
        bulk = [e.model_copy(update={"lane": "bulk"}) for e in events]
        published = await publish_new(self.pool, self.publisher, connection.id, bulk)
        progress.stages[stage] = len(published)
        await CursorRepository(self.pool).set(connection.id, f"import:{stage}", str(len(published)))
        log.info(
            "import_progress",
            connection_id=str(connection.id),
            stage=stage,
            found=len(events),
            published=len(published),
        )
