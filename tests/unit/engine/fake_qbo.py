"""An in-memory QBO realm with the rules the engine relies on (a fake of ``QboApi``).

Kept deliberately small: SyncTokens (a write at an old one is ``StaleVersion``), ``requestid``
idempotency (the same id answers what it answered first, failures included), DisplayName unique
across Customer and Vendor (``DuplicateName``), name lists that go inactive instead of away,
document totals and balances, voids and deletes, the ``where`` clauses the engine writes, and
files behind Attachables. ``writes`` lists every write that changed something (not replays);
``before_write`` hooks let a test act between the engine's read and its write.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import IO, Any

from shared.domain.errors import DuplicateName, NotFound, StaleVersion

Obj = dict[str, Any]
NAME_LISTS = frozenset({"Customer", "Vendor", "Account", "Item", "Class", "TaxCode", "TaxRate"})
DOCUMENTS = frozenset({"Invoice", "Bill", "CreditMemo", "VendorCredit"})
PAYS = {"Payment": "Invoice", "BillPayment": "Bill"}
_CONDITION = re.compile(r"^\s*([\w.]+)\s*=\s*'((?:[^'\\]|\\.)*)'\s*$")


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


class FakeQbo:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Obj]] = defaultdict(dict)
        self.writes: list[tuple[str, str, str]] = []  # (entity, operation, id)
        self.before_write: list[Callable[[str, Obj], None]] = []
        self.files: dict[str, bytes] = {}
        self._ids = itertools.count(101)
        self._numbers = itertools.count(1001)
        self._answers: dict[str, Obj | Exception] = {}

    # -- test set-up ---------------------------------------------------------------------------

    def seed(self, entity: str, **fields: Any) -> Obj:
        """An object that exists before the test (no write is counted)."""
        obj = self._new(entity, dict(fields))
        return copy.deepcopy(obj)

    def edit(self, entity: str, obj_id: str, **fields: Any) -> Obj:
        """Someone edits the object in QBO (a new SyncToken)."""
        obj = self.objects[entity][obj_id]
        obj.update(fields)
        self._settle(entity, obj)
        obj["SyncToken"] = str(int(obj["SyncToken"]) + 1)
        return copy.deepcopy(obj)

    def written(self, entity: str | None = None) -> list[tuple[str, str, str]]:
        return [w for w in self.writes if entity is None or w[0] == entity]

    # -- QboApi --------------------------------------------------------------------------------

    async def get(self, entity: str, entity_id: str) -> Obj:
        found = self.objects[entity].get(entity_id)
        if found is None:
            raise NotFound(f"QBO object not found: {entity} {entity_id}")
        answer = copy.deepcopy(found)
        if entity == "Attachable" and entity_id in self.files:
            answer["TempDownloadUri"] = f"fake://qbo/files/{entity_id}"
        return answer

    async def query_all(self, entity: str, where: str = "") -> list[Obj]:
        conditions = [c for c in re.split(r"\s+and\s+", where, flags=re.I) if c.strip()]
        any_active = any(c.replace(" ", "").lower() == "activein(true,false)" for c in conditions)
        rows = []
        for obj in self.objects[entity].values():
            if entity in NAME_LISTS and not any_active and not obj.get("Active", True):
                continue
            if all(self._matches(obj, c) for c in conditions):
                rows.append(copy.deepcopy(obj))
        return rows

    async def write(
        self, entity: str, body: Obj, *, request_id: str, operation: str | None = None
    ) -> Obj:
        if request_id in self._answers:
            answer = self._answers[request_id]
            if isinstance(answer, Exception):
                raise answer
            return copy.deepcopy(answer)
        for hook in list(self.before_write):
            hook(entity, body)
        try:
            written = self._write(entity, copy.deepcopy(body), operation)
        except (StaleVersion, DuplicateName, NotFound) as exc:
            self._answers[request_id] = exc
            raise
        self._answers[request_id] = copy.deepcopy(written)
        return copy.deepcopy(written)

    async def upload(
        self,
        metadata: Obj,
        content: IO[bytes],
        *,
        file_name: str,
        content_type: str,
        request_id: str,
    ) -> Obj:
        if request_id in self._answers:
            return copy.deepcopy(self._answers[request_id])  # type: ignore[arg-type]
        content.seek(0)
        made = self._new("Attachable", {**metadata, "FileName": file_name})
        self.files[made["Id"]] = content.read()
        self.writes.append(("Attachable", "create", made["Id"]))
        self._answers[request_id] = copy.deepcopy(made)
        return copy.deepcopy(made)

    async def stream_file(self, url: str, chunk_size: int = 65536) -> AsyncIterator[bytes]:
        data = self.files[url.rsplit("/", 1)[1]]
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    # -- the rules -----------------------------------------------------------------------------

    def _write(self, entity: str, body: Obj, operation: str | None) -> Obj:
        if not body.get("Id"):
            made = self._new(entity, body)
            self.writes.append((entity, "create", made["Id"]))
            return made
        current = self.objects[entity].get(str(body["Id"]))
        if current is None:
            raise NotFound(f"QBO object not found: {entity} {body['Id']}")
        if str(body.get("SyncToken")) != current["SyncToken"]:
            raise StaleVersion(f"QBO stale SyncToken on {entity} {body['Id']}")
        if operation == "delete":
            self._unapply(entity, current)
            del self.objects[entity][current["Id"]]
            self.writes.append((entity, "delete", current["Id"]))
            return {"Id": current["Id"], "status": "Deleted"}
        if operation == "void":
            self._unapply(entity, current)
            for line in current.get("Line") or []:
                line["Amount"] = "0.00"
            current.update(PrivateNote="Voided", TotalAmt="0.00")
            if entity in DOCUMENTS:
                current["TxnTaxDetail"] = {"TotalTax": "0.00"}
        else:
            self._check_name(entity, body, current["Id"])
            if body.pop("sparse", False):
                current.update({k: v for k, v in body.items() if k not in ("Id", "SyncToken")})
            else:
                kept = {"Id": current["Id"], "SyncToken": current["SyncToken"]}
                current.clear()
                current.update({**body, **kept})
        self._settle(entity, current)
        current["SyncToken"] = str(int(current["SyncToken"]) + 1)
        self.writes.append((entity, operation or "update", current["Id"]))
        return current

    def _new(self, entity: str, body: Obj) -> Obj:
        self._check_name(entity, body, None)
        obj = {**body, "Id": str(body.get("Id") or next(self._ids)), "SyncToken": "0"}
        if entity in NAME_LISTS:
            obj.setdefault("Active", True)
        if entity in ("Invoice", "CreditMemo") and not obj.get("DocNumber"):
            obj["DocNumber"] = str(next(self._numbers))
        self.objects[entity][obj["Id"]] = obj
        self._settle(entity, obj)
        if entity in PAYS:
            self._apply(entity, obj, Decimal(1))
        return obj

    def _check_name(self, entity: str, body: Obj, own_id: str | None) -> None:
        if entity not in ("Customer", "Vendor") or "DisplayName" not in body:
            return
        wanted = str(body["DisplayName"]).strip().casefold()
        for other in ("Customer", "Vendor"):
            for obj in self.objects[other].values():
                same = obj["Id"] == own_id and other == entity
                if not same and str(obj.get("DisplayName", "")).strip().casefold() == wanted:
                    raise DuplicateName(f"QBO duplicate name: {body['DisplayName']}")

    def _settle(self, entity: str, obj: Obj) -> None:
        """Totals and balances, as QBO computes them on every write."""
        if entity not in DOCUMENTS:
            return
        lines = [ln for ln in obj.get("Line") or [] if ln.get("DetailType") != "SubTotalLineDetail"]
        tax = Decimal(str((obj.get("TxnTaxDetail") or {}).get("TotalTax") or 0))
        total = sum((Decimal(str(ln.get("Amount", 0))) for ln in lines), Decimal(0)) + tax
        obj["TotalAmt"] = str(total)
        applied = Decimal(str(obj.get("_applied", "0")))
        key = "RemainingCredit" if entity in ("CreditMemo", "VendorCredit") else "Balance"
        obj[key] = str(total - applied)

    def _apply(self, entity: str, payment: Obj, sign: Decimal) -> None:
        for line in payment.get("Line") or []:
            for linked in line.get("LinkedTxn") or []:
                doc = self.objects[str(linked.get("TxnType"))].get(str(linked.get("TxnId")))
                if doc is not None:
                    applied = Decimal(str(doc.get("_applied", "0")))
                    doc["_applied"] = str(applied + sign * Decimal(str(line.get("Amount", 0))))
                    self._settle(str(linked.get("TxnType")), doc)

    def _unapply(self, entity: str, current: Obj) -> None:
        if entity in PAYS:
            self._apply(entity, current, Decimal(-1))

    @staticmethod
    def _matches(obj: Obj, condition: str) -> bool:
        if condition.replace(" ", "").lower() == "activein(true,false)":
            return True
        match = _CONDITION.match(condition)
        if match is None:
            raise NotImplementedError(f"the fake QBO does not know this condition: {condition}")
        value: Any = obj
        for part in match[1].split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return str(value) == _unquote(match[2])
