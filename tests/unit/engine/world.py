"""One connected company in memory: a fake QBO realm, a fake Re-Leased company, the engine's store,
and the engine wired to them exactly as the composition root wires the real ones."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain.connections import Connection
from shared.domain.events import ChangeEvent
from shared.domain.ownership import OWNERSHIP_TABLE, OwnershipPolicy, Rule
from shared.sync.context import Result
from shared.sync.engine import Direction, SyncEngine
from shared.sync.listings import ListingCache
from tests.unit.engine.fake_qbo import FakeQbo
from tests.unit.engine.fake_released import FakeReleased
from tests.unit.engine.fake_store import FakeOutcomes, FakeStore

REALM, COMPANY = "realm-1", "company-1"
TODAY = "2026-11-20"
_events = itertools.count(1)


@dataclass
class FakeClients:
    qbo_api: FakeQbo
    released_api: FakeReleased

    def qbo(self, connection: Connection) -> FakeQbo:
        return self.qbo_api

    def released(self, connection: Connection) -> FakeReleased:
        return self.released_api


@dataclass
class FakeConnections:
    connection: Connection

    async def connection_for(self, event: ChangeEvent) -> Connection | None:
        account = self.connection.qbo_realm_id if event.source == "qbo" else COMPANY
        return self.connection if event.account_id == account else None


@dataclass
class World:
    qbo: FakeQbo = field(default_factory=FakeQbo)
    released: FakeReleased = field(default_factory=FakeReleased)
    store: FakeStore = field(default_factory=FakeStore)
    errors: FakeOutcomes = field(default_factory=FakeOutcomes)
    settings: dict[str, Any] = field(default_factory=dict)
    table: tuple[Rule, ...] = OWNERSHIP_TABLE
    connection_id: uuid.UUID = field(default_factory=uuid.uuid4)
    # The consumer process's kept listings: one engine's life spans every delivery.
    listings: ListingCache = field(default_factory=ListingCache)

    @property
    def connection(self) -> Connection:
        return Connection(self.connection_id, COMPANY, REALM, "active", dict(self.settings))

    def engine(self, direction: Direction) -> SyncEngine:
        return SyncEngine(
            direction,
            connections=FakeConnections(self.connection),
            clients=FakeClients(self.qbo, self.released),
            errors=self.errors,
            policy=OwnershipPolicy(self.table),
            listings=self.listings,
        )

    async def deliver(self, event: ChangeEvent) -> Result:
        """Apply one event as a consumer would: inside a transaction that a failure undoes."""
        direction: Direction = "qbo_to_released" if event.source == "qbo" else "released_to_qbo"
        async with self.store.transaction():
            return await self.engine(direction).handle(event, self.store)

    async def from_qbo(self, entity: str, entity_id: str, operation: str = "update") -> Result:
        return await self.deliver(qbo_event(entity, entity_id, operation))

    async def from_released(self, category: str, entity_id: str, **extra: Any) -> Result:
        return await self.deliver(released_event(category, entity_id, **extra))

    # -- what a connected company has ----------------------------------------------------------

    def seed_qbo_books(self) -> dict[str, str]:
        """QBO's master data: a sales item, a bank and an expense account, one 8 % tax code."""
        income = self.qbo.seed("Account", Name="Rent Income", AccountType="Income")
        item = self.qbo.seed("Item", Name="Services", IncomeAccountRef={"value": income["Id"]})
        bank = self.qbo.seed("Account", Name="Checking", AccountType="Bank")
        expense = self.qbo.seed("Account", Name="Repairs", AccountType="Expense")
        self.qbo.seed("Account", Name="Receivable", AccountType="Accounts Receivable")
        rate = self.qbo.seed("TaxRate", Name="State", RateValue="8")
        code = self.qbo.seed(
            "TaxCode",
            Name="State Sales Tax",
            SalesTaxRateList={"TaxRateDetail": [{"TaxRateRef": {"value": rate["Id"]}}]},
        )
        return {
            "item": item["Id"],
            "bank": bank["Id"],
            "expense": expense["Id"],
            "tax_rate": rate["Id"],
            "tax_code": code["Id"],
        }

    def qbo_invoice(self, customer: str, item: str, amount: str, **extra: Any) -> dict[str, Any]:
        line = {
            "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "Description": "Rent",
            "SalesItemLineDetail": {
                "ItemRef": {"value": item},
                "Qty": "1",
                "UnitPrice": amount,
                "TaxCodeRef": {"value": "NON"},
            },
        }
        body = {"CustomerRef": {"value": customer}, "TxnDate": TODAY, "Line": [line], **extra}
        return self.qbo.seed("Invoice", **body)


def qbo_event(entity: str, entity_id: str, operation: str = "update") -> ChangeEvent:
    return ChangeEvent(
        event_id=f"qbo-e{next(_events)}",
        source="qbo",
        account_id=REALM,
        entity=entity,
        entity_id=entity_id,
        operation=operation,
        occurred_at=datetime.now(UTC),
    )


def released_event(category: str, entity_id: str, **extra: Any) -> ChangeEvent:
    return ChangeEvent(
        event_id=f"rl-e{next(_events)}",
        source="released",
        account_id=COMPANY,
        entity=category,
        entity_id=entity_id,
        operation=extra.pop("operation", "updated"),
        occurred_at=datetime.now(UTC),
        **extra,
    )
