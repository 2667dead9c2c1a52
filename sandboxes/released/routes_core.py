"""Public routes for the company, its connection, master data, context, webhooks and the feed."""

from __future__ import annotations

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandboxes.released.errors import conflict, invalid, not_found
from sandboxes.released.gate import Call, Gate
from sandboxes.released.listing import check_version, page_response, record_response
from sandboxes.released.masterdata import (
    KINDS,
    TRACKING,
    MasterKind,
    add_option,
    create_master,
    get_master,
    patch_master,
    patch_option,
    refuse_if_connected,
)
from sandboxes.released.schemas import ConnectionIn, WebhookIn, parse_model
from sandboxes.released.store import Record, Subscription, new_id

MAX_FEED_LIMIT = 1000


def company_routes(gate: Gate) -> list[BaseRoute]:
    async def get_company(call: Call) -> Response:
        return record_response(call.state.company)

    async def connect(call: Call) -> Response:
        body = parse_model(ConnectionIn, call.body)
        company = call.state.company
        existing: Record | None = company.get("accountingConnection")
        wanted = (body.external_org_id, body.sync_from_date.isoformat())
        if existing is not None:
            # Write-once: the same organisation again is a no-op, any other is refused forever.
            if (existing["externalOrgId"], existing["syncFromDate"]) != wanted:
                raise conflict(
                    "ONE_TO_ONE_CONNECTION",
                    "this company is already connected to another organisation",
                    str(existing["externalOrgId"]),
                )
            return record_response(company)
        store = call.sandbox.store
        # Whoever connects is the company's accounting side from now on (None: a user did).
        call.state.accounting_client = call.client
        company["accountingConnection"] = {
            "provider": body.provider,
            "externalOrgId": body.external_org_id,
            "status": "ACTIVE",
            "connectedAt": store.now(),
            "syncFromDate": wanted[1],
        }
        store.touch(company)
        store.emit(call.state, "connection.connected", company, "company")
        return record_response(company, 201)

    return [
        Route("/company", gate(get_company), methods=["GET"]),
        Route("/company/accounting-connection", gate(connect), methods=["POST"]),
    ]


def master_routes(gate: Gate, kind: MasterKind) -> list[BaseRoute]:
    async def list_records(call: Call) -> Response:
        return page_response(kind.records(call.state).values(), call.request.query_params)

    async def get(call: Call) -> Response:
        return record_response(get_master(call.state, kind, call.param("id")))

    async def create(call: Call) -> Response:
        refuse_if_connected(call)
        return record_response(create_master(call.sandbox.store, call.state, kind, call.body), 201)

    async def patch(call: Call) -> Response:
        record = get_master(call.state, kind, call.param("id"))
        refuse_if_connected(call)
        check_version(call.request.headers.get("if-match"), record)
        patch_master(call.sandbox.store, call.state, kind, record, call.body)
        return record_response(record)

    base = f"/{kind.path}"
    return [
        Route(base, gate(list_records), methods=["GET"]),
        Route(base, gate(create), methods=["POST"]),
        Route(base + "/{id}", gate(get), methods=["GET"]),
        Route(base + "/{id}", gate(patch), methods=["PATCH"]),
    ]


def tracking_option_routes(gate: Gate) -> list[BaseRoute]:
    """One option of a tracking category at a time (the category's version guards both)."""

    async def add(call: Call) -> Response:
        category = get_master(call.state, TRACKING, call.param("id"))
        refuse_if_connected(call)
        check_version(call.request.headers.get("if-match"), category)
        add_option(call.sandbox.store, call.state, category, call.body)
        return record_response(category, 201)

    async def patch(call: Call) -> Response:
        category = get_master(call.state, TRACKING, call.param("id"))
        refuse_if_connected(call)
        check_version(call.request.headers.get("if-match"), category)
        patch_option(call.sandbox.store, call.state, category, call.param("optionId"), call.body)
        return record_response(category)

    base = "/tracking-categories/{id}/options"
    return [
        Route(base, gate(add), methods=["POST"]),
        Route(base + "/{optionId}", gate(patch), methods=["PATCH"]),
    ]


def context_routes(gate: Gate) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for path, label in (("properties", "property"), ("tenancies", "tenancy")):

        def make(path: str, label: str) -> tuple[Route, Route]:
            async def list_records(call: Call) -> Response:
                records = getattr(call.state, path).values()
                return page_response(records, call.request.query_params)

            async def get(call: Call) -> Response:
                record = getattr(call.state, path).get(call.param("id"))
                if record is None:
                    raise not_found(label, call.param("id"))
                return record_response(record)

            return (
                Route(f"/{path}", gate(list_records), methods=["GET"]),
                Route(f"/{path}/{{id}}", gate(get), methods=["GET"]),
            )

        routes.extend(make(path, label))
    return routes


def event_routes(gate: Gate) -> list[BaseRoute]:
    async def feed(call: Call) -> Response:
        params = call.request.query_params
        try:
            after = int(params.get("afterSequence") or 0)
            limit = int(params.get("limit") or 100)
        except ValueError:
            raise invalid("INVALID_QUERY", "afterSequence and limit must be integers") from None
        if after < 0 or not 1 <= limit <= MAX_FEED_LIMIT:
            raise invalid("INVALID_QUERY", "afterSequence >= 0 and 1 <= limit <= 1000")
        events = call.state.events
        # Sequences are 1-based list positions, so the slice is the feed.
        items = events[after : after + limit]
        return JSONResponse({"items": items, "lastEventSequence": len(events)})

    return [Route("/events", gate(feed), methods=["GET"])]


def webhook_routes(gate: Gate) -> list[BaseRoute]:
    async def subscribe(call: Call) -> Response:
        body = parse_model(WebhookIn, call.body)
        sandbox = call.sandbox
        key = body.key or sandbox.settings.released_webhook_key.get_secret_value()
        now = sandbox.clock.now()
        sub = Subscription(
            id=new_id(), company_id=call.state.id, url=body.url, key=key, created_at=now
        )
        call.state.subscriptions[sub.id] = sub
        if await sandbox.dispatcher.intent_to_receive(call.state, sub):
            sub.status = "ACTIVE"
        return JSONResponse(sub.public(), status_code=201)

    def _sub(call: Call) -> Subscription:
        sub = call.state.subscriptions.get(call.param("id"))
        if sub is None:
            raise not_found("webhook", call.param("id"))
        return sub

    async def get(call: Call) -> Response:
        return JSONResponse(_sub(call).public())

    async def list_subs(call: Call) -> Response:
        return JSONResponse({"items": [s.public() for s in call.state.subscriptions.values()]})

    async def enable(call: Call) -> Response:
        sub = _sub(call)
        if await call.sandbox.dispatcher.intent_to_receive(call.state, sub):
            sub.status, sub.failing_since, sub.batch, sub.attempt = "ACTIVE", None, None, 0
        return JSONResponse(sub.public())

    return [
        Route("/webhooks", gate(subscribe), methods=["POST"]),
        Route("/webhooks", gate(list_subs), methods=["GET"]),
        Route("/webhooks/{id}", gate(get), methods=["GET"]),
        Route("/webhooks/{id}/enable", gate(enable), methods=["POST"]),
    ]


def all_core_routes(gate: Gate) -> list[BaseRoute]:
    routes = [*company_routes(gate), *context_routes(gate), *event_routes(gate)]
    for kind in KINDS:
        routes.extend(master_routes(gate, kind))
    return [*routes, *tracking_option_routes(gate), *webhook_routes(gate)]
