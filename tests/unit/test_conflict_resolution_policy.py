"""Which side of a field conflict may be kept: the ownership table decides, as for a change made
on the chosen side (``shared.domain.resolution``)."""

from __future__ import annotations

import uuid

import pytest

from shared.domain.ownership import OwnershipPolicy
from shared.domain.resolution import OpenConflict, refusal, values_by_side

POLICY = OwnershipPolicy()


def conflict(
    entity: str,
    field: str,
    qbo: object,
    released: object,
    *,
    kind: str = "field_conflict",
    link_id: int | None = 1,
) -> OpenConflict:
    return OpenConflict(
        id=1,
        connection_id=uuid.uuid4(),
        link_id=link_id,
        entity=entity,
        field=field,
        base=None,
        values=values_by_side({"source": qbo, "target": released}, "qbo"),
        kind=kind,
    )


@pytest.mark.parametrize("side", ["qbo", "released"])
def test_a_contacts_field_may_be_kept_from_either_side(side: str) -> None:
    assert refusal(POLICY, conflict("contact", "email", "a@x", "b@x"), side) is None


def test_archiving_is_quickbooks_alone() -> None:
    clash = conflict("contact", "active", True, False)
    assert refusal(POLICY, clash, "qbo") is None
    why = refusal(POLICY, clash, "released")
    assert why is not None
    assert "archive only in QBO" in why


@pytest.mark.parametrize("side", ["qbo", "released"])
def test_a_documents_date_may_be_kept_from_either_side(side: str) -> None:
    assert (
        refusal(POLICY, conflict("invoice", "due_date", "2026-12-01", "2027-01-15"), side) is None
    )


def test_a_documents_tax_total_is_corrected_in_the_document() -> None:
    assert refusal(POLICY, conflict("invoice", "lines", [], []), "released") is None
    why = refusal(POLICY, conflict("invoice", "total_tax", "1.00", "2.00"), "qbo")
    assert why is not None
    assert "not written back" in why


def test_master_data_and_flags_and_unlinked_records_are_refused() -> None:
    why = refusal(POLICY, conflict("account", "name", "A", "B"), "released")
    assert why is not None
    assert "cannot be written back" in why
    flag = refusal(POLICY, conflict("contact", "email", "a", "b", kind="policy_flag"), "qbo")
    assert flag is not None
    assert "acknowledge" in flag
    unlinked = refusal(POLICY, conflict("contact", "email", "a", "b", link_id=None), "qbo")
    assert unlinked is not None
    assert "relink" in unlinked
    assert refusal(POLICY, conflict("contact", "email", "a", "b"), "xero") is not None
