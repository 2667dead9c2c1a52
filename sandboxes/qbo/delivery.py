"""Webhook delivery: per-realm queues, aggregation window, Intuit's retry schedule, faults.

Each realm has one worker. It waits for the aggregation window, posts up to 100 events, and
does not move on until the receiver acknowledges with a 2xx within 3 seconds: a failing endpoint
holds every later event of that realm back (Intuit's head-of-line blocking). The workers belong to
the lifespan (``running``) and are cancelled on shutdown.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sandboxes.qbo.changes import Change
from sandboxes.qbo.clock import ScaledClock, response_time
from sandboxes.qbo.runtime import RuntimeConfig
from sandboxes.qbo.store import RealmFaults
from sandboxes.qbo.webhooks import (
    MAX_EVENTS_PER_POST,
    QueuedEvent,
    build_body,
    notifies,
    sign,
)
from shared.infra.logging import get_logger

# Intuit best-practices page: 10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, then every 6 h.
RETRY_SCHEDULE = (10, 20, 30, 300, 1200, 7200, 14400, 21600)
ACK_TIMEOUT_SECONDS = 3.0
DELIVERY_LOG_SIZE = 10_000

log = get_logger("qbo_sandbox.webhooks")


@dataclass
class Wiring:
    """What the dispatcher needs from the rest of the sandbox."""

    config: RuntimeConfig
    clock: ScaledClock
    verifier_token: Callable[[], str]
    connected: Callable[[str], bool]
    faults: Callable[[str], RealmFaults]
    rng: random.Random


@dataclass
class _RealmQueue:
    pending: list[QueuedEvent] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class WebhookDispatcher:
    def __init__(self, wiring: Wiring) -> None:
        self.wiring = wiring
        self.queues: dict[str, _RealmQueue] = {}
        self.log: deque[dict[str, Any]] = deque(maxlen=DELIVERY_LOG_SIZE)
        self._session: aiohttp.ClientSession | None = None

    def notify(self, change: Change) -> None:
        """Queue a change if QBO would announce it to this app."""
        if not notifies(change) or not self.wiring.connected(change.realm_id):
            return
        queue = self.queues.setdefault(change.realm_id, _RealmQueue())
        queue.pending.append(QueuedEvent(change, str(uuid.uuid4())))
        self._ensure_worker(change.realm_id, queue)
        queue.wake.set()

    def _ensure_worker(self, realm_id: str, queue: _RealmQueue) -> None:
        if self._session is not None and (queue.task is None or queue.task.done()):
            queue.task = asyncio.get_running_loop().create_task(self._work(realm_id, queue))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookDispatcher]:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(ACK_TIMEOUT_SECONDS))
        try:
            for realm_id, queue in self.queues.items():
                self._ensure_worker(realm_id, queue)
                queue.wake.set()
            yield self
        finally:
            await self.stop_workers()
            await self._session.close()
            self._session = None

    async def stop_workers(self) -> None:
        tasks = [q.task for q in self.queues.values() if q.task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task

    async def reset(self) -> None:
        await self.stop_workers()
        self.queues.clear()
        self.log.clear()

    async def _work(self, realm_id: str, queue: _RealmQueue) -> None:
        clock = self.wiring.clock
        while True:
            await queue.wake.wait()
            queue.wake.clear()
            if not queue.pending:
                continue
            await asyncio.sleep(clock.seconds(self.wiring.config.aggregation_seconds))
            faults = self.wiring.faults(realm_id)
            if faults.webhook_delay_seconds:
                await asyncio.sleep(clock.seconds(faults.webhook_delay_seconds))
            while queue.pending:
                batch = queue.pending[:MAX_EVENTS_PER_POST]
                del queue.pending[:MAX_EVENTS_PER_POST]
                await self._send_batch(realm_id, batch, faults)

    async def _send_batch(
        self, realm_id: str, batch: list[QueuedEvent], faults: RealmFaults
    ) -> None:
        rng = self.wiring.rng
        if faults.webhook_reorder:
            batch = list(reversed(batch))
        if faults.webhook_drop_rate and rng.random() < faults.webhook_drop_rate:
            self._record(realm_id, batch, "dropped", attempt=0)
            return
        body = build_body(batch, self.wiring.config.webhook_format)
        await self._deliver_until_acked(realm_id, batch, body, faults)
        if faults.webhook_duplicate_rate and rng.random() < faults.webhook_duplicate_rate:
            await self._deliver_until_acked(realm_id, batch, body, faults, duplicate=True)

    async def _deliver_until_acked(
        self,
        realm_id: str,
        batch: list[QueuedEvent],
        body: bytes,
        faults: RealmFaults,
        duplicate: bool = False,
    ) -> None:
        attempt = 0
        while True:
            attempt += 1
            url = self.wiring.config.webhook_url
            if not url:
                self._record(realm_id, batch, "no_endpoint", attempt)
                return
            status, error = await self._post(url, body, faults.webhook_bad_signature)
            ok = status is not None and 200 <= status < 300
            self._record(
                realm_id, batch, "delivered" if ok else "failed", attempt, status, error, duplicate
            )
            if ok:
                return
            wait = RETRY_SCHEDULE[min(attempt - 1, len(RETRY_SCHEDULE) - 1)]
            await asyncio.sleep(self.wiring.clock.seconds(wait))

    async def _post(
        self, url: str, body: bytes, bad_signature: bool
    ) -> tuple[int | None, str | None]:
        assert self._session is not None, "dispatcher used outside its lifespan"
        token = self.wiring.verifier_token()
        signature = sign(body, token + "-wrong" if bad_signature else token)
        content_type = (
            "application/json"
            if self.wiring.config.webhook_format == "legacy"
            else self.wiring.config.ce_content_type
        )
        headers = {"intuit-signature": signature, "Content-Type": content_type}
        try:
            async with self._session.post(url, data=body, headers=headers) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record(
        self,
        realm_id: str,
        batch: list[QueuedEvent],
        status: str,
        attempt: int,
        http_status: int | None = None,
        error: str | None = None,
        duplicate: bool = False,
    ) -> None:
        entry = {
            "time": response_time(),
            "realmId": realm_id,
            "status": status,
            "attempt": attempt,
            "httpStatus": http_status,
            "error": error,
            "duplicate": duplicate,
            "format": self.wiring.config.webhook_format,
            "events": [
                {
                    "id": e.event_id,
                    "entity": e.change.entity,
                    "entityId": e.change.entity_id,
                    "operation": e.change.operation,
                }
                for e in batch
            ],
        }
        self.log.append(entry)
        log.info(
            "webhook_delivery",
            realm_id=realm_id,
            outcome=status,
            attempt=attempt,
            http_status=http_status,
            events=len(batch),
            error=error,
        )
