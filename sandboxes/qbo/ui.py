"""Acting as a QBO user in the web UI: what the API cannot do, and edits without a token.

These writes emit webhooks like any other change but are not counted in the API request log.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandboxes.qbo import errors, writes
from sandboxes.qbo.entities import ENTITIES, Kind, canonical
from sandboxes.qbo.money import loads, plain
from sandboxes.qbo.state import SandboxState, sandbox
from sandboxes.qbo.store import Realm


def _target(request: Request) -> tuple[SandboxState, Realm, str]:
    state = sandbox(request)
    realm = state.store.get(request.path_params["realm_id"])
    if realm is None:
        raise errors.QboFault(404, "610", "Object Not Found", "No such sandbox company")
    entity = canonical(request.path_params["entity"])
    if entity is None:
        raise errors.unsupported(f"{request.path_params['entity']} (unknown entity)")
    return state, realm, entity


def _ok(entity: str, obj: Any) -> Response:
    return JSONResponse(plain({entity: obj}))


async def ui_save(request: Request) -> Response:
    """Create, or edit the latest version (sparse unless "sparse": false), as a user would."""
    state, realm, entity = _target(request)
    body = loads(await request.body())
    if body.get("Id") not in (None, ""):
        current = realm.get(entity, str(body["Id"]))
        if current is None:
            raise errors.not_found(entity, str(body["Id"]))
        body.setdefault("SyncToken", current["SyncToken"])
        body.setdefault("sparse", True)
    return _ok(entity, writes.save(state.company(realm), entity, body))


async def ui_void(request: Request) -> Response:
    state, realm, entity = _target(request)
    return _ok(entity, writes.ui_void(state.company(realm), entity, request.path_params["obj_id"]))


async def ui_delete(request: Request) -> Response:
    """Deleting a name-list record in the UI makes it inactive; transactions go away."""
    state, realm, entity = _target(request)
    obj_id = request.path_params["obj_id"]
    current = realm.get(entity, obj_id)
    if current is None:
        raise errors.not_found(entity, obj_id)
    company = state.company(realm)
    token = {"Id": obj_id, "SyncToken": current["SyncToken"]}
    if ENTITIES[entity].kind is Kind.NAME_LIST:
        return _ok(entity, writes.save(company, entity, {**token, "sparse": True, "Active": False}))
    return _ok(entity, writes.delete(company, entity, token))


async def ui_merge(request: Request) -> Response:
    state, realm, entity = _target(request)
    body = loads(await request.body())
    merged = writes.merge(state.company(realm), entity, str(body["fromId"]), str(body["toId"]))
    return _ok(entity, merged)


async def ui_email(request: Request) -> Response:
    state, realm, entity = _target(request)
    obj_id = request.path_params["obj_id"]
    obj = realm.get(entity, obj_id)
    if obj is None:
        raise errors.not_found(entity, obj_id)
    obj["EmailStatus"] = "EmailSent"
    state.company(realm).emit(entity, obj_id, "Emailed")
    return _ok(entity, obj)


ROUTES = (
    ("/realms/{realm_id}/ui/{entity}", ui_save),
    ("/realms/{realm_id}/ui/{entity}/merge", ui_merge),
    ("/realms/{realm_id}/ui/{entity}/{obj_id}/void", ui_void),
    ("/realms/{realm_id}/ui/{entity}/{obj_id}/delete", ui_delete),
    ("/realms/{realm_id}/ui/{entity}/{obj_id}/email", ui_email),
)
