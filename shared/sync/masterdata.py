"""Tax rates (and tax codes combining several), accounts and sales/purchase items: one way,
from QBO (classes: ``shared.sync.classes``).

QBO is the only manager: a change seen in QBO is applied to Re-Leased; a change seen in Re-Leased
is reverted by writing QBO's current state back over it. Re-Leased's public API refuses
master-data writes while connected, so writes go through its accounting side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shared.domain.canonical import canonical_hash, normalise_name
from shared.domain.errors import NotFound, StaleVersion, TransientError
from shared.domain.links import Link
from shared.domain.mapping.masterdata import (
    account_from_qbo,
    account_from_released,
    account_to_released,
    tax_code_from_qbo,
    tax_rate_from_qbo,
    tax_rate_from_released,
    tax_rate_to_released,
)
from shared.domain.ownership import Op, Outcome
from shared.sync import steps
from shared.sync.context import Result, SyncContext
from shared.sync.dependencies import run_dependency
from shared.sync.listings import key_entity
from shared.sync.tax_codes import qbo_tax_code


@dataclass(frozen=True)
class MasterKind:
    entity: str  # canonical
    path: str  # Re-Leased collection
    from_qbo: Callable[[str, dict[str, Any]], dict[str, Any]]
    from_released: Callable[[dict[str, Any]], dict[str, Any]]
    to_released: Callable[[dict[str, Any]], dict[str, Any]]
    natural_key: Callable[[dict[str, Any]], str]


ACCOUNT = MasterKind(
    "account",
    "/accounts",
    account_from_qbo,
    account_from_released,
    account_to_released,
    lambda f: f"code:{f['code']}",
)
TAX_RATE = MasterKind(
    "tax_rate",
    "/tax-rates",
    lambda _t, r: tax_rate_from_qbo(r),
    tax_rate_from_released,
    tax_rate_to_released,
    lambda f: f"name:{normalise_name(f['name'])}",
)
# QBO entity word (as in events) -> (QBO type, kind)
QBO_KINDS: dict[str, tuple[str, MasterKind]] = {
    "account": ("Account", ACCOUNT),
    "item": ("Item", ACCOUNT),
    "taxrate": ("TaxRate", TAX_RATE),
    "taxcode": ("TaxCode", TAX_RATE),
}
RELEASED_KINDS: dict[str, MasterKind] = {"account": ACCOUNT, "taxrate": TAX_RATE}


def _operation(fields: dict[str, Any], snapshot: dict[str, Any] | None) -> Op:
    was_active = True if snapshot is None else bool(snapshot.get("active", True))
    if was_active != fields["active"]:
        return Op.UNARCHIVE if fields["active"] else Op.ARCHIVE
    return Op.UPSERT


async def from_qbo(ctx: SyncContext) -> Result:
    qbo_type, kind = QBO_KINDS[ctx.event.entity]
    try:
        record = await ctx.qbo.get(qbo_type, ctx.event.entity_id)
    except NotFound:
        return Result("ignored", "gone from QBO")
    fields = await _fields_from_qbo(ctx, qbo_type, kind, record)
    if fields is None:
        return Result("ignored", "a tax code of one rate syncs through that TaxRate")
    link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, ctx.event.entity_id)
    await ctx.lock(kind.entity, kind.natural_key(fields))
    link = link or await ctx.links.by_qbo(ctx.connection.id, qbo_type, ctx.event.entity_id)
    version = str(record.get("SyncToken"))
    # A combined tax code's sum moves with its rates, not its own SyncToken: fields decide.
    same_version = link is not None and link.qbo_version == version and qbo_type != "TaxCode"
    if link and (same_version or link.snapshot_hash == canonical_hash(fields)):
        return Result("echo", "Re-Leased already has this version", link.released_id)
    op = _operation(fields, link.snapshot if link else None)
    decision = ctx.policy.decide(kind.entity, op, "qbo")
    stop = await steps.not_applied(ctx, kind.entity, decision, link.id if link else None)
    if stop is not None:
        return stop
    body = kind.to_released(fields)
    if link is None:
        written = await _create_or_adopt(ctx, kind, fields, body)
    else:
        written = await _update_linked(ctx, kind, fields, body, link)
    await ctx.links.save(
        ctx.connection.id,
        kind.entity,
        qbo_type,
        qbo=(ctx.event.entity_id, version),
        released=(str(written["id"]), str(written.get("version"))),
        snapshot=fields,
    )
    if qbo_type == "TaxRate" and link is not None:
        await _refresh_combined(ctx, ctx.event.entity_id)
    return Result("applied", op.value, str(written["id"]))


async def _refresh_combined(ctx: SyncContext, rate_id: str) -> None:
    """A changed rate changes the sum of every combined code holding it: each linked one is
    applied again (its Re-Leased rate is the exact sum of its components)."""
    for code in await ctx.qbo.query_all("TaxCode"):
        details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        holds = any(str(d["TaxRateRef"]["value"]) == rate_id for d in details)
        linked = holds and len(details) > 1
        if linked and await ctx.links.by_qbo(ctx.connection.id, "TaxCode", str(code["Id"])):
            await run_dependency(ctx, "qbo", "taxcode", str(code["Id"]))


async def _fields_from_qbo(
    ctx: SyncContext, qbo_type: str, kind: MasterKind, record: dict[str, Any]
) -> dict[str, Any] | None:
    """Canonical fields of a QBO master record; a tax code combining several rates is one
    Re-Leased rate at their exact sum (docs/mapping.md); one of a single rate is None (that
    rate is synced itself)."""
    if qbo_type != "TaxCode":
        return kind.from_qbo(qbo_type, record)
    _, code = await qbo_tax_code(ctx, str(record["Id"]))
    if len(code.components) < 2:
        return None
    return tax_code_from_qbo(record, code)


async def _create_or_adopt(
    ctx: SyncContext, kind: MasterKind, fields: dict[str, Any], body: dict[str, Any]
) -> dict[str, Any]:
    """Lookup before create, under the natural-key lock: the record with this key is adopted
    (QBO's state written over it), else one is created. The lookup is served from the process's
    kept listing; why that cannot make a duplicate: ``shared.sync.listings``."""
    wanted = kind.natural_key(fields)
    existing = await _find(ctx, kind, wanted)
    if existing is None:
        key = ctx.create_key(f"rl-{kind.entity}", body)
        await _enter_write(ctx, kind, f"create:{key}", wanted)
        written = await ctx.released.accounting("POST", kind.path, body=body, idempotency_key=key)
    else:
        try:
            written = await ctx.released.accounting(
                "PATCH",
                f"{kind.path}/{existing['id']}",
                body=body,
                idempotency_key=ctx.request_id(f"rl-{kind.entity}-adopt"),
                if_match=existing.get("version"),
            )
        except StaleVersion:
            ctx.listings.drop(ctx.connection.id, kind.path)  # the redo lists afresh
            raise
    ctx.listings.put(ctx.connection.id, kind.path, written)
    return written


async def _update_linked(
    ctx: SyncContext, kind: MasterKind, fields: dict[str, Any], body: dict[str, Any], link: Link
) -> dict[str, Any]:
    wanted = kind.natural_key(fields)
    try:
        had = kind.natural_key(link.snapshot or {})
    except KeyError:
        had = None
    if had != wanted:
        # A key the record did not have: kept listings elsewhere must look again for it.
        await _enter_write(ctx, kind, f"rekey:{link.released_id}:{wanted}", wanted)
    # QBO's state overwrites whatever Re-Leased holds: no version to guard.
    written = await ctx.released.accounting(
        "PATCH",
        f"{kind.path}/{link.released_id}",
        body=body,
        idempotency_key=ctx.request_id(f"rl-{kind.entity}-update"),
    )
    ctx.listings.put(ctx.connection.id, kind.path, written)
    return written


async def _find(ctx: SyncContext, kind: MasterKind, wanted: str) -> dict[str, Any] | None:
    """The Re-Leased record with the natural key ``wanted``: from the kept listing, or, when it
    has none but we have written that key at some time, from a fresh listing."""
    found = _match(kind, wanted, await _listing(ctx, kind))
    if found is not None:
        return found
    if await ctx.twin_made_from("released", key_entity(kind.entity), wanted) is None:
        return None
    ctx.listings.drop(ctx.connection.id, kind.path)
    return _match(kind, wanted, await _listing(ctx, kind))


async def _listing(ctx: SyncContext, kind: MasterKind) -> list[dict[str, Any]]:
    return await ctx.listings.listing(ctx.released, ctx.connection.id, kind.path)


def _match(kind: MasterKind, wanted: str, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((r for r in records if kind.natural_key(kind.from_released(r)) == wanted), None)


async def _enter_write(ctx: SyncContext, kind: MasterKind, write: str, wanted: str) -> None:
    """Enter in the twin ledger, before it is sent, that we write the natural key ``wanted``:
    what makes every other handler's miss in its kept listing look again. Not entered (the
    ledger write failed), nothing is sent."""
    entity = key_entity(kind.entity)
    await ctx.created("released", entity, write, wanted)
    if await ctx.twin_made_from("released", entity, wanted) is None:
        raise TransientError(f"{kind.entity} {wanted}: the write could not be entered; retry")


async def from_released(ctx: SyncContext) -> Result:
    """A master-data change in Re-Leased: QBO's state goes back over it (revert)."""
    kind = RELEASED_KINDS[ctx.event.entity]
    try:
        record = await ctx.released.get(f"{kind.path}/{ctx.event.entity_id}")
    except NotFound:
        return Result("ignored", "gone from Re-Leased")
    links = await ctx.links.by_released(ctx.connection.id, kind.entity, ctx.event.entity_id)
    if not links and record.get("status") == "ARCHIVED":
        # While connected only the accounting side (we) writes master data: one without a QBO
        # counterpart archived is the connection's alignment retiring it (shared.ingest).
        return Result("ignored", f"{kind.entity} without a QBO counterpart, archived")
    if not links:
        detail = f"{kind.entity} changed in Re-Leased with no QBO counterpart"
        await steps.flag(
            ctx, kind.entity, None, {"released_id": ctx.event.entity_id}, "qbo", detail
        )
        return Result("flagged", "QBO is the only manager; no QBO record to restore from")
    link = links[0]
    await ctx.lock("link", str(link.id))
    if link.released_version == str(record.get("version")):
        return Result("echo", "our own write", link.qbo_id)
    decision = ctx.policy.decide(kind.entity, Op.UPSERT, "released")
    if decision.outcome not in (Outcome.REVERT, Outcome.REVERT_AND_FLAG):
        return await steps.not_carried_out(ctx, kind.entity, decision, link.id)
    qbo_record = await ctx.qbo.get(link.qbo_type, str(link.qbo_id))
    fields = await _fields_from_qbo(ctx, link.qbo_type, kind, qbo_record)
    if fields is None:
        return Result("ignored", "a tax code of one rate syncs through that TaxRate")
    if kind.from_released(record) == fields:
        outcome, written = "echo", record
    else:
        outcome = "reverted"
        written = await ctx.released.accounting(
            "PATCH",
            f"{kind.path}/{link.released_id}",
            body=kind.to_released(fields),
            idempotency_key=ctx.request_id(f"rl-{kind.entity}-revert"),
            if_match=record.get("version"),
        )
        if decision.outcome is Outcome.REVERT_AND_FLAG:
            detail = f"{kind.entity} changed in Re-Leased reverted: {decision.why}"
            await steps.flag(
                ctx, kind.entity, link.id, {"released_id": link.released_id}, "qbo", detail
            )
    await ctx.links.save(
        ctx.connection.id,
        kind.entity,
        link.qbo_type,
        qbo=(str(link.qbo_id), str(qbo_record.get("SyncToken"))),
        released=(str(written["id"]), str(written.get("version"))),
        snapshot=fields,
    )
    return Result(outcome, decision.why, link.qbo_id)
