"""Connecting a company: its own accounts, tax rates and tracking categories meet QBO's.

A Re-Leased company has master data of its own before it connects. Once connected, QBO is the only
manager of master data, so before the import publishes QBO's records we line the two up, writing
through the accounting side (our client made the connection):

- an account (or sales/purchase item) is *mapped* to QBO's when the codes agree, else when the
  names agree (case and spacing aside, same kind); a name match gets QBO's code, so the engine's
  own lookup by code adopts it when QBO's record arrives (its name, type and status follow);
- a tax rate is mapped when the names agree (the engine adopts by name the same way);
- tracking: options are mapped to QBO classes by name, in any category (property tracking is
  usually QBO's classes); a category keeps its mapped options, linked to their classes, and loses
  the rest (``alignment_tracking``); "QBO Classes" is the engine's own and is mapped whole;
- everything active without a counterpart is *archived* (``status`` ARCHIVED, never deleted), so
  that after connecting a user can only pick what comes from QBO; documents that already use it
  keep it.

The report (what was mapped, by what, and what was archived) is logged (``master_data_aligned``)
and kept in the connection's cursors (``import:alignment``), which the admin API shows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg

from shared.adapters.postgres.cursors import CursorRepository
from shared.adapters.postgres.links import LinkRepository
from shared.adapters.postgres.twins import TwinLedger
from shared.adapters.released.client import ReleasedClient
from shared.domain.canonical import normalise_name
from shared.domain.mapping.masterdata import account_from_qbo, tracking_from_released
from shared.infra.logging import get_logger
from shared.ingest.alignment_tracking import is_engine_category, match_options
from shared.sync.listings import key_entity
from shared.sync.masterdata import ACCOUNT

log = get_logger("import")
ALIGNMENT_CURSOR = "import:alignment"

Record = dict[str, Any]


@dataclass
class AlignmentReport:
    mapped: list[Record] = field(default_factory=list)
    archived: list[Record] = field(default_factory=list)

    def document(self) -> Record:
        counts: dict[str, dict[str, int]] = {}
        for outcome, items in (("mapped", self.mapped), ("archived", self.archived)):
            for item in items:
                kind = counts.setdefault(item["kind"], {"mapped": 0, "archived": 0})
                kind[outcome] += 1
        return {"counts": counts, "mapped": self.mapped, "archived": self.archived}


def _active(records: Iterable[Record], flag: str = "Active") -> list[Record]:
    return [r for r in records if bool(r.get(flag, True))]


def _by(records: Iterable[Record], key: Callable[[Record], str]) -> dict[str, Record]:
    found: dict[str, Record] = {}
    for record in records:
        found.setdefault(key(record), record)
    return found


@dataclass
class MasterDataAlignment:
    pool: asyncpg.Pool

    async def run(
        self, connection_id: UUID, released: ReleasedClient, qbo: dict[str, list[Record]]
    ) -> AlignmentReport:
        """``qbo``: QBO's Account, Item, TaxRate and Class records (as the import read them)."""
        report = AlignmentReport()
        writer = _Writer(released, connection_id, report)
        await self._accounts(released, qbo, writer)
        await self._tax_rates(released, qbo, writer)
        await self._tracking(connection_id, released, qbo, writer)
        document = report.document()
        await CursorRepository(self.pool).set(connection_id, ALIGNMENT_CURSOR, json.dumps(document))
        log.info(
            "master_data_aligned",
            connection_id=str(connection_id),
            counts=document["counts"],
            archived=[(a["kind"], a["name"]) for a in report.archived][:50],
        )
        return report

    async def _accounts(
        self, released: ReleasedClient, qbo: dict[str, list[Record]], writer: _Writer
    ) -> None:
        theirs = [
            {**account_from_qbo(qbo_type, r), "id": f"{qbo_type}:{r['Id']}"}
            for qbo_type in ("Account", "Item")
            for r in _active(qbo.get(qbo_type, []))
        ]
        by_code = _by(theirs, lambda f: str(f["code"]))
        by_name = _by(theirs, lambda f: f"{f['kind']}:{normalise_name(str(f['name']))}")
        taken: set[str] = set()
        for account in await released.list_all("/accounts"):
            code = str(account.get("code") or "")
            name_key = f"{account.get('kind', 'ACCOUNT')}:{normalise_name(str(account['name']))}"
            match, by = by_code.get(code), "code"
            if match is None or match["id"] in taken:
                match, by = by_name.get(name_key), "name"
            if match is None or match["id"] in taken:
                await writer.archive("account", "/accounts", account)
                continue
            taken.add(match["id"])
            if by == "name" and code != match["code"]:
                # QBO's code, so the engine's lookup by code adopts this account. Entered in
                # the twin ledger first: a listing kept from before misses the new code, and
                # this tells it to look again (``shared.sync.listings``).
                new_code = str(match["code"])[:32]
                await TwinLedger(self.pool).record(
                    writer.connection_id,
                    "released",
                    key_entity("account"),
                    f"align:{account['id']}:{new_code}",
                    ACCOUNT.natural_key({"code": new_code}),
                )
                await writer.patch("/accounts", account, {"code": new_code})
            writer.mapped("account", account, match["id"], by)

    async def _tax_rates(
        self, released: ReleasedClient, qbo: dict[str, list[Record]], writer: _Writer
    ) -> None:
        names = _by(_active(qbo.get("TaxRate", [])), lambda r: normalise_name(str(r["Name"])))
        taken: set[str] = set()
        for rate in await released.list_all("/tax-rates"):
            match = names.get(normalise_name(str(rate["name"])))
            if match is None or match["Id"] in taken:
                await writer.archive("tax_rate", "/tax-rates", rate)
                continue
            taken.add(str(match["Id"]))
            writer.mapped("tax_rate", rate, f"TaxRate:{match['Id']}", "name")

    async def _tracking(
        self,
        connection_id: UUID,
        released: ReleasedClient,
        qbo: dict[str, list[Record]],
        writer: _Writer,
    ) -> None:
        classes = qbo.get("Class", [])
        taken: set[str] = set()
        for category in await released.list_all("/tracking-categories"):
            if is_engine_category(category):
                writer.mapped("tracking_category", category, "Class", "name")
                continue
            matched = match_options(category, classes, taken)
            if not matched:
                await writer.archive("tracking_category", "/tracking-categories", category)
                continue
            writer.mapped("tracking_category", category, "Class", "option_names")
            await self._keep_matched(connection_id, category, matched, writer)

    async def _keep_matched(
        self, connection_id: UUID, category: Record, matched: dict[str, Record], writer: _Writer
    ) -> None:
        """Archive the category's options no class stands for; link the others to theirs."""
        options = [dict(o) for o in category.get("options") or []]
        strays = [o for o in options if o["id"] not in matched and o.get("status") != "ARCHIVED"]
        for option in strays:
            option["status"] = "ARCHIVED"
        if strays:
            path = "/tracking-categories"
            await writer.patch(path, category, {"options": options})
        for option in strays:
            writer.archived_item("tracking_option", option)
        async with self.pool.acquire() as conn:
            links = LinkRepository(conn)
            for option in category.get("options") or []:
                found = matched.get(str(option["id"]))
                if found is None:
                    continue
                await links.save(
                    connection_id,
                    "tracking_class",
                    "Class",
                    qbo=(str(found["Id"]), None),
                    released=(f"{category['id']}:{option['id']}", str(category.get("version"))),
                    snapshot=tracking_from_released(option),
                )
                writer.mapped("tracking_option", option, f"Class:{found['Id']}", "name")


@dataclass
class _Writer:
    """The accounting side's writes of one alignment, each with its own idempotency key."""

    released: ReleasedClient
    connection_id: UUID
    report: AlignmentReport

    def mapped(self, kind: str, record: Record, qbo_key: str, by: str) -> None:
        item = {"kind": kind, "released_id": str(record["id"]), "name": str(record["name"])}
        self.report.mapped.append({**item, "qbo": qbo_key, "by": by})

    async def patch(self, path: str, record: Record, body: Record) -> Record:
        key = f"align:{self.connection_id}:{record['id']}:{record.get('version')}"
        written = await self.released.accounting(
            "PATCH",
            f"{path}/{record['id']}",
            body=body,
            idempotency_key=key,
            if_match=record.get("version"),
        )
        record.update(written)
        return written

    async def archive(self, kind: str, path: str, record: Record) -> None:
        await self.patch(path, record, {"status": "ARCHIVED"})
        self.archived_item(kind, record)

    def archived_item(self, kind: str, record: Record) -> None:
        item = {"kind": kind, "released_id": str(record["id"]), "name": str(record["name"])}
        self.report.archived.append(item)
