"""Contacts: Re-Leased edits them; while connected only the accounting side archives or merges.

``may_archive`` is the caller's right to change a contact's status: False for a Re-Leased user
while the company is connected (the routes work it out from the call's principal).
"""

from __future__ import annotations

from typing import Any

from sandboxes.released.errors import conflict, invalid, not_found
from sandboxes.released.schemas import ContactIn, ContactPatch
from sandboxes.released.store import CompanyState, Record, Store

_DEFAULTS: dict[str, Any] = {
    "firstName": None,
    "lastName": None,
    "email": None,
    "phones": [],
    "addresses": [],
    "isCustomer": False,
    "isSupplier": False,
    "currency": "NZD",
    "status": "ACTIVE",
    "mergedToContactId": None,
}


_NULLABLE = frozenset({"firstName", "lastName", "email"})


def get_contact(state: CompanyState, contact_id: str) -> Record:
    contact = state.contacts.get(contact_id)
    if contact is None:
        raise not_found("contact", contact_id)
    return contact


def create_contact(
    store: Store, state: CompanyState, body: ContactIn, *, may_archive: bool
) -> Record:
    if body.status == "ARCHIVED" and not may_archive:
        raise archive_refused("new")
    contact = {**_DEFAULTS, **_changes(body)}
    store.stamp_new(contact)
    state.contacts[contact["id"]] = contact
    store.emit(state, "contact.created", contact, f"contacts/{contact['id']}")
    return contact


def patch_contact(
    store: Store, state: CompanyState, contact: Record, body: ContactPatch, *, may_archive: bool
) -> Record:
    changes = _changes(body)
    status = changes.pop("status", contact["status"])
    if status != contact["status"] and not may_archive:
        raise archive_refused(contact["id"])
    if changes:
        contact.update(changes)
        store.touch(contact)
        store.emit(state, "contact.updated", contact, f"contacts/{contact['id']}")
    if status != contact["status"]:
        set_archived(store, state, contact, archived=status == "ARCHIVED")
    return contact


def set_archived(store: Store, state: CompanyState, contact: Record, *, archived: bool) -> None:
    status = "ARCHIVED" if archived else "ACTIVE"
    if contact["status"] == status:
        return
    contact["status"] = status
    if not archived:
        contact["mergedToContactId"] = None
    store.touch(contact)
    name = "contact.archived" if archived else "contact.unarchived"
    store.emit(state, name, contact, f"contacts/{contact['id']}")


def merge_contact(store: Store, state: CompanyState, contact: Record, into_id: str) -> Record:
    """The accounting side merged ``contact`` into another: it is archived and points there."""
    if into_id == contact["id"] or into_id not in state.contacts:
        raise invalid("MERGE_TARGET_INVALID", "merge into another existing contact", into_id)
    contact["status"] = "ARCHIVED"
    contact["mergedToContactId"] = into_id
    store.touch(contact)
    data = {"mergedToContactId": into_id}
    store.emit(state, "contact.merged", contact, f"contacts/{contact['id']}", data)
    return contact


def _changes(body: ContactPatch) -> dict[str, Any]:
    dumped = body.model_dump(by_alias=True, mode="json", exclude_unset=True)
    # An explicit null clears a nullable field; elsewhere it means "leave as is".
    return {k: v for k, v in dumped.items() if v is not None or k in _NULLABLE}


def archive_refused(ident: str) -> Exception:
    return conflict(
        "ARCHIVE_IN_ACCOUNTING",
        "contact status is managed by the accounting system while connected",
        ident,
    )
