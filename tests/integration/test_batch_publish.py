"""``publish_many``: a batch handed to the confirming channel at once arrives exactly as single
publishes do, a refused or returned event fails alone, and confirms stay matched to their
events when batches and single publishes share the channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from aio_pika.abc import AbstractRobustConnection

from shared.adapters.batch_publish import WRITE_GROUP, publish_many
from shared.adapters.broker import (
    QBO_TO_RELEASED,
    EventPublisher,
    UnpublishableError,
    connect_broker,
)
from shared.domain.events import ChangeEvent
from tests.integration.broker_helpers import get_one, make_event, queue_depth
from tests.support.proxy import TcpProxy

pytestmark = pytest.mark.integration


@pytest.fixture
async def publisher(broker: AbstractRobustConnection) -> AsyncIterator[EventPublisher]:
    pub = await EventPublisher.open(broker)
    yield pub
    await pub.close()


async def _outcomes(futures: list[asyncio.Future[object]]) -> list[str]:
    await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10)
    return ["ok" if f.exception() is None else type(f.exception()).__name__ for f in futures]


async def test_a_batch_arrives_as_single_publishes_do(
    broker: AbstractRobustConnection, publisher: EventPublisher
) -> None:
    single, batched = make_event(1), make_event(2, version="7", resource_url="https://x/1")
    await publisher.publish(single)
    assert await _outcomes(await publish_many(publisher, [batched])) == ["ok"]
    seen = []
    for event in (single, batched):
        message = await get_one(broker, QBO_TO_RELEASED)
        assert message.body == event.to_bytes()
        assert message.routing_key == event.routing_key
        assert message.message_id == event.event_id
        seen.append((message.headers, message.content_type, message.delivery_mode))
    assert seen[0] == seen[1]
    assert seen[1][0]["x-origin"] == "webhook"


async def test_a_refused_event_fails_alone_and_later_confirms_stay_matched(
    broker: AbstractRobustConnection, publisher: EventPublisher
) -> None:
    # A message id over AMQP's 255 bytes (built without validation, as a bad row could be).
    bad = ChangeEvent.model_construct(**{**make_event(2).__dict__, "event_id": "é" * 200})
    futures = await publish_many(publisher, [make_event(1), bad, make_event(3)])
    assert await _outcomes(futures) == ["ok", "UnpublishableError", "ok"]
    with pytest.raises(UnpublishableError):
        futures[1].result()
    await publisher.publish(make_event(4))  # the channel's confirm count did not shift
    assert await queue_depth(broker, QBO_TO_RELEASED) == 3


async def test_a_returned_batch_fails_and_the_channel_goes_on(
    broker: AbstractRobustConnection, publisher: EventPublisher
) -> None:
    channel = await broker.channel()
    await channel.declare_exchange("test.unbound", "topic", auto_delete=True)
    returned = await publish_many(
        publisher, [make_event(1), make_event(2)], exchange="test.unbound"
    )
    assert all(outcome != "ok" for outcome in await _outcomes(returned))
    assert await _outcomes(await publish_many(publisher, [make_event(3)])) == ["ok"]
    await channel.close()
    assert await queue_depth(broker, QBO_TO_RELEASED) == 1


async def test_batches_and_single_publishes_share_the_channel(
    broker: AbstractRobustConnection, publisher: EventPublisher
) -> None:
    batched = [make_event(n) for n in range(300)]
    singles = [make_event(1000 + n) for n in range(50)]

    async def batch() -> list[str]:
        return await _outcomes(await publish_many(publisher, batched))

    results = await asyncio.gather(batch(), *(publisher.publish(e) for e in singles))
    assert results[0] == ["ok"] * 300
    assert await queue_depth(broker, QBO_TO_RELEASED) == 350
    seen = {(await get_one(broker, QBO_TO_RELEASED)).message_id for _ in range(350)}
    assert seen == {e.event_id for e in batched + singles}


async def _message_ids(broker: AbstractRobustConnection, name: str) -> list[str]:
    channel = await broker.channel()
    queue = await channel.get_queue(name)
    ids: list[str] = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        ids.append(str(message.message_id))
    await channel.close()
    return ids


async def test_a_connection_cut_mid_batch_loses_no_confirmed_event_and_queues_none_twice(
    amqp_url: str, broker: AbstractRobustConnection
) -> None:
    """Issue 18: a batch goes to the writer in groups of ``WRITE_GROUP`` publishes; when the
    connection drops part-way, every publish still settles (confirmed, or failed and left to
    the relay), every confirmed one is on the queue and nothing is on it twice."""
    proxy = TcpProxy("127.0.0.1", urlsplit(amqp_url).port or 5672)
    await proxy.start()
    parts = urlsplit(amqp_url)
    through = urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"))
    events = [make_event(n) for n in range(30 * WRITE_GROUP)]
    async with connect_broker(through) as connection:
        publisher = await EventPublisher.open(connection)
        futures = await publish_many(publisher, events)
        await proxy.cut()  # frames still queued, written or unconfirmed: cut part-way
        await asyncio.wait(futures, timeout=15)
        assert all(f.done() for f in futures)
        confirmed = {
            e.event_id
            for e, f in zip(events, futures, strict=True)
            if not f.cancelled() and f.exception() is None
        }
        await proxy.close()
    queued = await _message_ids(broker, QBO_TO_RELEASED)
    assert len(queued) == len(set(queued))  # none twice
    assert confirmed <= set(queued)  # none confirmed and lost
    assert len(confirmed) < len(events)  # the cut did fall inside the batch
