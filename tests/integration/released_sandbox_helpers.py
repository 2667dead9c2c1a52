"""Helpers for the Re-Leased sandbox tests: the app in-process, and a real webhook receiver."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandboxes.released.app import create_app
from sandboxes.released.sandbox import Sandbox
from sandboxes.released.settings import SandboxSettings

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-secret"
WEBHOOK_KEY = "test-webhook-key"


def sandbox_settings(**overrides: Any) -> SandboxSettings:
    values: dict[str, Any] = {
        "released_client_id": CLIENT_ID,
        "released_client_secret": CLIENT_SECRET,
        "released_webhook_key": WEBHOOK_KEY,
        "released_sandbox_rate_limits": False,
        "released_sandbox_public_url": "http://sandbox",
        "released_sandbox_seed": 7,
    }
    values.update(overrides)
    return SandboxSettings(**values)


@dataclass
class Harness:
    client: httpx.AsyncClient
    sandbox: Sandbox
    tokens: dict[str, str] = field(default_factory=dict)
    # For tests that move the clock by hours: every call gets a token minted on the new clock.
    refresh_tokens: bool = False

    async def company(self, name: str = "Harbour Holdings") -> str:
        response = await self.client.post("/_sandbox/companies", json={"name": name})
        assert response.status_code == 201
        return str(response.json()["id"])

    async def token(self) -> str:
        response = await self.client.post(
            "/api/v1/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    async def headers(self, company_id: str, **extra: str) -> dict[str, str]:
        if "app" not in self.tokens or self.refresh_tokens:
            self.tokens["app"] = await self.token()
        return {
            "Authorization": f"Bearer {self.tokens['app']}",
            "X-Company-Id": company_id,
            **extra,
        }

    async def call(
        self,
        company_id: str,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> httpx.Response:
        all_headers = {**await self.headers(company_id), **(headers or {})}
        return await self.client.request(method, f"/api/v1{path}", headers=all_headers, **kw)

    async def as_user(self, company_id: str, method: str, path: str, **kw: Any) -> httpx.Response:
        """A call made by a Re-Leased user: a token the control API minted for the company."""
        key = f"user:{company_id}"
        if key not in self.tokens or self.refresh_tokens:
            minted = await self.client.post(f"/_sandbox/companies/{company_id}/tokens")
            assert minted.status_code == 201, minted.text
            self.tokens[key] = str(minted.json()["access_token"])
        headers = {"Authorization": f"Bearer {self.tokens[key]}", "X-Company-Id": company_id}
        return await self.client.request(method, f"/api/v1{path}", headers=headers, **kw)

    async def first(self, company_id: str, path: str, **match: Any) -> dict[str, Any]:
        response = await self.call(company_id, "GET", path, params={"includeArchived": "true"})
        for item in response.json()["items"]:
            if all(item.get(k) == v for k, v in match.items()):
                return dict(item)
        raise AssertionError(f"nothing at {path} matches {match}")

    async def connect(self, company_id: str, org: str = "9130-realm") -> httpx.Response:
        body = {"provider": "QBO", "externalOrgId": org, "syncFromDate": "2024-04-01"}
        return await self.call(company_id, "POST", "/company/accounting-connection", json=body)

    async def invoice(self, company_id: str, **fields: Any) -> dict[str, Any]:
        contact = await self.first(company_id, "/contacts")
        account = await self.first(company_id, "/accounts", code="200")
        gst = await self.first(company_id, "/tax-rates", name="GST 15%")
        body: dict[str, Any] = {
            "type": "INCOME",
            "contactId": contact["id"],
            "date": "2025-01-01",
            "lines": [
                {
                    "description": "Base rent",
                    "quantity": "1",
                    "unitAmount": "1000.00",
                    "accountId": account["id"],
                    "taxRateId": gst["id"],
                }
            ],
        }
        body.update(fields)
        response = await self.call(company_id, "POST", "/invoices", json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def pay(self, company_id: str, doc: dict[str, Any], amount: str) -> httpx.Response:
        bank = await self.first(company_id, "/accounts", type="BANK")
        body = {
            "documentId": doc["id"],
            "date": "2025-01-18",
            "amount": amount,
            "bankAccountId": bank["id"],
        }
        return await self.call(company_id, "POST", "/payments", json=body)


@asynccontextmanager
async def running_sandbox(**overrides: Any) -> AsyncIterator[Harness]:
    app = create_app(sandbox_settings(**overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            yield Harness(client, app.state.sandbox)


Answer = Callable[[Request, bytes], Awaitable[int]]


@dataclass
class Receiver:
    url: str
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


def expected_signature(body: bytes, key: str = WEBHOOK_KEY) -> str:
    """The contract's scheme, written out independently of the sandbox's own code."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


async def verifying_answer(request: Request, body: bytes) -> int:
    """What a correct receiver does: 200 for a good signature, 401 for a bad one."""
    signature = request.headers.get("x-released-signature", "")
    return 200 if hmac.compare_digest(expected_signature(body), signature) else 401


@asynccontextmanager
async def webhook_receiver(answer: Answer = verifying_answer) -> AsyncIterator[Receiver]:
    """A real HTTP server on a free loopback port (the sandbox posts with aiohttp)."""
    receiver = Receiver(url="")

    async def hook(request: Request) -> Response:
        body = await request.body()
        status = await answer(request, body)
        receiver.bodies.append(body)
        receiver.headers.append(dict(request.headers))
        receiver.statuses.append(status)
        return Response(status_code=status)

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await eventually(lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=5)
        except TimeoutError:
            # Something still holds a connection open; do not let teardown hang the suite.
            server.force_exit = True
            await task


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
