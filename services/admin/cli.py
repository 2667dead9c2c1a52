"""``syncctl``: operate the sync service from a terminal or a script.

It is a thin client of the admin API (``ADMIN_URL``, ``ADMIN_TOKEN``), so every operation has one
implementation, one audit line (``admin_request``) and one set of permissions, and an operator
needs no database credentials. ``--json`` prints the API's answer for scripts; otherwise rich
tables. Long operations (bulk replay) run in batches with a progress bar.
"""

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
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(help="Operate the QBO <-> Re-Leased sync.", no_args_is_help=True)
dlq_app = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True)
conflicts_app = typer.Typer(help="Sync conflicts: list, resolve.", no_args_is_help=True)
links_app = typer.Typer(help="Record links: show, unlink, relink.", no_args_is_help=True)
connections_app = typer.Typer(help="Connections: list, pause, resume.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(links_app, name="links")
app.add_typer(connections_app, name="connections")

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
            table.add_row(*(_cell(row.get(c)) for c in columns))
        self.console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _cli(ctx: typer.Context) -> Cli:
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


@app.callback()
def main_options(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(envvar="ADMIN_URL", help="admin API base URL")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[str, typer.Option(envvar="ADMIN_TOKEN", help="admin bearer token")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    if not token:
        raise typer.BadParameter("set ADMIN_TOKEN (or --token)", param_hint="--token")
    ctx.obj = Cli(Client(url, token), as_json, Console())


@app.command()
def status(ctx: typer.Context) -> None:
    """Per connection: lag, dead letters, parked, conflicts, last webhook and reconcile."""
    cli = _cli(ctx)
    answer = cli.client.call("GET", "/api/status")
    if cli.emit(answer):
        return
    cli.table(
        "Connections",
        [
            "id",
            "status",
            "lag_s",
            "dead_letters",
            "parked",
            "open_conflicts",
            "last_webhook_at",
            "last_reconcile_at",
            "status_reason",
        ],
        answer["connections"],
    )
    queues = answer.get("queues")
    if queues is None:
        cli.console.print("[yellow]queue depths unavailable: RabbitMQ unreachable[/yellow]")
    else:
        cli.table(
            "Queues", ["queue", "ready"], [{"queue": k, "ready": v} for k, v in queues.items()]
        )


# -- connections -----------------------------------------------------------------------------


@connections_app.command("list")
def connections_list(ctx: typer.Context) -> None:
    cli = _cli(ctx)
    answer = cli.client.call("GET", "/api/connections")
    if not cli.emit(answer):
        cli.table("Connections", ["id", "released_company_id", "qbo_realm_id", "status"], answer)


@connections_app.command("pause")
def connections_pause(ctx: typer.Context, connection_id: str) -> None:
    """Stop applying events for a connection; they are parked, not retried."""
    cli = _cli(ctx)
    answer = cli.client.call("POST", f"/api/connections/{connection_id}/pause")
    if not cli.emit(answer):
        cli.console.print(f"connection {connection_id} is [bold]{answer['status']}[/bold]")


@connections_app.command("resume")
def connections_resume(ctx: typer.Context, connection_id: str) -> None:
    """Resume a connection and republish its parked events in order."""
    cli = _cli(ctx)
    answer = cli.client.call("POST", f"/api/connections/{connection_id}/resume")
    if cli.emit(answer):
        return
    cli.console.print(
        f"connection {connection_id} is [bold]{answer['status']}[/bold]; "
        f"parked events released: {answer.get('released')}"
    )
    if answer.get("warning"):
        cli.console.print(f"[yellow]{answer['warning']}[/yellow]")


# -- dead letters ----------------------------------------------------------------------------

ConnectionOpt = Annotated[str | None, typer.Option("--connection", help="connection id")]
EntityOpt = Annotated[str | None, typer.Option(help="entity, e.g. customer, contact")]
ErrorClassOpt = Annotated[str | None, typer.Option("--error-class", help="e.g. PermanentError")]
SinceOpt = Annotated[str | None, typer.Option(help="ISO time or age (30m, 2h, 7d)")]
UntilOpt = Annotated[str | None, typer.Option(help="ISO time or age (30m, 2h, 7d)")]


def _filters(
    ids: list[int] | None,
    connection: str | None,
    entity: str | None,
    error_class: str | None,
    since: str | None,
    until: str | None,
    status_: str = "dead",
) -> dict[str, Any]:
    return {
        "ids": ids or [],
        "connection_id": connection,
        "entity": entity,
        "error_class": error_class,
        "since": since_time(since),
        "until": since_time(until),
        "status": status_,
    }


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    connection: ConnectionOpt = None,
    entity: EntityOpt = None,
    error_class: ErrorClassOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    status_: Annotated[str, typer.Option("--status", help="dead|replayed|purged|any")] = "dead",
    limit: int = 100,
) -> None:
    cli = _cli(ctx)
    query = _filters(None, connection, entity, error_class, since, until, status_)
    query.pop("ids")
    answer = cli.client.call("GET", "/api/dlq", limit=limit, **query)
    if cli.emit(answer):
        return
    columns = ["id", "created_at", "entity", "entity_id", "error_class", "attempts"]
    cli.table(
        f"Dead letters ({answer['count']} matching)",
        [*columns, "replay_count", "status", "error"],
        answer["items"],
    )


@dlq_app.command("show")
def dlq_show(ctx: typer.Context, letter_id: int) -> None:
    cli = _cli(ctx)
    answer = cli.client.call("GET", f"/api/dlq/{letter_id}")
    if cli.emit(answer):
        return
    for key in ("id", "event_id", "queue", "connection_id", "error_class", "error", "remedy"):
        cli.console.print(f"[bold]{key}[/bold]: {answer.get(key)}")
    cli.console.print(
        f"[bold]attempts[/bold]: {answer['attempts']}  "
        f"[bold]replays[/bold]: {answer['replay_count']}  "
        f"[bold]status[/bold]: {answer['status']}"
    )
    cli.table(
        "History",
        ["at", "attempt", "outcome", "error_class", "error", "replay_id"],
        answer.get("history") or [],
    )
    cli.console.print_json(data=answer.get("event"))


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="dead-letter ids")] = None,
    connection: ConnectionOpt = None,
    entity: EntityOpt = None,
    error_class: ErrorClassOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count only")] = False,
    batch: Annotated[int, typer.Option(help="letters per request")] = 20,
) -> None:
    """Replay dead letters as fresh events (paced by the server's replay rate)."""
    cli = _cli(ctx)
    filters = _filters(ids, connection, entity, error_class, since, until)
    plan = cli.client.call("POST", "/api/dlq/replay", {**filters, "dry_run": True})
    chosen: list[int] = plan["ids"]
    if dry_run:
        if not cli.emit(plan):
            cli.console.print(f"{plan['matched']} dead letter(s) would be replayed")
        return
    replayed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=cli.as_json,
    ) as progress:
        task = progress.add_task("replay", total=len(chosen))
        for start in range(0, len(chosen), batch):
            part = chosen[start : start + batch]
            answer = cli.client.call("POST", "/api/dlq/replay", {"ids": part, "status": None})
            replayed.update(answer["replayed"])
            skipped.update(answer["skipped"])
            progress.advance(task, len(part))
    result = {"matched": len(chosen), "replayed": replayed, "skipped": skipped}
    if not cli.emit(result):
        cli.console.print(f"replayed {len(replayed)} of {len(chosen)}; skipped {len(skipped)}")
        for letter_id, why in skipped.items():
            cli.console.print(f"  [yellow]{letter_id}[/yellow]: {why}")


