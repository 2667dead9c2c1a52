"""The ownership table, row by row, and what the policy answers for rows it does not list."""

from __future__ import annotations

import pytest

from shared.domain.ownership import (
    DOCUMENTS,
    MASTER_DATA,
    OWNERSHIP_TABLE,
    Op,
    Outcome,
    OwnershipPolicy,
)

policy = OwnershipPolicy()

# (entity, operation, origin) -> outcome, written out by hand from the rules in words (README,
# docs/documents.md), apart from the table in code.
EXPECTED = [
    *[(e, op, "qbo", Outcome.APPLY) for e in MASTER_DATA for op in (Op.UPSERT, Op.ARCHIVE)],
    *[(e, op, "released", Outcome.REVERT) for e in MASTER_DATA for op in (Op.UPSERT, Op.ARCHIVE)],
    ("contact", Op.UPSERT, "qbo", Outcome.APPLY),
    ("contact", Op.UPSERT, "released", Outcome.APPLY),
    ("contact", Op.ARCHIVE, "qbo", Outcome.APPLY),
    ("contact", Op.UNARCHIVE, "qbo", Outcome.APPLY),
    ("contact", Op.ARCHIVE, "released", Outcome.REVERT_AND_FLAG),
    ("contact", Op.UNARCHIVE, "released", Outcome.REVERT_AND_FLAG),
    ("contact", Op.MERGE, "qbo", Outcome.APPLY),
    *[(e, Op.UPSERT, side, Outcome.APPLY) for e in DOCUMENTS for side in ("qbo", "released")],
    *[(e, Op.VOID, side, Outcome.APPLY) for e in DOCUMENTS for side in ("qbo", "released")],
    *[(e, Op.DELETE, "qbo", Outcome.APPLY) for e in DOCUMENTS],
    *[(e, Op.BACK_TO_DRAFT, "released", Outcome.FLAG) for e in DOCUMENTS],
    ("payment", Op.UPSERT, "qbo", Outcome.APPLY),
    ("payment", Op.VOID, "qbo", Outcome.APPLY),
    ("payment", Op.VOID, "released", Outcome.FLAG),
    ("bill_payment", Op.VOID, "released", Outcome.FLAG),
    ("attachment", Op.UPSERT, "released", Outcome.APPLY),
    ("attachment", Op.DELETE, "qbo", Outcome.APPLY),
]


@pytest.mark.parametrize(("entity", "op", "origin", "outcome"), EXPECTED)
def test_row(entity: str, op: Op, origin: str, outcome: Outcome) -> None:
    assert policy.decide(entity, op, origin).outcome is outcome  # type: ignore[arg-type]


def test_not_synced_types_are_ignored_with_the_reason() -> None:
    decision = policy.decide("not_synced", Op.UPSERT, "qbo")
    assert (decision.outcome, decision.why) == (Outcome.IGNORE, "not_synced_type")


def test_rows_not_in_the_table_are_ignored_never_applied() -> None:
    assert policy.decide("contact", Op.MERGE, "released").outcome is Outcome.IGNORE
    assert policy.decide("invoice", Op.DELETE, "released").outcome is Outcome.IGNORE


def test_the_table_has_no_contradicting_rows() -> None:
    keys = [(r.entity, r.operation, r.origin) for r in OWNERSHIP_TABLE]
    assert len(keys) == len(set(keys))
