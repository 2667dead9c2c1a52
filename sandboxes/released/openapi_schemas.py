"""Response schemas of the public API (OpenAPI 3.0 dialect), kept next to the document builder."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

MONEY: Schema = {"type": "string", "pattern": r"^-?\d+\.\d{2}$"}
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
DATE: Schema = {"type": "string", "format": "date"}
ID: Schema = {"type": "string"}
VERSION: Schema = {"type": "integer", "minimum": 1}


def nullable(schema: Schema) -> Schema:
    return {**schema, "nullable": True}


def obj(required: list[str], **props: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": props}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


EVENT_CATEGORIES = (
    "CONTACT",
    "INVOICE",
    "CREDITNOTE",
    "PAYMENT",
    "ATTACHMENT",
    "ACCOUNT",
    "TAXRATE",
    "TRACKING",
    "CONNECTION",
)
_STAMPS = {"id": ID, "version": VERSION, "createdAt": TIMESTAMP, "updatedAt": TIMESTAMP}
_STAMPED = ["id", "version", "createdAt", "updatedAt"]

_LINE = obj(
    ["id", "quantity", "unitAmount", "taxAmount", "lineAmount"],
    id=ID,
    description=nullable({"type": "string"}),
    quantity={"type": "string"},
    unitAmount=MONEY,
    accountId=nullable(ID),
    taxRateId=nullable(ID),
    taxAmount=MONEY,
    lineAmount=MONEY,
    trackingOptionId=nullable(ID),
)


def _document(types: tuple[str, ...], extra: dict[str, Schema]) -> Schema:
    props: dict[str, Schema] = {
        **_STAMPS,
        "type": enum(*types),
        "number": {"type": "string"},
        "numberSource": enum("RELEASED", "ACCOUNTING"),
        "reference": nullable({"type": "string"}),
        "contactId": ID,
        "relatedPropertyId": nullable(ID),
        "relatedTenancyId": nullable(ID),
        "date": DATE,
        "dueDate": nullable(DATE),
        "currency": {"type": "string"},
        "status": enum("DRAFT", "AWAITING_APPROVAL", "APPROVED", "PAID", "VOIDED"),
        "lineAmountType": enum("EXCLUSIVE", "INCLUSIVE", "NO_TAX"),
        "lines": {"type": "array", "items": _LINE},
        "subTotal": MONEY,
        "totalTax": MONEY,
        "total": MONEY,
        "amountPaid": MONEY,
        "amountCredited": MONEY,
        "amountDue": MONEY,
        "hasAttachments": {"type": "boolean"},
        "voidedAt": nullable(TIMESTAMP),
        **extra,
    }
    required = [*_STAMPED, "type", "number", "contactId", "date", "status", "lines", "total"]
    required += ["subTotal", "totalTax", "amountPaid", "amountCredited", "amountDue"]
    return {"type": "object", "required": required, "properties": props}


_ALLOCATION = obj(
    ["id", "invoiceId", "amount", "date"],
    id=ID,
    invoiceId=ID,
    amount=MONEY,
    date=DATE,
    isDeleted={"type": "boolean"},
)
_ACTIVE = enum("ACTIVE", "ARCHIVED")

RESOURCES: dict[str, Schema] = {
    "Contact": obj(
        [*_STAMPED, "name", "status"],
        **_STAMPS,
        name={"type": "string"},
        firstName=nullable({"type": "string"}),
        lastName=nullable({"type": "string"}),
        email=nullable({"type": "string"}),
        phones={"type": "array", "items": {"type": "object"}},
        addresses={"type": "array", "items": {"type": "object"}},
        isCustomer={"type": "boolean"},
        isSupplier={"type": "boolean"},
        currency={"type": "string"},
        status=_ACTIVE,
        mergedToContactId=nullable(ID),
    ),
    "Invoice": _document(("INCOME", "EXPENSE"), {}),
    "CreditNote": _document(
        ("INCOME_CREDIT", "EXPENSE_CREDIT"),
        {
            "remainingCredit": MONEY,
            "allocations": {"type": "array", "items": _ALLOCATION},
            "kind": enum("STANDARD", "PREPAYMENT", "OVERPAYMENT"),
        },
    ),
    "Payment": obj(
        [*_STAMPED, "documentType", "documentId", "date", "amount", "status", "source"],
        **_STAMPS,
        documentType=enum("INVOICE", "CREDIT_NOTE"),
        documentId=ID,
        date=DATE,
        amount=MONEY,
        bankAccountId=ID,
        reference=nullable({"type": "string"}),
        status=enum("ACTIVE", "REVERSED"),
        reversedAt=nullable(TIMESTAMP),
        reversalSource=nullable(enum("RELEASED", "ACCOUNTING")),
        source=enum("RELEASED", "ACCOUNTING"),
    ),
    "Attachment": obj(
        ["id", "fileName", "mimeType", "size", "sha256", "createdAt"],
        **_STAMPS,
        documentId=ID,
        fileName={"type": "string"},
        mimeType={"type": "string"},
        size={"type": "integer", "minimum": 0},
        sha256={"type": "string", "pattern": "^[0-9a-f]{64}$"},
        source=enum("RELEASED", "ACCOUNTING"),
    ),
    "Account": obj(
        [*_STAMPED, "code", "name", "kind", "type", "status"],
        **_STAMPS,
        code={"type": "string"},
        name={"type": "string"},
        kind=enum("ACCOUNT", "SALES_ITEM", "PURCHASE_ITEM"),
        displayPrefix={"type": "string"},
        type={"type": "string"},
        status=_ACTIVE,
    ),
    "TaxRate": obj(
        [*_STAMPED, "name", "rate", "status"],
        **_STAMPS,
        name={"type": "string"},
        rate=MONEY,
        status=_ACTIVE,
    ),
    "TrackingCategory": obj(
        [*_STAMPED, "name", "status", "options"],
        **_STAMPS,
        name={"type": "string"},
        status=_ACTIVE,
        isPropertyMatching={"type": "boolean"},
        options={
            "type": "array",
            "items": obj(
                ["id", "name", "status"],
                id=ID,
                name={"type": "string"},
                propertyId=nullable(ID),
                status=_ACTIVE,
            ),
        },
    ),
    "Property": obj(
        [*_STAMPED, "name", "status"],
        **_STAMPS,
        name={"type": "string"},
        trackingOptionId=nullable(ID),
        status=_ACTIVE,
    ),
    "Tenancy": obj(
        [*_STAMPED, "propertyId", "status"],
        **_STAMPS,
        propertyId=ID,
        unit={"type": "string"},
        status={"type": "string"},
        startDate=DATE,
        endDate=nullable(DATE),
        primaryContactId=nullable(ID),
        billingContactId=nullable(ID),
    ),
    "Company": obj(
        [*_STAMPED, "name", "region"],
        **_STAMPS,
        name={"type": "string"},
        region={"type": "string"},
        accountingConnection=nullable(
            obj(
                ["provider", "externalOrgId", "status", "connectedAt", "syncFromDate"],
                provider=enum("QBO"),
                externalOrgId={"type": "string"},
                status=enum("ACTIVE", "REVOKED"),
                connectedAt=TIMESTAMP,
                syncFromDate=DATE,
            )
        ),
    ),
    "Event": obj(
        [
            *("eventId", "eventCategory", "eventType", "eventName", "resourceId"),
            *("resourceUrl", "companyId", "resourceVersion", "eventDateUtc"),
        ],
        eventId=ID,
        sequence={"type": "integer", "minimum": 1},
        eventCategory=enum(*EVENT_CATEGORIES),
        eventType=enum("CREATE", "UPDATE", "DELETE"),
        eventName={"type": "string"},
        resourceId=ID,
        resourceUrl={"type": "string"},
        companyId=ID,
        resourceVersion={"type": "integer"},
        eventDateUtc=TIMESTAMP,
        data={"type": "object"},
    ),
    "Webhook": obj(
        ["id", "url", "status", "createdAt"],
        id=ID,
        url={"type": "string"},
        status=enum("PENDING_VALIDATION", "ACTIVE", "DISABLED"),
        createdAt=TIMESTAMP,
        failingSince=nullable(TIMESTAMP),
    ),
    "Token": obj(
        ["access_token", "token_type", "expires_in"],
        access_token={"type": "string"},
        token_type=enum("Bearer"),
        expires_in={"type": "integer"},
    ),
    "OAuthError": obj(["error"], error={"type": "string"}),
    "Error": obj(
        ["errorNumber", "type", "message", "elements"],
        errorNumber={"type": "integer"},
        type={"type": "string"},
        message={"type": "string"},
        elements={
            "type": "array",
            "items": obj(
                ["id", "validationErrors"],
                id={"type": "string"},
                validationErrors={
                    "type": "array",
                    "items": obj(
                        ["code", "message"], code={"type": "string"}, message={"type": "string"}
                    ),
                },
            ),
        },
    ),
    "EventFeed": obj(
        ["items", "lastEventSequence"],
        items={"type": "array", "items": ref("Event")},
        lastEventSequence={"type": "integer", "minimum": 0},
    ),
    "WebhookList": obj(["items"], items={"type": "array", "items": ref("Webhook")}),
    "BatchResult": obj(
        ["items"],
        items={
            "type": "array",
            "items": obj(
                ["status"],
                status={"type": "integer", "minimum": 200, "maximum": 499},
                item={"type": "object"},
                error=ref("Error"),
            ),
        },
    ),
}


def page_of(name: str) -> Schema:
    pagination = obj(
        ["page", "pageSize", "pageCount", "itemCount"],
        page={"type": "integer"},
        pageSize={"type": "integer"},
        pageCount={"type": "integer"},
        itemCount={"type": "integer"},
    )
    return obj(
        ["pagination", "items"], pagination=pagination, items={"type": "array", "items": ref(name)}
    )
