"""Batch writes: up to 50 creates or partial updates in one request, each succeeding on its own.

``POST /contacts/batch``, ``/invoices/batch``, ``/credit-notes/batch``, ``/payments/batch``, body
``{"items": [...]}``. An item without ``id`` is a create; one with ``id`` and ``version`` is a
partial update at that version (412 when it moved on). The answer is 200 with one result per item
in input order: ``{"status": 201|200, "item": {...}}`` or ``{"status": 4xx, "error": {...}}``.
A failed item changes nothing: the record it touched is put back and the events it raised are
dropped before anyone hears of them. The whole request is one request against the limits and
one ``Idempotency-Key`` (the gate does both).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sandboxes.released import contacts, held_credit, payments
from sandboxes.released.documents import (
    CREDIT_NOTE,
    INVOICE,
    DocKind,
    create_document,
    get_document,
    patch_document,
)
from sandboxes.released.errors import ApiError, invalid
from sandboxes.released.gate import Call, Gate
from sandboxes.released.listing import check_version
from sandboxes.released.schemas import (
    BatchIn,
    ContactIn,
    ContactPatch,
    CreditNoteIn,
    DocumentIn,
    DocumentPatch,
    InvoiceIn,
    PaymentIn,
    parse_model,
    validate_model,
)
from sandboxes.released.store import CompanyState, Record, Store

Item = dict[str, Any]


@dataclass(frozen=True)
class BatchKind:
    path: str
    find: Callable[[CompanyState, str], Record]
    create: Callable[[Call, Item], Record]
    update: Callable[[Call, Record, Item], None] | None


def _create_contact(call: Call, item: Item) -> Record:
    body = validate_model(ContactIn, item)
    allowed = not call.user_while_connected
    return contacts.create_contact(call.sandbox.store, call.state, body, may_archive=allowed)


def _update_contact(call: Call, record: Record, item: Item) -> None:
    body = validate_model(ContactPatch, item)
    allowed = not call.user_while_connected
    contacts.patch_contact(call.sandbox.store, call.state, record, body, may_archive=allowed)


def _documents(kind: DocKind, model: type[DocumentIn]) -> BatchKind:
    def create(call: Call, item: Item) -> Record:
        body = validate_model(model, item)
        if isinstance(body, CreditNoteIn):
            held_credit.check_new(body, user_while_connected=call.user_while_connected)
        return create_document(call.sandbox.store, call.state, kind, body)

    def update(call: Call, record: Record, item: Item) -> None:
        body = validate_model(DocumentPatch, item)
        held_credit.check_change(record, body, user_while_connected=call.user_while_connected)
        patch_document(call.sandbox.store, call.state, kind, record, body)

    return BatchKind(kind.path, lambda s, i: get_document(s, kind, i), create, update)


def _create_payment(call: Call, item: Item) -> Record:
    return payments.create_payment(call.sandbox.store, call.state, validate_model(PaymentIn, item))


KINDS = (
    BatchKind("contacts", contacts.get_contact, _create_contact, _update_contact),
    _documents(INVOICE, InvoiceIn),
    _documents(CREDIT_NOTE, CreditNoteIn),
    # Payments are never edited, only reversed: an update item is refused on its own.
    BatchKind("payments", payments.get_payment, _create_payment, None),
)


@contextmanager
def _on_its_own(store: Store, state: CompanyState, record: Record | None) -> Iterator[None]:
    """Apply one item; if it fails, put ``record`` back and forget the events it raised."""
    backup = copy.deepcopy(record) if record is not None else None
    mark = len(state.events)
    listeners, held = store.listeners, []
    store.listeners = [lambda s, e: held.append((s, e))]
    try:
        yield
    except ApiError:
        del state.events[mark:]
        if record is not None and backup is not None:
            record.clear()
            record.update(backup)
        raise
    finally:
        store.listeners = listeners
    for held_state, event in held:
        for listener in listeners:
            listener(held_state, event)


def _apply(call: Call, kind: BatchKind, item: Item) -> tuple[int, Record]:
    store, state = call.sandbox.store, call.state
    if "id" not in item:
        with _on_its_own(store, state, None):
            return 201, kind.create(call, item)
    ident, version = item.get("id"), item.get("version")
    if not isinstance(ident, str) or not ident:
        raise invalid("INVALID_FIELD", "id must be a non-empty string")
    if isinstance(version, bool) or not isinstance(version, int):
        raise invalid("VERSION_REQUIRED", "an update needs the integer version it was based on")
    if kind.update is None:
        raise invalid("UPDATE_NOT_SUPPORTED", f"{kind.path} cannot be updated", ident)
    record = kind.find(state, ident)
    check_version(f'"{version}"', record)
    changes = {k: v for k, v in item.items() if k not in ("id", "version")}
    with _on_its_own(store, state, record):
        kind.update(call, record, changes)
    return 200, record


def batch_routes(gate: Gate) -> list[BaseRoute]:
    def route(kind: BatchKind) -> Route:
        async def batch(call: Call) -> Response:
            body = parse_model(BatchIn, call.body)
            results: list[dict[str, Any]] = []
            for item in body.items:
                try:
                    status, record = _apply(call, kind, item)
                except ApiError as err:
                    results.append({"status": err.status, "error": err.body()})
                else:
                    # A copy: a later item in the same batch may change the record again.
                    results.append({"status": status, "item": copy.deepcopy(record)})
            return JSONResponse({"items": results})

        return Route(f"/{kind.path}/batch", gate(batch), methods=["POST"])

    return [route(kind) for kind in KINDS]
