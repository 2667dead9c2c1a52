"""Shared helpers for the QBO sandbox tests: an in-process sandbox, real sockets when needed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandboxes.qbo.app import create_app
from sandboxes.qbo.settings import SandboxSettings

VERIFIER = "test-verifier-token"
CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"


def settings(**overrides: Any) -> SandboxSettings:
    values: dict[str, Any] = {
        "qbo_client_id": CLIENT_ID,
        "qbo_client_secret": CLIENT_SECRET,
        "qbo_webhook_verifier_token": VERIFIER,
        "qbo_sandbox_seed": 7,
    }
    values.update(overrides)
    return SandboxSettings(**values)


@dataclass
class Sandbox:
    """An app plus an httpx client on it, and one realm with a token ready to use."""

    app: Starlette
    http: httpx.AsyncClient
    realm_id: str = ""
    token: str = ""
    refresh_token: str = ""

    @property
    def base(self) -> str:
        return f"/v3/company/{self.realm_id}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def new_realm(self, name: str = "Test Co") -> str:
        response = await self.http.post("/_sandbox/realms", json={"companyName": name})
        assert response.status_code == 201
        realm_id: str = response.json()["realmId"]
        tokens = (await self.http.post(f"/_sandbox/realms/{realm_id}/tokens")).json()
        self.realm_id, self.token = realm_id, tokens["access_token"]
        self.refresh_token = tokens["refresh_token"]
        return realm_id

    async def post(self, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return await self.http.post(
            f"{self.base}/{path}", json=body, params=params, headers=self.auth
        )

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.http.get(f"{self.base}/{path}", params=params, headers=self.auth)

    async def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(entity.lower(), body)
        assert response.status_code == 200, response.text
        created: dict[str, Any] = response.json()[entity]
        return created

    async def query(self, text: str) -> dict[str, Any]:
        response = await self.get("query", query=text)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["QueryResponse"]
        return result

    async def first_id(self, entity: str, where: str = "") -> str:
        rows = (await self.query(f"select * from {entity} {where}"))[entity]
        return str(rows[0]["Id"])

    async def invoice(self, customer_id: str, amount: str = "100.00") -> dict[str, Any]:
        item = await self.first_id("Item")
        line = {
            "DetailType": "SalesItemLineDetail",
            "Amount": float(amount),
            "SalesItemLineDetail": {"ItemRef": {"value": item}},
        }
        return await self.create("Invoice", {"CustomerRef": {"value": customer_id}, "Line": [line]})


@asynccontextmanager
async def sandbox(**overrides: Any) -> AsyncIterator[Sandbox]:
    app = create_app(settings(**overrides))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://qbo.test") as http:
        box = Sandbox(app, http)
        await box.new_realm()
        yield box


@asynccontextmanager
async def serve(app: Starlette, port: int = 0) -> AsyncIterator[str]:
    """Run ``app`` (lifespan included) under uvicorn on loopback (a free port by default)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class Receiver:
    """A webhook endpoint that records raw bodies and answers with scripted statuses."""

    statuses: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)  # seconds to stall before answering
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def endpoint(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        self.arrived.set()
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status = self.statuses.pop(0) if self.statuses else 200
        return Response(status_code=status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.endpoint, methods=["POST"])])

    async def wait_for(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def delivery_log(box: Sandbox, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The delivery log once it holds ``count`` entries (entries land after the POST returns)."""
    async with asyncio.timeout(timeout):
        while True:
            entries: list[dict[str, Any]] = (
                await box.http.get("/_sandbox/deliveries", params={"realmId": box.realm_id})
            ).json()["deliveries"]
            if len(entries) >= count:
                return entries
            await asyncio.sleep(0.02)
