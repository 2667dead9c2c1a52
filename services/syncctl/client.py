"""The admin API over HTTP, and how answers are shown: rich tables, or JSON for scripts."""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import typer
from rich.console import Console
from rich.table import Table

_RELATIVE = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        reason = body.get("reason") if isinstance(body, dict) else body
        super().__init__(f"admin API answered {status}: {reason}")
        self.status = status
        self.body = body


@dataclass
class Client:
    """The admin API over HTTP (stdlib only: the CLI must not pull in an async stack)."""

    base: str
    token: str
    timeout: float = 120.0

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        params = {k: v for k, v in query.items() if v not in (None, "", False)}
        url = self.base.rstrip("/") + path + (f"?{urlencode(params)}" if params else "")
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - http(s) URL
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            raise ApiError(exc.code, json.loads(raw) if raw else None) from None
        return json.loads(raw) if raw else None


@dataclass
class Cli:
    client: Client
    as_json: bool
    console: Console

    def emit(self, document: Any) -> bool:
        """Write the raw answer for scripts; True when done (no table wanted)."""
        if self.as_json:
            sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        return self.as_json

    def table(self, title: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(cell(row.get(c)) for c in columns))
        self.console.print(table)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def cli_of(ctx: typer.Context) -> Cli:
    found: Cli = ctx.obj
    return found


def since_time(raw: str | None) -> str | None:
    """ISO-8601 as given, or a relative age (``30m``, ``2h``, ``7d``) turned into a time."""
    if raw is None:
        return None
    match = _RELATIVE.match(raw)
    if match is None:
        datetime.fromisoformat(raw)  # refuse garbage here rather than at the API
        return raw
    delta = timedelta(**{_UNITS[match["unit"]]: int(match["n"])})
    return (datetime.now(UTC) - delta).isoformat()


# Options several commands take.
ConnectionOpt = Annotated[str | None, typer.Option("--connection", help="connection id")]
EntityOpt = Annotated[str | None, typer.Option(help="entity, e.g. customer, contact")]
ErrorClassOpt = Annotated[str | None, typer.Option("--error-class", help="e.g. PermanentError")]
SinceOpt = Annotated[str | None, typer.Option(help="ISO time or age (30m, 2h, 7d)")]
UntilOpt = Annotated[str | None, typer.Option(help="ISO time or age (30m, 2h, 7d)")]
