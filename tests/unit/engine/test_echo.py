"""Echo suppression (guarantee 5) and duplicates (guarantee 2): what the engine wrote comes back
as the other side's notification and is recognised, never bounced back; a repeated notification
changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from shared.domain.errors import RecordHeld, TransientError
from tests.unit.engine.setups import linked_customer, linked_invoice, released_approved_invoice
from tests.unit.engine.world import World


async def test_a_contact_written_to_released_is_not_sent_back_to_qbo() -> None:
    world = World()
    qbo_id, rl_id = await linked_customer(world)
    result = await world.from_released("contact", rl_id)
    assert result.outcome == "echo", result
    assert world.qbo.writes == [], "nothing written back to QBO"


async def test_a_repeated_qbo_notification_changes_nothing() -> None:
    world = World()
    qbo_id, _ = await linked_customer(world)
    written = list(world.released.writes)
    again = await world.from_qbo("customer", qbo_id)
    assert again.outcome == "echo", again
    assert world.released.writes == written


async def test_an_invoice_written_to_released_is_not_sent_back_to_qbo() -> None:
    world = World()
    qbo_id, rl_id = await linked_invoice(world)
    result = await world.from_released("invoice", rl_id)
    assert result.outcome == "echo", result
    assert world.qbo.writes == []


async def test_an_invoice_written_to_qbo_is_not_sent_back_to_released() -> None:
    world = World()
    rl_id = await released_approved_invoice(world)
    created = await world.from_released("invoice", rl_id)
    assert created.outcome == "applied", created
    assert len(world.qbo.written("Invoice")) == 1
    written = list(world.released.writes)
    echo = await world.from_qbo("invoice", str(created.target_id))
    assert echo.outcome == "echo", echo
    assert world.released.writes == written, "QBO's notification of our create writes nothing"


async def test_an_edit_that_changes_no_synced_field_is_an_echo() -> None:
    """A QBO edit of a field that does not sync (a private note) is absorbed: the snapshot hash
    matches, nothing is written, and the link takes QBO's new version."""
    world = World()
    qbo_id, _ = await linked_invoice(world)
    written = list(world.released.writes)
    edited = world.qbo.edit("Invoice", qbo_id, PrivateNote="called the tenant")
    result = await world.from_qbo("invoice", qbo_id)
    assert result.outcome == "echo", result
    assert world.released.writes == written
    link = await world.store.links.by_qbo(world.connection_id, "Invoice", qbo_id)
    assert link is not None
    assert link.qbo_version == edited["SyncToken"]


async def test_our_contact_version_in_the_notification_is_an_echo_without_a_read() -> None:
    world = World()
    qbo_id, rl_id = await linked_customer(world)
    version = str(world.released.records["/contacts"][rl_id]["version"])
    # Gone from the fake: a read would answer "not found" and the outcome would not be an echo.
    del world.released.records["/contacts"][rl_id]
    result = await world.from_released("contact", rl_id, version=version)
    assert result.outcome == "echo", result
    assert world.qbo.writes == []


def _count_reads(world: World) -> list[str]:
    """The single-record reads the engine makes of Re-Leased from now on."""
    reads: list[str] = []
    real = world.released.get

    async def get(path: str) -> dict[str, Any]:
        reads.append(path)
        return await real(path)

    world.released.get = get  # type: ignore[method-assign]
    return reads


async def test_a_released_notification_of_the_linked_version_is_an_echo_without_a_read() -> None:
    world = World()
    _, rl_id = await linked_invoice(world)
    (link,) = await world.store.links.by_released(world.connection_id, "invoice", rl_id)
    reads = _count_reads(world)
    result = await world.from_released("invoice", rl_id, version=link.released_version)
    assert result.outcome == "echo", result
    assert reads == [], "known from the link: no read of the record"
    # A newer version is read as before.
    newer = await world.from_released("invoice", rl_id, version="999")
    assert reads == [f"/invoices/{rl_id}"], newer


async def test_a_create_of_ours_not_linked_yet_comes_back_later() -> None:
    world = World()
    await world.store.twins.record(world.connection_id, "released", "invoice", "rl-9", "q-9")
    with pytest.raises(TransientError):
        await world.from_released("invoice", "rl-9", operation="create", version="1")


async def test_a_notification_an_import_batch_holds_is_handed_back_then_ends_as_an_echo() -> None:
    world = World()
    _, rl_id = await linked_invoice(world)
    # An import batch holds the invoice (``SyncContext.hold``) while it reads back its version.
    record = f"{world.connection_id}:released:invoice:{rl_id}"
    mark = f"{world.connection_id}:held:released:invoice:{rl_id}"
    world.store.locks.held_elsewhere.update({record, mark})
    with pytest.raises(RecordHeld):  # at once: waiting for the record lock would hold a slot
        await world.from_released("invoice", rl_id)
    world.store.locks.held_elsewhere.clear()
    again = await world.from_released("invoice", rl_id)
    assert again.outcome == "echo", again
    assert world.qbo.writes == [], "never copied back"
