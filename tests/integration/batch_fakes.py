"""A stand-in for Re-Leased's batch routes in tests of the import's batches: every item is
written, given the next id with the route's prefix, in order."""

from __future__ import annotations

from typing import Any


class BatchRoute:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.made: list[str] = []

    async def batch(
        self, path: str, items: list[dict[str, Any]], *, idempotency_key: str
    ) -> list[dict[str, Any]]:
        results = []
        for item in items:
            self.made.append(f"{self.prefix}{len(self.made)}")
            results.append({"status": 201, "item": {**item, "id": self.made[-1], "version": "1"}})
        return results
