"""``syncctl results``: every record's last outcome per connection, one record in full, resync."""

from __future__ import annotations

from typing import Annotated

import typer

from services.syncctl.client import (
    EntityOpt,
    ErrorClassOpt,
    SinceOpt,
    UntilOpt,
    cell,
    cli_of,
    since_time,
)

results_app = typer.Typer(
    help="Sync results: list and search, show one record, resync it.", no_args_is_help=True
)
_COLUMNS = [
    "created_at",
    "direction",
    "entity",
    "source_id",
    "label",
    "outcome",
    "error_class",
    "reason",
    "remedy",
]
DirectionArg = Annotated[str, typer.Argument(help="qbo_to_released or released_to_qbo")]


@results_app.command("list")
def results_list(
    ctx: typer.Context,
    connection_id: str,
    entity: EntityOpt = None,
    outcome: Annotated[str | None, typer.Option(help="applied, ignored, error, ...")] = None,
    error_class: ErrorClassOpt = None,
    search: Annotated[
        str | None, typer.Option("--search", "-q", help="either side's id, a number or a name")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[int, typer.Option(help="page size (at most 200)")] = 50,
    offset: Annotated[int, typer.Option(help="skip this many")] = 0,
) -> None:
    """Records of a connection, newest result first."""
    cli = cli_of(ctx)
    answer = cli.client.call(
        "GET",
        f"/api/connections/{connection_id}/results",
        entity=entity,
        outcome=outcome,
        error_class=error_class,
        q=search,
        since=since_time(since),
        until=since_time(until),
        limit=limit,
        offset=offset or None,
    )
    if cli.emit(answer):
        return
    shown = offset + len(answer["items"])
    cli.table(f"Sync results ({shown} of {answer['count']})", _COLUMNS, answer["items"])


def _record_path(connection_id: str, direction: str, entity: str, source_id: str) -> str:
    return f"/api/connections/{connection_id}/results/{direction}/{entity}/{source_id}"


@results_app.command("show")
def results_show(
    ctx: typer.Context, connection_id: str, direction: DirectionArg, entity: str, source_id: str
) -> None:
    """One record: both ids and where to open them, the last outcome, remedy, history."""
    cli = cli_of(ctx)
    answer = cli.client.call("GET", _record_path(connection_id, direction, entity, source_id))
    if cli.emit(answer):
        return
    for name in (
        "entity",
        "label",
        "outcome",
        "reason",
        "remedy",
        "error_class",
        "dead_letter_id",
        "link_id",
        "link_status",
        "qbo_id",
        "qbo_url",
        "released_id",
        "released_url",
        "last_synced_at",
    ):
        cli.console.print(f"[bold]{name}[/bold]: {cell(answer.get(name))}")
    cli.table(
        "History",
        ["created_at", "direction", "outcome", "reason", "remedy", "event_id"],
        answer["history"],
    )


@results_app.command("resync")
def results_resync(
    ctx: typer.Context, connection_id: str, direction: DirectionArg, entity: str, source_id: str
) -> None:
    """Run the record through the engine again now (inside the API budgets)."""
    cli = cli_of(ctx)
    path = _record_path(connection_id, direction, entity, source_id) + "/resync"
    answer = cli.client.call("POST", path)
    if not cli.emit(answer):
        cli.console.print(f"resync queued as event {answer['event_id']}")
