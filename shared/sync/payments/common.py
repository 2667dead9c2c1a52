"""What payments, allocations and refunds refer to (the documents they settle, the bank accounts
the money moves through, resolved on the side being written, dependencies first) and the link of
a whole QBO payment."""

from __future__ import annotations

from typing import Any

from shared.domain.errors import PermanentError, Refused
from shared.domain.links import Link
from shared.domain.mapping.keys import split_key
from shared.domain.mapping.payments import ALLOCATION, ENTITY
from shared.infra.logging import get_logger
from shared.sync.context import SyncContext
from shared.sync.dependencies import released_ids, run_dependency

log = get_logger("sync.payments")

# Re-Leased's answers for money that does not fit what is open on a document.
_DOES_NOT_FIT = frozenset({"OVERPAYMENT", "OVER_ALLOCATION"})


async def released_document(ctx: SyncContext, doc_key: str) -> str:
    """The Re-Leased id of the QBO document ``doc_key`` (``"Invoice:12"``), syncing it first if
    it has not been yet."""
    doc_type, doc_id = split_key(doc_key)
    link = await ctx.links.by_qbo(ctx.connection.id, doc_type, doc_id)
    if link is None:
        await run_dependency(ctx, "qbo", doc_type.lower(), doc_id)
        link = await ctx.links.by_qbo(ctx.connection.id, doc_type, doc_id)
    if link is None or not link.released_id:
        raise PermanentError(
            f"{doc_key} used by this payment is not in Re-Leased",
            remedy="fix the document's sync error, then replay this payment",
        )
    return link.released_id


async def qbo_document(ctx: SyncContext, entity: str, category: str, document_id: str) -> Link:
    """The link of a Re-Leased document (``category`` invoice or creditnote) to QBO, syncing the
    document first if it has not been yet."""
    found = await ctx.links.by_released(ctx.connection.id, entity, document_id)
    if not found:
        await run_dependency(ctx, "released", category, document_id)
        found = await ctx.links.by_released(ctx.connection.id, entity, document_id)
    if not found or found[0].status == "voided":
        raise PermanentError(
            "the document this payment uses is not in QBO",
            remedy="approve the document (or fix its sync error), then replay this payment",
        )
    return found[0]


