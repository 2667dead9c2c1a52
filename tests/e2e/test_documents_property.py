"""Property: random interleavings of allowed document edits on both sides, under duplicated,
reordered and dropped webhooks and injected 5xx/429, end with both sides agreeing field by field
and no duplicate anywhere (the reconciler heals what the dropped webhooks never said).

Bounded on purpose (a handful of short examples) so the e2e suite stays within minutes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.adapters.broker import EventPublisher
from shared.adapters.connections import Connection
from shared.sync.reconciler import Reconciler
from tests.e2e.stack import Stack, consumers
from tests.e2e.test_documents_e2e import (
    TODAY,
    assert_sides_agree,
    customer,
    item_id,
    rl_body,
    sales_line,
    seed_links,
    settle,
)

pytestmark = pytest.mark.e2e

ACTIONS = ("qbo_new", "qbo_edit", "rl_new", "rl_edit", "rl_approve", "both_edit")
STEPS = st.lists(
    st.tuples(
        st.sampled_from(ACTIONS),
        st.integers(min_value=0, max_value=3),
        st.sampled_from(["10.00", "25.50", "99.99", "1234.56"]),
    ),
    min_size=2,
    max_size=5,
)


async def tolerant(stack: Stack, method: str, url: str, body: Any = None) -> Any:
    """A user action that may be refused (e.g. editing a PAID document): that is allowed."""
    async with stack.http.request(method, url, json=body) as response:
        return await response.json(content_type=None) if response.status < 400 else None


async def linked_released_id(pool: asyncpg.Pool, connection: Connection, qbo_id: str) -> Any:
    async with pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT released_id FROM links WHERE connection_id = $1 AND qbo_type = 'Invoice' "
            "AND qbo_id = $2",
            connection.id,
            qbo_id,
        )


class World:
    """Both sandboxes as a user sees them, plus what each step created."""

    def __init__(self, stack: Stack, realm: str, company: str, ids: dict[str, str]) -> None:
        self.stack, self.realm, self.company, self.ids = stack, realm, company, ids
        self.qbo_docs: list[str] = []
        self.rl_docs: list[str] = []
        self.customer = ""
        self.item = ""

    def qbo_ui(self, path: str) -> str:
        return f"{self.stack.qbo_base}/_sandbox/realms/{self.realm}/ui/{path}"

    def rl_user(self, path: str) -> str:
        return f"{self.stack.released_base}/_sandbox/companies/{self.company}/as-user{path}"

    async def qbo_edit(self, qbo_id: str, amount: str) -> None:
        body = {"Id": qbo_id, "Line": [sales_line(self.item, "1", amount)]}
        await tolerant(self.stack, "POST", self.qbo_ui("invoice"), body)

    async def rl_edit(self, rl_id: str, amount: str) -> None:
        lines = [{"description": "Fit-out", "unitAmount": amount, "accountId": self.ids["item"]}]
        await tolerant(self.stack, "PATCH", self.rl_user(f"/invoices/{rl_id}"), {"lines": lines})

    async def step(self, action: str, pick: int, amount: str, pool: Any, conn: Any) -> None:
        if action == "qbo_new":
            body = {
                "CustomerRef": {"value": self.customer},
                "TxnDate": TODAY,
                "Line": [sales_line(self.item, "1", amount)],
            }
            made = await tolerant(self.stack, "POST", self.qbo_ui("invoice"), body)
            if made:
                self.qbo_docs.append(str(made.get("Invoice", made)["Id"]))
        elif action == "rl_new":
            status = ("DRAFT", "AWAITING_APPROVAL", "APPROVED")[pick % 3]
            body = rl_body("INCOME", self.ids["customer"], self.ids["item"], status)
            made = await tolerant(self.stack, "POST", self.rl_user("/invoices"), body)
            if made:
                self.rl_docs.append(str(made["id"]))
        elif action == "qbo_edit" and self.qbo_docs:
            await self.qbo_edit(self.qbo_docs[pick % len(self.qbo_docs)], amount)
        elif action == "rl_edit" and self.rl_docs:
            await self.rl_edit(self.rl_docs[pick % len(self.rl_docs)], amount)
        elif action == "rl_approve" and self.rl_docs:
            doc = self.rl_docs[pick % len(self.rl_docs)]
            await tolerant(self.stack, "POST", self.rl_user(f"/invoices/{doc}/approve"))
        elif action == "both_edit" and self.qbo_docs:
            qbo_id = self.qbo_docs[pick % len(self.qbo_docs)]
            rl_id = await linked_released_id(pool, conn, qbo_id)
            await self.qbo_edit(qbo_id, amount)
            if rl_id:  # a concurrent edit: the merge decides, QBO wins a clash
                await self.rl_edit(str(rl_id), str(Decimal(amount) + 1))


async def faults_on(stack: Stack, realm: str, company: str) -> None:
    await stack.call(
        "PUT",
        f"{stack.qbo_base}/_sandbox/realms/{realm}/faults",
        json={
            "error_503_rate": 0.1,
            "webhook_drop_rate": 0.3,
            "webhook_duplicate_rate": 0.3,
            "webhook_reorder": True,
        },
    )
    await stack.call(
        "PUT",
        f"{stack.released_base}/_sandbox/companies/{company}/faults",
        json={
            "errorRate": 0.1,
            "errorStatus": 503,
            "rateLimitRate": 0.1,
            "deliveries": {"duplicateRate": 0.3, "dropRate": 0.3, "reorder": True},
        },
    )


async def converge(stack: Stack, connection: Connection, pool: asyncpg.Pool, broker: Any) -> None:
    """Reconcile until both sides agree (dropped webhooks are only healed this way)."""
    publisher = await EventPublisher.open(broker)
    reconciler = Reconciler(pool, publisher)
    qbo, released = stack.factory.qbo(connection), stack.factory.released(connection)
    try:
        for attempt in range(8):
            await reconciler.reconcile(connection, qbo, released)
            await settle(2.0)
            try:
                await assert_sides_agree(stack, connection, pool)
                return
            except AssertionError:
                if attempt == 7:
                    raise
    finally:
        await publisher.close()


@settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
async def test_random_edits_under_faults_converge_without_duplicates(
    stack: Stack,
    pool: asyncpg.Pool,
    broker: AbstractRobustConnection,
    steps: list[tuple[str, int, str]],
) -> None:
    realm, tokens = await stack.qbo_realm()
    company = await stack.released_company()
    await asyncio.sleep(1.1)  # CDC works in whole seconds: seed data predates the connection
    connection = await stack.connect(realm, tokens, company)
    qbo = stack.factory.qbo(connection)
    async with consumers(stack.settings):
        world = World(stack, realm, company, await seed_links(stack, qbo, pool, connection))
        world.customer, world.item = str((await customer(qbo))["Id"]), await item_id(qbo)
        await faults_on(stack, realm, company)
        for action, pick, amount in steps:
            await world.step(action, pick, amount, pool, connection)
        await settle(1.0)
        await converge(stack, connection, pool, broker)
    qbo_invoices = await qbo.query_all("Invoice")
    async with pool.acquire() as conn:
        linked = await conn.fetchval(
            "SELECT count(*) FROM links WHERE connection_id = $1 AND qbo_type = 'Invoice'",
            connection.id,
        )
    assert linked == len(qbo_invoices), "every QBO invoice has exactly one Re-Leased twin"