@dlq_app.command("purge")
def dlq_purge(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="dead-letter ids")] = None,
    connection: ConnectionOpt = None,
    entity: EntityOpt = None,
    error_class: ErrorClassOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count only")] = False,
) -> None:
    """Mark dead letters purged: kept for audit, never replayed."""
    cli = _cli(ctx)
    filters = _filters(ids, connection, entity, error_class, since, until)
    if not any(v for k, v in filters.items() if k != "status"):
        raise typer.BadParameter("give ids or at least one filter; purging everything is refused")
    answer = cli.client.call("POST", "/api/dlq/purge", {**filters, "dry_run": dry_run})
    if not cli.emit(answer):
        count = answer["matched"] if dry_run else answer["purged"]
        cli.console.print(f"{count} dead letter(s) {'would be ' if dry_run else ''}purged")


@dlq_app.command("absorb")
def dlq_absorb(ctx: typer.Context) -> None:
    """Drain the sync.dead queue into dead letters (rows for messages the consumers never saw)."""
    cli = _cli(ctx)
    answer = cli.client.call("POST", "/api/dlq/absorb")
    if not cli.emit(answer):
        cli.console.print(f"sync.dead drained; {answer['created']} new dead letter(s)")


# -- conflicts and links ---------------------------------------------------------------------


