"""Request bodies of the public API, validated at the edge (400 with one entry per bad field)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from sandboxes.released.errors import ApiError

Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4, allow_inf_nan=False)]
PositiveMoney = Annotated[
    Decimal, Field(gt=0, max_digits=18, decimal_places=4, allow_inf_nan=False)
]
Text = Annotated[str, Field(max_length=255)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
Ident = Annotated[str, Field(min_length=1, max_length=64)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
Status = Literal["ACTIVE", "ARCHIVED"]


class Body(BaseModel):
    # Clients echo whole records back; read-only fields they send are ignored, not refused.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Phone(Body):
    type: Literal["MOBILE", "DEFAULT", "FAX"] = "DEFAULT"
    number: Text


class Address(Body):
    type: Literal["POSTAL", "STREET"] = "POSTAL"
    line1: Text | None = None
    city: Text | None = None
    postal_code: Text | None = None
    country: Text | None = None


class ContactPatch(Body):
    name: Name | None = None
    first_name: Text | None = None
    last_name: Text | None = None
    email: Text | None = None
    phones: Annotated[list[Phone], Field(max_length=10)] | None = None
    addresses: Annotated[list[Address], Field(max_length=10)] | None = None
    is_customer: bool | None = None
    is_supplier: bool | None = None
    currency: Currency | None = None
    status: Status | None = None


class ContactIn(ContactPatch):
    name: Name


class LineIn(Body):
    description: Annotated[str, Field(max_length=4000)] | None = None
    quantity: Money = Decimal(1)
    unit_amount: Money
    account_id: Ident | None = None
    tax_rate_id: Ident | None = None
    tracking_option_id: Ident | None = None
    # Optional: the line's tax as the accounting side rounded it (it taxes the document's
    # total, not each line). Must be within TAX_TOLERANCE of the tax computed for the line.
    tax_amount: Money | None = None


LineAmountType = Literal["EXCLUSIVE", "INCLUSIVE", "NO_TAX"]
Lines = Annotated[list[LineIn], Field(max_length=100)]


class DocumentPatch(Body):
    number: Text | None = None
    reference: Text | None = None
    contact_id: Ident | None = None
    related_property_id: Ident | None = None
    related_tenancy_id: Ident | None = None
    date: dt.date | None = None
    due_date: dt.date | None = None
    currency: Currency | None = None
    status: Literal["DRAFT", "AWAITING_APPROVAL", "APPROVED", "VOIDED"] | None = None
    line_amount_type: LineAmountType | None = None
    lines: Lines | None = None


class DocumentIn(DocumentPatch):
    contact_id: Ident
    date: dt.date
    status: Literal["DRAFT", "AWAITING_APPROVAL", "APPROVED"] = "DRAFT"
    line_amount_type: LineAmountType = "EXCLUSIVE"
    lines: Lines = Field(default_factory=list)


class InvoiceIn(DocumentIn):
    type: Literal["INCOME", "EXPENSE"]


class CreditNoteIn(DocumentIn):
    type: Literal["INCOME_CREDIT", "EXPENSE_CREDIT"]
    # PREPAYMENT / OVERPAYMENT: money not against a document, held as credit (held_credit.py).
    kind: Literal["STANDARD", "PREPAYMENT", "OVERPAYMENT"] = "STANDARD"


class PaymentIn(Body):
    document_type: Literal["INVOICE", "CREDIT_NOTE"] = "INVOICE"
    document_id: Ident
    date: dt.date
    amount: PositiveMoney
    bank_account_id: Ident
    reference: Text | None = None


class AllocationIn(Body):
    invoice_id: Ident
    amount: PositiveMoney
    date: dt.date


class MergeIn(Body):
    into_contact_id: Ident


MAX_BATCH_ITEMS = 50


class BatchIn(Body):
    """``items``: creates (no ``id``) or partial updates (``id`` and ``version``)."""

    items: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=MAX_BATCH_ITEMS)]


class ConnectionIn(Body):
    provider: Literal["QBO"]
    external_org_id: Ident
    sync_from_date: dt.date


class WebhookIn(Body):
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=2000)]
    key: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class AccountIn(Body):
    code: Annotated[str, Field(min_length=1, max_length=32)]
    name: Name
    kind: Literal["ACCOUNT", "SALES_ITEM", "PURCHASE_ITEM"] = "ACCOUNT"
    type: Annotated[str, Field(min_length=1, max_length=32)] = "EXPENSE"
    status: Status = "ACTIVE"


class TaxRateIn(Body):
    name: Name
    rate: Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]
    status: Status = "ACTIVE"


class TrackingOptionIn(Body):
    id: Ident | None = None
    name: Name
    property_id: Ident | None = None
    status: Status = "ACTIVE"


class TrackingCategoryIn(Body):
    name: Name
    status: Status = "ACTIVE"
    options: Annotated[list[TrackingOptionIn], Field(max_length=100)] = Field(default_factory=list)


M = TypeVar("M", bound=BaseModel)


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise ApiError(400, "INVALID_JSON", "a JSON body is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "INVALID_JSON", "the body is not valid JSON") from None


def parse_model(model: type[M], raw: bytes) -> M:
    data = parse_json(raw)
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID_JSON", "the body must be a JSON object")
    return validate_model(model, data)


def validate_model(model: type[M], data: dict[str, Any]) -> M:
    """``data`` (already parsed JSON) as ``model``, or the 400 naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {
                "code": "INVALID_FIELD",
                "message": ".".join(str(p) for p in err["loc"]) + ": " + err["msg"],
            }
            for err in exc.errors()[:20]
        ]
        raise ApiError(400, "INVALID_FIELD", "validation failed", details=details) from None
