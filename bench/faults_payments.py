"""Payments under the faults: money applied twice is the duplicate that costs most.

A bookkeeper in QBO keeps invoicing a new customer and, once the invoice has reached Re-Leased,
records a payment of half of it. The product copies each payment to Re-Leased as a payment on the
linked invoice. At the end, per paid invoice, Re-Leased must hold exactly one active payment of
the amount: none is lost, more than one is a payment applied twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import asyncpg
from faults_load import Platforms

# Half the invoice: a payment applied twice still fits the amount due, so Re-Leased accepts it
# and it shows (paying in full, the second would be refused as an overpayment and hide).
TOTAL, AMOUNT = "100.00", "50.00"
LINK_WAIT_S = 180.0
_ERRORS = (aiohttp.ClientError, RuntimeError, TimeoutError, KeyError)


@dataclass
class Payments:
    platforms: Platforms
    dsn: str
    every_s: float = 5.0
    paid: list[str] = field(default_factory=list)  # QBO invoice ids with their payment made
    unlinked: list[str] = field(default_factory=list)  # invoices not in Re-Leased in time
    customers_made: int = 0  # QBO customer writes of the bookkeeper's (not the product's)
    _item: str = ""
    _bank: str = ""

    async def _query_one(self, statement: str) -> str:
        body = await self.platforms.qbo("GET", "query", params={"query": statement})
        rows = next(iter(v for v in body["QueryResponse"].values() if isinstance(v, list)))
        return str(rows[0]["Id"])

    async def _write(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        """A QBO write, retried as a person would until QBO accepts it."""
        while True:
            try:
                answer = await self.platforms.qbo("POST", entity.lower(), json=body)
                made: dict[str, Any] = answer[entity]
                return made
            except _ERRORS:
                await asyncio.sleep(1)

    async def run(self, stop: asyncio.Event) -> None:
        self._item = await self._query_one("select * from Item where Name = 'Services'")
        self._bank = await self._query_one("select * from Account where Name = 'Checking'")
        n = 0
        while not stop.is_set():
            await self.one(n)
            n += 1
            await asyncio.sleep(self.every_s)

    async def one(self, n: int) -> None:
        today = dt.datetime.now(dt.UTC).date().isoformat()
        customer = await self._write("Customer", {"DisplayName": f"Payer {n:04d} {time.time()}"})
        self.customers_made += 1
        line = {
            "Amount": TOTAL,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": self._item}, "Qty": "1",
                                    "UnitPrice": TOTAL, "TaxCodeRef": {"value": "NON"}},
        }  # fmt: skip
        ref = {"value": customer["Id"]}
        invoice = await self._write(
            "Invoice", {"CustomerRef": ref, "TxnDate": today, "Line": [line]}
        )
        if await self._released_id(str(invoice["Id"]), LINK_WAIT_S) is None:
            self.unlinked.append(str(invoice["Id"]))  # not paid; checked again at the end
            return
        await self._write("Payment", {
            "CustomerRef": ref, "TotalAmt": AMOUNT, "TxnDate": today,
            "DepositToAccountRef": {"value": self._bank},
            "Line": [{"Amount": AMOUNT,
                      "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
        })  # fmt: skip
        self.paid.append(str(invoice["Id"]))

    async def _released_id(self, qbo_invoice: str, wait_s: float) -> str | None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                conn = await asyncpg.connect(self.dsn)
                try:
                    found = await conn.fetchval(
                        "SELECT released_id FROM links WHERE qbo_type = 'Invoice' AND qbo_id = $1",
                        qbo_invoice,
                    )
                finally:
                    await conn.close()
                if found is not None:
                    return str(found)
            except (OSError, asyncpg.PostgresError):
                pass  # the PostgreSQL restart
            await asyncio.sleep(1)
        return None

    async def still_unlinked(self) -> list[str]:
        """Invoices that had not reached Re-Leased when they were to be paid, and still have not."""
        return [i for i in self.unlinked if await self._released_id(i, 0.5) is None]

    async def check(self) -> tuple[list[str], int]:
        """(paid invoices without their payment in Re-Leased, payments beyond one per invoice)."""
        active: Counter[str] = Counter()
        page = 1
        while True:
            params = {"pageSize": "1000", "page": str(page)}
            body = await self.platforms.rl("GET", "payments", params=params)
            for payment in body["items"]:
                if payment["status"] == "ACTIVE" and Decimal(str(payment["amount"])) == Decimal(
                    AMOUNT
                ):
                    active[str(payment["documentId"])] += 1
            if page >= int(body["pagination"]["pageCount"]):
                break
            page += 1
        missing: list[str] = []
        extra = 0
        for qbo_invoice in self.paid:
            released = await self._released_id(qbo_invoice, 5)
            count = active.get(released or "", 0)
            if count == 0:
                missing.append(qbo_invoice)
            extra += max(0, count - 1)
        return missing, extra
