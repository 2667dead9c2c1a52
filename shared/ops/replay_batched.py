"""A bulk replay's documents and payments, written in batches: QBO's to Re-Leased (50 a request),
Re-Leased's documents to QBO (30 a ``/batch``).

A bulk replay of dead letters (say, a few thousand QBO invoices that failed while a company's
tax rates were wrong, now fixed) would otherwise cost one Re-Leased request per record, plus a
lookup each, at 60 requests a minute. The dead letters of QBO invoices, bills, credit memos,
vendor credits, payments and bill payments (not their deletes or voids) are read back from QBO
and sent through the initial import's batched paths (``shared.ingest.import_documents`` and
``import_payments``: documents before payments, one listing per collection, the engine's locks,
twins and links per item). A letter whose record went into a batch is done; everything else (a
record that is linked already, not plain, gone from QBO, or refused by its batch) is replayed as an
event on the bulk lane as before, and the engine says what becomes of it.

Dead-lettered Re-Leased invoices and credit notes (not their voids) go the other way the same way:
read back with a listing per 100 ids and sent through ``shared.ingest.import_documents_qbo`` (the
engine's mapping, locks, twins, number write-back and links per item); Re-Leased payments are
replayed as events.

The clients are the bulk lane's, so the replay leaves live traffic its reserved share.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shared.adapters.clients import ClientFactory
from shared.adapters.postgres.connections import ConnectionLookup
from shared.domain.connections import Connection
from shared.domain.errors import NotFound
from shared.domain.events import ChangeEvent
from shared.infra.logging import get_logger
from shared.ingest.import_documents import BatchedDocuments
from shared.ingest.import_documents_qbo import BatchedDocumentsToQbo
from shared.ingest.import_payments import BatchedPayments
from shared.ingest.importer import BATCHED_DOCUMENTS, released_import_event

log = get_logger("ops.dlq")

# Event word -> QBO type, in dependency order (documents before the payments that settle them).
BATCHABLE = {
    "invoice": "Invoice",
    "bill": "Bill",
    "creditmemo": "CreditMemo",
    "vendorcredit": "VendorCredit",
    "payment": "Payment",
    "billpayment": "BillPayment",
}
# Re-Leased event category -> its collection: documents QBO lacks, created through QBO's /batch.
RELEASED_BATCHABLE = {"invoice": "/invoices", "creditnote": "/credit-notes"}
_NOT_BATCHED_OPERATIONS = frozenset({"delete", "void"})
IDS_PER_LISTING = 100  # Re-Leased ids read back per listing (the query string stays short)

Letter = tuple[int, ChangeEvent]


def batchable(event: ChangeEvent) -> bool:
    words = BATCHABLE if event.source == "qbo" else RELEASED_BATCHABLE
    return (
        event.source in ("qbo", "released")
        and event.entity in words
        and event.operation not in _NOT_BATCHED_OPERATIONS
    )


@dataclass
class BatchedReplay:
    pool: asyncpg.Pool
    clients: ClientFactory  # the bulk lane's

    async def __call__(self, letters: list[Letter]) -> set[int]:
        """The dead letters whose records were written in batches (the rest: replay as events)."""
        by_connection: dict[Any, list[Letter]] = defaultdict(list)
        connections: dict[Any, Connection] = {}
        lookup = ConnectionLookup(self.pool)
        for letter in letters:
            if not batchable(letter[1]):
                continue
            connection = await lookup.connection_for(letter[1])
            if connection is not None and connection.status == "active":
                connections[connection.id] = connection
                by_connection[connection.id].append(letter)
        written: set[int] = set()
        for connection_id, group in by_connection.items():
            written |= await self._connection(connections[connection_id], group)
        return written

    async def _connection(self, connection: Connection, letters: list[Letter]) -> set[int]:
        qbo, released = self.clients.qbo(connection), self.clients.released(connection)
        marker = released_import_event(
            connection.released_company_id, "replay", {"id": str(connection.id)}, datetime.now(UTC)
        )
        documents = BatchedDocuments(self.pool, released, qbo, connection, marker)
        payments = BatchedPayments(documents)
        to_qbo = BatchedDocumentsToQbo(documents, qbo, self.clients.qbo_batch_budget)
        written: set[int] = set()
        for word, qbo_type in BATCHABLE.items():
            letter_of: dict[str, int] = {}
            rows: list[dict[str, Any]] = []
            for letter_id, event in letters:
                if event.source != "qbo" or event.entity != word or event.entity_id in letter_of:
                    continue
                try:
                    rows.append(await qbo.get(qbo_type, event.entity_id))
                except NotFound:
                    continue  # gone from QBO: the engine's replay says what that means
                letter_of[event.entity_id] = letter_id
            if not rows:
                continue
            batcher = documents if qbo_type in BATCHED_DOCUMENTS else payments
            left = {str(r["Id"]) for r in await batcher.run(qbo_type, rows)}
            written |= {n for record_id, n in letter_of.items() if record_id not in left}
        for word, path in RELEASED_BATCHABLE.items():
            written |= await self._released(to_qbo, path, word, letters)
        log.info(
            "dead_letters_batched",
            connection_id=str(connection.id),
            letters=len(letters),
            batched=len(written),
            requests=documents.requests + payments.requests + to_qbo.requests + to_qbo.write_backs,
        )
        return written

    async def _released(
        self, to_qbo: BatchedDocumentsToQbo, path: str, word: str, letters: list[Letter]
    ) -> set[int]:
        """Dead-lettered Re-Leased documents of one collection, read back in one listing and
        created in QBO in batches where plain: the letters done that way."""
        letter_of = {
            event.entity_id: letter_id
            for letter_id, event in letters
            if event.source == "released" and event.entity == word
        }
        if not letter_of:
            return set()
        ids = list(letter_of)
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), IDS_PER_LISTING):
            chunk = ",".join(ids[start : start + IDS_PER_LISTING])
            found += await to_qbo.documents.released.list_all(path, ids=chunk)
        found = [d for d in found if str(d.get("id")) in letter_of]
        left = {str(d["id"]) for d in await to_qbo.run(found)}
        return {letter_of[str(d["id"])] for d in found if str(d["id"]) not in left}
