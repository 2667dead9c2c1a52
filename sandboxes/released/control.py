"""The control API under /_sandbox: set-up, inspection, users' tokens, faults and the clock.

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

from sandboxes.released.auth import mint_token
from sandboxes.released.errors import ApiError, invalid
from sandboxes.released.faults import merge_faults
from sandboxes.released.gate import Call, Gate
from sandboxes.released.listing import record_response
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


class ClientIn(_In):
    client_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    client_secret: str = Field(min_length=8, max_length=128)


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

    async def register_client(request: Request) -> Response:
        # Another API client (another integration): its tokens act as a Re-Leased user unless it
        # makes a company's accounting connection.
        try:
            body = parse_model(ClientIn, await request.body())
        except ApiError as err:
            return err.response()
        if body.client_id == sandbox.settings.released_client_id:
            return invalid("CLIENT_EXISTS", "that is the configured client").response()
        sandbox.store.clients[body.client_id] = body.client_secret
        return JSONResponse({"clientId": body.client_id}, status_code=201)

    return [
        Route("/companies", create_company, methods=["POST"]),
        Route("/companies", list_companies, methods=["GET"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/deliveries", deliveries, methods=["GET"]),
        Route("/clock", clock, methods=["GET", "POST"]),
        Route("/clients", register_client, methods=["POST"]),
    ]


def company_control_routes(gate: Gate) -> list[BaseRoute]:
    async def requests_log(call: Call) -> Response:
        params = call.request.query_params
        method, contains = params.get("method"), params.get("pathContains")
        kept = call.state.requests
        if params.get("includeReads") == "true":
            kept = sorted([*kept, *call.state.reads], key=lambda r: str(r["time"]))
        items = [
            r
            for r in kept
            if (method is None or r["method"] == method.upper())
            and (contains is None or contains in r["path"])
        ]
        body = {
            "count": len(items),
            "total": call.state.request_total,
            "rateLimited": call.state.rate_limited,
            "items": items,
        }
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


def connection_routes(gate: Gate) -> list[BaseRoute]:
    """The accounting system revoking or restoring the company's connection (a platform event,
    not an API write: the accounting side writes records through the public API)."""

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

    return [connection("REVOKED"), connection("ACTIVE")]
