"""bench_ingest's second load generator: aiohttp in the bench process (it shares the machine's
cores with the server, which is why wrk is the main one), kept for continuity with the figures
measured before wrk."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
from collections.abc import Callable

import aiohttp
from ingest_support import TOKEN, body, purge

from shared.domain.signatures import sign

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))

Start = Callable[[list[str], dict[str, str], int], "subprocess.Popen[bytes]"]
Stop = Callable[["subprocess.Popen[bytes]"], None]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


async def load(url: str, batch: int) -> tuple[int, list[float], float, int]:
    """Returns (requests ok, latencies ms, elapsed s, errors)."""
    latencies: list[float] = []
    ok = errors = 0
    stop_at = time.perf_counter() + SECONDS
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal ok, errors
            while time.perf_counter() < stop_at:
                data = body("qbo", batch)
                signature = sign(TOKEN, data)
                headers = {"Content-Type": "application/json", "intuit-signature": signature}
                t0 = time.perf_counter()
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    if response.status == 200:
                        ok += 1
                        latencies.append((time.perf_counter() - t0) * 1000)
                    else:
                        errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return ok, latencies, elapsed, errors


def report(name: str, result: tuple[int, list[float], float, int], batch: int) -> float:
    requests, latencies, elapsed, errors = result
    rate = requests / elapsed
    shown = f"{rate:8.0f} req/s" + (f" {rate * batch:9.0f} events/s" if batch > 1 else " " * 19)
    print(
        f"  {name:<30} {shown}  p50 {statistics.median(latencies or [0]):7.2f} ms"
        f"  p99 {pct(latencies, 0.99):7.2f} ms  errors {errors}"
    )
    return rate


def python_section(env: dict[str, str], dsn: str, amqp: str, start: Start, stop: Stop) -> None:
    print(f"\naiohttp generator in the bench process, {CONCURRENCY} connections, {SECONDS:.0f} s")
    for batch in (1, 100):
        base = start(["bench/baseline_receiver.py"], env, int(env["BENCH_BASELINE_PORT"]))
        bare = report(
            f"baseline, batch {batch}",
            asyncio.run(load(f"http://127.0.0.1:{env['BENCH_BASELINE_PORT']}/", batch)),
            batch,
        )
        stop(base)
        port = int(env["QBO_WEBHOOKS_PORT"])
        recv = start(["-m", "services.qbo_webhooks"], env, port)
        ours = report(
            f"qbo_webhooks, batch {batch}",
            asyncio.run(load(f"http://127.0.0.1:{port}/webhooks/qbo", batch)),
            batch,
        )
        print(f"  {'':30} ratio {ours / bare:.2f}")
        stop(recv)
        asyncio.run(purge(amqp, dsn))
