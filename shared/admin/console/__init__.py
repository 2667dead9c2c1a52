"""The operator console: server-rendered pages on the admin service, under ``/console``.

Sign-in with the admin token turns into a session cookie (``session``); the gate below lets
nothing but the sign-in page and the static assets through without one. Pages are in ``pages``,
form actions (each CSRF-checked) in ``actions``, templates and assets are package data.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.admin.console import actions, pages
from shared.admin.console.render import SESSION_KEY, page, see_other
from shared.admin.console.session import COOKIE, LOGIN_COOKIE, LOGIN_TTL_S, Sessions
from shared.infra.logging import get_logger

log = get_logger("admin.console")
PREFIX = "/console"
OPEN_PATHS = ("/console/login", "/console/static/")


class ConsoleGate:
    """No session, no console: a page asks to sign in, a form post is refused (403)."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self._app = app
        self._sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self._app(scope, receive, send)
            return
        request = Request(scope)
        session = self._sessions.read(request.cookies.get(COOKIE))
        scope[SESSION_KEY] = session
        if session is None and not path.startswith(OPEN_PATHS):
            response: Response
            if scope["method"] in ("GET", "HEAD"):
                response = see_other(f"{PREFIX}/login?{urlencode({'next': path})}")
            else:
                response = page(
                    request,
                    "message.html",
                    403,
                    heading="Sign in first",
                    text="Your session has ended or you are not signed in; nothing was changed.",
                )
            await response(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, receive, watch)
        except Exception:
            # The console's last word: a message on a page, never a stack trace or a 5xx.
            log.exception("console_page_failed", path=path)
            if started:
                raise
            failed = page(
                request,
                "message.html",
                200,
                heading="Something went wrong",
                text="The console could not do that just now; nothing more is known here. "
                "Try again; if it keeps happening, the admin service's log has the details.",
            )
            await failed(scope, receive, send)


def _next(raw: object) -> str:
    target = str(raw or "")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith(PREFIX + "/"):
        return f"{PREFIX}/connections"
    return target


def console_routes(sessions: Sessions) -> list[BaseRoute]:
    async def login_form(request: Request) -> Response:
        cookie, login = sessions.issue("login", LOGIN_TTL_S)
        response = page(
            request,
            "login.html",
            login_csrf=login.csrf,
            next=_next(request.query_params.get("next")),
            error=None,
        )
        sessions.set_cookie(response, LOGIN_COOKIE, cookie, LOGIN_TTL_S)
        return response

    async def login(request: Request) -> Response:
        form = await request.form()
        pending = sessions.read(request.cookies.get(LOGIN_COOKIE), "login")
        if pending is None or not Sessions.csrf_ok(pending, form.get("csrf")):
            log.warning("console_csrf_refused", path=request.url.path)
            return actions.csrf_refused(request)
        if not sessions.token_matches(str(form.get("token") or "")):
            log.warning("console_sign_in_failed")
            cookie, fresh = sessions.issue("login", LOGIN_TTL_S)
            response = page(
                request,
                "login.html",
                401,
                login_csrf=fresh.csrf,
                next=_next(form.get("next")),
                error="That admin token is not right.",
            )
            sessions.set_cookie(response, LOGIN_COOKIE, cookie, LOGIN_TTL_S)
            return response
        cookie, _ = sessions.issue()
        redirect = see_other(_next(form.get("next")))
        sessions.set_cookie(redirect, COOKIE, cookie, sessions.ttl_s)
        redirect.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        log.info("console_signed_in")
        return redirect

    async def logout(request: Request, form: FormData) -> Response:
        response = see_other(f"{PREFIX}/login", "Signed out.")
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    async def home(request: Request) -> Response:
        return see_other(f"{PREFIX}/connections")

    conn = PREFIX + "/connections/{id}"
    record = conn + "/results/{direction}/{entity}/{source_id}"
    act = actions.action
    return [
        Route(PREFIX, home, methods=["GET"]),
        Route(PREFIX + "/login", login_form, methods=["GET"]),
        Route(PREFIX + "/login", login, methods=["POST"]),
        Route(PREFIX + "/logout", act(logout), methods=["POST"]),
        Route(PREFIX + "/connections", pages.connections, methods=["GET"]),
        Route(conn + "/results", pages.results_page, methods=["GET"]),
        Route(record, pages.record_page, methods=["GET"]),
        Route(record + "/resync", act(actions.resync), methods=["POST"]),
        Route(conn + "/pause", act(actions.pause), methods=["POST"]),
        Route(conn + "/resume", act(actions.resume), methods=["POST"]),
        Route(conn + "/reconnect", act(actions.reconnect), methods=["POST"]),
        Route(PREFIX + "/links/{id:int}/unlink", act(actions.unlink), methods=["POST"]),
        Route(PREFIX + "/links/{id:int}/relink", act(actions.relink), methods=["POST"]),
        Route(PREFIX + "/dead-letters", pages.dead_letters_page, methods=["GET"]),
        Route(PREFIX + "/dead-letters/replay", act(actions.replay_bulk), methods=["POST"]),
        Route(PREFIX + "/dead-letters/purge", act(actions.purge_bulk), methods=["POST"]),
        Route(PREFIX + "/dead-letters/{id:int}", pages.dead_letter_page, methods=["GET"]),
        Route(PREFIX + "/dead-letters/{id:int}/replay", act(actions.replay_one), methods=["POST"]),
        Route(PREFIX + "/conflicts", pages.conflicts_page, methods=["GET"]),
        Route(
            PREFIX + "/conflicts/{id:int}/resolve", act(actions.resolve_conflict), methods=["POST"]
        ),
        Mount(PREFIX + "/static", StaticFiles(packages=[("shared.admin.console", "static")])),
    ]
