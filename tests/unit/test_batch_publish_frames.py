"""The frames ``publish_many`` writes: a method, a header and the body, split at the channel's
frame size, decoding to the event's properties and bytes; a message id over AMQP's limit is
refused before it takes a delivery tag; a connection that stopped writing fails the batch in
time without counting a tag; a batch goes to the connection's writer in writes of
``WRITE_GROUP`` publishes, tagged in order, and a write that finds no room fails its group and
the rest of the batch without counting their tags."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast

import pytest
from pamqp import commands, frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from shared.adapters.batch_publish import WRITE_GROUP, encode, publish_many
from shared.adapters.broker import EventPublisher, UnpublishableError
from shared.domain.errors import TransientError
from shared.domain.events import ChangeEvent

EVENT = ChangeEvent(
    event_id="evt-1",
    source="qbo",
    account_id="9130",
    entity="invoice",
    entity_id="42",
    operation="update",
    occurred_at=datetime(2026, 11, 30, tzinfo=UTC),
    resource_url="https://example.test/" + "r" * 300,
)


def _frames(payload: bytes) -> list[object]:
    found: list[object] = []
    while payload:
        used, channel, value = frame.unmarshal(payload)
        assert channel == 3
        found.append(value)
        payload = payload[used:]
    return found


@pytest.mark.parametrize("max_content", [64, 1000, 131_064])
def test_frames_decode_to_the_event(max_content: int) -> None:
    frames = _frames(encode(3, max_content, EVENT, "sync.events"))
    method, header, *bodies = frames
    assert isinstance(method, commands.Basic.Publish)
    assert (method.exchange, method.routing_key, method.mandatory) == (
        "sync.events",
        "qbo.invoice.update",
        True,
    )
    assert isinstance(header, ContentHeader)
    body = EVENT.to_bytes()
    assert header.body_size == len(body)
    assert header.properties.message_id == "evt-1"
    assert header.properties.headers == {"x-attempt": 0, "x-origin": "webhook"}
    assert (header.properties.content_type, header.properties.delivery_mode) == (
        "application/json",
        2,
    )
    assert all(isinstance(b, ContentBody) and len(b.value) <= max_content for b in bodies)
    assert b"".join(b.value for b in bodies if isinstance(b, ContentBody)) == body
    assert len(bodies) == -(-len(body) // max_content)


def test_a_message_id_over_the_limit_is_refused() -> None:
    bad = ChangeEvent.model_construct(**{**EVENT.__dict__, "event_id": "é" * 200})
    with pytest.raises(UnpublishableError, match="message id"):
        encode(3, 131_064, bad, "sync.events")


class _StuckChannel:
    """A confirming channel whose connection stopped writing with its frame queue full."""

    def __init__(self, room: int = 0) -> None:
        self.lock = asyncio.Lock()
        self.is_closed = False
        self.publisher_confirms = True
        self.number = 1
        self.max_content_size = 131_064
        self.delivery_tag = 7
        self.confirmations: dict[int, asyncio.Future[object]] = {}
        self.message_id_delivery_tag: dict[str, int] = {}
        self.write_queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1 + room)
        self.write_queue.put_nowait(object())

    def create_future(self) -> asyncio.Future[object]:
        return asyncio.get_running_loop().create_future()


class _Publisher:
    def __init__(self, channel: _StuckChannel) -> None:
        self.channel = channel

    async def underlay(self) -> _StuckChannel:
        return self.channel


async def test_a_connection_that_stopped_writing_fails_the_batch_in_time() -> None:
    channel = _StuckChannel()
    events = [EVENT.model_copy(update={"event_id": f"evt-{n}"}) for n in range(3)]
    publisher = cast(EventPublisher, _Publisher(channel))
    futures = await asyncio.wait_for(publish_many(publisher, events, put_timeout_s=0.05), 2)
    assert [type(f.exception()) for f in futures] == [TransientError] * 3
    # Nothing was counted: confirms of later publishes still match their events.
    assert (channel.delivery_tag, channel.confirmations, channel.write_queue.qsize()) == (7, {}, 1)
    assert not channel.lock.locked()


def _publishes(payload: bytes) -> list[str]:
    """The message ids of the publishes in one write, in order."""
    found = _frames(payload)
    return [str(f.properties.message_id) for f in found if isinstance(f, ContentHeader)]


async def test_a_batch_is_written_in_groups_tagged_in_order() -> None:
    channel = _StuckChannel(room=3)
    channel.number = 3
    channel.write_queue.get_nowait()  # a writer that keeps up: room for every group
    count = 2 * WRITE_GROUP + 5
    events = [EVENT.model_copy(update={"event_id": f"evt-{n}"}) for n in range(count)]
    futures = await publish_many(cast(EventPublisher, _Publisher(channel)), events)
    writes = [channel.write_queue.get_nowait() for _ in range(channel.write_queue.qsize())]
    sizes = [len(_publishes(w.payload)) for w in writes]  # type: ignore[attr-defined]
    assert sizes == [WRITE_GROUP, WRITE_GROUP, 5]
    ids = [i for w in writes for i in _publishes(w.payload)]  # type: ignore[attr-defined]
    assert ids == [e.event_id for e in events]
    assert channel.delivery_tag == 7 + count
    assert [channel.message_id_delivery_tag[e.event_id] for e in events] == list(
        range(8, 8 + count)
    )
    assert [channel.confirmations[8 + n] for n in range(count)] == futures
    assert not any(f.done() for f in futures)


async def test_a_write_without_room_fails_its_group_and_the_rest_uncounted() -> None:
    channel = _StuckChannel(room=1)  # one group fits, then the writer is stuck
    count = 2 * WRITE_GROUP + 5
    events = [EVENT.model_copy(update={"event_id": f"evt-{n}"}) for n in range(count)]
    publisher = cast(EventPublisher, _Publisher(channel))
    futures = await asyncio.wait_for(publish_many(publisher, events, put_timeout_s=0.05), 2)
    assert len(futures) == count
    assert not any(f.done() for f in futures[:WRITE_GROUP])
    assert [type(f.exception()) for f in futures[WRITE_GROUP:]] == [TransientError] * (
        count - WRITE_GROUP
    )
    assert channel.delivery_tag == 7 + WRITE_GROUP
    assert sorted(channel.confirmations) == list(range(8, 8 + WRITE_GROUP))
    assert not channel.lock.locked()
