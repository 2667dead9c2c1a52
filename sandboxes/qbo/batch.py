"""POST /batch: up to 30 items, run in order, each answered on its own (a Fault per item)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandboxes.qbo import errors
from sandboxes.qbo.dispatch import json_response, query_payload, read_json, write_entity
from sandboxes.qbo.entities import ENTITIES, VoidForm, canonical
from sandboxes.qbo.guard import audit
from sandboxes.qbo.state import SandboxState
from sandboxes.qbo.store import Realm

MAX_ITEMS = 30


def _params(entity: str, item: dict[str, Any]) -> dict[str, str]:
    operation = str(item.get("operation", "create")).lower()
    if operation == "update" and str(item.get("optionsData", "")).lower() == "void":
        if VoidForm.OPERATION_VOID in ENTITIES[entity].void_forms:
            return {"operation": "void"}
        return {"operation": "update", "include": "void"}
    return {"operation": operation}


def _mentions(value: Any, ids: set[str]) -> str | None:
    """An id from ``ids`` that ``value`` refers to (Id, ref value, LinkedTxn TxnId), if any."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("Id", "value", "TxnId") and str(inner) in ids:
                return str(inner)
            found = _mentions(inner, ids)
            if found is not None:
                return found
    elif isinstance(value, list):
        for inner in value:
            found = _mentions(inner, ids)
            if found is not None:
                return found
    return None


def _run_item(
    state: SandboxState, realm: Realm, item: dict[str, Any], created: set[str]
) -> dict[str, Any]:
    if "Query" in item:
        return {"QueryResponse": query_payload(realm, str(item["Query"]))}
    keys = [k for k in item if k not in ("bId", "operation", "optionsData")]
    entity = canonical(keys[0]) if len(keys) == 1 else None
    if entity is None or not isinstance(item[keys[0]], dict):
        raise errors.invalid("A batch item needs exactly one entity object or a Query")
    # QBO runs items in order but a later item cannot see what an earlier one created.
    unseen = _mentions(item[keys[0]], created)
    if unseen is not None:
        raise errors.not_found(entity, unseen)
    result = write_entity(state, realm, entity, item[keys[0]], _params(entity, item))
    if str(item.get("operation", "create")).lower() == "create":
        created.add(str(result["Id"]))
    return {entity: result}


def _is_write(item: dict[str, Any]) -> bool:
    return "Query" not in item


async def run_batch(state: SandboxState, realm: Realm, request: Request) -> Response:
    body = await read_json(request)
    items = body.get("BatchItemRequest")
    if not isinstance(items, list) or not items:
        raise errors.required("BatchItemRequest")
    if len(items) > MAX_ITEMS:
        raise errors.invalid(
            f"Number of items in a batch request ({len(items)}) exceeds the maximum of {MAX_ITEMS}"
        )
    audit(request, None, "batch", write=any(_is_write(i) for i in items))
    responses = []
    created: set[str] = set()
    for item in items:
        answer: dict[str, Any] = {"bId": str(item.get("bId", ""))}
        try:
            answer.update(_run_item(state, realm, item, created))
        except errors.QboFault as fault:
            answer["Fault"] = fault.fault_only()
        responses.append(answer)
    return json_response({"BatchItemResponse": responses})
