"""``syncctl dlq``: dead letters, listed, shown, replayed (in batches, with progress), purged,
and ``sync.dead`` absorbed."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from services.syncctl.client import (
    ConnectionOpt,
    EntityOpt,
    ErrorClassOpt,
    SinceOpt,
    UntilOpt,
    cli_of,
    since_time,
)

dlq_app = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True)


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
    cli = cli_of(ctx)
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
    cli = cli_of(ctx)
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
    cli = cli_of(ctx)
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
    cli = cli_of(ctx)
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
    cli = cli_of(ctx)
    answer = cli.client.call("POST", "/api/dlq/absorb")
    if not cli.emit(answer):
        cli.console.print(f"sync.dead drained; {answer['created']} new dead letter(s)")
