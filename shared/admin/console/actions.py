"""The console's actions (POST): every one needs a session and the form's CSRF field, does its
work through the same code as the admin API, and answers with a redirect carrying the outcome as
the page's message. Failures are messages too: never a stack trace, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from shared.admin import api, ops_api, results_api
from shared.admin.console.pages import LETTER_FIELDS, letter_filter_fields
from shared.admin.console.render import page, see_other, session_of
from shared.admin.console.session import Sessions
from shared.admin.context import admin_state
from shared.domain.errors import SyncError
from shared.infra.errors import InfraUnavailable
from shared.infra.logging import get_logger
from shared.ops import conflict_resolution, dead_letters, records, replay

log = get_logger("admin.console")
Action = Callable[[Request, FormData], Awaitable[Response]]


def _back(form: FormData, default: str) -> str:
    back = str(form.get("back") or "")
    # Only our own pages: never an absolute URL or another scheme.
    return back if back.startswith("/console/") and "//" not in back else default


def csrf_refused(request: Request) -> Response:
    return page(
        request,
        "message.html",
        403,
        heading="Refused",
        text="This form has expired or did not come from this console (CSRF check failed). "
        "Reload the page and try again.",
    )


def action(handler: Action) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        session = session_of(request)
        form = await request.form()
        if session is None or not Sessions.csrf_ok(session, form.get("csrf")):
            log.warning("console_csrf_refused", path=request.url.path)
            return csrf_refused(request)
        try:
            return await handler(request, form)
        except (InfraUnavailable, SyncError) as exc:
            return see_other(
                _back(form, "/console/connections"), f"Nothing was changed: {exc}", "error"
            )
        except ValueError as exc:  # BadRequest is a ValueError
            return see_other(_back(form, "/console/connections"), str(exc), "error")

    return run


def _answer(response: Response) -> tuple[int, dict[str, Any]]:
    body = json.loads(bytes(response.body)) if isinstance(response, JSONResponse) else {}
    return response.status_code, body if isinstance(body, dict) else {}


async def _delegate(
    request: Request,
    form: FormData,
    handler: Callable[[Request], Awaitable[Response]],
    default_back: str,
    done: Callable[[dict[str, Any]], str],
) -> Response:
    """Run the admin API's handler for the same path parameters; its answer becomes a message."""
    status_code, body = _answer(await handler(request))
    back = _back(form, default_back)
    if status_code >= 400:
        return see_other(back, str(body.get("reason") or body.get("error") or status_code), "error")
    return see_other(back, done(body), "success")


async def pause(request: Request, form: FormData) -> Response:
    return await _delegate(
        request,
        form,
        api.pause,
        "/console/connections",
        lambda _: "Paused: new changes are parked until you resume.",
    )


async def resume(request: Request, form: FormData) -> Response:
    return await _delegate(
        request,
        form,
        api.resume,
        "/console/connections",
        lambda b: f"Resumed; {b.get('released', 0)} parked events released.",
    )


async def reconnect(request: Request, form: FormData) -> Response:
    connection_id = UUID(request.path_params["id"])
    url = admin_state(request)["admin"].flow.authorize_url(connection_id)
    return RedirectResponse(url, status_code=303)


async def resync(request: Request, form: FormData) -> Response:
    p = request.path_params
    back = f"/console/connections/{p['id']}/results/{p['direction']}/{p['entity']}/{p['source_id']}"
    return await _delegate(
        request,
        form,
        results_api.resync_record,
        back,
        lambda b: f"Resync queued (event {b.get('event_id')}).",
    )


async def unlink(request: Request, form: FormData) -> Response:
    return await _delegate(
        request,
        form,
        ops_api.unlink,
        "/console/connections",
        lambda _: "Unlinked: changes to either record are no longer synced.",
    )


