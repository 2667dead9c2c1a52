"""Operations shared by single requests and batch items: entity writes, queries, responses."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandboxes.qbo import errors, query, query_run, writes
from sandboxes.qbo.clock import response_time
from sandboxes.qbo.entities import VoidForm, canonical
from sandboxes.qbo.money import dumps, loads
from sandboxes.qbo.state import SandboxState
from sandboxes.qbo.store import Obj, Realm


def json_response(payload: dict[str, Any], status: int = 200) -> Response:
    payload.setdefault("time", response_time())
    return Response(dumps(payload), status, media_type="application/json")


def entity_from_path(request: Request) -> str:
    raw = request.path_params["entity"]
    entity = canonical(raw)
    if entity is None:
        raise errors.unsupported(f"{raw} (unknown entity)")
    return entity


async def read_json(request: Request) -> Obj:
    try:
        body = loads(await request.body())
    except ValueError:
        raise errors.invalid("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise errors.invalid("Request body must be a JSON object")
    return body


def write_entity(state: SandboxState, realm: Realm, entity: str, body: Obj, params: Any) -> Obj:
    """The one dispatch of ?operation= (shared by single requests and batch items)."""
    company = state.company(realm)
    operation = params.get("operation")
    if operation == "delete":
        return writes.delete(company, entity, body)
    if operation == "void":
        return writes.void(company, entity, body, VoidForm.OPERATION_VOID)
    if operation == "update" and params.get("include") == "void":
        return writes.void(company, entity, body, VoidForm.UPDATE_INCLUDE_VOID)
    if operation not in (None, "", "create", "update"):
        raise errors.unsupported(str(operation))
    return writes.save(company, entity, body)


def query_payload(realm: Realm, text: str) -> dict[str, Any]:
    parsed = query.parse(text)
    rows, total = query_run.run(parsed, realm.table(parsed.entity))
    if parsed.count:
        return {"totalCount": total}
    if not rows:
        return {}
    return {parsed.entity: rows, "startPosition": parsed.start, "maxResults": len(rows)}
