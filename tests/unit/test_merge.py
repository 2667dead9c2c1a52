"""Three-way merge: one-sided changes always survive; two-sided ones go to the winner."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.domain.merge import three_way_merge

FIELDS = ("name", "email", "phone")
values = st.sampled_from(["a", "b", "c", None])
records = st.fixed_dictionaries({f: values for f in FIELDS})


def test_one_sided_changes_merge_without_conflict() -> None:
    base = {"name": "A", "email": "x", "phone": "1"}
    source = {**base, "email": "y"}
    target = {**base, "phone": "2"}
    result = three_way_merge(base, source, target, "target")
    assert result.merged == {"name": "A", "email": "y", "phone": "2"}
    assert result.conflicts == []
    assert result.target_changes == {"email": "y"}
    assert result.source_changes == {"phone": "2"}


def test_two_sided_change_goes_to_the_winner_and_is_reported() -> None:
    base = {"email": "x"}
    result = three_way_merge(base, {"email": "s"}, {"email": "t"}, "source")
    assert result.merged == {"email": "s"}
    (conflict,) = result.conflicts
    assert (conflict.field, conflict.base, conflict.source, conflict.target) == (
        "email",
        "x",
        "s",
        "t",
    )


@given(records, records, records, st.sampled_from(["source", "target"]))
def test_merge_properties(base: dict, source: dict, target: dict, winner: str) -> None:  # type: ignore[type-arg]
    result = three_way_merge(base, source, target, winner)  # type: ignore[arg-type]
    for field in FIELDS:
        s_changed, t_changed = source[field] != base[field], target[field] != base[field]
        if s_changed and not t_changed:
            assert result.merged[field] == source[field]
        elif t_changed and not s_changed:
            assert result.merged[field] == target[field]
        elif s_changed and t_changed and source[field] != target[field]:
            expected = source[field] if winner == "source" else target[field]
            assert result.merged[field] == expected
            assert field in {c.field for c in result.conflicts}
    # Writing the changes to each side makes both equal to the merge.
    assert {**target, **result.target_changes} == result.merged
    assert {**source, **result.source_changes} == result.merged


def test_first_sync_without_a_base_takes_the_source() -> None:
    result = three_way_merge(None, {"email": "s"}, {"email": "t"}, "target")
    assert result.merged == {"email": "s"}
    assert result.conflicts == []
