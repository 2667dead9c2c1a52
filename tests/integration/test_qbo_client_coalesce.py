"""Coalesced QBO reads against the QBO sandbox: concurrent gets share one request, and every
caller still sees exactly what its own plain get would have given it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import pytest
from cryptography.fernet import Fernet

from sandboxes.qbo.app import create_app
from shared.adapters.clients import ClientFactory
from shared.adapters.crypto import TokenCipher
from shared.adapters.postgres.budgets import ApiBudget, Limits
from shared.adapters.qbo.client import QboClient
from shared.adapters.qbo.coalesce import CoalesceOptions, ReadCoalescer
from shared.adapters.qbo.tokens import QboOAuth, QboTokens, QboTokenStore
from shared.domain.errors import NotFound, TransientError
from shared.infra.settings import EngineSettings
from tests.integration.qbo_sandbox_helpers import CLIENT_ID, CLIENT_SECRET, VERIFIER, settings
from tests.support.servers import serving

pytestmark = pytest.mark.integration


class CountingBudget(ApiBudget):
    """The realm budget, counting the tokens taken (one per HTTP request sent)."""

    def __init__(self, pool: asyncpg.Pool, limits: Limits) -> None:
        super().__init__(pool, limits)
        self.taken = 0

    @asynccontextmanager
    async def acquire(self, key: str) -> AsyncIterator[None]:
        self.taken += 1
        async with super().acquire(key):
            yield


class CountingOAuth(QboOAuth):
    refreshes = 0

    async def refresh(self, refresh_token: str) -> QboTokens:
        self.refreshes += 1
        return await super().refresh(refresh_token)


@dataclass
class World:
    base: str
    http: aiohttp.ClientSession
    pool: asyncpg.Pool
    store: QboTokenStore
    oauth: CountingOAuth
    budget: CountingBudget
    batches: ApiBudget
    coalescers: dict[uuid.UUID, ReadCoalescer] = field(default_factory=dict)

    async def realm(self) -> tuple[str, uuid.UUID]:
        async with self.http.post(f"{self.base}/_sandbox/realms", json={"companyName": "C"}) as r:
            realm = str((await r.json())["realmId"])
        async with self.http.post(f"{self.base}/_sandbox/realms/{realm}/tokens") as r:
            tokens = QboTokens.from_response(await r.json())
        conn_id: uuid.UUID = await self.pool.fetchval(
            "INSERT INTO connections (released_company_id, qbo_realm_id, status) "
            "VALUES ($1, $2, 'active') RETURNING id",
            f"qbocoalesce-{uuid.uuid4().hex[:8]}",
            realm,
        )
        await self.store.save(conn_id, tokens)
        return realm, conn_id

    def client(self, realm: str, conn_id: uuid.UUID, *, coalesce: bool = True) -> QboClient:
        """A new client each time, as the engine builds one per event, sharing the
        connection's coalescer as the ``ClientFactory`` does."""
        coalescer = None
        if coalesce:
            coalescer = self.coalescers.setdefault(
                conn_id, ReadCoalescer(CoalesceOptions(batch_budget=self.batches))
            )
        return QboClient(
            self.http, self.base, realm, conn_id, self.store, self.budget, coalescer=coalescer
        )

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.base}/_sandbox{path}", json=body) as r:
            return await r.json(content_type=None) if r.status != 204 else None

    async def requests(self, realm: str) -> list[dict[str, Any]]:
        log = await self.control("GET", f"/realms/{realm}/requests")
        return list(log["requests"])

    async def forget_requests(self, realm: str) -> None:
        await self.control("DELETE", f"/realms/{realm}/requests")
        self.budget.taken = 0


@pytest.fixture
async def world(pool: asyncpg.Pool) -> AsyncIterator[World]:
    app = create_app(settings(qbo_sandbox_rate_limits=False))
    async with serving(app) as base, aiohttp.ClientSession() as http:
        oauth = CountingOAuth(http, base, CLIENT_ID, CLIENT_SECRET)
        store = QboTokenStore(pool, TokenCipher(Fernet.generate_key().decode()), oauth)
        budget = CountingBudget(pool, Limits(per_minute=6000, concurrent=10, burst=1000))
        batches = ApiBudget(pool, Limits(per_minute=40, concurrent=1, burst=10))
        yield World(base, http, pool, store, oauth, budget, batches)
    await pool.execute("DELETE FROM connections WHERE released_company_id LIKE 'qbocoalesce-%'")
    await pool.execute("DELETE FROM api_budgets WHERE key LIKE 'qbo-batch:%'")


