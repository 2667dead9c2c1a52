"""The change event: routing keys and derived ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.domain.events import ChangeEvent, derive_event_id


def event(**changes: object) -> ChangeEvent:
    data: dict[str, object] = {
        "event_id": "e1",
        "source": "released",
        "account_id": "co-1",
        "entity": "Invoice",
        "entity_id": "inv-1",
        "operation": "Update",
        "occurred_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    data.update(changes)
    return ChangeEvent.model_validate(data)


def test_routing_key_is_source_entity_operation() -> None:
    assert event().routing_key == "released.invoice.update"


def test_routing_words_cannot_smuggle_separators() -> None:
    with pytest.raises(ValidationError):
        event(entity="invoice.#")


def test_round_trip_through_bytes() -> None:
    original = event(attempt=3, origin="replay", replay_of="e0")
    assert ChangeEvent.from_bytes(original.to_bytes()) == original


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@given(words, words, words, words, words)
def test_derived_ids_are_stable_and_distinguish_fields(
    account: str, entity: str, entity_id: str, operation: str, when: str
) -> None:
    first = derive_event_id("qbo", account, entity, entity_id, operation, when)
    assert first == derive_event_id("qbo", account, entity, entity_id, operation, when)
    assert first != derive_event_id("released", account, entity, entity_id, operation, when)
    assert first != derive_event_id("qbo", account, entity, entity_id + "x", operation, when)


@given(words, words, words, words)
def test_checked_construction_equals_full_validation(
    account: str, entity: str, entity_id: str, operation: str
) -> None:
    fields = {
        "event_id": "e",
        "source": "qbo",
        "account_id": account,
        "entity": entity,
        "entity_id": entity_id,
        "operation": operation,
        "occurred_at": datetime(2026, 11, 1, tzinfo=UTC),
        "received_at": datetime(2026, 11, 1, tzinfo=UTC),
    }
    fast = ChangeEvent.checked(**fields)
    assert fast == ChangeEvent.model_validate(fields)
    assert ChangeEvent.from_bytes(fast.to_bytes()) == fast


@pytest.mark.parametrize("word", ["invoice.#", "a b", "*", ""])
def test_checked_construction_refuses_bad_routing_words(word: str) -> None:
    with pytest.raises(ValueError, match="routing key"):
        ChangeEvent.checked(
            event_id="e",
            source="qbo",
            account_id="r",
            entity=word,
            entity_id="1",
            operation="update",
            occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        )


def test_bulk_events_travel_their_own_routing_keys() -> None:
    live = ChangeEvent(
        event_id="e-1",
        source="qbo",
        account_id="9130",
        entity="Invoice",
        entity_id="1",
        operation="update",
        occurred_at=datetime.now(UTC),
    )
    bulk = live.model_copy(update={"lane": "bulk"})
    assert live.routing_key == "qbo.invoice.update"
    assert bulk.routing_key == "bulk.qbo.invoice.update"
    assert ChangeEvent.from_bytes(bulk.to_bytes()).routing_key == bulk.routing_key
