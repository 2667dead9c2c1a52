"""QBO classes as the options of one Re-Leased tracking category, "QBO Classes": one way, from QBO.

An option is named by the class's full path ("Building A:Unit 1"), so sub-classes that share a
short name under different parents stay apart. QBO owns classes: an edit to that category in
Re-Leased (an option renamed, archived or added) is reverted to QBO's classes. Re-Leased's own
categories (per-property tracking) are not QBO's and are left alone.
"""

from __future__ import annotations

from typing import Any

from shared.domain.canonical import canonical_hash, normalise_name
from shared.domain.errors import NotFound
from shared.domain.links import Link
from shared.domain.mapping.masterdata import tracking_from_qbo, tracking_from_released
from shared.domain.ownership import Op, Outcome
from shared.infra.logging import get_logger
from shared.sync import steps
from shared.sync.context import Result, SyncContext

TRACKING_CATEGORY = "QBO Classes"
log = get_logger("sync.classes")


def operation_of(fields: dict[str, Any], snapshot: dict[str, Any] | None) -> Op:
    was_active = True if snapshot is None else bool(snapshot.get("active", True))
    if was_active != fields["active"]:
        return Op.UNARCHIVE if fields["active"] else Op.ARCHIVE
    return Op.UPSERT


async def from_qbo(ctx: SyncContext) -> Result:
    """A QBO Class is an option of one Re-Leased tracking category kept for QBO classes."""
    try:
        record = await ctx.qbo.get("Class", ctx.event.entity_id)
    except NotFound:
        return Result("ignored", "gone from QBO")
    fields = tracking_from_qbo(record)
    await ctx.lock("tracking", TRACKING_CATEGORY)
    link = await ctx.links.by_qbo(ctx.connection.id, "Class", ctx.event.entity_id)
    version = str(record.get("SyncToken"))
    if link and (link.qbo_version == version or link.snapshot_hash == canonical_hash(fields)):
        return Result("echo", "Re-Leased already has this version", link.released_id)
    op = operation_of(fields, link.snapshot if link else None)
    decision = ctx.policy.decide("tracking_class", op, "qbo")
    stop = await steps.not_applied(ctx, "tracking_class", decision, link.id if link else None)
    if stop is not None:
        return stop
    category = await _linked_category(ctx, link) or await _category(ctx)
    # An option of the company's own category (property tracking, mapped when it connected)
    # keeps the class's own name; the engine's category names options by full path.
    name = fields["name"] if category.get("name") == TRACKING_CATEGORY else str(record["Name"])
    options = list(category.get("options", []))
    option_id = link.released_id.split(":", 1)[1] if link and link.released_id else None
    match = next(
        (o for o in options if o.get("id") == option_id)
        or (o for o in options if normalise_name(str(o.get("name"))) == normalise_name(name)),
        None,
    )
    status = "ACTIVE" if fields["active"] else "ARCHIVED"
    if match is None:
        options.append({"name": name, "status": status})
    else:
        match.update({"name": name, "status": status})
    written = await ctx.released.accounting(
        "PATCH",
        f"/tracking-categories/{category['id']}",
        body={"options": options},
        idempotency_key=ctx.request_id("rl-class"),
        if_match=category.get("version"),
    )
    chosen = next(
        o for o in written["options"] if normalise_name(str(o.get("name"))) == normalise_name(name)
    )
    await ctx.links.save(
        ctx.connection.id,
        "tracking_class",
        "Class",
        qbo=(ctx.event.entity_id, version),
        released=(f"{category['id']}:{chosen['id']}", str(written.get("version"))),
        snapshot=tracking_from_released(chosen),
    )
    return Result("applied", op.value, str(chosen["id"]))


async def _linked_category(ctx: SyncContext, link: Link | None) -> dict[str, Any] | None:
    """The category of the option a class is linked to, when that is not the engine's own."""
    if link is None or not link.released_id:
        return None
    category_id = link.released_id.split(":", 1)[0]
    try:
        category: dict[str, Any] = await ctx.released.get(f"/tracking-categories/{category_id}")
    except NotFound:
        return None
    return None if category.get("name") == TRACKING_CATEGORY else category


