"""A bench-only trace of every API request the product sends: when, on which lane, for which
message, how long it waited for its budget. ``install()`` wraps the HTTP transport in this process;
``summary()`` prints the Re-Leased requests of the live lane grouped by what caused them.

Diagnostics for bench_backfill_real_limits (BENCH_TRACE=1), never imported by the product."""

from __future__ import annotations

import re
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from shared.adapters.http import transport as transport_module
from shared.delivery import consumer as consumer_module


@dataclass(frozen=True)
class Traced:
    at: float
    side: str
    bulk: bool
    method: str
    path: str
    waited_s: float
    context: dict[str, Any]


@dataclass(frozen=True)
class Handled:
    queue: str
    entity: str
    entity_id: str
    operation: str
    attempt: int
    queued_s: float  # from the receiver's accepting it to the handler's start
    at: float  # perf_counter at the handler's start
    took_s: float
    failed: str


TRACE: list[Traced] = []
HANDLED: list[Handled] = []
_IDS = re.compile(r"/[0-9a-f-]{8,}|/\d+")


def install() -> None:
    original = transport_module.Transport._slot

    @asynccontextmanager
    async def slot(self: Any, request: Any) -> AsyncIterator[None]:
        started = time.perf_counter()
        async with original(self, request):
            if request.api_call:
                reserve = getattr(self._budget, "_reserve", None)
                TRACE.append(
                    Traced(
                        at=started,
                        side=self._rules.name,
                        bulk=bool(reserve and reserve.tokens > 0),
                        method=request.method,
                        path=_IDS.sub("/{id}", str(request.url).split("?")[0].split("/v1")[-1]),
                        waited_s=time.perf_counter() - started,
                        context=dict(structlog.contextvars.get_contextvars()),
                    )
                )
            yield

    transport_module.Transport._slot = slot  # type: ignore[method-assign]
    apply = consumer_module.EventConsumer._apply

    async def traced_apply(self: Any, event: Any) -> None:
        at = time.perf_counter()
        queued = (datetime.now(UTC) - event.received_at).total_seconds()
        failed = ""
        try:
            await apply(self, event)
        except Exception as exc:
            failed = type(exc).__name__
            raise
        finally:
            HANDLED.append(
                Handled(
                    self.queue_name,
                    event.entity,
                    event.entity_id,
                    event.operation,
                    event.attempt,
                    queued,
                    at,
                    time.perf_counter() - at,
                    failed,
                )
            )

    consumer_module.EventConsumer._apply = traced_apply  # type: ignore[method-assign]


def summary(t0: float) -> None:
    released = [t for t in TRACE if "leased" in t.side.lower()]
    live = [t for t in released if not t.bulk]
    print(f"\ntrace: {len(released)} Re-Leased requests, {len(live)} on the live lane")
    causes: Counter[tuple[str, ...]] = Counter()
    waits: dict[tuple[str, ...], list[float]] = defaultdict(list)
    for t in live:
        c = t.context
        key: tuple[str, ...] = (
            str(c.get("queue", (c.get("connection_id") and "schedule") or "-")),
            str(c.get("entity", "-")),
            str(c.get("operation", "-")),
            t.method,
            t.path,
        )
        causes[key] += 1
        waits[key].append(t.waited_s)
    for cause, n in causes.most_common(25):
        w = sorted(waits[cause])
        print(f"  {n:5d}  wait p50 {w[len(w) // 2]:5.2f} s max {w[-1]:5.2f} s  {' '.join(cause)}")
    slow = sorted(live, key=lambda t: -t.waited_s)[:10]
    print("  slowest live waits:")
    for t in slow:
        c = t.context
        print(
            f"    +{t.at - t0:6.1f} s waited {t.waited_s:5.2f} s {t.method} {t.path} "
            f"{c.get('queue', '-')} {c.get('entity', '-')} {c.get('operation', '-')}"
        )


def queues(t0: float, bucket_s: float = 60.0) -> None:
    """Per queue and minute of the import: events handled, their queueing p50/max, failures."""
    print("\nhandled events by queue and minute (count, queued p50/max s, took p50/p90, failed):")
    by: dict[tuple[str, int], list[Handled]] = defaultdict(list)
    for h in HANDLED:
        by[(h.queue, int((h.at - t0) // bucket_s))].append(h)
    for (queue, minute), rows in sorted(by.items()):
        q = sorted(r.queued_s for r in rows)
        took = sorted(r.took_s for r in rows)
        failed = Counter(r.failed for r in rows if r.failed)
        print(
            f"  {queue:28s} min {minute:3d}: {len(rows):5d}  {q[len(q) // 2]:6.2f} / {q[-1]:6.2f}"
            f"  {took[len(took) // 2]:5.3f} / {took[int(len(took) * 0.9)]:5.3f}"
            f"  {dict(failed) if failed else ''}"
        )


def story(entity_id: str, started: float) -> None:
    """What happened to one record's events and requests, in seconds from ``started``."""
    for h in HANDLED:
        if h.entity_id == entity_id:
            print(
                f"      event {h.queue} {h.operation} attempt {h.attempt}: "
                f"start +{h.at - started:.2f} (queued {h.queued_s:.2f}) "
                f"took {h.took_s:.2f} {h.failed}"
            )
    for t in TRACE:
        if t.context.get("entity_id") == entity_id:
            print(
                f"      request {t.side} {t.method} {t.path} at +{t.at - started:.2f} "
                f"waited {t.waited_s:.2f} bulk={t.bulk}"
            )