def _active_bank(accounts: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next(
        (a for a in accounts if a.get("type") == "BANK" and a.get("status", "ACTIVE") == "ACTIVE"),
        None,
    )


async def released_bank(ctx: SyncContext, key: str | None) -> str:
    """The Re-Leased bank account for a QBO one. Where there is none (the money went to
    Undeposited Funds or another account that is not a bank, or the bank has no counterpart in
    Re-Leased), the company's first active bank account is used: a decision, logged with why."""
    reason = "no_account_given"
    if key is not None:
        released = (await released_ids(ctx, [key]))[key]
        account = await ctx.released.get(f"/accounts/{released}")
        if account.get("type") == "BANK":
            return released
        reason = "not_a_bank_account"  # e.g. Undeposited Funds (an Other Current Asset)
    # From the process's kept listing (``shared.sync.listings``): only we write accounts while
    # connected. Finding no bank there, a fresh listing has the last word.
    for fresh in (False, True):
        if fresh:
            ctx.listings.drop(ctx.connection.id, "/accounts")
        bank = _active_bank(
            await ctx.listings.listing(ctx.released, ctx.connection.id, "/accounts")
        )
        if bank is not None:
            log.info(
                "payment_bank_fallback",
                connection_id=str(ctx.connection.id),
                entity_id=ctx.event.entity_id,
                direction="qbo_to_released",
                qbo_account=key,
                chosen=str(bank["id"]),
                reason=reason,
            )
            return str(bank["id"])
    raise PermanentError("Re-Leased has no bank account", remedy="add a bank account in QBO")


async def qbo_bank(ctx: SyncContext, released_account: str) -> str:
    """The QBO bank account for a Re-Leased one; where it has no QBO counterpart, QBO's first
    bank account: a decision, logged with why."""
    if released_account:
        for link in await ctx.links.by_released(ctx.connection.id, "account", released_account):
            if link.qbo_type == "Account" and link.qbo_id:
                return link.qbo_id
    chosen = await qbo_account_of_type(ctx, "Bank")
    log.info(
        "payment_bank_fallback",
        connection_id=str(ctx.connection.id),
        entity_id=ctx.event.entity_id,
        direction="released_to_qbo",
        released_account=released_account or None,
        chosen=chosen,
        reason="no_counterpart" if released_account else "no_account_given",
    )
    return chosen


async def qbo_account_of_type(ctx: SyncContext, account_type: str) -> str:
    found = await ctx.qbo.query_all("Account", f"AccountType = '{account_type}'")
    if not found:
        raise PermanentError(
            f"QBO has no {account_type} account", remedy=f"add an {account_type} account in QBO"
        )
    return str(found[0]["Id"])


async def post_money(
    ctx: SyncContext,
    touched: list[tuple[str, str]],
    path: str,
    body: dict[str, Any],
    purpose: str,
) -> Any:
    """POST a payment or an allocation of QBO's to Re-Leased. ``touched``: the Re-Leased
    documents it lands on, as (``invoice`` or ``creditnote``, id).

    When Re-Leased answers that the money does not fit what is open, an edit made in Re-Leased
    before it heard of this money may be in the way (QBO took the payment on its own total).
    Each document's pending change is applied first, as its own event would: sent to QBO, or
    QBO's version restored where it has more money applied than the edit leaves. Then the POST
    is tried once more; a second refusal is a real disagreement for a person."""
    try:
        return await ctx.released.request(
            "POST", path, body=body, idempotency_key=ctx.create_key(purpose, body)
        )
    except Refused as exc:
        if not _DOES_NOT_FIT & set(exc.codes):
            raise
    for category, document_id in touched:
        await run_dependency(ctx, "released", category, document_id)
    try:
        # A new key: Re-Leased keeps the refusal under the first one.
        return await ctx.released.request(
            "POST", path, body=body, idempotency_key=ctx.create_key(f"{purpose}-settled", body)
        )
    except Refused as exc:
        if not _DOES_NOT_FIT & set(exc.codes):
            raise
        raise PermanentError(
            f"{exc} (the documents agree with QBO)",
            remedy="Re-Leased holds money on the document that QBO does not; record it in QBO "
            "or reverse it in Re-Leased, then replay this event",
        ) from exc


async def save_payment_link(
    ctx: SyncContext,
    qbo_type: str,
    record: dict[str, Any],
    released_id: str,
    released_version: str | None,
    fields: dict[str, Any],
) -> None:
    """The link of a whole QBO payment (``released_id``: what it is in Re-Leased)."""
    await ctx.links.save(
        ctx.connection.id,
        ENTITY[qbo_type],
        qbo_type,
        qbo=(str(record["Id"]), str(record.get("SyncToken"))),
        released=(released_id, released_version),
        snapshot=fields,
    )


async def save_part(
    ctx: SyncContext, qbo_type: str, record: dict[str, Any], part: str, token: str, amount: str
) -> None:
    """A link row per piece written, so its Re-Leased event is recognised as ours."""
    version = str(record.get("SyncToken"))
    await ctx.links.save(
        ctx.connection.id,
        ENTITY[qbo_type],
        f"{qbo_type}Line",
        qbo=(f"{record['Id']}:{version}:{part}", version),
        released=(token, None),
        snapshot={"part": part, "amount": amount},
    )


async def undo(ctx: SyncContext, token: str) -> None:
    """Take back one allocation we recorded (the accounting side unapplying the credit)."""
    note_id, _, allocation_id = token.removeprefix(ALLOCATION).partition("/")
    await ctx.lock("released", "creditnote", note_id)
    await ctx.released.accounting(
        "DELETE",
        f"/credit-notes/{note_id}/allocations/{allocation_id}",
        idempotency_key=ctx.request_id(f"rl-unallocate-{allocation_id}"),
    )
