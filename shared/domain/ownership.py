"""Who manages what: the ownership table, as data (the rules in words: README, docs/documents.md).

Every change that reaches the engine is described by (canonical entity, semantic operation,
origin side). The policy looks that triple up in one table and answers with an outcome; nothing
else in the code decides ownership. A triple the table does not list is ignored, with its reason
logged, so a gap shows up in the logs instead of as a write.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Side = Literal["qbo", "released"]


class Outcome(StrEnum):
    APPLY = "apply"  # propagate to the other side
    IGNORE = "ignore"  # log why, no write
    REVERT = "revert"  # write the owner's current state back over the change
    REVERT_AND_FLAG = "revert_and_flag"  # revert, and record a conflict for a person
    FLAG = "flag"  # record a conflict for a person, no write


class Op(StrEnum):
    UPSERT = "upsert"  # create or update
    ARCHIVE = "archive"  # QBO Active=false, Re-Leased ARCHIVED, master data deactivated
    UNARCHIVE = "unarchive"
    MERGE = "merge"
    VOID = "void"
    DELETE = "delete"
    BACK_TO_DRAFT = "back_to_draft"


MASTER_DATA = ("tax_rate", "account", "tracking_class")
DOCUMENTS = ("invoice", "bill", "credit_note", "vendor_credit")
PAYMENTS = ("payment", "bill_payment")
NOT_SYNCED = "not_synced"


@dataclass(frozen=True)
class Rule:
    entity: str
    operation: Op
    origin: Side
    outcome: Outcome
    why: str


def _rows() -> list[Rule]:
    rows: list[Rule] = []
    for entity in MASTER_DATA:
        for op in (Op.UPSERT, Op.ARCHIVE, Op.UNARCHIVE):
            rows.append(Rule(entity, op, "qbo", Outcome.APPLY, "QBO manages master data"))
            rows.append(Rule(entity, op, "released", Outcome.REVERT, "QBO is the only manager"))
    rows += [
        Rule("contact", Op.UPSERT, "qbo", Outcome.APPLY, "contacts flow both ways"),
        Rule("contact", Op.UPSERT, "released", Outcome.APPLY, "contacts flow both ways"),
        Rule("contact", Op.ARCHIVE, "qbo", Outcome.APPLY, "archiving happens in QBO"),
        Rule("contact", Op.UNARCHIVE, "qbo", Outcome.APPLY, "archiving happens in QBO"),
        Rule("contact", Op.ARCHIVE, "released", Outcome.REVERT_AND_FLAG, "archive only in QBO"),
        Rule("contact", Op.UNARCHIVE, "released", Outcome.REVERT_AND_FLAG, "archive only in QBO"),
        Rule("contact", Op.MERGE, "qbo", Outcome.APPLY, "QBO merge archives the merged-away"),
    ]
    for entity in DOCUMENTS:
        rows += [
            Rule(entity, Op.UPSERT, "qbo", Outcome.APPLY, "documents flow both ways"),
            Rule(entity, Op.UPSERT, "released", Outcome.APPLY, "synced statuses only"),
            Rule(entity, Op.VOID, "qbo", Outcome.APPLY, "voids are mirrored"),
            Rule(entity, Op.VOID, "released", Outcome.APPLY, "voids are mirrored"),
            Rule(entity, Op.DELETE, "qbo", Outcome.APPLY, "a QBO delete voids in Re-Leased"),
            Rule(entity, Op.BACK_TO_DRAFT, "released", Outcome.FLAG, "a person decides"),
        ]
    for entity in PAYMENTS:
        rows += [
            Rule(entity, Op.UPSERT, "qbo", Outcome.APPLY, "reverse and re-record on change"),
            Rule(entity, Op.UPSERT, "released", Outcome.APPLY, "new payments flow both ways"),
            Rule(entity, Op.VOID, "qbo", Outcome.APPLY, "a QBO void reverses in Re-Leased"),
            Rule(entity, Op.DELETE, "qbo", Outcome.APPLY, "a QBO delete reverses"),
            Rule(entity, Op.VOID, "released", Outcome.FLAG, "reversing only in QBO"),
        ]
    rows += [
        Rule("attachment", Op.UPSERT, "qbo", Outcome.APPLY, "attachments flow both ways"),
        Rule("attachment", Op.UPSERT, "released", Outcome.APPLY, "attachments flow both ways"),
        Rule("attachment", Op.DELETE, "qbo", Outcome.APPLY, "removals flow both ways"),
        Rule("attachment", Op.DELETE, "released", Outcome.APPLY, "removals flow both ways"),
    ]
    return rows


OWNERSHIP_TABLE: tuple[Rule, ...] = tuple(_rows())


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    why: str


class OwnershipPolicy:
    def __init__(self, table: tuple[Rule, ...] = OWNERSHIP_TABLE) -> None:
        self._rules = {(r.entity, r.operation, r.origin): r for r in table}

    def decide(self, entity: str, operation: Op, origin: Side) -> Decision:
        if entity == NOT_SYNCED:
            return Decision(Outcome.IGNORE, "not_synced_type")
        rule = self._rules.get((entity, operation, origin))
        if rule is None:
            return Decision(
                Outcome.IGNORE, f"no ownership rule for {entity} {operation} " f"from {origin}"
            )
        return Decision(rule.outcome, rule.why)
