"""The data API under /v3/company/{realmId}: entities, query, CDC (batch and files elsewhere)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandboxes.qbo import cdc, errors
from sandboxes.qbo.attachments import download, upload, with_download_uri
from sandboxes.qbo.batch import run_batch
from sandboxes.qbo.dispatch import (
    entity_from_path,
    json_response,
    query_payload,
    read_json,
    write_entity,
)
from sandboxes.qbo.guard import audit, guarded
from sandboxes.qbo.pdf import document_pdf
from sandboxes.qbo.state import SandboxState
from sandboxes.qbo.store import Obj, Realm

MAX_REQUEST_ID = 50


def _operation_name(params: Any, body: Obj) -> str:
    operation = params.get("operation")
    if operation == "update" and params.get("include") == "void":
        return "void"
    if operation in ("delete", "void"):
        return str(operation)
    return "update" if body.get("Id") not in (None, "") else "create"


async def _post_entity(state: SandboxState, realm: Realm, request: Request) -> Response:
    entity = entity_from_path(request)
    params = request.query_params
    request_id = params.get("requestid")
    if request_id and request_id in realm.idempotency:
        # Intuit: the same requestid again returns the original response, doing nothing.
        audit(request, entity, "replay", write=False)
        status, body = realm.idempotency[request_id]
        return Response(body, status, media_type="application/json")
    if request_id and len(request_id) > MAX_REQUEST_ID:
        raise errors.invalid("requestid must be at most 50 characters")
    try:
        payload = await read_json(request)
        audit(request, entity, _operation_name(params, payload), write=True)
        response = json_response({entity: write_entity(state, realm, entity, payload, params)})
    except errors.QboFault as fault:
        response = errors.fault_response(fault)
    if request_id:
        realm.idempotency[request_id] = (response.status_code, bytes(response.body))
    return response


async def _get_entity(state: SandboxState, realm: Realm, request: Request) -> Response:
    entity = entity_from_path(request)
    audit(request, entity, "read", write=False)
    obj_id = request.path_params["obj_id"]
    if entity == "CompanyInfo" and obj_id == realm.realm_id:
        obj_id = "1"  # clients read /companyinfo/{realmId}; the object's own Id is 1
    obj = realm.get(entity, obj_id)
    if obj is None:
        raise errors.not_found(entity, obj_id)
    if entity == "Attachable":
        obj = with_download_uri(state, request, realm, obj)
    return json_response({entity: obj})


async def _preferences(state: SandboxState, realm: Realm, request: Request) -> Response:
    """``GET /v3/company/{realm}/preferences``: the one Preferences object, no id in the path."""
    audit(request, "Preferences", "read", write=False)
    found = realm.get("Preferences", "1")
    if found is None:
        raise errors.not_found("Preferences", "1")
    return json_response({"Preferences": found})


async def _query(state: SandboxState, realm: Realm, request: Request) -> Response:
    text = request.query_params.get("query")
    if request.method == "POST" and not text:
        text = (await request.body()).decode("utf-8", errors="replace")
    if not text:
        raise errors.required("query")
    audit(request, None, "query", write=False)
    return json_response({"QueryResponse": query_payload(realm, text)})


async def _cdc(state: SandboxState, realm: Realm, request: Request) -> Response:
    params = request.query_params
    audit(request, None, "cdc", write=False)
    names, since = cdc.parse_request(params.get("entities"), params.get("changedSince"))
    return json_response({"CDCResponse": cdc.changes(realm, names, since)})


async def post_entity(request: Request) -> Response:
    return await guarded(request, _post_entity)


async def get_entity(request: Request) -> Response:
    return await guarded(request, _get_entity)


async def get_pdf(request: Request) -> Response:
    return await guarded(request, document_pdf)


async def get_preferences(request: Request) -> Response:
    return await guarded(request, _preferences)


async def run_query(request: Request) -> Response:
    return await guarded(request, _query)


async def run_cdc(request: Request) -> Response:
    return await guarded(request, _cdc)


async def post_batch(request: Request) -> Response:
    return await guarded(request, run_batch, batch=True)


async def post_upload(request: Request) -> Response:
    return await guarded(request, upload)


async def get_download(request: Request) -> Response:
    return await guarded(request, download)


_BASE = "/v3/company/{realm_id}"

routes = [
    Route(f"{_BASE}/query", run_query, methods=["GET", "POST"]),
    Route(f"{_BASE}/cdc", run_cdc, methods=["GET"]),
    Route(f"{_BASE}/batch", post_batch, methods=["POST"]),
    Route(f"{_BASE}/upload", post_upload, methods=["POST"]),
    Route(f"{_BASE}/download/{{obj_id}}", get_download, methods=["GET"]),
    Route(f"{_BASE}/preferences", get_preferences, methods=["GET"]),
    Route(f"{_BASE}/{{entity}}", post_entity, methods=["POST"]),
    Route(f"{_BASE}/{{entity}}/{{obj_id}}", get_entity, methods=["GET"]),
    Route(f"{_BASE}/{{entity}}/{{obj_id}}/pdf", get_pdf, methods=["GET"]),
]
