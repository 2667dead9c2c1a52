"""The control API under /_sandbox: set-up, inspection, the accounting side, faults and the clock.

Test and demo only. The fixed routes (companies, reset, deliveries) are the contract's; the rest are
documented in docs/released_sandbox.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandboxes.released import contacts, payments
from sandboxes.released.auth import mint_token
from sandboxes.released.documents import CREDIT_NOTE, get_document
from sandboxes.released.errors import ApiError, invalid
from sandboxes.released.faults import merge_faults
from sandboxes.released.gate import Call, Gate
from sandboxes.released.listing import record_response
from sandboxes.released.masterdata import (
    KINDS,
    MasterKind,
    create_master,
    get_master,
    patch_master,
)
from sandboxes.released.sandbox import Sandbox
from sandboxes.released.schemas import parse_json, parse_model
from sandboxes.released.seed import new_company


class _In(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CompanyIn(_In):
    name: str = Field(min_length=1, max_length=255)
    region: str = Field(default="NZ", pattern=r"^(NZ|AU|UK|US)$")
    profile: Literal["default", "portfolio"] = "default"  # seed.PROFILES


class ClockIn(_In):
    time_scale: float | None = Field(default=None, gt=0, le=1_000_000)
    advance_seconds: float | None = Field(default=None, ge=0)


class MergeIn(_In):
    into_contact_id: str


async def _clock(sandbox: Sandbox, request: Request) -> Response:
    if request.method == "POST":
        try:
            body = ClockIn.model_validate(parse_json(await request.body()))
        except (ApiError, ValidationError) as err:
            return invalid("INVALID_FIELD", str(err)).response()
        if body.time_scale is not None:
            sandbox.clock.set_scale(body.time_scale)
        if body.advance_seconds:
            sandbox.clock.advance(body.advance_seconds)
        # Retries that just fell due on the moved clock go out now, not at the next idle tick.
        sandbox.dispatcher.poke()
    return JSONResponse({"now": sandbox.store.now(), "timeScale": sandbox.clock.scale})


def global_routes(sandbox: Sandbox) -> list[BaseRoute]:
    async def create_company(request: Request) -> Response:
        try:
            body = parse_model(CompanyIn, await request.body())
        except ApiError as err:
            return err.response()
        state = new_company(sandbox.store, body.name, body.region, body.profile)
        return JSONResponse({"id": state.id}, status_code=201)

    async def list_companies(request: Request) -> Response:
        items = [{"id": s.id, "name": s.company["name"]} for s in sandbox.store.companies.values()]
        return JSONResponse({"items": items})

    async def reset(request: Request) -> Response:
        sandbox.reset()
        return Response(status_code=204)

    async def deliveries(request: Request) -> Response:
        wanted = request.query_params.get("companyId")
        items = [
            {**entry, "companyId": state.id}
            for state in sandbox.store.companies.values()
            if wanted in (None, state.id)
            for entry in state.deliveries
        ]
        return JSONResponse({"items": items})

    async def clock(request: Request) -> Response:
        return await _clock(sandbox, request)

    return [
        Route("/companies", create_company, methods=["POST"]),
        Route("/companies", list_companies, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/deliveries", deliveries, methods=["GET"]),
        Route("/clock", clock, methods=["GET", "POST"]),
    ]


def company_control_routes(gate: Gate) -> list[BaseRoute]:
    async def requests_log(call: Call) -> Response:
        params = call.request.query_params
        method, contains = params.get("method"), params.get("pathContains")
        items = [
            r
            for r in call.state.requests
            if (method is None or r["method"] == method.upper())
            and (contains is None or contains in r["path"])
        ]
        body = {"count": len(items), "total": call.state.request_total, "items": items}
        return JSONResponse(body)

    async def token(call: Call) -> Response:
        return JSONResponse(mint_token(call.sandbox, call.state.id), status_code=201)

    async def expire_tokens(call: Call) -> Response:
        call.state.tokens_valid_after = call.sandbox.clock.now()
        return Response(status_code=204)

    async def faults(call: Call) -> Response:
        if call.request.method == "PUT":
            patch = parse_json(call.body)
            if not isinstance(patch, dict):
                raise invalid("INVALID_JSON", "the body must be a JSON object")
            try:
                call.state.faults = merge_faults(call.state.faults, patch)
            except ValidationError as exc:
                raise invalid("INVALID_FIELD", str(exc)) from None
        return JSONResponse(call.state.faults.model_dump(by_alias=True))

    return [
        Route("/requests", gate(requests_log), methods=["GET"]),
        Route("/tokens", gate(token), methods=["POST"]),
        Route("/expire-tokens", gate(expire_tokens), methods=["POST"]),
        Route("/faults", gate(faults), methods=["GET", "PUT"]),
    ]


def accounting_routes(gate: Gate) -> list[BaseRoute]:
    """The accounting side (QBO, through the product or by hand) changing Re-Leased."""

    def contact_action(verb: str) -> Route:
        async def act(call: Call) -> Response:
            contact = contacts.get_contact(call.state, call.param("id"))
            store = call.sandbox.store
            if verb == "merge":
                target = parse_model(MergeIn, call.body).into_contact_id
                contacts.merge_contact(store, call.state, contact, target)
            else:
                contacts.set_archived(store, call.state, contact, archived=verb == "archive")
            return record_response(contact)

        return Route(f"/contacts/{{id}}/{verb}", gate(act), methods=["POST"])

    async def reverse(call: Call) -> Response:
        payment = payments.get_payment(call.state, call.param("id"))
        payments.reverse_payment(call.sandbox.store, call.state, payment, "ACCOUNTING")
        return record_response(payment)

    async def unallocate(call: Call) -> Response:
        note = get_document(call.state, CREDIT_NOTE, call.param("id"))
        payments.remove_allocation(call.sandbox.store, call.state, note, call.param("allocation"))
        return record_response(note)

    def connection(status: str) -> Route:
        async def act(call: Call) -> Response:
            company = call.state.company
            if company.get("accountingConnection") is None:
                raise invalid("NOT_CONNECTED", "the company has no accounting connection")
            company["accountingConnection"]["status"] = status
            call.sandbox.store.touch(company)
            name = "connection.revoked" if status == "REVOKED" else "connection.restored"
            call.sandbox.store.emit(call.state, name, company, "company")
            return record_response(company)

        verb = "revoke" if status == "REVOKED" else "restore"
        return Route(f"/connection/{verb}", gate(act), methods=["POST"])

    routes: list[BaseRoute] = [
        contact_action("archive"),
        contact_action("unarchive"),
        contact_action("merge"),
        Route("/payments/{id}/reverse", gate(reverse), methods=["POST"]),
        Route("/credit-notes/{id}/allocations/{allocation}", gate(unallocate), methods=["DELETE"]),
        connection("REVOKED"),
        connection("ACTIVE"),
    ]
    for kind in KINDS:
        routes.extend(_master_writes(gate, kind))
    return routes


def _master_writes(gate: Gate, kind: MasterKind) -> list[BaseRoute]:
    async def create(call: Call) -> Response:
        return record_response(create_master(call.sandbox.store, call.state, kind, call.body), 201)

    async def patch(call: Call) -> Response:
        record = get_master(call.state, kind, call.param("id"))
        patch_master(call.sandbox.store, call.state, kind, record, call.body)
        return record_response(record)

    return [
        Route(f"/{kind.path}", gate(create), methods=["POST"]),
        Route(f"/{kind.path}/{{id}}", gate(patch), methods=["PATCH"]),
    ]
