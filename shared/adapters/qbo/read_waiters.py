"""The callers waiting on a coalesced read, and how each is answered with its own copy.

``ReadClient`` is what the coalescer needs from the client a get came through; the QBO client
satisfies it, and naming it here keeps coalesce.py from importing the client that imports it.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any, Protocol

from shared.domain.errors import ConnectionRevoked, PermanentError


class ReadClient(Protocol):
    @property
    def batch_budget_key(self) -> str: ...

    async def wait_for_budget(self) -> None: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        text: str | None = None,
    ) -> dict[str, Any]: ...

    async def get_one(self, entity: str, entity_id: str) -> dict[str, Any]: ...


@dataclass
class Waiter:
    client: ReadClient
    entity: str
    entity_id: str
    future: asyncio.Future[dict[str, Any]]


# entity -> id -> the callers waiting for it
Group = dict[str, list[Waiter]]


def refused(exc: BaseException) -> bool:
    """QBO refused the query itself (not the token): a plain get per id gives each its answer."""
    return isinstance(exc, PermanentError) and not isinstance(exc, ConnectionRevoked)


def deliver(waiters: list[Waiter], record: dict[str, Any]) -> None:
    first = True
    for waiter in waiters:
        if not waiter.future.done():
            waiter.future.set_result(record if first else copy.deepcopy(record))
            first = False


def _own_copy(exc: BaseException) -> BaseException:
    """The same error for another caller (one instance raised in several tasks tangles up)."""
    try:
        clone = copy.copy(exc)
    except Exception:  # an exception type that cannot be rebuilt from its args
        return exc
    clone.__cause__ = exc.__cause__
    return clone.with_traceback(exc.__traceback__)


def fail(waiters: list[Waiter], exc: BaseException) -> None:
    first = True
    for waiter in waiters:
        if not waiter.future.done():
            waiter.future.set_exception(exc if first else _own_copy(exc))
            first = False