async def _category(ctx: SyncContext) -> dict[str, Any]:
    for category in await ctx.released.list_all("/tracking-categories", includeArchived="true"):
        if category.get("name") == TRACKING_CATEGORY:
            return category
    body = {"name": TRACKING_CATEGORY, "options": []}
    key = ctx.create_key("rl-class-category", body)
    return await ctx.released.accounting(
        "POST", "/tracking-categories", body=body, idempotency_key=key
    )


async def from_released(ctx: SyncContext) -> Result:
    """A tracking category changed in Re-Leased. The QBO Classes category is QBO's: every option
    goes back to its class's name and status, and an option no class stands for is archived
    (flagged for a person). Other categories are Re-Leased's own: nothing to do."""
    try:
        category = await ctx.released.get(f"/tracking-categories/{ctx.event.entity_id}")
    except NotFound:
        return Result("ignored", "gone from Re-Leased")
    if category.get("name") != TRACKING_CATEGORY:
        return Result("ignored", "a Re-Leased tracking category of its own (not QBO classes)")
    await ctx.lock("tracking", TRACKING_CATEGORY)
    decision = ctx.policy.decide("tracking_class", Op.UPSERT, "released")
    if decision.outcome not in (Outcome.REVERT, Outcome.REVERT_AND_FLAG):
        return await steps.not_carried_out(ctx, "tracking_class", decision, None)
    options, fixed, strays = await _options_as_qbo_has_them(ctx, category)
    if not fixed and not strays:
        return Result("echo", "the options are QBO's classes", str(category["id"]))
    written = await ctx.released.accounting(
        "PATCH",
        f"/tracking-categories/{category['id']}",
        body={"options": options},
        idempotency_key=ctx.request_id("rl-class-revert"),
        if_match=category.get("version"),
    )
    for option in written.get("options", []):
        link = await ctx.links.by_released(
            ctx.connection.id, "tracking_class", f"{category['id']}:{option.get('id')}"
        )
        if link:
            await ctx.links.save(
                ctx.connection.id,
                "tracking_class",
                "Class",
                qbo=(str(link[0].qbo_id), link[0].qbo_version),
                released=(f"{category['id']}:{option['id']}", str(written.get("version"))),
                snapshot=tracking_from_released(option),
            )
    if strays:
        detail = (
            f"tracking option(s) {', '.join(strays)} added to {TRACKING_CATEGORY} in Re-Leased "
            "stand for no QBO class and were archived (create the class in QBO instead)"
        )
        await steps.flag(ctx, "tracking_class", None, {"options": strays}, "qbo", detail)
    log.warning(
        "tracking_edit_reverted",
        connection_id=str(ctx.connection.id),
        category_id=str(category["id"]),
        restored=fixed,
        archived=strays,
    )
    return Result("reverted", decision.why, str(category["id"]))


async def _options_as_qbo_has_them(
    ctx: SyncContext, category: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """The category's options with QBO's names and statuses put back; the ids of options put
    back, and the names of options no class stands for (archived)."""
    options = [dict(o) for o in category.get("options", [])]
    fixed: list[str] = []
    strays: list[str] = []
    for option in options:
        links = await ctx.links.by_released(
            ctx.connection.id, "tracking_class", f"{category['id']}:{option.get('id')}"
        )
        if not links:
            if option.get("status") != "ARCHIVED":
                option["status"] = "ARCHIVED"
                strays.append(str(option.get("name")))
            continue
        try:
            record = await ctx.qbo.get("Class", str(links[0].qbo_id))
        except NotFound:
            continue
        fields = tracking_from_qbo(record)
        wanted = {"name": fields["name"], "status": "ACTIVE" if fields["active"] else "ARCHIVED"}
        if {k: option.get(k) for k in wanted} != wanted:
            option.update(wanted)
            fixed.append(str(option.get("id")))
    return options, fixed, strays
