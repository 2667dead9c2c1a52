"""Writes through QBO's ``POST /batch``: up to 30 items in one request, each answered on its own.

Intuit: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/batch
(30 items at most; each item carries a ``bId`` that its answer repeats; an item fails with a
``Fault`` of its own). The request counts once against the realm's budget; ``requestid`` makes the
whole batch idempotent like any other write.
"""

from __future__ import annotations

from typing import Any

from shared.adapters.qbo.client import QboClient
from shared.domain.errors import PermanentError

BATCH_LIMIT = 30


async def batch_write(
    client: QboClient, items: list[dict[str, Any]], *, request_id: str
) -> list[dict[str, Any]]:
    """The answer to each of ``items`` (each with a ``bId``), in their order; ``{}`` when QBO
    left one out."""
    if not 0 < len(items) <= BATCH_LIMIT:
        raise ValueError(f"a QBO batch holds 1 to {BATCH_LIMIT} items, not {len(items)}")
    payload = await client.request(
        "POST", "/batch", params={"requestid": request_id}, body={"BatchItemRequest": items}
    )
    answers = payload.get("BatchItemResponse")
    if not isinstance(answers, list):
        raise PermanentError("QBO answered a batch without BatchItemResponse")
    by_id = {str(a.get("bId")): a for a in answers if isinstance(a, dict)}
    return [by_id.get(str(item.get("bId")), {}) for item in items]
