"""The one budgeted HTTP transport under the QBO and Re-Leased clients.

A client builds each request (URL, headers, body) and hands over its rules (``ApiRules``: how to
classify a refusal, the default wait after a 429, which refusal means its credentials went stale).
The transport does the rest, the same way for both:

- a request token and a concurrency slot from the shared budget (``ApiBudget``), one per HTTP
  request sent, held until the answer has been read (or streamed);
- the send through the aiohttp session with the client's timeout; a network error
  (``aiohttp.ClientError``, ``TimeoutError``) becomes ``TransientError``;
- the body read as JSON (an empty body is ``{}``); a 2xx is returned, anything else raises the
  client's own classification, after a 429 has blocked the budget key for every replica for the
  Retry-After (or the client's default). A body that is not JSON makes a 2xx a
  ``PermanentError``; a refusal is classified by its status (a proxy's HTML 502 is transient);
- ``call``: the in-process retries (``api_call_retry``, the only layer that retries) around one
  send, which is sent exactly once more with fresh credentials when the answer says the ones sent
  went stale. ``build`` makes the request anew for every send, so an upload's file is rewound and
  its multipart writer rebuilt each time;
- ``stream``: a download chunk by chunk, with the same budget, classification and one resend with
  fresh credentials, but no retries: chunks already handed on cannot be taken back.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from shared.adapters.http.retry import api_call_retry
from shared.adapters.postgres.budgets import ApiBudget
from shared.domain.errors import PermanentError, TransientError
from shared.infra import metrics

Classify = Callable[[int, Any, float | None], Exception]

# delta-seconds (RFC 9110 §10.2.3), also with a decimal part since some servers send one.
_DELTA_SECONDS = re.compile(r"(\d+(\.\d*)?|\.\d+)")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date (0 once past).

    Anything else (absent, negative, garbage) is None: the caller falls back to its default.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # asctime form: an HTTP-date is always GMT
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)


@dataclass(frozen=True)
class ApiRules:
    """What differs between the APIs the transport speaks to."""

    name: str  # in error messages: "QBO", "Re-Leased"
    classify: Classify  # (status, body, retry_after) -> the exception for a non-2xx answer
    default_retry_after_s: float  # how long a 429 without a usable Retry-After blocks the key
    stale: Callable[[BaseException], bool]  # the credentials sent went stale: fresh ones may do


@dataclass(frozen=True)
class Outgoing:
    """One HTTP request as a client built it, for one send."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] | None = None
    data: Any = None  # str, form or multipart writer
    # False for a request outside the API (QBO's signed file links): it takes no budget token,
    # is not one of the client's calls, and carries no credentials that could go stale.
    api_call: bool = True


# Builds the request for one send; True: with fresh credentials (the last ones went stale).
Build = Callable[[bool], Awaitable[Outgoing]]


@dataclass(frozen=True)
class Answer:
    """What came back from one send, read while the budget slot was held."""

    status: int
    raw: bytes
    retry_after: float | None


def outcome(rules: ApiRules, answer: Answer) -> Any:
    """The body of a 2xx answer; otherwise raises the client's classification of it."""
    try:
        body = json.loads(answer.raw) if answer.raw else {}
    except ValueError:
        if answer.status < 300:
            raise PermanentError(
                f"{rules.name} answered {answer.status} with a body that is not JSON"
            ) from None
        body = answer.raw.decode("utf-8", errors="replace")  # a proxy's error page, say
    if answer.status < 300:
        return body
    raise rules.classify(answer.status, body, answer.retry_after)


class Transport:
    """Sends one client's requests; ``calls`` counts the API requests sent."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        budget: ApiBudget,
        budget_key: str,
        rules: ApiRules,
        *,
        timeout_s: float,
    ) -> None:
        self._session = session
        self._budget = budget
        self._budget_key = budget_key
        self._rules = rules
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.calls = 0
        self._side = metrics.side_of(rules.name)

    @property
    def budget(self) -> ApiBudget:
        return self._budget

    async def call(self, build: Build) -> Any:
        """The 2xx body, after the in-process retries and one resend on stale credentials."""
        async for attempt in api_call_retry():
            with attempt:
                return await self._send_renewing(build)
        raise AssertionError("unreachable: tenacity re-raises")  # pragma: no cover

    async def _send_renewing(self, build: Build) -> Any:
        try:
            return await self.send(await build(False))
        except Exception as exc:
            if not self._rules.stale(exc):
                raise
            # An expired access token is normal: fresh credentials, and exactly one more send.
            return await self.send(await build(True))

    async def send(self, request: Outgoing) -> Any:
        """One send: the 2xx body, or the classified refusal raised."""
        async with self._exchange(request) as response:
            answer = await self._read(response)
        return await self._settle(request, answer)

    async def stream(self, build: Build, chunk_size: int) -> AsyncIterator[bytes]:
        """A 2xx answer's body chunk by chunk; a refusal is raised before any chunk."""
        for fresh in (False, True):
            request = await build(fresh)
            async with self._exchange(request) as response:
                if response.status < 300:
                    async for chunk in response.content.iter_chunked(chunk_size):
                        yield chunk
                    return
                answer = await self._read(response)
            try:
                await self._settle(request, answer)
            except Exception as exc:
                if fresh or not (request.api_call and self._rules.stale(exc)):
                    raise

    async def _settle(self, request: Outgoing, answer: Answer) -> Any:
        if answer.status == 429 and request.api_call:
            # Everyone waits, not only this caller: every replica shares the budget key.
            wait = answer.retry_after or self._rules.default_retry_after_s
            await self._budget.block(self._budget_key, wait)
        return outcome(self._rules, answer)

    @staticmethod
    async def _read(response: aiohttp.ClientResponse) -> Answer:
        raw = await response.read()
        return Answer(response.status, raw, parse_retry_after(response.headers.get("Retry-After")))

    @asynccontextmanager
    async def _exchange(self, request: Outgoing) -> AsyncIterator[aiohttp.ClientResponse]:
        """The response while its body is read, inside a budget slot for an API request."""
        async with self._slot(request):
            try:
                async with self._session.request(
                    request.method,
                    request.url,
                    params=request.params,
                    data=request.data,
                    headers=request.headers,
                    timeout=self._timeout,
                ) as response:
                    if request.api_call:
                        self._count(response.status)
                    yield response
            except (aiohttp.ClientError, TimeoutError) as exc:
                if request.api_call:
                    metrics.API_REQUESTS.labels(self._side, "0").inc()
                raise TransientError(
                    f"{self._rules.name} unreachable: {type(exc).__name__}: {exc}"
                ) from exc

    @asynccontextmanager
    async def _slot(self, request: Outgoing) -> AsyncIterator[None]:
        if not request.api_call:
            yield
            return
        waited = time.perf_counter()
        async with self._budget.acquire(self._budget_key):
            metrics.API_BUDGET_WAIT.labels(self._side).observe(time.perf_counter() - waited)
            self.calls += 1
            yield

    def _count(self, status: int) -> None:
        metrics.API_REQUESTS.labels(self._side, str(status)).inc()
        if status == 429:
            metrics.API_THROTTLED.labels(self._side).inc()
