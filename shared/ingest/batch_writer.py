"""The loop every bulk path of the initial import shares: chunk, write, log ``import_batched``.

Each path plans its records first (what is plain goes in a batch, the rest is left for the
engine), then writes the plan in chunks of its platform's batch limit; a chunk's writer answers
the records it could not write after all (a refused item, one linked meanwhile by a live change),
which join those left for the engine. One ``import_batched`` line then says what became of the
stage (fields in docs/logging.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from shared.adapters.postgres.budgets import ApiBudget
from shared.adapters.qbo.batch import batch_write
from shared.adapters.qbo.client import QboClient
from shared.domain.connections import Connection
from shared.infra.logging import get_logger

log = get_logger("import")
P = TypeVar("P")
R = TypeVar("R")


async def write_batched(
    connection: Connection,
    entity: str,
    found: int,
    plan: tuple[Sequence[P], list[R]],
    write: Callable[[list[P]], Awaitable[list[R]]],
    *,
    limit: int,
    requests: Callable[[], int],
    up_to_date: int | None = None,
) -> list[R]:
    """Write ``plan`` (the planned records, and those already left for the engine) in chunks of
    ``limit``; the records left for the engine. ``requests``: the path's count of batch requests
    so far (read after the writes); ``up_to_date``: records left out as linked at their current
    version, logged only by the paths that count them."""
    planned, left = plan
    for start in range(0, len(planned), limit):
        left.extend(await write(list(planned[start : start + limit])))
    fields: dict[str, Any] = {
        "connection_id": str(connection.id),
        "entity": entity,
        "found": found,
        "batched": found - len(left) - (up_to_date or 0),
    }
    if up_to_date is not None:
        fields["up_to_date"] = up_to_date
    log.info("import_batched", **fields, left_to_engine=len(left), requests=requests())
    return left


def qbo_batch_id(prefix: str, material: Any) -> str:
    """QBO's ``requestid`` for a batch: the same batch sent again (a retried import) is answered
    with what the first one made; changed content is a new request. At most 50 characters."""
    digest = hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode())
    return f"{prefix}-{digest.hexdigest()[:40]}"


async def send_qbo_batch(
    qbo: QboClient, budget: ApiBudget | None, items: list[dict[str, Any]], request_id: str
) -> list[dict[str, Any]]:
    """One ``POST /batch``, inside QBO's allowance of batches per realm when one is configured."""
    if budget is None:
        return await batch_write(qbo, items, request_id=request_id)
    async with budget.acquire(qbo.batch_budget_key):
        return await batch_write(qbo, items, request_id=request_id)


def fault_reason(answer: dict[str, Any]) -> str:
    """Why QBO refused one item of a batch (its own Fault), for the log."""
    fault = answer.get("Fault")
    errors = fault.get("Error") if isinstance(fault, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    if not isinstance(first, dict):
        return "refused"
    return str(first.get("Detail") or first.get("Message") or "refused")[:300]