@conflicts_app.command("list")
def conflicts_list(
    ctx: typer.Context,
    connection: ConnectionOpt = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="resolved ones too")] = False,
) -> None:
    cli = _cli(ctx)
    answer = cli.client.call(
        "GET", "/api/conflicts", connection_id=connection, all="1" if include_resolved else None
    )
    if not cli.emit(answer):
        columns = ["id", "created_at", "entity", "kind", "winner", "detail", "resolved_by"]
        cli.table("Conflicts", columns, answer["items"])


@conflicts_app.command("resolve")
def conflicts_resolve(
    ctx: typer.Context,
    conflict_id: int,
    by: Annotated[str, typer.Option(help="who resolved it")] = "syncctl",
) -> None:
    cli = _cli(ctx)
    answer = cli.client.call("POST", f"/api/conflicts/{conflict_id}/resolve", {"resolved_by": by})
    if not cli.emit(answer):
        cli.console.print(f"conflict {conflict_id} resolved by {by}")


_LINK_COLUMNS = ["id", "entity", "qbo_type", "qbo_id", "released_id", "status", "last_synced_at"]


@links_app.command("show")
def links_show(
    ctx: typer.Context,
    connection_id: str,
    record: Annotated[str | None, typer.Option(help="a QBO or Re-Leased record id")] = None,
    entity: EntityOpt = None,
) -> None:
    cli = _cli(ctx)
    answer = cli.client.call(
        "GET", f"/api/connections/{connection_id}/links", record_id=record, entity=entity
    )
    if not cli.emit(answer):
        cli.table("Links", _LINK_COLUMNS, answer["items"])


@links_app.command("unlink")
def links_unlink(ctx: typer.Context, link_id: int) -> None:
    """Stop syncing a pair of records."""
    cli = _cli(ctx)
    answer = cli.client.call("POST", f"/api/links/{link_id}/unlink")
    if not cli.emit(answer):
        cli.table("Link", _LINK_COLUMNS, [answer])


@links_app.command("relink")
def links_relink(
    ctx: typer.Context,
    link_id: int,
    qbo_id: Annotated[str | None, typer.Option("--qbo-id")] = None,
    released_id: Annotated[str | None, typer.Option("--released-id")] = None,
) -> None:
    """Sync a pair again, optionally pointing it at other records."""
    cli = _cli(ctx)
    body = {"qbo_id": qbo_id, "released_id": released_id}
    answer = cli.client.call("POST", f"/api/links/{link_id}/relink", body)
    if not cli.emit(answer):
        cli.table("Link", _LINK_COLUMNS, [answer])


def main() -> None:
    """Console-script entrypoint: API and connection errors become one line and exit 1."""
    try:
        app()
    except ApiError as exc:
        sys.stderr.write(f"syncctl: {exc}\n")
        sys.exit(1)
    except urllib.error.URLError as exc:
        sys.stderr.write(f"syncctl: cannot reach the admin API ({exc.reason}); set ADMIN_URL\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
