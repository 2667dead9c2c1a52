"""``syncctl``'s commands (see the package docstring); ``main`` is the console script."""

from __future__ import annotations

import sys
import urllib.error
from typing import Annotated, Any

import typer
from rich.console import Console

from services.syncctl.client import ApiError, Cli, Client, ConnectionOpt, EntityOpt, cli_of
from services.syncctl.dlq import dlq_app
from services.syncctl.results import results_app

app = typer.Typer(help="Operate the QBO <-> Re-Leased sync.", no_args_is_help=True)
conflicts_app = typer.Typer(help="Sync conflicts: list, resolve.", no_args_is_help=True)
links_app = typer.Typer(help="Record links: show, unlink, relink.", no_args_is_help=True)
connections_app = typer.Typer(help="Connections: list, pause, resume.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(conflicts_app, name="conflicts")
app.add_typer(links_app, name="links")
app.add_typer(connections_app, name="connections")
app.add_typer(results_app, name="results")


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


def _import_cell(progress: dict[str, Any] | None) -> str:
    """The initial import in one cell: ``applying 120/500 (40.0/min, ETA 570 s)``."""
    if not progress:
        return "-"
    if progress.get("total") is None:
        return str(progress.get("stage"))
    line = f"{progress['stage']} {progress['done']}/{progress['total']}"
    if progress["stage"] != "done":
        line += f" ({progress['rate_per_min']}/min, ETA {progress['eta_s']:.0f} s)"
    return line


@app.command()
def status(ctx: typer.Context) -> None:
    """Per connection: lag, dead letters, parked, conflicts, last webhook and reconcile."""
    cli = cli_of(ctx)
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
            "import",
            "status_reason",
        ],
        [{**row, "import": _import_cell(row.get("import"))} for row in answer["connections"]],
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
    cli = cli_of(ctx)
    answer = cli.client.call("GET", "/api/connections")
    if not cli.emit(answer):
        cli.table("Connections", ["id", "released_company_id", "qbo_realm_id", "status"], answer)


@connections_app.command("pause")
def connections_pause(ctx: typer.Context, connection_id: str) -> None:
    """Stop applying events for a connection; they are parked, not retried."""
    cli = cli_of(ctx)
    answer = cli.client.call("POST", f"/api/connections/{connection_id}/pause")
    if not cli.emit(answer):
        cli.console.print(f"connection {connection_id} is [bold]{answer['status']}[/bold]")


@connections_app.command("resume")
def connections_resume(ctx: typer.Context, connection_id: str) -> None:
    """Resume a connection and republish its parked events in order."""
    cli = cli_of(ctx)
    answer = cli.client.call("POST", f"/api/connections/{connection_id}/resume")
    if cli.emit(answer):
        return
    cli.console.print(
        f"connection {connection_id} is [bold]{answer['status']}[/bold]; "
        f"parked events released: {answer.get('released')}"
    )
    if answer.get("warning"):
        cli.console.print(f"[yellow]{answer['warning']}[/yellow]")


# -- conflicts and links ---------------------------------------------------------------------


@conflicts_app.command("list")
def conflicts_list(
    ctx: typer.Context,
    connection: ConnectionOpt = None,
    include_resolved: Annotated[bool, typer.Option("--all", help="resolved ones too")] = False,
) -> None:
    cli = cli_of(ctx)
    answer = cli.client.call(
        "GET", "/api/conflicts", connection_id=connection, all="1" if include_resolved else None
    )
    if not cli.emit(answer):
        columns = [
            "id",
            "created_at",
            "entity",
            "kind",
            "winner",
            "detail",
            "requested_side",
            "resolved_by",
        ]
        cli.table("Conflicts", columns, answer["items"])


@conflicts_app.command("resolve")
def conflicts_resolve(
    ctx: typer.Context,
    conflict_id: int,
    by: Annotated[str, typer.Option(help="who resolved it")] = "syncctl",
    keep: Annotated[
        str | None,
        typer.Option(
            help="qbo or released: the engine writes that side's value to both systems, then "
            "closes the conflict (without it, the conflict is acknowledged as it stands)"
        ),
    ] = None,
) -> None:
    cli = cli_of(ctx)
    body = {"resolved_by": by, **({"side": keep} if keep else {})}
    answer = cli.client.call("POST", f"/api/conflicts/{conflict_id}/resolve", body)
    if cli.emit(answer):
        return
    if keep:
        cli.console.print(
            f"conflict {conflict_id}: keeping {keep}'s {answer['field']}; queued as event "
            f"{answer['event_id']}, it closes once both systems hold the value"
        )
    else:
        cli.console.print(f"conflict {conflict_id} resolved by {by}")


_LINK_COLUMNS = ["id", "entity", "qbo_type", "qbo_id", "released_id", "status", "last_synced_at"]


@links_app.command("show")
def links_show(
    ctx: typer.Context,
    connection_id: str,
    record: Annotated[str | None, typer.Option(help="a QBO or Re-Leased record id")] = None,
    entity: EntityOpt = None,
) -> None:
    cli = cli_of(ctx)
    answer = cli.client.call(
        "GET", f"/api/connections/{connection_id}/links", record_id=record, entity=entity
    )
    if not cli.emit(answer):
        cli.table("Links", _LINK_COLUMNS, answer["items"])


@links_app.command("unlink")
def links_unlink(ctx: typer.Context, link_id: int) -> None:
    """Stop syncing a pair of records."""
    cli = cli_of(ctx)
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
    cli = cli_of(ctx)
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
