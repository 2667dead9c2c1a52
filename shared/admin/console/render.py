"""Templates (package data, Jinja2 with autoescape), the page helper and the console's headers."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from shared.admin.console.session import Session

SESSION_KEY = "console.session"
HEADERS = {
    # Everything comes from this origin; no inline script, no framing, nothing cached.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _when(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _ago(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "-"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


env = Environment(
    loader=PackageLoader("shared.admin.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["when"] = _when
env.filters["ago"] = _ago


def session_of(request: Request) -> Session | None:
    found: Session | None = request.scope.get(SESSION_KEY)
    return found


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    session = session_of(request)
    html = env.get_template(name).render(
        request=request,
        csrf=session.csrf if session else context.pop("csrf", ""),
        signed_in=session is not None,
        message=request.query_params.get("msg"),
        level=request.query_params.get("level", "info"),
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def see_other(url: str, message: str | None = None, level: str = "info") -> RedirectResponse:
    """Back to a page after an action, with its outcome as the page's message."""
    if message:
        joiner = "&" if "?" in url else "?"
        url = f"{url}{joiner}{urlencode({'msg': message[:300], 'level': level})}"
    return RedirectResponse(url, status_code=303, headers=HEADERS)
