"""Coalesced QBO reads: concurrent ``get(entity, id)`` calls for one realm share one request.

The engine re-reads every record before it applies it, so an initial import spends one QBO
request per document on reads alone and runs into the realm's 500 requests/minute. A
``ReadCoalescer`` (one per connection, owned by the ``ClientFactory`` and shared by every
``QboClient`` it builds for that connection) collects the gets that arrive together and
answers them with one request:

- one id of one type: the plain ``GET /{entity}/{id}``, exactly as without coalescing, sent at once
  when nothing else is in flight (a lone get never waits);
- several ids of one type: ``select * from X where Id in (...)`` with ``maxresults`` covering them;
  name-list types add ``Active in (true, false)`` because QBO queries return active rows only;
- several types: one ``POST /batch`` with a ``Query`` item per type, when the realm's batch
  allowance (40/minute) has a token; otherwise one request per type, side by side.

A get that arrives while a request is in flight waits ``window_s`` (less once ``max_ids`` are
waiting); then the next request waits until the realm's budget has a token (without spending it)
and only then takes every get waiting, up to ``max_ids``. At most ``max_in_flight`` requests run at
once. So when the budget is the bottleneck the gets pile into the next request instead of each
queueing for a token of its own, and when it is not, nothing waits longer than the window.

Every caller sees what a plain get would have given it: its own record; ``NotFound`` for a
transaction id missing from the answer (QBO hard-deletes transactions); a plain get for a missing
name-list id or when QBO refuses the query or an item of a batch; and the shared request's own
failure (429, 5xx, unreachable, revoked) as is. Requests go through the sending client's
``request``, so the per-realm budget (one token per HTTP request sent), the in-process retries and
the refresh-once-on-401 all apply unchanged.

Beside this module: which gets can share a request and the statement that reads them
(read_queries.py); the waiting callers, each answered with its own copy, and ``ReadClient``, what
the coalescer needs of the client, so that the client imports this module and not the reverse
(read_waiters.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from shared.adapters.postgres.budgets import ApiBudget
from shared.adapters.qbo.read_queries import (
    MAX_BATCH_ITEMS,
    MAX_GET_QUERY_CHARS,
    NAME_LISTS,
    statement_for,
)
from shared.adapters.qbo.read_waiters import (
    Group,
    ReadClient,
    Waiter,
    deliver,
    fail,
    refused,
)
from shared.domain.errors import NotFound


@dataclass(frozen=True)
class CoalesceOptions:
    window_s: float = 0.002
    max_ids: int = 30
    max_in_flight: int = 2
    # The realm's /batch allowance (keyed ``qbo-batch:{realm}``); None: never send /batch.
    batch_budget: ApiBudget | None = None


@dataclass
class CoalesceStats:
    """What one coalescer sent (the bench prints these)."""

    gets: int = 0
    requests: int = 0
    batches: int = 0
    queries: int = 0
    fallbacks: int = 0


class ReadCoalescer:
    def __init__(self, options: CoalesceOptions) -> None:
        self.options = options
        self.stats = CoalesceStats()
        self._pending: list[Waiter] = []
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._claimer = False  # a request is waiting for the budget before it takes its gets
        self._tasks: set[asyncio.Task[None]] = set()

    def _count(self, name: str, n: int) -> None:
        setattr(self.stats, name, getattr(self.stats, name) + n)

    async def get(self, client: ReadClient, entity: str, entity_id: str) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append(Waiter(client, entity, entity_id, future))
        self._count("gets", 1)
        self._schedule()
        return await future

    # -- when to send ----------------------------------------------------------------------------

    def _schedule(self) -> None:
        if not self._pending or self._claimer or self._in_flight >= self.options.max_in_flight:
            return  # the waiting request, or the next to land, takes what piles up
        if len(self._pending) >= self.options.max_ids:
            self._send_now()
        elif self._timer is None:
            # Nothing in flight: go on the next loop turn (gets issued together still share).
            delay = 0.0 if self._in_flight == 0 else self.options.window_s
            self._timer = asyncio.get_running_loop().call_later(delay, self._send_now)

    def _send_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending and not self._claimer:
            if self._in_flight >= self.options.max_in_flight:
                return
            if self._in_flight == 0:
                # Idle: send at once. Otherwise the request first waits until the realm's
                # budget has a token, then takes every get that piled up meanwhile.
                taken = self._claim()
                if not taken:
                    return
                self._start(taken)
            else:
                self._claimer = True
                self._start(None)

    def _claim(self) -> list[Waiter]:
        live = [w for w in self._pending if not w.future.done()]  # a cancelled caller drops out
        taken, self._pending = live[: self.options.max_ids], live[self.options.max_ids :]
        return taken

    def _start(self, taken: list[Waiter] | None) -> None:
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._fly(taken))
        self._tasks.add(task)
        task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        if self._pending:
            self._send_now()  # these have waited for a slot already

    async def _fly(self, taken: list[Waiter] | None) -> None:
        waiters = taken or []
        try:
            if taken is None:
                waiters = await self._claim_when_ready()
            if waiters:
                await self._answer(waiters)
        except asyncio.CancelledError:
            for waiter in waiters:
                waiter.future.cancel()
            raise
        except Exception as exc:  # handed to every caller, as a plain get would
            fail(waiters, exc)

    async def _claim_when_ready(self) -> list[Waiter]:
        try:
            # A failure here (the database) meets the request too, which reports it.
            with contextlib.suppress(Exception):
                if self._pending:
                    await self._pending[0].client.wait_for_budget()
        finally:
            self._claimer = False
        taken = self._claim()
        self._schedule()  # more than max_ids waiting: the next request can start waiting
        return taken

    # -- what to send ----------------------------------------------------------------------------

    async def _answer(self, waiters: list[Waiter]) -> None:
        leader = waiters[0].client
        groups: dict[str, Group] = {}
        for waiter in waiters:
            groups.setdefault(waiter.entity, {}).setdefault(waiter.entity_id, []).append(waiter)
        entities = list(groups)
        jobs: list[Awaitable[None]] = []
        for start in range(0, len(entities), MAX_BATCH_ITEMS):
            chunk = {e: groups[e] for e in entities[start : start + MAX_BATCH_ITEMS]}
            if len(chunk) > 1 and await self._batch_allowed(leader):
                jobs.append(self._by_batch(leader, chunk))
            else:
                jobs.extend(self._by_type(leader, e, group) for e, group in chunk.items())
        await asyncio.gather(*jobs)

    async def _batch_allowed(self, leader: ReadClient) -> bool:
        budget = self.options.batch_budget
        return budget is not None and await budget.try_take(leader.batch_budget_key)

    async def _by_type(self, leader: ReadClient, entity: str, group: Group) -> None:
        if len(group) == 1:
            ((entity_id, waiters),) = group.items()
            await self._single(leader, entity, entity_id, waiters)
            return
        statement = statement_for(entity, list(group))
        self._count("requests", 1)
        self._count("queries", 1)
        try:
            if len(statement) > MAX_GET_QUERY_CHARS:
                payload = await leader.request("POST", "/query", text=statement)
            else:
                payload = await leader.request("GET", "/query", params={"query": statement})
        except Exception as exc:  # sorted below
            if not refused(exc):
                fail([w for ws in group.values() for w in ws], exc)
                return
            await self._singles(leader, entity, group)
            return
        response = payload.get("QueryResponse")
        await self._rows(leader, entity, group, response if isinstance(response, dict) else {})

    async def _by_batch(self, leader: ReadClient, chunk: dict[str, Group]) -> None:
        order = list(chunk.items())
        items = [
            {"bId": str(n), "Query": statement_for(entity, list(group))}
            for n, (entity, group) in enumerate(order)
        ]
        self._count("requests", 1)
        self._count("batches", 1)
        try:
            payload = await leader.request("POST", "/batch", body={"BatchItemRequest": items})
        except Exception as exc:  # sorted below
            if not refused(exc):
                fail([w for _, g in order for ws in g.values() for w in ws], exc)
                return
            await asyncio.gather(*(self._singles(leader, e, g) for e, g in order))
            return
        answers = {
            str(a.get("bId")): a
            for a in payload.get("BatchItemResponse") or []
            if isinstance(a, dict)
        }
        jobs: list[Awaitable[None]] = []
        for n, (entity, group) in enumerate(order):
            answer = answers.get(str(n), {})
            response = answer.get("QueryResponse")
            if "Fault" in answer or not isinstance(response, dict):
                jobs.append(self._singles(leader, entity, group))
            else:
                jobs.append(self._rows(leader, entity, group, response))
        await asyncio.gather(*jobs)

    async def _rows(
        self, leader: ReadClient, entity: str, group: Group, response: dict[str, Any]
    ) -> None:
        rows = response.get(entity)
        found = {
            str(row.get("Id")): row
            for row in (rows if isinstance(rows, list) else [])
            if isinstance(row, dict)
        }
        missing: Group = {}
        for entity_id, waiters in group.items():
            record = found.get(entity_id)
            if record is not None:
                deliver(waiters, record)
            elif entity in NAME_LISTS:
                missing[entity_id] = waiters  # never deleted: let QBO's own GET say why
            else:
                fail(
                    waiters,
                    NotFound(
                        f"QBO object not found: Object Not Found: {entity} {entity_id} "
                        "(not in QBO: deleted or never created)"
                    ),
                )
        if missing:
            await self._singles(leader, entity, missing)

    async def _singles(self, leader: ReadClient, entity: str, group: Group) -> None:
        self._count("fallbacks", len(group))
        await asyncio.gather(
            *(self._single(leader, entity, i, waiters) for i, waiters in group.items())
        )

    async def _single(
        self, leader: ReadClient, entity: str, entity_id: str, waiters: list[Waiter]
    ) -> None:
        self._count("requests", 1)
        try:
            record = await leader.get_one(entity, entity_id)
        except Exception as exc:  # the plain get's own error, to its callers
            fail(waiters, exc)
            return
        deliver(waiters, record)
