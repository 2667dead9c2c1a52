"""The initial import's bulk path for QBO customers and vendors: batches, one listing.

One record per request cannot import a real company at Re-Leased's 60 requests a minute. Here the
import lists Re-Leased's contacts once, finds each QBO customer's and vendor's counterpart the way
the engine does (same name, else same e-mail: shared.sync.contacts), and writes in batches of up
to 50 (``POST /contacts/batch``): a create for a contact Re-Leased lacks, a role flag for one it
has. Each batch runs in one database transaction that holds the engine's own lock on every name in
it (``contact-name``) and saves the links the engine would have saved, so the webhooks of these
writes find their link and are echoes, and a live change to one of these contacts waits for it.

What is not plain stays with the engine (its events are published as before): records already
linked, inactive ones, ones the mapping refuses (a foreign currency), a second QBO record with the
same name in one stage, and any item the batch refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

import asyncpg

from shared.adapters.postgres.links import LinkRepository
from shared.adapters.postgres.twins import TwinLedger
from shared.adapters.released.client import BATCH_LIMIT, ReleasedClient
from shared.domain.canonical import normalise_name
from shared.domain.connections import Connection, effective_settings
from shared.domain.errors import PermanentError
from shared.domain.mapping.contacts import contact_from_qbo, contact_to_released
from shared.infra.logging import get_logger
from shared.ingest.batch_writer import write_batched
from shared.ingest.import_documents import written

log = get_logger("import")
ROLE_FLAG = {"Customer": "isCustomer", "Vendor": "isSupplier"}

Record = dict[str, Any]


@dataclass
class _Planned:
    record: Record  # the QBO record
    fields: Record  # its canonical contact
    item: Record | None  # the batch item (None: already right in Re-Leased, link only)
    existing: Record | None  # the Re-Leased contact it matched


@dataclass
class ContactIndex:
    """Re-Leased's contacts from one listing, by natural key, kept current as batches land."""

    by_name: dict[str, Record] = field(default_factory=dict)
    by_email: dict[str, Record] = field(default_factory=dict)

    def add(self, contact: Record) -> None:
        self.by_name.setdefault(normalise_name(str(contact.get("name", ""))), contact)
        email = str(contact.get("email") or "").casefold()
        if email:
            self.by_email.setdefault(email, contact)

    def find(self, fields: Record) -> Record | None:
        found = self.by_name.get(normalise_name(fields["name"]))
        email = (fields.get("email") or "").casefold()
        return found or (self.by_email.get(email) if email else None)


@dataclass
class BatchedContacts:
    pool: asyncpg.Pool
    released: ReleasedClient
    connection: Connection
    index: ContactIndex = field(default_factory=ContactIndex)
    requests: int = 0

    async def load(self) -> None:
        for contact in await self.released.list_all("/contacts", includeArchived="true"):
            self.index.add(contact)

    async def run(self, qbo_type: str, records: list[Record]) -> list[Record]:
        """Write what is plain in batches; the records left for the engine."""
        return await write_batched(
            self.connection,
            qbo_type,
            len(records),
            await self._plan(qbo_type, records),
            partial(self._write, qbo_type),
            limit=BATCH_LIMIT,
            requests=lambda: self.requests,
        )

    async def _plan(
        self, qbo_type: str, records: list[Record]
    ) -> tuple[list[_Planned], list[Record]]:
        linked = await self._linked(qbo_type, [str(r["Id"]) for r in records])
        suffix = effective_settings(self.connection.settings or {}).contact_clash_suffix
        planned: list[_Planned] = []
        left: list[Record] = []
        names: set[str] = set()
        flag = ROLE_FLAG[qbo_type]
        for record in records:
            try:
                fields = contact_from_qbo(record, suffix if qbo_type == "Vendor" else "")
            except PermanentError:
                left.append(record)
                continue
            name = normalise_name(fields["name"])
            if str(record["Id"]) in linked or not fields["active"] or name in names:
                left.append(record)
                continue
            names.add(name)
            existing = self.index.find(fields)
            if existing is None:
                item: Record | None = {**contact_to_released(fields), flag: True}
            elif existing.get(flag):
                item = None
            else:
                item = {"id": existing["id"], "version": existing["version"], flag: True}
            planned.append(_Planned(record, fields, item, existing))
        return planned, left

    async def _linked(self, qbo_type: str, ids: list[str]) -> set[str]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT qbo_id FROM links WHERE connection_id = $1 AND qbo_type = $2 "
                "AND qbo_id = ANY($3::text[])",
                self.connection.id,
                qbo_type,
                ids,
            )
        return {str(r["qbo_id"]) for r in rows}

    async def _write(self, qbo_type: str, chunk: list[_Planned]) -> list[Record]:
        left: list[Record] = []
        async with self.pool.acquire() as conn, conn.transaction():
            names = sorted({normalise_name(p.fields["name"]) for p in chunk})
            for name in names:
                # The engine's own lock for this name (shared.sync.contacts): until we commit the
                # links, its handling of these contacts' webhooks waits, then sees them linked.
                key = f"{self.connection.id}:contact-name:{name}"
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
            # A live change may have linked some since the plan (the engine got there first):
            # those are done, and writing them again would make twins.
            taken = await conn.fetch(
                "SELECT qbo_id FROM links WHERE connection_id = $1 AND qbo_type = $2 "
                "AND qbo_id = ANY($3::text[])",
                self.connection.id,
                qbo_type,
                [str(p.record["Id"]) for p in chunk],
            )
            done = {str(r["qbo_id"]) for r in taken}
            chunk = [p for p in chunk if str(p.record["Id"]) not in done]
            writes = [p for p in chunk if p.item is not None]
            results = await self._send(qbo_type, writes)
            # Known as ours at once (committed apart from this transaction): the notifications
            # of these creates come back once the links are in, instead of each reading its
            # contact on the live lane's budget only to find an echo.
            await TwinLedger(self.pool).record_many(
                self.connection.id,
                "released",
                "contact",
                [
                    (str(result["item"]["id"]), str(p.record["Id"]))
                    for p, result in zip(writes, results, strict=True)
                    if p.existing is None and written(result)
                ],
            )
            links = LinkRepository(conn)
            for planned in chunk:
                contact = planned.existing
                if planned.item is not None:
                    result = results[writes.index(planned)]
                    if not written(result):
                        left.append(planned.record)
                        continue
                    contact = result["item"]
                assert contact is not None
                self.index.add(contact)
                await links.save(
                    self.connection.id,
                    "contact",
                    qbo_type,
                    qbo=(str(planned.record["Id"]), str(planned.record.get("SyncToken"))),
                    released=(str(contact["id"]), str(contact.get("version"))),
                    snapshot=planned.fields,
                )
        return left

    async def _send(self, qbo_type: str, writes: list[_Planned]) -> list[Record]:
        if not writes:
            return []
        items = [p.item for p in writes if p.item is not None]
        self.requests += 1
        key = _key(self.connection.id, qbo_type, items)
        return await self.released.batch("/contacts", items, idempotency_key=key)


def _key(connection_id: UUID, qbo_type: str, items: list[Record]) -> str:
    """The same batch sent again (a retried import) replays; changed content is a new request."""
    material = json.dumps([str(connection_id), qbo_type, items], sort_keys=True, default=str)
    return f"import-batch:{hashlib.sha256(material.encode()).hexdigest()[:32]}"