async def relink(request: Request, form: FormData) -> Response:
    async with admin_state(request)["ops"].pool.acquire() as conn:
        link = await records.relink(
            conn,
            int(request.path_params["id"]),
            qbo_id=str(form.get("qbo_id") or "").strip() or None,
            released_id=str(form.get("released_id") or "").strip() or None,
        )
    back = _back(form, "/console/connections")
    if link is None:
        return see_other(back, "No such link.", "error")
    return see_other(back, "Relinked: the pair syncs again.", "success")


async def replay_one(request: Request, form: FormData) -> Response:
    letter = request.path_params["id"]
    return await _delegate(
        request,
        form,
        ops_api.replay_dead_letter,
        f"/console/dead-letters/{letter}",
        lambda b: f"Replayed as event {b.get('replay_id')}.",
    )


def _letter_filter(form: FormData) -> tuple[dict[str, str], Any]:
    fields = letter_filter_fields(form)
    return fields, ops_api.parse_filter({k: v for k, v in fields.items() if v})


async def _bulk(request: Request, form: FormData, *, purge: bool) -> Response:
    fields, where = _letter_filter(form)
    ops = admin_state(request)["ops"]
    async with ops.pool.acquire() as conn:
        matched = await dead_letters.count(conn, where)
        if form.get("confirm") != "yes":
            verb = "purge" if purge else "replay"
            return page(
                request,
                "confirm.html",
                heading=f"Bulk {verb}",
                matched=matched,
                text=f"{matched} dead letter{'s' if matched != 1 else ''} match this filter "
                + (
                    "and will be marked purged (kept for audit, never replayed)."
                    if purge
                    else f"; at most {ops_api.MAX_REPLAY_BATCH} are replayed per confirmation, "
                    "paced to stay inside the API budgets."
                ),
                url=str(request.url.path),
                fields={k: fields[k] for k in LETTER_FIELDS},
                button=f"{verb.capitalize()} {matched}",
                danger=purge,
            )
        if purge:
            done = await dead_letters.purge(conn, where)
            return see_other("/console/dead-letters", f"Purged {done} dead letters.", "success")
        chosen = await dead_letters.ids(conn, where, limit=ops_api.MAX_REPLAY_BATCH)
    async with ops.publisher() as publisher:
        report = await replay.replay_many(ops.pool, publisher, chosen, ops.throttle)
    text = f"Replayed {len(report.replayed)} of {matched}; skipped {len(report.skipped)}."
    return see_other("/console/dead-letters", text, "success")


async def replay_bulk(request: Request, form: FormData) -> Response:
    return await _bulk(request, form, purge=False)


async def purge_bulk(request: Request, form: FormData) -> Response:
    return await _bulk(request, form, purge=True)


async def resolve_conflict(request: Request, form: FormData) -> Response:
    side = str(form.get("side") or "")
    if side not in ("qbo", "released", "ack"):
        return see_other("/console/conflicts", "Choose QuickBooks or Re-Leased.", "error")
    conflict_id = int(request.path_params["id"])
    if side == "ack":
        async with admin_state(request)["ops"].pool.acquire() as conn:
            done = await records.resolve_conflict(conn, conflict_id, "console: acknowledged")
        text = f"Flag {conflict_id} acknowledged." if done else "That flag is already closed."
        return see_other("/console/conflicts", text, "success" if done else "error")
    ops = admin_state(request)["ops"]
    await ops.throttle.wait()
    try:
        async with ops.publisher() as publisher, ops.pool.acquire() as conn:
            queued = await conflict_resolution.request(
                conn, publisher, conflict_id, side, f"console: kept {side}"
            )
    except conflict_resolution.Refused as exc:
        text = f"Conflict {conflict_id} not resolved: {exc}."
        return see_other("/console/conflicts", text, "error")
    if queued is None:
        return see_other("/console/conflicts", "That conflict is already resolved.", "error")
    name = "QuickBooks" if side == "qbo" else "Re-Leased"
    text = (
        f"Conflict {conflict_id}: kept {name}'s {queued.field}. The engine is writing it where it"
        " differs; the conflict closes once both sides hold it."
    )
    return see_other("/console/conflicts", text, "success")
