"""The sandbox control API under /_sandbox (tests and demo only; see docs/qbo_sandbox.md).

The fixed routes (docs/qbo_sandbox.md, "Control API") come first; the rest set webhooks and
faults, inspect logs, and act as a QBO user doing what only the UI can (void a credit memo, merge
customers, spend money).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandboxes.qbo import errors, ui
from sandboxes.qbo.money import loads, plain
from sandboxes.qbo.profiles import PROFILES
from sandboxes.qbo.state import SandboxState, sandbox
from sandboxes.qbo.store import Realm, RealmFaults

_FORMATS = ("cloudevents", "legacy")


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    body = loads(raw)
    if not isinstance(body, dict):
        raise errors.invalid("expected a JSON object")
    return body


def _realm(state: SandboxState, request: Request) -> Realm:
    realm = state.store.get(request.path_params["realm_id"])
    if realm is None:
        raise errors.QboFault(404, "610", "Object Not Found", "No such sandbox company")
    return realm


def _answer(fn: Any) -> Any:
    """Turn faults raised by control handlers into QBO-shaped error responses."""

    async def wrapper(request: Request) -> Response:
        try:
            result: Response = await fn(request)
        except errors.QboFault as fault:
            return errors.fault_response(fault)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return result

    return wrapper


async def create_realm(request: Request) -> Response:
    state = sandbox(request)
    body = await _json(request)
    profile_name = str(body.get("profile") or "default")
    profile = PROFILES.get(profile_name)
    if profile is None:
        return JSONResponse({"error": f"profile must be one of {sorted(PROFILES)}"}, 400)
    currency = str(body.get("homeCurrency") or profile.home_currency)
    country = str(body.get("country") or profile.country)
    if not (len(currency) == 3 and currency.isalpha() and currency.isupper()):
        return JSONResponse({"error": "homeCurrency must be a three-letter ISO code"}, 400)
    if not (len(country) == 2 and country.isalpha() and country.isupper()):
        return JSONResponse({"error": "country must be a two-letter ISO code"}, 400)
    realm = state.create_realm(
        str(body.get("companyName") or "Sandbox Company"),
        home_currency=currency,
        multi_currency=bool(body.get("multiCurrency", profile.multi_currency)),
        country=country,
        profile=profile_name,
    )
    return JSONResponse({"realmId": realm.realm_id}, 201)


async def list_realms(request: Request) -> Response:
    state = sandbox(request)
    realms = [
        {
            "realmId": r.realm_id,
            "companyName": r.company_name,
            "connected": state.tokens.connected(r.realm_id),
        }
        for r in state.store.realms.values()
    ]
    return JSONResponse({"realms": realms})


async def mint_tokens(request: Request) -> Response:
    state = sandbox(request)
    realm = _realm(state, request)
    return JSONResponse(state.tokens.mint(realm.realm_id))


async def expire_tokens(request: Request) -> Response:
    state = sandbox(request)
    return JSONResponse({"expired": state.tokens.expire_realm(_realm(state, request).realm_id)})


async def revoke_tokens(request: Request) -> Response:
    state = sandbox(request)
    return JSONResponse({"revoked": state.tokens.revoke_realm(_realm(state, request).realm_id)})


async def reset(request: Request) -> Response:
    await sandbox(request).reset()
    return Response(status_code=204)


async def deliveries(request: Request) -> Response:
    state = sandbox(request)
    realm_id = request.query_params.get("realmId")
    entries = [d for d in state.dispatcher.log if realm_id is None or d["realmId"] == realm_id]
    return JSONResponse({"deliveries": entries})


async def get_settings(request: Request) -> Response:
    state = sandbox(request)
    return JSONResponse(state.config.as_dict(state.clock.scale))


async def put_settings(request: Request) -> Response:
    state = sandbox(request)
    body = await _json(request)
    config = state.config
    if "webhookUrl" in body:
        config.webhook_url = body["webhookUrl"] or None
    if "webhookFormat" in body:
        if body["webhookFormat"] not in _FORMATS:
            raise ValueError(f"webhookFormat must be one of {_FORMATS}")
        config.webhook_format = body["webhookFormat"]
    if "aggregationSeconds" in body:
        config.aggregation_seconds = float(body["aggregationSeconds"])
    if "rateLimits" in body:
        config.rate_limits = bool(body["rateLimits"])
    if "ceContentType" in body:
        config.ce_content_type = str(body["ceContentType"])
    if "timeScale" in body:
        scale = float(body["timeScale"])
        if scale <= 0:
            raise ValueError("timeScale must be positive")
        state.clock.scale = scale
    return JSONResponse(config.as_dict(state.clock.scale))


async def put_webhook(request: Request) -> Response:
    """Shorthand for the webhook part of /_sandbox/settings: {"url", "format"}."""
    body = await _json(request)
    state = sandbox(request)
    if "url" in body:
        state.config.webhook_url = body["url"] or None
    if body.get("format") in _FORMATS:
        state.config.webhook_format = body["format"]
    return JSONResponse(state.config.as_dict(state.clock.scale))


async def get_faults(request: Request) -> Response:
    return JSONResponse(_realm(sandbox(request), request).faults.as_dict())


async def put_faults(request: Request) -> Response:
    realm = _realm(sandbox(request), request)
    body = await _json(request)
    known = {f.name: f.type for f in dataclasses.fields(RealmFaults)}
    unknown = set(body) - set(known)
    if unknown:
        raise ValueError(f"unknown fault switches: {sorted(unknown)}")
    for name, value in body.items():
        setattr(realm.faults, name, bool(value) if known[name] == "bool" else float(value))
    return JSONResponse(realm.faults.as_dict())


async def clear_faults(request: Request) -> Response:
    realm = _realm(sandbox(request), request)
    realm.faults = RealmFaults()
    return JSONResponse(realm.faults.as_dict())


async def requests_log(request: Request) -> Response:
    realm = _realm(sandbox(request), request)
    entity = request.query_params.get("entity")
    records = [
        dataclasses.asdict(r) for r in realm.requests if entity is None or r.entity == entity
    ]
    writes = sum(1 for r in records if r["write"])
    return JSONResponse({"count": len(records), "writes": writes, "requests": records})


async def clear_requests(request: Request) -> Response:
    _realm(sandbox(request), request).requests.clear()
    return Response(status_code=204)


async def peek(request: Request) -> Response:
    realm = _realm(sandbox(request), request)
    entity, obj_id = request.path_params["entity"], request.path_params["obj_id"]
    obj = realm.get(entity, obj_id)
    if obj is None:
        raise errors.not_found(entity, obj_id)
    return JSONResponse(plain({entity: obj}))


def _route(path: str, endpoint: Any, method: str) -> Route:
    return Route(f"/_sandbox{path}", _answer(endpoint), methods=[method])


routes = [
    _route("/realms", create_realm, "POST"),
    _route("/realms", list_realms, "GET"),
    _route("/realms/{realm_id}/tokens", mint_tokens, "POST"),
    _route("/reset", reset, "POST"),
    _route("/deliveries", deliveries, "GET"),
    _route("/settings", get_settings, "GET"),
    _route("/settings", put_settings, "PUT"),
    _route("/webhook", put_webhook, "PUT"),
    _route("/realms/{realm_id}/tokens/expire", expire_tokens, "POST"),
    _route("/realms/{realm_id}/tokens/revoke", revoke_tokens, "POST"),
    _route("/realms/{realm_id}/faults", get_faults, "GET"),
    _route("/realms/{realm_id}/faults", put_faults, "PUT"),
    _route("/realms/{realm_id}/faults", clear_faults, "DELETE"),
    _route("/realms/{realm_id}/requests", requests_log, "GET"),
    _route("/realms/{realm_id}/requests", clear_requests, "DELETE"),
    _route("/realms/{realm_id}/objects/{entity}/{obj_id}", peek, "GET"),
    *(_route(path, endpoint, "POST") for path, endpoint in ui.ROUTES),
]
