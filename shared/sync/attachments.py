"""Attachments on invoices, bills and credit notes, both ways: additions and removals apply.

QBO never announces Attachable changes: the reconciler polls them and publishes ``attachable``
events, handled here like any other. Files are streamed through a spooled temporary file while
their sha256 is computed (at most one copy, on disk once large), and deduplicated by that hash
against what the target document already holds. A QBO Attachable that is gone (its event arrives
and the read answers "not found") removes the Re-Leased copy; a Re-Leased removal deletes the QBO
Attachable.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any

from shared.domain.errors import NotFound
from shared.domain.links import Link
from shared.domain.mapping.kinds import BY_QBO_WORD, KINDS
from shared.domain.ownership import Op
from shared.sync import steps
from shared.sync.context import Result, SyncContext
from shared.sync.dependencies import run_dependency

SPOOL_BYTES = 1024 * 1024  # above this a file in flight lives on disk, not in memory
_QBO_DOC_TYPES = {k.qbo_type for k in KINDS}


async def _spool(chunks: AsyncIterator[bytes]) -> tuple[IO[bytes], str]:
    """Stream into a spooled temp file, hashing as it goes: (file rewound, sha256)."""
    digest = hashlib.sha256()
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - caller closes
    async for chunk in chunks:
        digest.update(chunk)
        spool.write(chunk)
    spool.seek(0)
    return spool, digest.hexdigest()


def _doc_path(resource: str) -> str:
    """``.../invoices/{id}/attachments/{aid}`` -> ``/invoices/{id}``."""
    head = resource.split("/attachments/", 1)[0]
    for collection in ("/invoices/", "/credit-notes/"):
        if collection in head:
            return collection.rstrip("/") + "/" + head.rsplit(collection, 1)[1]
    return ""


async def _save(ctx: SyncContext, qbo: dict[str, Any], snapshot: dict[str, Any]) -> None:
    """Link one QBO Attachable to the Re-Leased attachment holding its file.

    Deduplication can give one Re-Leased attachment several QBO Attachables; the links table
    allows one row per Re-Leased id, so each further copy gets its own key and every row names
    the attachment in its snapshot (``released_attachment``), which is what lookups use.
    """
    attachment = str(snapshot["released_attachment"])
    holders = await _holders(ctx, attachment)
    mine = [h for h in holders if h.qbo_id == str(qbo["Id"])]
    key = mine[0].released_id if mine else attachment
    if not mine and any(h.released_id == attachment for h in holders):
        key = f"{attachment}+{qbo['Id']}"
    await ctx.links.save(
        ctx.connection.id,
        "attachment",
        "Attachable",
        qbo=(str(qbo["Id"]), str(qbo.get("SyncToken"))),
        released=(str(key), snapshot.get("sha256")),
        snapshot=snapshot,
    )


async def _holders(ctx: SyncContext, attachment: str, *, live: bool = False) -> list[Link]:
    """Every link (or only the linked ones) naming this Re-Leased attachment."""
    return await ctx.links.attachment_holders(ctx.connection.id, attachment, live=live)


# -- QBO -> Re-Leased --------------------------------------------------------------------------


async def from_qbo(ctx: SyncContext) -> Result:
    link = await ctx.links.by_qbo(ctx.connection.id, "Attachable", ctx.event.entity_id)
    try:
        record = await ctx.qbo.get("Attachable", ctx.event.entity_id)
    except NotFound:
        return await _remove_in_released(ctx, link)
    if link is not None and link.status == "linked":
        return Result("echo", "attachment already in Re-Leased", link.released_id)
    target = next(
        (
            ref["EntityRef"]
            for ref in record.get("AttachableRef") or []
            if (ref.get("EntityRef") or {}).get("type") in _QBO_DOC_TYPES
        ),
        None,
    )
    if target is None or not record.get("TempDownloadUri"):
        return Result("ignored", "not a file attached to a synced document type")
    doc_link = await _document(ctx, str(target["type"]), str(target["value"]))
    if doc_link is None:
        return Result("ignored", "the document is not synced (yet)")
    decision = ctx.policy.decide("attachment", Op.UPSERT, "qbo")
    stop = await steps.not_applied(ctx, "attachment", decision, link.id if link else None)
    if stop is not None:
        return stop
    kind = BY_QBO_WORD[str(target["type"]).lower()]
    # One document's attachments are compared and written one change at a time (dedupe). A
    # write of ours from the other direction commits before this lock is free: look again.
    await ctx.lock("attachments", kind.qbo_type, str(target["value"]))
    if await ctx.links.by_qbo(ctx.connection.id, "Attachable", ctx.event.entity_id):
        return Result("echo", "attachment written by us from Re-Leased")
    base = f"{kind.released_path}/{doc_link.released_id}/attachments"
    spool, sha = await _spool(ctx.qbo.stream_file(str(record["TempDownloadUri"])))
    with spool:
        existing = await ctx.released.list_all(base)
        match = next((a for a in existing if a.get("sha256") == sha), None)
        if match is None:
            match = await ctx.released.upload_attachment(
                base,
                spool,
                file_name=str(record.get("FileName") or "attachment"),
                content_type=str(record.get("ContentType") or "application/octet-stream"),
                idempotency_key=ctx.create_key("rl-attach", sha),
            )
    # No lock on the new Re-Leased attachment's own key (that order could deadlock): its
    # notification waits on the document's attachments lock, then finds this link.
    snapshot = {
        "sha256": sha,
        "document": f"{kind.qbo_type}:{target['value']}",
        "path": base,
        "released_attachment": str(match["id"]),
    }
    await _save(ctx, record, snapshot)
    return Result("applied", "attached in Re-Leased", str(match["id"]))


async def _document(ctx: SyncContext, qbo_type: str, qbo_id: str) -> Link | None:
    link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, qbo_id)
    if link is None:
        await run_dependency(ctx, "qbo", qbo_type.lower(), qbo_id)
        link = await ctx.links.by_qbo(ctx.connection.id, qbo_type, qbo_id)
    return link if link is not None and link.status == "linked" else None


async def _remove_in_released(ctx: SyncContext, link: Link | None) -> Result:
    if link is None or link.status != "linked":
        return Result("ignored", "removed attachment was never synced")
    decision = ctx.policy.decide("attachment", Op.DELETE, "qbo")
    stop = await steps.not_applied(ctx, "attachment", decision, link.id)
    if stop is not None:
        return stop
    await ctx.links.set_status(link.id, "unlinked")
    attachment = str((link.snapshot or {}).get("released_attachment") or link.released_id)
    if await _holders(ctx, attachment, live=True):
        # Deduplicated: another QBO Attachable still holds the same file there.
        return Result("applied", "unlinked; the same file is still attached in QBO")
    path = f"{(link.snapshot or {}).get('path')}/{attachment}"
    with contextlib.suppress(NotFound):  # already gone: the removal is done either way
        await ctx.released.request(
            "DELETE", path, idempotency_key=ctx.request_id("rl-attach-remove")
        )
    return Result("applied", "removed in Re-Leased", attachment)


# -- Re-Leased -> QBO --------------------------------------------------------------------------


async def from_released(ctx: SyncContext) -> Result:
    links = await _holders(ctx, ctx.event.entity_id)
    link = links[0] if links else None
    doc_path = _doc_path(ctx.event.resource_url or "")
    try:
        record = await ctx.released.get(f"{doc_path}/attachments/{ctx.event.entity_id}")
    except NotFound:
        return await _remove_in_qbo(ctx, links)
    if link is not None:
        return Result("echo", "attachment already in QBO", link.qbo_id)
    document = await ctx.released.get(doc_path)
    kind = next(k for k in KINDS if k.released_type == document.get("type"))
    doc_links = await ctx.links.by_released(ctx.connection.id, kind.entity, str(document["id"]))
    if not doc_links or doc_links[0].status != "linked":
        return Result("ignored", "the document is not synced")
    doc_key = f"{kind.qbo_type}:{doc_links[0].qbo_id}"
    await ctx.lock("attachments", kind.qbo_type, str(doc_links[0].qbo_id))
    if await _holders(ctx, ctx.event.entity_id):
        return Result("echo", "attachment written by us from QBO")
    if await _already_linked(ctx, doc_key, str(record.get("sha256"))):
        return Result("echo", "same content already attached in QBO")
    decision = ctx.policy.decide("attachment", Op.UPSERT, "released")
    stop = await steps.not_applied(ctx, "attachment", decision)
    if stop is not None:
        return stop
    spool, sha = await _spool(ctx.released.stream(f"{doc_path}/attachments/{record['id']}/content"))
    with spool:
        created = await ctx.qbo.upload(
            {
                "AttachableRef": [
                    {"EntityRef": {"type": kind.qbo_type, "value": doc_links[0].qbo_id}}
                ],
                "FileName": record.get("fileName"),
                "ContentType": record.get("mimeType"),
            },
            spool,
            file_name=str(record.get("fileName") or "attachment"),
            content_type=str(record.get("mimeType") or "application/octet-stream"),
            request_id=ctx.create_key("qbo-attach", sha),
        )
    snapshot = {
        "sha256": sha,
        "document": doc_key,
        "path": f"{doc_path}/attachments",
        "released_attachment": str(record["id"]),
    }
    await _save(ctx, created, snapshot)
    return Result("applied", "attached in QBO", str(created["Id"]))


async def _already_linked(ctx: SyncContext, doc_key: str, sha: str) -> bool:
    return await ctx.links.attachment_on(ctx.connection.id, doc_key, sha)


async def _remove_in_qbo(ctx: SyncContext, links: list[Link]) -> Result:
    live = [link for link in links if link.status == "linked"]
    if not live:
        return Result("ignored", "removed attachment was never synced")
    decision = ctx.policy.decide("attachment", Op.DELETE, "released")
    stop = await steps.not_applied(ctx, "attachment", decision, live[0].id)
    if stop is not None:
        return stop
    # Deduplicated copies: every QBO Attachable that held this file goes.
    for link in live:
        try:
            current = await ctx.qbo.get("Attachable", str(link.qbo_id))
            await ctx.qbo.write(
                "Attachable",
                {"Id": current["Id"], "SyncToken": current["SyncToken"]},
                request_id=ctx.request_id(f"qbo-attach-remove-{link.qbo_id}"),
                operation="delete",
            )
        except NotFound:
            pass  # already gone in QBO
        await ctx.links.set_status(link.id, "unlinked")
    return Result("applied", "removed in QBO", ",".join(str(lk.qbo_id) for lk in live))