async def _invoices(client: QboClient, count: int) -> tuple[str, list[str]]:
    """A customer and ``count`` invoices for it: (customer id, invoice ids)."""
    customer = await client.write(
        "Customer", {"DisplayName": f"Coalesce {uuid.uuid4().hex[:6]}"}, request_id=uuid.uuid4().hex
    )
    (item,) = await client.query_all("Item", "Name = 'Services'")
    ids = []
    for n in range(count):
        amount = f"{10 + n}.00"
        line = {
            "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {
                "ItemRef": {"value": item["Id"]},
                "Qty": 1,
                "UnitPrice": amount,
            },
        }
        body = {"CustomerRef": {"value": customer["Id"]}, "Line": [line]}
        made = await client.write("Invoice", body, request_id=uuid.uuid4().hex)
        ids.append(str(made["Id"]))
    return str(customer["Id"]), ids


async def _plain(world: World, realm: str, conn_id: uuid.UUID, entity: str, i: str) -> Any:
    return await world.client(realm, conn_id, coalesce=False).get(entity, i)


async def test_concurrent_gets_are_one_request_and_each_caller_gets_its_record(
    world: World,
) -> None:
    realm, conn_id = await world.realm()
    _, ids = await _invoices(world.client(realm, conn_id, coalesce=False), 6)
    expected = [await _plain(world, realm, conn_id, "Invoice", i) for i in ids]
    await world.forget_requests(realm)

    got = await asyncio.gather(*(world.client(realm, conn_id).get("Invoice", i) for i in ids))

    assert got == expected
    log = await world.requests(realm)
    assert len(log) == 1, log
    assert log[0]["path"].endswith("/query")
    assert log[0]["status"] == 200
    assert world.budget.taken == 1, "one budget token per HTTP request sent"


async def test_the_same_id_twice_gives_each_caller_its_own_copy(world: World) -> None:
    realm, conn_id = await world.realm()
    _, (one, two) = await _invoices(world.client(realm, conn_id, coalesce=False), 2)
    await world.forget_requests(realm)
    a, b, c = await asyncio.gather(
        *(world.client(realm, conn_id).get("Invoice", i) for i in (one, two, one))
    )
    assert a == c
    assert a is not c
    assert b["Id"] == two
    assert len(await world.requests(realm)) == 1


async def test_a_missing_id_is_not_found_for_that_caller_only(world: World) -> None:
    realm, conn_id = await world.realm()
    _, (first, second) = await _invoices(world.client(realm, conn_id, coalesce=False), 2)
    await world.forget_requests(realm)

    got = await asyncio.gather(
        *(world.client(realm, conn_id).get("Invoice", i) for i in (first, "987654", second)),
        return_exceptions=True,
    )

    assert isinstance(got[0], dict)
    assert got[0]["Id"] == first
    assert isinstance(got[1], NotFound)
    assert isinstance(got[2], dict)
    assert got[2]["Id"] == second
    assert len(await world.requests(realm)) == 1
    with pytest.raises(NotFound):  # what the plain get says about the same id
        await _plain(world, realm, conn_id, "Invoice", "987654")


async def test_inactive_name_list_records_are_read_as_a_plain_get_reads_them(
    world: World,
) -> None:
    realm, conn_id = await world.realm()
    plain = world.client(realm, conn_id, coalesce=False)
    made = [
        await plain.write("Customer", {"DisplayName": f"Name {n}"}, request_id=f"n-{n}")
        for n in range(3)
    ]
    gone = made[1]
    await plain.write(
        "Customer",
        {"Id": gone["Id"], "SyncToken": gone["SyncToken"], "sparse": True, "Active": False},
        request_id="n-off",
    )
    ids = [str(c["Id"]) for c in made]
    expected = [await plain.get("Customer", i) for i in ids]
    await world.forget_requests(realm)

    got = await asyncio.gather(*(world.client(realm, conn_id).get("Customer", i) for i in ids))

    assert got == expected
    assert got[1]["Active"] is False
    assert len(await world.requests(realm)) == 1


