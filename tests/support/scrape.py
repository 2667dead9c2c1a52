"""Read a process's ``/metrics`` and ``/readyz`` the way Prometheus and Kubernetes do."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[Any, ...]], float]


async def scrape(http: aiohttp.ClientSession, base: str) -> Samples:
    """Every sample of ``base/metrics``: (name, sorted labels) -> value."""
    async with http.get(f"{base}/metrics") as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def probe(http: aiohttp.ClientSession, base: str, path: str) -> tuple[int, Any]:
    async with http.get(f"{base}{path}") as response:
        return response.status, await response.json(content_type=None)


def through(url: str, port: int) -> str:
    """``url`` with its host and port pointed at a local proxy."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@127.0.0.1:{port}" if auth else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))
