"""Steps every entity's handlers share: obeying the ownership table, recording conflicts and flags,
and which side a concurrent edit goes to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from shared.domain.merge import FieldConflict, Winner
from shared.domain.ownership import Decision, Outcome
from shared.infra.logging import get_logger
from shared.sync.context import Result, SyncContext

log = get_logger("sync")

Group = Literal["contact", "document", "payment"]


async def not_applied(
    ctx: SyncContext, entity: str, decision: Decision, link_id: int | None = None
) -> Result | None:
    """None when the table says APPLY; otherwise how the change ends instead (see
    ``not_carried_out``). Handlers call it before any write, so the table is obeyed."""
    if decision.outcome is Outcome.APPLY:
        return None
    return await not_carried_out(ctx, entity, decision, link_id)


async def not_carried_out(
    ctx: SyncContext, entity: str, decision: Decision, link_id: int | None = None
) -> Result:
    """The change is not applied: IGNORE ends it (reason logged with the outcome), FLAG records
    a policy flag for a person. Any other outcome reaching here has no implementation in this
    handler: it is ignored too, and logged as a gap, never turned into a write."""
    if decision.outcome is Outcome.IGNORE:
        return Result("ignored", decision.why)
    if decision.outcome is Outcome.FLAG:
        detail = f"{entity} {ctx.event.operation} from {ctx.event.source}: {decision.why}"
        await flag(ctx, entity, link_id, {"entity_id": ctx.event.entity_id}, None, detail)
        return Result("flagged", decision.why)
    log.warning(
        "ownership_outcome_unhandled",
        connection_id=str(ctx.connection.id),
        entity=entity,
        entity_id=ctx.event.entity_id,
        outcome=decision.outcome.value,
        reason=decision.why,
    )
    return Result("ignored", f"{decision.outcome.value} is not carried out here: {decision.why}")


def winner(ctx: SyncContext, group: Group, source_side: str) -> Winner:
    """``source`` when the connection's conflict winner for ``group`` is the change's side."""
    return "source" if ctx.settings.winner(group) == source_side else "target"


async def flag(
    ctx: SyncContext,
    entity: str,
    link_id: int | None,
    fields: dict[str, Any],
    chosen: str | None,
    detail: str,
) -> None:
    """A policy flag: something a person should know or decide."""
    await ctx.conflicts.record(
        ctx.connection.id,
        entity,
        "policy_flag",
        link_id=link_id,
        event_id=ctx.event.event_id,
        fields=fields,
        winner=chosen,
        detail=detail,
    )


async def record_conflicts(
    ctx: SyncContext, entity: str, link_id: int, items: Iterable[FieldConflict]
) -> None:
    """One row per field changed on both sides, with the base, both values and the winner."""
    for item in items:
        await ctx.conflicts.record(
            ctx.connection.id,
            entity,
            "field_conflict",
            link_id=link_id,
            event_id=ctx.event.event_id,
            fields={
                "field": item.field,
                "base": item.base,
                "source": item.source,
                "target": item.target,
                # Which side made the change ("source"): resolving by side needs it.
                "source_side": ctx.event.source,
            },
            winner=str(item.chosen)[:200],
            detail=f"{item.field} changed on both sides",
        )
