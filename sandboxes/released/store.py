"""In-memory state of the sandbox: companies, their records, their event log.

Records are stored as JSON-ready dicts in contract shape, because the sandbox's job is to serve the
contract; the rules that change them live in the modules named after the resources.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sandboxes.released.clock import SandboxClock, format_ts
from sandboxes.released.faults import Faults

Record = dict[str, Any]


def new_id() -> str:
    return str(uuid.uuid4())


class TokenEntry(NamedTuple):
    company_id: str | None  # the company a control-API token is scoped to; None: any
    issued_at: datetime
    client_id: str | None  # the API client it was issued to; None: minted to act as a user


@dataclass
class Subscription:
    id: str
    company_id: str
    url: str
    key: str
    created_at: datetime
    status: str = "PENDING_VALIDATION"
    pending: deque[Record] = field(default_factory=deque)
    batch: list[Record] | None = None
    attempt: int = 0
    next_attempt_at: datetime | None = None
    failing_since: datetime | None = None
    in_flight: bool = False

    def public(self) -> Record:
        return {
            "id": self.id,
            "url": self.url,
            "status": self.status,
            "createdAt": format_ts(self.created_at),
            "failingSince": format_ts(self.failing_since) if self.failing_since else None,
        }


@dataclass
class CompanyState:
    company: Record
    contacts: dict[str, Record] = field(default_factory=dict)
    invoices: dict[str, Record] = field(default_factory=dict)
    credit_notes: dict[str, Record] = field(default_factory=dict)
    payments: dict[str, Record] = field(default_factory=dict)
    attachments: dict[str, Record] = field(default_factory=dict)
    attachment_bytes: dict[str, bytes] = field(default_factory=dict)
    accounts: dict[str, Record] = field(default_factory=dict)
    tax_rates: dict[str, Record] = field(default_factory=dict)
    tracking_categories: dict[str, Record] = field(default_factory=dict)
    properties: dict[str, Record] = field(default_factory=dict)
    tenancies: dict[str, Record] = field(default_factory=dict)
    events: list[Record] = field(default_factory=list)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    deliveries: list[Record] = field(default_factory=list)
    requests: list[Record] = field(default_factory=list)
    # Reads (GET) kept apart, so a test can count listings without changing what ``requests``
    # holds (the writes); the control API shows them with ``includeReads=true``.
    reads: list[Record] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    tokens_valid_after: datetime | None = None
    request_total: int = 0
    # Authenticated calls answered 429 (reads too, which ``requests`` does not list).
    rate_limited: int = 0
    # The API client that made the accounting connection: the company's accounting side.
    accounting_client: str | None = None

    @property
    def id(self) -> str:
        return str(self.company["id"])

    @property
    def connected(self) -> bool:
        connection = self.company.get("accountingConnection")
        return connection is not None and connection.get("provider") == "QBO"

    @property
    def revoked(self) -> bool:
        connection = self.company.get("accountingConnection")
        return connection is not None and connection.get("status") == "REVOKED"


EventListener = Callable[[CompanyState, Record], None]


class Store:
    def __init__(self, clock: SandboxClock, api_base: str) -> None:
        self.clock = clock
        self.api_base = api_base
        self.companies: dict[str, CompanyState] = {}
        self.tokens: dict[str, TokenEntry] = {}
        # API clients registered through the control API (besides the configured one): id -> secret.
        self.clients: dict[str, str] = {}
        self.listeners: list[EventListener] = []

    def now(self) -> str:
        return format_ts(self.clock.now())

    def reset(self) -> None:
        self.companies.clear()
        self.tokens.clear()
        self.clients.clear()

    def stamp_new(self, record: Record) -> Record:
        now = self.now()
        record.setdefault("id", new_id())
        record["version"] = 1
        record["createdAt"] = now
        record["updatedAt"] = now
        return record

    def touch(self, record: Record) -> None:
        record["version"] = int(record["version"]) + 1
        record["updatedAt"] = self.now()

    def emit(
        self,
        state: CompanyState,
        name: str,
        record: Record,
        resource_path: str,
        data: Record | None = None,
    ) -> Record:
        """Append one thin event to the company's feed and hand it to the webhook dispatcher."""
        category, _, action = name.partition(".")
        event: Record = {
            "eventId": new_id(),
            "sequence": len(state.events) + 1,
            "eventCategory": _CATEGORIES.get(category, category.upper()),
            "eventType": _event_type(action),
            "eventName": name,
            "resourceId": record["id"],
            "resourceUrl": f"{self.api_base}/{resource_path}",
            "companyId": state.id,
            "resourceVersion": int(record.get("version", 1)),
            "eventDateUtc": self.now(),
            "data": data or {},
        }
        state.events.append(event)
        for listener in self.listeners:
            listener(state, event)
        return event


_CATEGORIES = {"creditnote": "CREDITNOTE", "taxrate": "TAXRATE", "tracking": "TRACKING"}


def _event_type(action: str) -> str:
    if action in ("created", "added"):
        return "CREATE"
    if action in ("removed", "deleted"):
        return "DELETE"
    return "UPDATE"
