"""The QBO Accounting API v3 client for one connection (realm).

Every call: a token from the store (refreshed and rotated when due), a request token and a
concurrency slot from the realm's shared budget, then one HTTP request. Failures are classified
here, in one place: 401 -> refresh once, then ``ConnectionRevoked``; 429 -> the realm is blocked
for Retry-After (or 60 s) for every replica and a ``TransientError`` carries the wait; 5xx and
network errors -> ``TransientError``; Fault 5010 -> ``StaleVersion``; 610 -> ``NotFound``; 6240 ->
``DuplicateName``; any other Fault -> ``PermanentError`` with QBO's own message.

Given a ``coalescer`` (coalesce.py; one per connection, owned by whoever builds the clients),
``get`` joins it: concurrent gets for the realm are answered by one request, each caller seeing
what a plain get would have given it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

import aiohttp

from shared.adapters.http.retry import api_call_retry
from shared.adapters.postgres.budgets import ApiBudget
from shared.adapters.qbo.coalesce import ReadCoalescer
from shared.adapters.qbo.read_queries import coalescible
from shared.adapters.qbo.tokens import QboTokenStore
from shared.domain.errors import (
    ConnectionRevoked,
    DuplicateName,
    NotFound,
    PermanentError,
    StaleVersion,
    TransientError,
)

MINOR_VERSION = "75"
DEFAULT_RETRY_AFTER_S = 60.0
PAGE_SIZE = 1000


def fault_of(body: Any) -> tuple[str, str]:
    """(code, message) from a QBO Fault body, tolerant of its two casings."""
    if not isinstance(body, dict):
        return "", ""
    fault = body.get("Fault") or body.get("fault") or {}
    errors = fault.get("Error") or fault.get("error") or []
    if not errors or not isinstance(errors[0], dict):
        return "", ""
    first = errors[0]
    message = str(first.get("Message") or first.get("message") or "")
    detail = str(first.get("Detail") or first.get("detail") or "")
    return str(first.get("code", "")), f"{message}: {detail}" if detail else message


def classify(status: int, body: Any, retry_after: float | None) -> Exception:
    code, message = fault_of(body)
    if status == 429:
        return TransientError(
            "QBO rate limit (429)", retry_after=retry_after or DEFAULT_RETRY_AFTER_S
        )
    if status >= 500:
        return TransientError(f"QBO answered {status}: {message}")
    if status in (401, 403):
        return ConnectionRevoked(
            f"QBO refused the token ({status}): {message}",
            remedy="reconnect the company to QuickBooks",
        )
    if code == "5010":
        return StaleVersion(f"QBO stale SyncToken: {message}")
    if code == "610" or status == 404:
        return NotFound(f"QBO object not found: {message}")
    if code == "6240":
        return DuplicateName(
            f"QBO duplicate name: {message}",
            remedy="rename one of the records or set a clash suffix for the connection",
        )
    return PermanentError(f"QBO rejected the request ({status}, code {code}): {message}")


def query_literal(text: str) -> str:
    """``text`` safe inside a quoted literal of a QBO query."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def qbo_timestamp(moment: datetime) -> str:
    """UTC with ``Z``: no ``+`` for a query string to mangle into a space."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class QboClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        api_base: str,
        realm_id: str,
        connection_id: UUID,
        tokens: QboTokenStore,
        budget: ApiBudget,
        *,
        timeout_s: float = 30.0,
        coalescer: ReadCoalescer | None = None,
    ) -> None:
        self._session = session
        self._base = f"{api_base.rstrip('/')}/v3/company/{realm_id}"
        self._realm = realm_id
        self._connection_id = connection_id
        self._tokens = tokens
        self._budget = budget
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._coalescer = coalescer
        self.calls = 0

    @property
    def budget_key(self) -> str:
        return f"qbo:{self._realm}"

    async def wait_for_budget(self) -> None:
        """Until the realm's budget could take one more request (nothing is spent)."""
        await self._budget.wait_ready(self.budget_key)

    @property
    def batch_budget_key(self) -> str:
        """QBO's separate allowance for ``POST /batch`` (40 a minute per realm)."""
        return f"qbo-batch:{self._realm}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        text: str | None = None,
    ) -> dict[str, Any]:
        async for attempt in api_call_retry():
            with attempt:
                return await self._with_refresh(method, path, params or {}, body, text)
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    async def _with_refresh(
        self, method: str, path: str, params: dict[str, str], body: Any, text: str | None
    ) -> dict[str, Any]:
        try:
            return await self._once(method, path, params, body, text, force_refresh=False)
        except ConnectionRevoked:
            # One expired access token is normal: refresh (rotating) and try exactly once more.
            return await self._once(method, path, params, body, text, force_refresh=True)

    async def _once(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        body: Any,
        text: str | None,
        *,
        force_refresh: bool,
    ) -> dict[str, Any]:
        token = await self._tokens.access_token(self._connection_id, force_refresh=force_refresh)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data: str | None = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        elif text is not None:
            headers["Content-Type"] = "application/text"
            data = text
        query = {"minorversion": MINOR_VERSION, **params}
        async with self._budget.acquire(self.budget_key):
            self.calls += 1
            try:
                async with self._session.request(
                    method,
                    self._base + path,
                    params=query,
                    data=data,
                    headers=headers,
                    timeout=self._timeout,
                ) as response:
                    payload = (
                        await response.json(content_type=None) if await response.read() else {}
                    )
                    status, wait = response.status, _retry_after(response.headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransientError(f"QBO unreachable: {type(exc).__name__}: {exc}") from exc
        if status < 300 and isinstance(payload, dict):
            return payload
        error = classify(status, payload, wait)
        if status == 429:
            await self._budget.block(self.budget_key, wait or DEFAULT_RETRY_AFTER_S)
        raise error

    # -- reads ---------------------------------------------------------------------------------

    async def get(self, entity: str, entity_id: str) -> dict[str, Any]:
        """The current ``entity`` ``entity_id``; ``NotFound`` when QBO has no such object."""
        if self._coalescer is None or not coalescible(entity, entity_id):
            return await self.get_one(entity, entity_id)
        return await self._coalescer.get(self, entity, entity_id)

    async def get_one(self, entity: str, entity_id: str) -> dict[str, Any]:
        """``GET /{entity}/{id}`` on its own, never coalesced."""
        payload = await self.request("GET", f"/{entity.lower()}/{entity_id}")
        found = payload.get(entity)
        if not isinstance(found, dict):
            raise NotFound(f"QBO returned no {entity} {entity_id}")
        return found

    async def query(self, statement: str) -> dict[str, Any]:
        payload = await self.request("GET", "/query", params={"query": statement})
        response = payload.get("QueryResponse", {})
        return response if isinstance(response, dict) else {}

    async def query_all(self, entity: str, where: str = "") -> list[dict[str, Any]]:
        """Every row of ``select * from entity [where ...]``, paged 1,000 at a time."""
        rows: list[dict[str, Any]] = []
        start = 1
        while True:
            clause = f" where {where}" if where else ""
            page = await self.query(
                f"select * from {entity}{clause} startposition {start} maxresults {PAGE_SIZE}"  # noqa: S608 - QBO query language; entity and clause are ours
            )
            batch = page.get(entity, [])
            rows.extend(batch)
            if len(batch) < PAGE_SIZE:
                return rows
            start += PAGE_SIZE

    async def cdc(self, entities: list[str], since: datetime) -> dict[str, list[dict[str, Any]]]:
        """Changed objects per entity since ``since`` (QBO caps one answer at 1,000 objects)."""
        payload = await self.request(
            "GET",
            "/cdc",
            params={"entities": ",".join(entities), "changedSince": qbo_timestamp(since)},
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for block in payload.get("CDCResponse", []):
            for response in block.get("QueryResponse", []):
                for name, rows in response.items():
                    if isinstance(rows, list):
                        found.setdefault(name, []).extend(rows)
        return found

    # -- writes --------------------------------------------------------------------------------

    async def write(
        self, entity: str, body: dict[str, Any], *, request_id: str, operation: str | None = None
    ) -> dict[str, Any]:
        """Create or update (full or sparse, per ``body``); ``request_id`` makes it idempotent."""
        params = {"requestid": request_id}
        if operation:
            params["operation"] = operation
        payload = await self.request("POST", f"/{entity.lower()}", params=params, body=body)
        written = payload.get(entity)
        if not isinstance(written, dict):
            raise PermanentError(f"QBO answered a {entity} write without the {entity}")
        return written

    # -- attachments (added for documents; streamed, never a whole file held twice) -------------

    async def upload(
        self,
        metadata: dict[str, Any],
        content: IO[bytes],
        *,
        file_name: str,
        content_type: str,
        request_id: str,
    ) -> dict[str, Any]:
        """POST /upload: one Attachable and its file, read from ``content`` as it is sent."""
        async for attempt in api_call_retry():
            with attempt:
                try:
                    return await self._upload_once(
                        metadata, content, file_name, content_type, request_id, refresh=False
                    )
                except ConnectionRevoked:
                    return await self._upload_once(
                        metadata, content, file_name, content_type, request_id, refresh=True
                    )
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    async def _upload_once(
        self,
        metadata: dict[str, Any],
        content: IO[bytes],
        file_name: str,
        content_type: str,
        request_id: str,
        *,
        refresh: bool,
    ) -> dict[str, Any]:
        token = await self._tokens.access_token(self._connection_id, force_refresh=refresh)
        content.seek(0)
        # A boundary derived from the request id keeps a resent upload byte-identical.
        form = aiohttp.MultipartWriter("form-data", boundary=f"qbo-{request_id}")
        meta = form.append_json(metadata)
        meta.set_content_disposition("form-data", name="file_metadata_01")
        part = form.append(content, {"Content-Type": content_type})
        part.set_content_disposition("form-data", name="file_content_01", filename=file_name)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        params = {"minorversion": MINOR_VERSION, "requestid": request_id}
        async with self._budget.acquire(self.budget_key):
            self.calls += 1
            try:
                async with self._session.post(
                    self._base + "/upload",
                    params=params,
                    data=form,
                    headers=headers,
                    timeout=self._timeout,
                ) as response:
                    payload = await response.json(content_type=None)
                    status, wait = response.status, _retry_after(response.headers)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransientError(f"QBO unreachable: {type(exc).__name__}: {exc}") from exc
        if status >= 300:
            raise classify(status, payload, wait)
        answer = (payload.get("AttachableResponse") or [{}])[0]
        if "Fault" in answer:
            raise classify(400, answer, None)
        found = answer.get("Attachable")
        if not isinstance(found, dict):
            raise PermanentError("QBO answered an upload without the Attachable")
        return found

    async def stream_file(self, url: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The bytes behind an Attachable's temporary download link, chunk by chunk."""
        try:
            async with self._session.get(url, timeout=self._timeout) as response:
                if response.status >= 300:
                    raise classify(response.status, {}, None)
                async for chunk in response.content.iter_chunked(chunk_size):
                    yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"QBO file link unreachable: {exc}") from exc
