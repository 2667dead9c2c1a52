"""Webhook subscriptions: the intent-to-receive handshake and at-least-once delivery with retries.

One dispatcher task (owned by the app's lifespan) wakes when events arrive, when a retry falls due
on the sandbox clock, or when a test moves the clock. One batch per subscription is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import aiohttp

from sandboxes.released.clock import SandboxClock, format_ts
from sandboxes.released.signing import envelope, sign
from sandboxes.released.store import CompanyState, Record, Store, Subscription
from shared.infra.logging import get_logger

RETRY_SCHEDULE = tuple(
    timedelta(seconds=s) for s in (30, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600)
)
GIVE_UP_AFTER = timedelta(hours=24)
BATCH_SIZE = 100
ITR_TIMEOUT_SECONDS = 5.0
_IDLE_SECONDS = 1.0
log = get_logger(__name__)


class WebhookDispatcher:
    def __init__(self, store: Store, clock: SandboxClock, rng: random.Random) -> None:
        self._store = store
        self._clock = clock
        self._rng = rng
        self._session: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        self._attempts: set[asyncio.Task[None]] = set()
        store.listeners.append(self._on_event)

    @contextlib.asynccontextmanager
    async def running(self, session: aiohttp.ClientSession) -> AsyncIterator[None]:
        self._session = session
        loop_task = asyncio.create_task(self._loop(), name="released-sandbox-webhooks")
        try:
            yield
        finally:
            tasks = [loop_task, *self._attempts]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._session = None

    def poke(self) -> None:
        self._wake.set()

    def _on_event(self, state: CompanyState, event: Record) -> None:
        for sub in state.subscriptions.values():
            if sub.status == "ACTIVE":
                sub.pending.append(event)
                self._wake.set()

    async def intent_to_receive(self, state: CompanyState, sub: Subscription) -> bool:
        """Four empty payloads, two signed right and two wrong: answers must be 200,401,200,401."""
        for expected in (200, 401, 200, 401):
            key = sub.key if expected == 200 else f"wrong-{uuid.uuid4()}"
            body = envelope([], self._rng)
            status = await self._post(sub.url, body, key, ITR_TIMEOUT_SECONDS)
            self._log(state, sub, "ITR", status, 0, [])
            if status != expected:
                return False
        return True

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            wait = self._dispatch_due()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races with the wake-up, and then shutdown never ends while deliveries flow.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _dispatch_due(self) -> float:
        """Start every attempt that is due; return real seconds until the next one."""
        now = self._clock.now()
        soonest = _IDLE_SECONDS
        for state in list(self._store.companies.values()):
            for sub in state.subscriptions.values():
                if sub.status != "ACTIVE" or sub.in_flight:
                    continue
                if sub.batch is None:
                    self._next_batch(state, sub, now)
                if sub.batch is None:
                    continue
                due = sub.next_attempt_at or now
                if due <= now:
                    sub.in_flight = True
                    task = asyncio.create_task(self._attempt(state, sub))
                    self._attempts.add(task)
                    task.add_done_callback(self._attempts.discard)
                else:
                    wait = self._clock.real_seconds((due - now).total_seconds())
                    soonest = min(soonest, wait)
        return soonest

    def _next_batch(self, state: CompanyState, sub: Subscription, now: datetime) -> None:
        faults = state.faults.deliveries
        batch: list[Record] = []
        while sub.pending and len(batch) < BATCH_SIZE:
            event = sub.pending.popleft()
            if faults.drop_rate and self._rng.random() < faults.drop_rate:
                self._log(state, sub, "DROPPED", None, 0, [event])
                continue
            batch.append(event)
        if not batch:
            return
        if faults.reorder:
            batch.reverse()
        sub.batch = batch
        sub.attempt = 0
        sub.next_attempt_at = now + timedelta(seconds=faults.delay_seconds)

    async def _attempt(self, state: CompanyState, sub: Subscription) -> None:
        try:
            batch = sub.batch or []
            faults = state.faults.deliveries
            sub.attempt += 1
            body = envelope(batch, self._rng)
            bad = faults.bad_signature_rate and self._rng.random() < faults.bad_signature_rate
            key = f"wrong-{sub.key}" if bad else sub.key
            status = await self._post(sub.url, body, key, faults.timeout_seconds)
            self._log(state, sub, "DELIVERY", status, sub.attempt, batch)
            if faults.duplicate_rate and self._rng.random() < faults.duplicate_rate:
                again = await self._post(sub.url, body, key, faults.timeout_seconds)
                self._log(state, sub, "DUPLICATE", again, sub.attempt, batch)
            if status is not None and 200 <= status < 300:
                sub.batch, sub.attempt, sub.next_attempt_at, sub.failing_since = None, 0, None, None
            else:
                self._schedule_retry(state, sub)
        finally:
            sub.in_flight = False
            self._wake.set()

    def _schedule_retry(self, state: CompanyState, sub: Subscription) -> None:
        now = self._clock.now()
        sub.failing_since = sub.failing_since or now
        deadline = sub.failing_since + GIVE_UP_AFTER
        if now >= deadline:
            sub.status = "DISABLED"
            sub.batch, sub.next_attempt_at = None, None
            sub.pending.clear()
            log.warning("released_sandbox_webhook_disabled", subscription_id=sub.id)
            self._log(state, sub, "DISABLED", None, sub.attempt, [])
            return
        delay = RETRY_SCHEDULE[min(sub.attempt - 1, len(RETRY_SCHEDULE) - 1)]
        sub.next_attempt_at = min(now + delay, deadline)

    async def _post(self, url: str, body: bytes, key: str, timeout: float) -> int | None:
        if self._session is None:
            return None
        headers = {
            "Content-Type": "application/json",
            "X-Released-Signature": sign(key, body),
            "X-Released-Delivery-Id": str(uuid.uuid4()),
        }
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("released_sandbox_webhook_unreachable", url=url, error=type(exc).__name__)
            return None

    def _log(
        self,
        state: CompanyState,
        sub: Subscription,
        kind: str,
        status: int | None,
        attempt: int,
        events: list[Record],
    ) -> None:
        state.deliveries.append(
            {
                "time": format_ts(self._clock.now()),
                "subscriptionId": sub.id,
                "kind": kind,
                "status": status,
                "attempt": attempt,
                "events": [e["eventId"] for e in events],
                "sequences": [e["sequence"] for e in events],
            }
        )
