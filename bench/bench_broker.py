"""Publisher throughput: our confirmed, mandatory publish beside a bare aio-pika publish.

Runs against the local RabbitMQ (AMQP_URL, default guest@127.0.0.1) in a throw-away vhost
created with rabbitmqctl. Prints messages/s and p50/p99 latency per publish for:
- baseline: bare aio-pika publish, no confirms, to a classic queue;
- EventPublisher: confirms + mandatory to the quorum work queue, sequential and 64 in flight.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika

from shared.adapters.broker import EventPublisher, declare_topology
from shared.domain.events import ChangeEvent

AMQP = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
COUNT = int(os.environ.get("BENCH_COUNT", "5000"))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def report(name: str, elapsed: float, latencies: list[float]) -> None:
    print(
        f"{name:<40} {COUNT / elapsed:>9.0f} msg/s   p50 {statistics.median(latencies):6.2f} ms"
        f"   p99 {pct(latencies, 0.99):6.2f} ms"
    )


async def timed(
    publish: Callable[[int], Awaitable[None]], concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            t0 = time.perf_counter()
            await publish(i)
            latencies.append((time.perf_counter() - t0) * 1000)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(COUNT)))
    return time.perf_counter() - start, latencies


def event(i: int) -> ChangeEvent:
    return ChangeEvent(
        event_id=f"bench-{i}-{uuid.uuid4().hex}",
        source="qbo",
        account_id="bench",
        entity="invoice",
        entity_id=str(i),
        operation="update",
        occurred_at=datetime.now(UTC),
    )


async def run(url: str) -> None:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        setup = await connection.channel()
        await declare_topology(setup)
        bare_channel = await connection.channel(publisher_confirms=False)
        await bare_channel.declare_queue("bench.bare", auto_delete=True)
        body = event(0).to_bytes()

        async def bare(i: int) -> None:
            await bare_channel.default_exchange.publish(
                aio_pika.Message(body), routing_key="bench.bare"
            )

        publisher = await EventPublisher.open(connection)

        async def ours(i: int) -> None:
            await publisher.publish(event(i))

        print(f"{COUNT} messages each, RabbitMQ at {urlsplit(url).hostname}")
        report("baseline: bare publish, no confirms", *await timed(bare, 64))
        report("EventPublisher, 1 in flight", *await timed(ours, 1))
        report("EventPublisher, 64 in flight", *await timed(ours, 64))


def main() -> None:
    vhost = f"bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
    )
    try:
        url = urlunsplit(urlsplit(AMQP)._replace(path="/" + quote(vhost, safe="")))
        asyncio.run(run(url))
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


if __name__ == "__main__":
    main()
