"""Requests per second the QBO sandbox serves, next to a bare Starlette baseline.

Both servers run as separate processes on loopback under uvicorn, the same way; rate limits are
off. A fixed number of concurrent aiohttp clients hammer each scenario for a few seconds.
Prints figures; asserts nothing. Usage: ``python bench/bench_qbo_sandbox.py [seconds] [clients]``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BASELINE = """
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def ping(request):
    return JSONResponse({"Customer": {"Id": "1", "DisplayName": "Baseline"}})

app = Starlette(routes=[Route("/ping", ping)])
uvicorn.run(app, host="127.0.0.1", port={port}, log_config=None, access_log=False)
"""

BANK_ACCOUNTS = "select * from Account where AccountType = 'Bank'"
Call = Callable[[aiohttp.ClientSession], Awaitable[int]]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"server at {url} did not start")


async def measure(name: str, call: Call, seconds: float, clients: int) -> None:
    latencies: list[float] = []
    errors = 0
    stop = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=clients)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.monotonic() < stop:
                began = time.perf_counter()
                status = await call(session)
                latencies.append(time.perf_counter() - began)
                if status >= 400:
                    errors += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<28} {len(latencies) / elapsed:>9.0f} req/s   "
        f"p50 {cuts[49] * 1000:6.2f} ms   p99 {cuts[98] * 1000:6.2f} ms   errors {errors}"
    )


def get(url: str, headers: dict[str, str] | None = None) -> Call:
    async def call(session: aiohttp.ClientSession) -> int:
        async with session.get(url, headers=headers) as response:
            await response.read()
            return response.status

    return call


def create_customers(url: str, headers: dict[str, str]) -> Call:
    numbers = itertools.count()

    async def call(session: aiohttp.ClientSession) -> int:
        body = {"DisplayName": f"Bench {next(numbers)}"}
        async with session.post(url, json=body, headers=headers) as response:
            await response.read()
            return response.status

    return call


async def main(seconds: float, clients: int) -> None:
    base_port, box_port = free_port(), free_port()
    baseline = start([sys.executable, "-c", BASELINE.replace("{port}", str(base_port))], {})
    sandbox = start(
        [sys.executable, "-m", "sandboxes.qbo"],
        {
            "QBO_SANDBOX_PORT": str(box_port),
            "QBO_SANDBOX_RATE_LIMITS": "false",
            "LOG_LEVEL": "WARNING",
        },
    )
    box = f"http://127.0.0.1:{box_port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, f"http://127.0.0.1:{base_port}/ping")
            await wait_ready(session, f"{box}/health")
            async with session.post(f"{box}/_sandbox/realms", json={"companyName": "B"}) as r:
                realm = (await r.json())["realmId"]
            async with session.post(f"{box}/_sandbox/realms/{realm}/tokens") as r:
                auth = {"Authorization": f"Bearer {(await r.json())['access_token']}"}
            api = f"{box}/v3/company/{realm}"
            async with session.post(
                f"{api}/customer", json={"DisplayName": "R"}, headers=auth
            ) as r:
                customer_id = (await r.json())["Customer"]["Id"]
        print(f"{seconds:.0f} s per scenario, {clients} concurrent clients, loopback, limits off")
        await measure(
            "baseline starlette GET", get(f"http://127.0.0.1:{base_port}/ping"), seconds, clients
        )
        await measure(
            "sandbox GET customer/{id}",
            get(f"{api}/customer/{customer_id}", auth),
            seconds,
            clients,
        )
        await measure(
            "sandbox POST customer", create_customers(f"{api}/customer", auth), seconds, clients
        )
        query = f"{api}/query?query={BANK_ACCOUNTS}"
        await measure("sandbox GET query", get(query, auth), seconds, clients)
    finally:
        for process in (baseline, sandbox):
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    duration = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    asyncio.run(main(duration, concurrency))