async def test_mixed_types_are_one_batch(world: World) -> None:
    realm, conn_id = await world.realm()
    customer, invoices = await _invoices(world.client(realm, conn_id, coalesce=False), 2)
    (item,) = await world.client(realm, conn_id).query_all("Item", "Name = 'Services'")
    wanted = [("Invoice", invoices[0]), ("Customer", customer), ("Invoice", invoices[1])]
    wanted += [("Invoice", "876543"), ("Item", str(item["Id"]))]
    expected: list[Any] = []
    for entity, i in wanted:
        try:
            expected.append(await _plain(world, realm, conn_id, entity, i))
        except NotFound:
            expected.append(NotFound)
    await world.forget_requests(realm)

    got = await asyncio.gather(
        *(world.client(realm, conn_id).get(e, i) for e, i in wanted), return_exceptions=True
    )

    assert got[:3] == expected[:3]
    assert got[4] == expected[4]
    assert expected[3] is NotFound
    assert isinstance(got[3], NotFound)
    log = await world.requests(realm)
    assert [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in log] == [("POST", "batch")]


async def test_without_batch_allowance_each_type_is_one_request(world: World) -> None:
    realm, conn_id = await world.realm()
    customer, invoices = await _invoices(world.client(realm, conn_id, coalesce=False), 2)
    batch_key = world.client(realm, conn_id).batch_budget_key
    while await world.batches.try_take(batch_key):
        pass  # the realm's batch allowance is spent
    await world.forget_requests(realm)

    got = await asyncio.gather(
        world.client(realm, conn_id).get("Invoice", invoices[0]),
        world.client(realm, conn_id).get("Customer", customer),
        world.client(realm, conn_id).get("Invoice", invoices[1]),
    )

    assert [g["Id"] for g in got] == [invoices[0], customer, invoices[1]]
    log = await world.requests(realm)
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in log) == sorted(["query", customer])


async def test_gets_waiting_for_the_budget_share_the_next_request(
    world: World, pool: asyncpg.Pool
) -> None:
    realm, conn_id = await world.realm()
    _, ids = await _invoices(world.client(realm, conn_id, coalesce=False), 5)
    tight = CountingBudget(pool, Limits(per_minute=120, concurrent=10, burst=1))
    coalescer = ReadCoalescer(CoalesceOptions(batch_budget=world.batches))

    def client() -> QboClient:
        return QboClient(
            world.http, world.base, realm, conn_id, world.store, tight, coalescer=coalescer
        )

    await world.forget_requests(realm)
    await client().get("Invoice", ids[0])  # spends the realm's only token: ~0.5 s to the next
    tasks = []
    for i in ids:
        tasks.append(asyncio.create_task(client().get("Invoice", i)))
        await asyncio.sleep(0.03)  # one by one, while the budget is empty
    got = await asyncio.gather(*tasks)

    assert [g["Id"] for g in got] == ids
    log = await world.requests(realm)
    # The lone get, the first waiting one, then one request for the four that piled up behind it.
    assert len(log) == 3, log
    assert tight.taken == 3


async def test_a_429_reaches_every_caller(world: World) -> None:
    realm, conn_id = await world.realm()
    _, ids = await _invoices(world.client(realm, conn_id, coalesce=False), 3)
    await world.forget_requests(realm)
    await world.control("PUT", f"/realms/{realm}/faults", {"error_429_rate": 1.0})

    got = await asyncio.gather(
        *(world.client(realm, conn_id).get("Invoice", i) for i in ids), return_exceptions=True
    )

    assert all(isinstance(g, TransientError) and g.retry_after for g in got), got
    assert len({id(g) for g in got}) == len(got), "each caller raises its own exception"
    assert [r["status"] for r in await world.requests(realm)] == [429]
    assert await world.budget.blocked_for(f"qbo:{realm}") > 0


