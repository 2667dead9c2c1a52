"""Public routes for contacts, invoices, credit notes and payments."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandboxes.released import contacts, held_credit, payments
from sandboxes.released.documents import (
    CREDIT_NOTE,
    INVOICE,
    DocKind,
    create_document,
    get_document,
    patch_document,
    transition,
)
from sandboxes.released.gate import Call, Gate
from sandboxes.released.listing import check_version, page_response, record_response
from sandboxes.released.schemas import (
    AllocationIn,
    ContactIn,
    ContactPatch,
    CreditNoteIn,
    DocumentIn,
    DocumentPatch,
    InvoiceIn,
    MergeIn,
    PaymentIn,
    parse_model,
)


def contact_routes(gate: Gate) -> list[BaseRoute]:
    async def list_contacts(call: Call) -> Response:
        return page_response(call.state.contacts.values(), call.request.query_params)

    async def create(call: Call) -> Response:
        body = parse_model(ContactIn, call.body)
        allowed = not call.user_while_connected
        created = contacts.create_contact(call.sandbox.store, call.state, body, may_archive=allowed)
        return record_response(created, 201)

    async def get(call: Call) -> Response:
        return record_response(contacts.get_contact(call.state, call.param("id")))

    async def patch(call: Call) -> Response:
        contact = contacts.get_contact(call.state, call.param("id"))
        check_version(call.request.headers.get("if-match"), contact)
        body = parse_model(ContactPatch, call.body)
        allowed = not call.user_while_connected
        contacts.patch_contact(call.sandbox.store, call.state, contact, body, may_archive=allowed)
        return record_response(contact)

    def status_action(verb: str) -> Route:
        # While connected only the accounting side archives, unarchives and merges.
        async def act(call: Call) -> Response:
            contact = contacts.get_contact(call.state, call.param("id"))
            if call.user_while_connected:
                raise contacts.archive_refused(contact["id"])
            check_version(call.request.headers.get("if-match"), contact)
            store = call.sandbox.store
            if verb == "merge":
                target = parse_model(MergeIn, call.body).into_contact_id
                contacts.merge_contact(store, call.state, contact, target)
            else:
                contacts.set_archived(store, call.state, contact, archived=verb == "archive")
            return record_response(contact)

        return Route(f"/contacts/{{id}}/{verb}", gate(act), methods=["POST"])

    return [
        Route("/contacts", gate(list_contacts), methods=["GET"]),
        Route("/contacts", gate(create), methods=["POST"]),
        Route("/contacts/{id}", gate(get), methods=["GET"]),
        Route("/contacts/{id}", gate(patch), methods=["PATCH"]),
        status_action("archive"),
        status_action("unarchive"),
        status_action("merge"),
    ]


def document_routes(gate: Gate, kind: DocKind, model: type[DocumentIn]) -> list[BaseRoute]:
    async def list_documents(call: Call) -> Response:
        return page_response(kind.records(call.state).values(), call.request.query_params)

    async def create(call: Call) -> Response:
        body = parse_model(model, call.body)
        if isinstance(body, CreditNoteIn):
            held_credit.check_new(body, user_while_connected=call.user_while_connected)
        doc = create_document(call.sandbox.store, call.state, kind, body)
        return record_response(doc, 201)

    async def get(call: Call) -> Response:
        return record_response(get_document(call.state, kind, call.param("id")))

    async def patch(call: Call) -> Response:
        doc = get_document(call.state, kind, call.param("id"))
        check_version(call.request.headers.get("if-match"), doc)
        body = parse_model(DocumentPatch, call.body)
        held_credit.check_change(doc, body, user_while_connected=call.user_while_connected)
        patch_document(call.sandbox.store, call.state, kind, doc, body)
        return record_response(doc)

    def action(target: str) -> Route:
        async def act(call: Call) -> Response:
            doc = get_document(call.state, kind, call.param("id"))
            check_version(call.request.headers.get("if-match"), doc)
            held_credit.check_void(doc, user_while_connected=call.user_while_connected)
            transition(call.sandbox.store, call.state, kind, doc, target)
            return record_response(doc)

        verb = {"AWAITING_APPROVAL": "submit", "APPROVED": "approve", "VOIDED": "void"}[target]
        return Route(f"/{kind.path}/{{id}}/{verb}", gate(act), methods=["POST"])

    base = f"/{kind.path}"
    return [
        Route(base, gate(list_documents), methods=["GET"]),
        Route(base, gate(create), methods=["POST"]),
        Route(base + "/{id}", gate(get), methods=["GET"]),
        Route(base + "/{id}", gate(patch), methods=["PATCH"]),
        action("AWAITING_APPROVAL"),
        action("APPROVED"),
        action("VOIDED"),
    ]


def allocation_routes(gate: Gate) -> list[BaseRoute]:
    async def allocate(call: Call) -> Response:
        note = get_document(call.state, CREDIT_NOTE, call.param("id"))
        check_version(call.request.headers.get("if-match"), note)
        body = parse_model(AllocationIn, call.body)
        payments.allocate_credit(call.sandbox.store, call.state, note, body)
        return record_response(note)

    async def unallocate(call: Call) -> Response:
        note = get_document(call.state, CREDIT_NOTE, call.param("id"))
        # Taking money off a document is the accounting side's while connected.
        call.accounting_only(
            "REVERSE_IN_ACCOUNTING", "remove the allocation in the accounting system", note["id"]
        )
        check_version(call.request.headers.get("if-match"), note)
        allocation = call.param("allocationId")
        payments.remove_allocation(call.sandbox.store, call.state, note, allocation)
        return record_response(note)

    one = "/credit-notes/{id}/allocations/{allocationId}"
    return [
        Route("/credit-notes/{id}/allocations", gate(allocate), methods=["POST"]),
        Route(one, gate(unallocate), methods=["DELETE"]),
    ]


def payment_routes(gate: Gate) -> list[BaseRoute]:
    async def list_payments(call: Call) -> Response:
        return page_response(call.state.payments.values(), call.request.query_params)

    async def create(call: Call) -> Response:
        body = parse_model(PaymentIn, call.body)
        return record_response(payments.create_payment(call.sandbox.store, call.state, body), 201)

    async def get(call: Call) -> Response:
        return record_response(payments.get_payment(call.state, call.param("id")))

    async def reverse(call: Call) -> Response:
        payment = payments.get_payment(call.state, call.param("id"))
        check_version(call.request.headers.get("if-match"), payment)
        source = "ACCOUNTING" if call.accounting_side else "RELEASED"
        payments.reverse_payment(call.sandbox.store, call.state, payment, source)
        return record_response(payment)

    return [
        Route("/payments", gate(list_payments), methods=["GET"]),
        Route("/payments", gate(create), methods=["POST"]),
        Route("/payments/{id}", gate(get), methods=["GET"]),
        Route("/payments/{id}/reverse", gate(reverse), methods=["POST"]),
    ]


def all_document_routes(gate: Gate) -> list[BaseRoute]:
    return [
        *contact_routes(gate),
        *document_routes(gate, INVOICE, InvoiceIn),
        *document_routes(gate, CREDIT_NOTE, CreditNoteIn),
        *allocation_routes(gate),
        *payment_routes(gate),
    ]
