"""Credit notes that hold money not (yet) against a document: ``kind`` PREPAYMENT or OVERPAYMENT.

Cash received or paid that no document took is kept as credit on the contact: a credit note of
one line without tax, whose ``remainingCredit`` is allocated to invoices later like any other
credit. Only the accounting side makes or changes them while connected (a user gets 409
``MANAGED_IN_ACCOUNTING``); a user may allocate them, which is what they are for. Ordinary credit
notes are ``kind`` STANDARD. The kind is set at creation and never changes.
"""

from __future__ import annotations

from sandboxes.released.errors import ApiError, conflict, invalid
from sandboxes.released.schemas import CreditNoteIn, DocumentPatch
from sandboxes.released.store import Record

STANDARD = "STANDARD"
HELD = frozenset({"PREPAYMENT", "OVERPAYMENT"})


def check_new(body: CreditNoteIn, *, user_while_connected: bool) -> None:
    """A held-credit note's shape on creation, and who may make it."""
    if body.kind not in HELD:
        return
    if user_while_connected:
        raise _managed()
    _check_shape(body.line_amount_type, len(body.lines), [line.tax_rate_id for line in body.lines])


def check_change(doc: Record, body: DocumentPatch, *, user_while_connected: bool) -> None:
    """An edit or a void of a held-credit note: the accounting side's, and it keeps the shape."""
    if doc.get("kind", STANDARD) not in HELD:
        return
    if user_while_connected:
        raise _managed()
    fields = body.model_fields_set
    lines = body.lines if "lines" in fields and body.lines is not None else None
    amount_type = body.line_amount_type if "line_amount_type" in fields else None
    _check_shape(
        amount_type or doc.get("lineAmountType"),
        len(lines) if lines is not None else len(doc.get("lines") or []),
        [line.tax_rate_id for line in lines] if lines is not None else [],
    )


def check_void(doc: Record, *, user_while_connected: bool) -> None:
    if doc.get("kind", STANDARD) in HELD and user_while_connected:
        raise _managed()


def _check_shape(amount_type: object, line_count: int, tax_rates: list[str | None]) -> None:
    if line_count != 1:
        raise invalid("HELD_CREDIT_SHAPE", "a prepayment or overpayment has exactly one line")
    if amount_type != "NO_TAX" or any(rate is not None for rate in tax_rates):
        raise invalid("HELD_CREDIT_SHAPE", "a prepayment or overpayment carries no tax")


def _managed() -> ApiError:
    return conflict(
        "MANAGED_IN_ACCOUNTING",
        "prepayments and overpayments are managed in the accounting system while connected",
    )
