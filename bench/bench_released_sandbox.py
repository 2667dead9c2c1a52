"""How many requests a second the Re-Leased sandbox serves, beside a bare Starlette baseline.

Both servers run the same way: a uvicorn subprocess on a free loopback port (the sandbox through its
real entrypoint, rate limits off, logging at WARNING), driven by one aiohttp client with a fixed
number of requests in flight for a fixed time. Prints figures; asserts nothing. About 30 s.

    .venv/bin/python bench/bench_released_sandbox.py [--seconds 5] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
Request = Callable[[aiohttp.ClientSession], Awaitable[int]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_baseline(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request as StarletteRequest
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: StarletteRequest) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/", hello)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, log_level="warning")


@asynccontextmanager
async def server(command: list[str], env: dict[str, str], ready_url: str) -> Any:
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before any measurement
        command, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL
    )
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 15
            while True:
                try:
                    async with session.get(ready_url) as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {command}")
                await asyncio.sleep(0.1)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


async def load(request: Request, seconds: float, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm_until = time.monotonic() + 1.0
        while time.monotonic() < warm_until:
            await request(session)
        stop_at = time.monotonic() + seconds

        async def worker() -> None:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                status = await request(session)
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - began
    latencies.sort()
    ok = sum(n for s, n in statuses.items() if s < 400)
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "requests": len(latencies),
        "errors": len(latencies) - ok,
    }


def report(name: str, figures: dict[str, float]) -> None:
    print(
        f"{name:<34} {figures['rps']:>9.0f} req/s   p50 {figures['p50_ms']:6.2f} ms   "
        f"p99 {figures['p99_ms']:6.2f} ms   ({figures['requests']:.0f} requests, "
        f"{figures['errors']:.0f} errors)"
    )


async def seed(base: str) -> tuple[dict[str, str], dict[str, Any], str]:
    """A company, a token, and one invoice to read; returns headers, an invoice body, its id."""
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{base}/_sandbox/companies", json={"name": "Bench Ltd"}) as r:
            company = (await r.json())["id"]
        async with s.post(f"{base}/_sandbox/companies/{company}/tokens") as r:
            token = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}", "X-Company-Id": company}
        async with s.get(f"{base}/api/v1/contacts", headers=headers) as r:
            contact = (await r.json())["items"][0]["id"]
        body = {
            "type": "INCOME",
            "contactId": contact,
            "date": "2025-01-01",
            "lines": [{"description": "Rent", "quantity": "1", "unitAmount": "1000.00"}],
        }
        async with s.post(f"{base}/api/v1/invoices", json=body, headers=headers) as r:
            invoice = (await r.json())["id"]
    return headers, body, invoice


async def bench_sandbox(seconds: float, concurrency: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        "RELEASED_SANDBOX_PORT": str(port),
        "RELEASED_SANDBOX_PUBLIC_URL": base,
        "RELEASED_SANDBOX_RATE_LIMITS": "false",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "sandboxes.released"]
    async with server(command, env, f"{base}/api/v1/openapi.json"):
        headers, body, invoice = await seed(base)

        async def read(session: aiohttp.ClientSession) -> int:
            async with session.get(f"{base}/api/v1/invoices/{invoice}", headers=headers) as r:
                await r.read()
                return r.status

        async def write(session: aiohttp.ClientSession) -> int:
            async with session.post(f"{base}/api/v1/invoices", json=body, headers=headers) as r:
                await r.read()
                return r.status

        report("sandbox GET /api/v1/invoices/{id}", await load(read, seconds, concurrency))
        report("sandbox POST /api/v1/invoices", await load(write, seconds, concurrency))


async def bench_baseline(seconds: float, concurrency: int) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    command = [sys.executable, str(Path(__file__).resolve()), "--baseline-server", str(port)]
    async with server(command, {}, base):

        async def hello(session: aiohttp.ClientSession) -> int:
            async with session.get(base) as r:
                await r.read()
                return r.status

        report("baseline bare Starlette GET /", await load(hello, seconds, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        serve_baseline(args.baseline_server)
        return
    print(
        f"loopback, uvicorn subprocess, 1 aiohttp client, {args.concurrency} in flight, "
        f"{args.seconds:.0f} s per figure after 1 s warm-up, {os.cpu_count()} CPUs"
    )
    # Baseline on both sides of the sandbox runs, so drift in the machine shows up.
    asyncio.run(bench_baseline(args.seconds, args.concurrency))
    asyncio.run(bench_sandbox(args.seconds, args.concurrency))
    asyncio.run(bench_baseline(args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
