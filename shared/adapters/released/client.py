"""The Re-Leased API client for one company (our contract: docs/released_sandbox.md).

Bearer tokens come from the client-credentials grant and are cached per company until shortly
before they expire. Requests go through the shared transport (``shared.adapters.http.transport``):
a request token and a concurrency slot from the company's shared budget (60/minute, 5 concurrent),
one HTTP request, in-process retries for short blips, and the classification here (``classify``):
a 401 ``TokenExpired`` fetches a new token and sends once more, ``ConnectionRevoked`` pauses the
connection, a 429 blocks the company for Retry-After (or 60 s) for every replica. Writes carry an
``Idempotency-Key`` and, for updates, ``If-Match`` with the version we merged against. Every call,
the accounting side's writes included, goes to the public API (``/api/v1``), never to a control API.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import IO, Any

import aiohttp

from shared.adapters.http.auth import basic_authorization
from shared.adapters.http.transport import ApiRules, Outgoing, Transport
from shared.adapters.postgres.budgets import ApiBudget
from shared.domain.errors import (
    ConnectionRevoked,
    NotFound,
    PermanentError,
    Refused,
    StaleVersion,
    TransientError,
)

TOKEN_MARGIN_S = 60.0
BATCH_LIMIT = 50  # items per batch request (our contract, like Xero's)
DEFAULT_RETRY_AFTER_S = 60.0


# A refusal reaches a person as a per-record error: what to change, and how to send it again.
REFUSED_REMEDY = (
    "change the record in QuickBooks (where it came from) so that Re-Leased accepts it, as the "
    "reason says, then resync the record or replay its dead letter"
)


def classify(status: int, body: Any, retry_after: float | None) -> Exception:
    kind = str(body.get("type", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    if status == 429:
        return TransientError(
            "Re-Leased rate limit (429)", retry_after=retry_after or DEFAULT_RETRY_AFTER_S
        )
    if status >= 500:
        return TransientError(f"Re-Leased answered {status}: {message}")
    if status == 401:
        if kind == "ConnectionRevoked":
            return ConnectionRevoked(
                f"Re-Leased revoked the connection: {message}",
                remedy="re-authorise the Re-Leased company for the integration",
            )
        return _TokenExpired(message)
    if status == 404:
        return NotFound(f"Re-Leased: not found: {message}")
    if status == 412:
        return StaleVersion(f"Re-Leased version conflict: {message}")
    codes = [
        str(v.get("code"))
        for element in (body.get("elements") or [] if isinstance(body, dict) else [])
        for v in element.get("validationErrors", [])
    ]
    return Refused(
        f"Re-Leased rejected the request ({status} {kind} {codes}): {message}",
        codes=tuple(codes),
        remedy=REFUSED_REMEDY,
    )


class _TokenExpired(TransientError):
    """Internal: the bearer token lapsed; fetch a new one and resend."""


def _credentials_stale(exc: BaseException) -> bool:
    return isinstance(exc, _TokenExpired)


_RULES = ApiRules(
    name="Re-Leased",
    classify=classify,
    default_retry_after_s=DEFAULT_RETRY_AFTER_S,
    stale=_credentials_stale,
)


class ReleasedClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_base: str,
        company_id: str,
        client_id: str,
        client_secret: str,
        budget: ApiBudget,
        *,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._base = api_base.rstrip("/")
        self.company_id = company_id
        self._authorization = basic_authorization(client_id, client_secret)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._token: tuple[str, float] | None = None
        self._transport = Transport(session, budget, self.budget_key, _RULES, timeout_s=timeout_s)

    @property
    def calls(self) -> int:
        """HTTP requests sent to the API, each on one token of the company's budget."""
        return self._transport.calls

    @calls.setter
    def calls(self, value: int) -> None:
        self._transport.calls = value

    @property
    def budget_key(self) -> str:
        return f"released:{self.company_id}"

    async def _access_token(self, *, renew: bool) -> str:
        if renew:
            self._token = None  # refused: never offered again, even if fetching another fails
        if self._token and time.time() < self._token[1] - TOKEN_MARGIN_S:
            return self._token[0]
        headers = {
            "X-Company-Id": self.company_id,
            "Accept": "application/json",
            "Authorization": self._authorization,
        }
        form = {"grant_type": "client_credentials"}
        try:
            async with self._session.post(
                f"{self._base}/oauth/token",
                data=form,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                body = await response.json(content_type=None)
                if response.status != 200:
                    raise ConnectionRevoked(
                        f"Re-Leased token request refused ({response.status})",
                        remedy="check RELEASED_CLIENT_ID/SECRET and the company's authorisation",
                    )
        except aiohttp.ClientError as exc:
            raise TransientError(f"Re-Leased unreachable: {exc}") from exc
        self._token = (str(body["access_token"]), time.time() + float(body.get("expires_in", 1800)))
        return self._token[0]

    async def _headers(self, *, renew: bool) -> dict[str, str]:
        token = await self._access_token(renew=renew)
        return {"Authorization": f"Bearer {token}", "X-Company-Id": self.company_id}

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        if_match: int | str | None = None,
    ) -> Any:
        url = self._base + path
        extra = {"Accept": "application/json"}
        data = None
        if body is not None:
            extra["Content-Type"] = "application/json"
            data = json.dumps(body)
        if idempotency_key:
            extra["Idempotency-Key"] = idempotency_key
        if if_match is not None:
            extra["If-Match"] = f'"{if_match}"'

        async def build(fresh: bool) -> Outgoing:
            headers = {**await self._headers(renew=fresh), **extra}
            return Outgoing(method, url, headers, params=params, data=data)

        return await self._transport.call(build)

    async def accounting(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotency_key: str,
        if_match: int | str | None = None,
    ) -> dict[str, Any]:
        """A write only the accounting side may make while connected (master data, contact
        archive/unarchive/merge, payment reversal, allocation removal). We made the company's
        accounting connection, so our client is its accounting side: the same public API, auth,
        budget, retries and fault handling as every other call, and always an Idempotency-Key."""
        found = await self.request(
            method, path, body=body, idempotency_key=idempotency_key, if_match=if_match
        )
        if not isinstance(found, dict):
            raise PermanentError(f"Re-Leased answered {path} with a non-object")
        return found

    async def batch(
        self, collection: str, items: list[dict[str, Any]], *, idempotency_key: str
    ) -> list[dict[str, Any]]:
        """Up to ``BATCH_LIMIT`` creates (no ``id``) or partial updates (``id`` + ``version``)
        in one request against the budget; one result per item, in order:
        ``{"status": 201|200|4xx, "item"?: {...}, "error"?: {...}}``. A failed item changed
        nothing; the caller decides what to do with it."""
        if not 0 < len(items) <= BATCH_LIMIT:
            raise ValueError(f"a batch holds 1 to {BATCH_LIMIT} items, not {len(items)}")
        answer = await self.request(
            "POST", f"{collection}/batch", body={"items": items}, idempotency_key=idempotency_key
        )
        results = answer.get("items") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(items):
            raise PermanentError(f"Re-Leased answered a batch of {len(items)} unexpectedly")
        return [r if isinstance(r, dict) else {"status": 0} for r in results]

    async def get(self, path: str) -> dict[str, Any]:
        found = await self.request("GET", path)
        if not isinstance(found, dict):
            raise PermanentError(f"Re-Leased answered {path} with a non-object")
        return found

    async def spare(self, requests: int) -> bool:
        """Whether ``requests`` could go now without waiting for the company's budget."""
        return await self._transport.budget.spare(self.budget_key, requests)

    async def list_all(self, path: str, **filters: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            payload = await self.request(
                "GET", path, params={**filters, "page": str(page), "pageSize": "1000"}
            )
            items.extend(payload.get("items", []))
            pages = int(payload.get("pagination", {}).get("pageCount", 1) or 1)
            if page >= pages:
                return items
            page += 1

    async def events(self, after_sequence: int, limit: int = 1000) -> list[dict[str, Any]]:
        payload = await self.request(
            "GET", "/events", params={"afterSequence": str(after_sequence), "limit": str(limit)}
        )
        if isinstance(payload, dict):
            found = payload.get("items", payload.get("events", []))
            return list(found) if isinstance(found, list) else []
        return list(payload) if isinstance(payload, list) else []

    # -- attachments (added for documents; streamed, never a whole file held twice) -------------

    async def upload_attachment(
        self,
        path: str,
        content: IO[bytes],
        *,
        file_name: str,
        content_type: str,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """Multipart upload (field ``file``) read from ``content`` as it is sent."""

        async def build(fresh: bool) -> Outgoing:
            headers = await self._headers(renew=fresh)
            content.seek(0)
            # The idempotency key replays only a byte-identical request: fix the boundary.
            form = aiohttp.MultipartWriter("form-data", boundary=f"rl-{idempotency_key}")
            part = form.append(content, {"Content-Type": content_type})
            part.set_content_disposition("form-data", name="file", filename=file_name)
            headers |= {"Accept": "application/json", "Idempotency-Key": idempotency_key}
            return Outgoing("POST", self._base + path, headers, data=form)

        payload = await self._transport.call(build)
        if not isinstance(payload, dict):
            raise PermanentError("Re-Leased answered an upload with a non-object")
        return payload

    async def stream(self, path: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """A binary resource (attachment content), chunk by chunk."""

        async def build(fresh: bool) -> Outgoing:
            return Outgoing("GET", self._base + path, await self._headers(renew=fresh))

        async for chunk in self._transport.stream(build, chunk_size):
            yield chunk
