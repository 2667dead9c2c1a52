"""The QBO Accounting API v3 client for one connection (realm).

Requests go through the shared transport (``shared.adapters.http.transport``): an access token
from the store (refreshed and rotated when due), a request token and a concurrency slot from the
realm's shared budget, then one HTTP request, retried in process for short blips. What is QBO's
own lives here: the URLs, the ``minorversion`` and ``requestid`` query parameters, the multipart
upload, and the classification of its answers (``classify``): 401/403 -> the token is refreshed
once and the request sent once more, then ``ConnectionRevoked``; 429 -> the realm is blocked for
Retry-After (or 60 s) for every replica and a ``TransientError`` carries the wait; 5xx and network
errors -> ``TransientError``; Fault 5010 -> ``StaleVersion``; 610 -> ``NotFound`` (on a write: a
record the body refers to is deleted or inactive); 6240 -> ``DuplicateName``; any other Fault ->
``PermanentError`` with QBO's own message.

Given a ``coalescer`` (coalesce.py; one per connection, owned by whoever builds the clients),
``get`` joins it: concurrent gets for the realm share one request, each seeing its own answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import IO, Any
from uuid import UUID

import aiohttp

from shared.adapters.http.transport import ApiRules, Outgoing, Transport
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


# A refusal reaches a person as a per-record error: what to change, and how to send it again.
NOT_FOUND_REMEDY = "a record it refers to is deleted or inactive in QuickBooks: " + (
    "make it active there or refer to an active one in Re-Leased, then resync the record"
)
REFUSED_REMEDY = (
    "change the record in Re-Leased (where it came from) so that QuickBooks accepts it, as the "
    "reason says, then resync the record or replay its dead letter"
)


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
        return NotFound(f"QBO object not found: {message}", remedy=NOT_FOUND_REMEDY)
    if code == "6240":
        return DuplicateName(
            f"QBO duplicate name: {message}",
            remedy="rename one of the records or set a clash suffix for the connection",
        )
    return PermanentError(
        f"QBO rejected the request ({status}, code {code}): {message}", remedy=REFUSED_REMEDY
    )


def qbo_timestamp(moment: datetime) -> str:
    """UTC with ``Z``: no ``+`` for a query string to mangle into a space."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _credentials_stale(exc: BaseException) -> bool:
    # 401/403 or no usable token: a refreshed (rotated) token may still be accepted.
    return isinstance(exc, ConnectionRevoked)


_RULES = ApiRules(
    name="QBO",
    classify=classify,
    default_retry_after_s=DEFAULT_RETRY_AFTER_S,
    stale=_credentials_stale,
)


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
        self._base = f"{api_base.rstrip('/')}/v3/company/{realm_id}"
        self._realm = realm_id
        self._connection_id = connection_id
        self._tokens = tokens
        self._budget = budget
        self._coalescer = coalescer
        self._transport = Transport(session, budget, self.budget_key, _RULES, timeout_s=timeout_s)

    @property
    def calls(self) -> int:
        """HTTP requests sent to the API, each on one token of the realm's budget."""
        return self._transport.calls

    @calls.setter
    def calls(self, value: int) -> None:
        self._transport.calls = value

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

    async def _headers(self, fresh: bool) -> dict[str, str]:
        token = await self._tokens.access_token(self._connection_id, force_refresh=fresh)
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        text: str | None = None,
    ) -> dict[str, Any]:
        data: str | None = None
        content_type: dict[str, str] = {}
        if body is not None:
            data, content_type = json.dumps(body), {"Content-Type": "application/json"}
        elif text is not None:
            data, content_type = text, {"Content-Type": "application/text"}
        query = {"minorversion": MINOR_VERSION, **(params or {})}

        async def build(fresh: bool) -> Outgoing:
            headers = {**await self._headers(fresh), **content_type}
            return Outgoing(method, self._base + path, headers, params=query, data=data)

        payload = await self._transport.call(build)
        if not isinstance(payload, dict):
            raise PermanentError(f"QBO answered {method} {path} with a non-object")
        return payload

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

        async def build(fresh: bool) -> Outgoing:
            headers = await self._headers(fresh)
            content.seek(0)
            # A boundary derived from the request id keeps a resent upload byte-identical.
            form = aiohttp.MultipartWriter("form-data", boundary=f"qbo-{request_id}")
            meta = form.append_json(metadata)
            meta.set_content_disposition("form-data", name="file_metadata_01")
            part = form.append(content, {"Content-Type": content_type})
            part.set_content_disposition("form-data", name="file_content_01", filename=file_name)
            params = {"minorversion": MINOR_VERSION, "requestid": request_id}
            return Outgoing("POST", self._base + "/upload", headers, params=params, data=form)

        payload = await self._transport.call(build)
        answers = payload.get("AttachableResponse") if isinstance(payload, dict) else None
        answer = (answers or [{}])[0]
        if "Fault" in answer:
            raise classify(400, answer, None)
        found = answer.get("Attachable")
        if not isinstance(found, dict):
            raise PermanentError("QBO answered an upload without the Attachable")
        return found

    async def stream_file(self, url: str, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The bytes behind an Attachable's temporary download link, chunk by chunk.

        The link is signed and served outside the API: no token, no budget, not one of ``calls``.
        """

        async def build(fresh: bool) -> Outgoing:
            return Outgoing("GET", url, api_call=False)

        async for chunk in self._transport.stream(build, chunk_size):
            yield chunk
