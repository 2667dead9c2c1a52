"""What both directions of the contact handlers share."""

from __future__ import annotations

from typing import Any

from shared.domain.mapping.contacts import contact_to_qbo
from shared.domain.ownership import Op
from shared.sync.context import SyncContext

ROLE_FLAG = {"Customer": "isCustomer", "Vendor": "isSupplier"}


def operation(fields: dict[str, Any], snapshot: dict[str, Any] | None) -> Op:
    """Archive/unarchive when ``active`` changed since the last sync, else an upsert."""
    was_active = True if snapshot is None else bool(snapshot.get("active", True))
    if was_active and not fields["active"]:
        return Op.ARCHIVE
    if not was_active and fields["active"]:
        return Op.UNARCHIVE
    return Op.UPSERT


def clash_suffix(ctx: SyncContext, qbo_type: str) -> str:
    """The suffix a Vendor's DisplayName may carry (a Customer of the same name has it plain)."""
    return ctx.settings.contact_clash_suffix if qbo_type == "Vendor" else ""


def display_name(ctx: SyncContext, qbo_type: str, name: str, record: dict[str, Any]) -> str:
    """The DisplayName to write for ``name``: with the clash suffix when the QBO record has it."""
    suffix = clash_suffix(ctx, qbo_type)
    if suffix and str(record.get("DisplayName", "")).endswith(suffix):
        return name + suffix
    return name


async def set_archived(
    ctx: SyncContext, contact: dict[str, Any], *, archived: bool
) -> dict[str, Any]:
    """Archiving is the accounting side's (Re-Leased refuses it to users while connected), at the
    version of ``contact`` we read."""
    verb = "archive" if archived else "unarchive"
    return await ctx.released.accounting(
        "POST",
        f"/contacts/{contact['id']}/{verb}",
        idempotency_key=ctx.request_id(f"rl-{verb}-{contact['id']}"),
        if_match=contact.get("version"),
    )


async def write_qbo(
    ctx: SyncContext,
    qbo_type: str,
    changes: dict[str, Any],
    current: dict[str, Any],
    purpose: str,
    display: str | None = None,
) -> dict[str, Any]:
    """A sparse update of ``changes`` at the SyncToken read."""
    body = contact_to_qbo(changes, display or str(current.get("DisplayName")))
    if "BillAddr" in body:
        # QBO's further address lines and state are not carried: keep them as QBO has them.
        body["BillAddr"] = {**(current.get("BillAddr") or {}), **body["BillAddr"]}
    body.update({"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True})
    return await ctx.qbo.write(qbo_type, body, request_id=ctx.request_id(f"qbo-{purpose}"))
