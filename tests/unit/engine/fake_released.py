"""An in-memory Re-Leased company with the rules the engine relies on (a fake of
``ReleasedApi``).

Versions (``If-Match`` at an old one is ``StaleVersion``), ``Idempotency-Key`` replays,
document numbers, totals, statuses (approve, void, PAID when the money covers it and back to
APPROVED when it no longer does; PAID and VOIDED documents refuse edits; money on a document
refuses its void), payments and credit allocations with their refusals, archived
records, the accounting side (master data, archive/merge, reversals) and attachments. ``writes``
lists every write that changed something (method, path); ``before_write`` hooks let a test act
between the engine's read and its write.

One module because it is one fake of one API: its rules (versions, statuses, money applied) act on
the same records and are easier to check against the real contract read together.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import IO, Any

from shared.domain.errors import NotFound, Refused, StaleVersion

Obj = dict[str, Any]
CENT = Decimal("0.01")
COLLECTIONS = (
    "/contacts",
    "/invoices",
    "/credit-notes",
    "/payments",
    "/accounts",
    "/tax-rates",
    "/tracking-categories",
)
LOCKED = ("PAID", "VOIDED")


def _has_money(doc: Obj) -> bool:
    """Money on a document (payments, credit used, a note's allocations): it cannot be voided."""
    applied = [doc.get("amountPaid"), doc.get("amountCredited")]
    applied += [a["amount"] for a in doc.get("allocations") or [] if not a.get("isDeleted")]
    return any(Decimal(str(amount or "0")) > 0 for amount in applied)


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


class FakeReleased:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Obj]] = defaultdict(dict)
        self.writes: list[tuple[str, str]] = []
        self.budget_free = True  # ``spare``: the company's budget has room now
        self.before_write: list[Callable[[str, str, Any], None]] = []
        self.files: dict[str, bytes] = {}
        self._ids = itertools.count(1)
        self._answers: dict[str, Any] = {}

    # -- test set-up ---------------------------------------------------------------------------

    def seed(self, collection: str, **fields: Any) -> Obj:
        record = self._create(collection, dict(fields))
        return copy.deepcopy(record)

    def edit(self, collection: str, record_id: str, **fields: Any) -> Obj:
        """Someone edits the record in Re-Leased (a new version)."""
        record = self.records[collection][record_id]
        record.update(fields)
        self._settle(collection, record)
        record["version"] += 1
        return copy.deepcopy(record)

    def once_before_write(self, method: str, path: str, act: Callable[[], object]) -> None:
        """Run ``act`` just before the next ``method`` to ``path`` (someone else's edit, or a
        failure raised from it)."""
        pending = [True]

        def hook(seen_method: str, seen_path: str, body: Any) -> None:
            if pending[0] and (seen_method, seen_path) == (method, path):
                pending[0] = False
                act()

        self.before_write.append(hook)

    # -- ReleasedApi ---------------------------------------------------------------------------

    async def get(self, path: str) -> Obj:
        return copy.deepcopy(self._find(path))

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        if_match: int | str | None = None,
    ) -> Any:
        if method == "GET":
            return await self.get(path)
        if idempotency_key is not None and idempotency_key in self._answers:
            answer = self._answers[idempotency_key]
            if isinstance(answer, Exception):
                raise answer
            return copy.deepcopy(answer)
        for hook in list(self.before_write):
            hook(method, path, body)
        try:
            written = self._write(method, path, copy.deepcopy(body), if_match)
        except (Refused, StaleVersion, NotFound) as exc:
            if idempotency_key is not None:
                self._answers[idempotency_key] = exc
            raise
        if idempotency_key is not None:
            self._answers[idempotency_key] = copy.deepcopy(written)
        return copy.deepcopy(written)

    async def spare(self, requests: int) -> bool:
        return self.budget_free

    async def list_all(self, path: str, **filters: str) -> list[Obj]:
        records = list(self.records[path].values())
        if filters.get("includeArchived") != "true":
            records = [r for r in records if r.get("status") != "ARCHIVED"]
        if "numbers" in filters:
            records = [r for r in records if r.get("number") in filters["numbers"].split(",")]
        if "status" in filters:
            records = [r for r in records if r.get("status") in filters["status"].split(",")]
        return copy.deepcopy(records)

    async def accounting(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotency_key: str,
        if_match: int | str | None = None,
    ) -> Obj:
        """The accounting side: master data and what users may not do, through the same API
        (an idempotency key always, If-Match when the caller read a version)."""
        if idempotency_key in self._answers:
            answer = self._answers[idempotency_key]
            if isinstance(answer, Exception):
                raise answer
            replayed: Obj = copy.deepcopy(answer)
            return replayed
        for hook in list(self.before_write):
            hook(method, path, body)
        try:
            written: Obj = self._write(method, path, copy.deepcopy(body), if_match, accounting=True)
        except (Refused, StaleVersion, NotFound) as exc:
            self._answers[idempotency_key] = exc
            raise
        self._answers[idempotency_key] = copy.deepcopy(written)
        return copy.deepcopy(written)

    async def upload_attachment(
        self,
        path: str,
        content: IO[bytes],
        *,
        file_name: str,
        content_type: str,
        idempotency_key: str,
    ) -> Obj:
        if idempotency_key in self._answers:
            found: Obj = copy.deepcopy(self._answers[idempotency_key])
            return found
        content.seek(0)
        data = content.read()
        attachment = {
            "id": f"att-{next(self._ids)}",
            "fileName": file_name,
            "mimeType": content_type,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        self.records[path][attachment["id"]] = attachment
        self.files[attachment["id"]] = data
        self.writes.append(("POST", path))
        self._answers[idempotency_key] = copy.deepcopy(attachment)
        return copy.deepcopy(attachment)

    async def stream(self, path: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        data = self.files[path.removesuffix("/content").rsplit("/", 1)[1]]
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    # -- the rules -----------------------------------------------------------------------------

    def _find(self, path: str) -> Obj:
        collection, _, record_id = path.rpartition("/")
        found = self.records[collection].get(record_id)
        if found is None:
            raise NotFound(f"Re-Leased: not found: {path}")
        return found

    def _write(
        self,
        method: str,
        path: str,
        body: Any,
        if_match: int | str | None,
        *,
        accounting: bool = False,
    ) -> Obj:
        if method == "POST" and path in COLLECTIONS:
            made = self._create(path, body)
        elif method == "POST" and path.endswith("/allocations"):
            made = self._allocate(path.removesuffix("/allocations"), body)
        elif method == "POST":
            self._check_version(path.rpartition("/")[0], if_match)
            made = self._action(path, body, accounting=accounting)
        elif method == "PATCH":
            made = self._patch(path, body, if_match)
        elif method == "DELETE":
            made = self._delete(path)
        else:
            raise NotImplementedError(f"{method} {path}")
        self.writes.append((method, path))
        return made

    def _create(self, collection: str, body: Obj) -> Obj:
        record = {"id": str(body.get("id") or f"rl-{next(self._ids)}"), **body, "version": 1}
        record.setdefault(
            "status", "DRAFT" if collection in ("/invoices", "/credit-notes") else "ACTIVE"
        )
        if collection in ("/invoices", "/credit-notes"):
            prefix = "INV" if collection == "/invoices" else "CN"
            record.setdefault("number", f"{prefix}-{len(self.records[collection]) + 1:06d}")
            record.setdefault("amountPaid", "0.00")
            if collection == "/credit-notes":
                record.setdefault("allocations", [])
        if collection == "/tracking-categories":
            for option in record.get("options", []):
                option.setdefault("id", f"opt-{next(self._ids)}")
        if collection == "/payments":
            self._pay(record)
        self.records[collection][record["id"]] = record
        self._settle(collection, record)
        return record

    def _check_version(self, path: str, if_match: int | str | None) -> None:
        if if_match is not None and str(if_match) != str(self._find(path)["version"]):
            raise StaleVersion(f"Re-Leased version conflict on {path}")

    def _patch(self, path: str, body: Obj, if_match: int | str | None) -> Obj:
        record = self._find(path)
        self._check_version(path, if_match)
        collection = path.rpartition("/")[0]
        if collection in ("/invoices", "/credit-notes") and record.get("status") in LOCKED:
            raise Refused(
                f"a {record['status']} document cannot be edited", codes=("DOCUMENT_NOT_EDITABLE",)
            )
        if collection == "/tracking-categories":
            for option in body.get("options", []):
                option.setdefault("id", f"opt-{next(self._ids)}")
        record.update(body)
        self._settle(collection, record)
        record["version"] += 1
        return record

    def _action(self, path: str, body: Any, *, accounting: bool) -> Obj:
        target, _, verb = path.rpartition("/")
        record = self._find(target)
        if verb == "approve":
            record["status"] = "APPROVED"
        elif verb == "void":
            if _has_money(record):
                raise Refused(
                    "remove payments and allocations first", codes=("REMOVE_PAYMENTS_FIRST",)
                )
            record["status"] = "VOIDED"
        elif verb in ("archive", "unarchive"):
            record["status"] = "ARCHIVED" if verb == "archive" else "ACTIVE"
        elif verb == "merge":
            record.update(status="ARCHIVED", mergedToContactId=body["intoContactId"])
        elif verb == "reverse":
            record.update(status="REVERSED", reversalSource="ACCOUNTING" if accounting else "USER")
            self._pay(record, sign=Decimal(-1))
        else:
            raise NotImplementedError(path)
        record["version"] += 1
        return record

    def _delete(self, path: str) -> Obj:
        collection, _, record_id = path.rpartition("/")
        if collection.endswith("/allocations"):
            note = self._find(collection.removesuffix("/allocations"))
            for allocation in note["allocations"]:
                if allocation["id"] == record_id:
                    allocation["isDeleted"] = True
                    self._credit(allocation, Decimal(-1))
            self._settle("/credit-notes", note)
            note["version"] += 1
            return note
        self._find(path)
        del self.records[collection][record_id]
        return {"id": record_id}

    def _pay(self, payment: Obj, sign: Decimal = Decimal(1)) -> None:
        collection = (
            "/credit-notes" if payment.get("documentType") == "CREDIT_NOTE" else "/invoices"
        )
        doc = self._find(f"{collection}/{payment['documentId']}")
        amount = Decimal(str(payment["amount"]))
        due = Decimal(str(doc.get("amountDue", doc.get("total", "0"))))
        if sign > 0 and amount > due:
            raise Refused("the payment is more than the amount due", codes=("OVERPAYMENT",))
        doc["amountPaid"] = _money(Decimal(doc.get("amountPaid", "0")) + sign * amount)
        self._settle(collection, doc)
        doc["version"] += 1

    def _allocate(self, note_path: str, body: Obj) -> Obj:
        note = self._find(note_path)
        allocation = {"id": f"al-{next(self._ids)}", **body, "isDeleted": False}
        if Decimal(str(body["amount"])) > Decimal(note.get("amountDue", "0")):
            raise Refused("more than the credit left", codes=("OVER_ALLOCATION",))
        note["allocations"].append(allocation)
        self._credit(allocation, Decimal(1))
        self._settle("/credit-notes", note)
        note["version"] += 1
        return note

    def _credit(self, allocation: Obj, sign: Decimal) -> None:
        invoice = self._find(f"/invoices/{allocation['invoiceId']}")
        amount = sign * Decimal(str(allocation["amount"]))
        invoice["amountCredited"] = _money(Decimal(invoice.get("amountCredited", "0")) + amount)
        self._settle("/invoices", invoice)

    def _settle(self, collection: str, doc: Obj) -> None:
        """Line amounts, tax, totals and what is still due, as Re-Leased computes them."""
        if collection not in ("/invoices", "/credit-notes"):
            return
        total = tax = Decimal(0)
        for line in doc.get("lines") or []:
            amount = Decimal(str(line.get("quantity", 1))) * Decimal(str(line["unitAmount"]))
            line["lineAmount"] = _money(amount)
            line.setdefault("taxAmount", "0.00")
            total += Decimal(line["lineAmount"])
            tax += Decimal(str(line.get("taxAmount") or 0))
        applied = Decimal(doc.get("amountPaid", "0")) + Decimal(doc.get("amountCredited", "0"))
        applied += sum(
            (
                Decimal(str(a["amount"]))
                for a in doc.get("allocations") or []
                if not a.get("isDeleted")
            ),
            Decimal(0),
        )
        if doc.get("lineAmountType") == "INCLUSIVE":
            total -= tax  # line amounts include their tax
        doc.update(total=_money(total + tax), totalTax=_money(tax))
        doc["amountDue"] = _money(total + tax - applied)
        if doc.get("status") == "APPROVED" and total + tax > 0 and total + tax == applied:
            doc["status"] = "PAID"
        elif doc.get("status") == "PAID" and total + tax > applied:
            doc["status"] = "APPROVED"