async def test_a_500_reaches_every_caller_after_the_shared_retries(world: World) -> None:
    realm, conn_id = await world.realm()
    _, ids = await _invoices(world.client(realm, conn_id, coalesce=False), 4)
    await world.forget_requests(realm)
    await world.control("PUT", f"/realms/{realm}/faults", {"error_500_rate": 1.0})

    got = await asyncio.gather(
        *(world.client(realm, conn_id).get("Invoice", i) for i in ids), return_exceptions=True
    )

    assert all(isinstance(g, TransientError) for g in got), got
    statuses = [r["status"] for r in await world.requests(realm)]
    assert statuses == [500, 500, 500], "one request, retried as a plain get retries"
    assert world.budget.taken == 3


async def test_an_expired_token_is_refreshed_once_for_all_callers(world: World) -> None:
    realm, conn_id = await world.realm()
    _, ids = await _invoices(world.client(realm, conn_id, coalesce=False), 4)
    before = await world.store.load(conn_id)
    await world.control("POST", f"/realms/{realm}/tokens/expire")
    await world.forget_requests(realm)
    world.oauth.refreshes = 0

    got = await asyncio.gather(*(world.client(realm, conn_id).get("Invoice", i) for i in ids))

    assert [g["Id"] for g in got] == ids
    assert world.oauth.refreshes == 1
    assert (await world.store.load(conn_id)).refresh_token != before.refresh_token
    assert world.budget.taken == 2, "the refused request and the one after the refresh"
    assert [r["status"] for r in await world.requests(realm)] == [200]


async def test_a_lone_get_is_the_plain_get(world: World) -> None:
    realm, conn_id = await world.realm()
    _, (one,) = await _invoices(world.client(realm, conn_id, coalesce=False), 1)
    await world.forget_requests(realm)
    record = await world.client(realm, conn_id).get("Invoice", one)
    assert record["Id"] == one
    log = await world.requests(realm)
    assert [(r["method"], r["path"]) for r in log] == [
        ("GET", f"/v3/company/{realm}/invoice/{one}")
    ]


async def test_a_cancelled_caller_leaves_the_others_alone(world: World) -> None:
    realm, conn_id = await world.realm()
    _, ids = await _invoices(world.client(realm, conn_id, coalesce=False), 3)
    await world.forget_requests(realm)
    tasks = [asyncio.create_task(world.client(realm, conn_id).get("Invoice", i)) for i in ids]
    await asyncio.sleep(0)
    tasks[1].cancel()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [d["Id"] for d in (done[0], done[2]) if isinstance(d, dict)] == [ids[0], ids[2]]
    assert len(await world.requests(realm)) == 1


def _engine_settings(**overrides: Any) -> EngineSettings:
    return EngineSettings(
        qbo_client_id=CLIENT_ID,
        qbo_client_secret=CLIENT_SECRET,
        qbo_webhook_verifier_token=VERIFIER,
        released_client_id="rl",
        released_client_secret="rl-secret",
        released_webhook_key="rl-key",
        token_encryption_key=Fernet.generate_key().decode(),
        **overrides,
    )


async def test_the_factory_coalesces_by_default_and_can_be_switched_off(
    pool: asyncpg.Pool,
) -> None:
    async with aiohttp.ClientSession() as http:
        on = ClientFactory(_engine_settings(), pool, http)
        off = ClientFactory(_engine_settings(qbo_coalesce_reads=False), pool, http)
    assert on.qbo_coalesce is not None
    assert on.qbo_coalesce.batch_budget is not None
    assert off.qbo_coalesce is None


async def test_the_window_margin_setting_reaches_every_budget_the_factory_builds(
    pool: asyncpg.Pool,
) -> None:
    async with aiohttp.ClientSession() as http:
        factory = ClientFactory(_engine_settings(budget_window_margin_s=7.5), pool, http)
    budgets = [factory.qbo_budget, factory.released_budget, factory.qbo_batch_budget]
    assert [b.limits.margin_s if b else None for b in budgets] == [7.5, 7.5, 7.5]
    # The bucket spreads the limit over the platform's minute plus the margin.
    assert factory.released_budget.limits.refill_per_s == pytest.approx(60 / 67.5)
