"""Many events onto one confirming channel in one step: a future per event for its confirm.

``EventPublisher.publish`` is a coroutine per event: the dispatcher ran one task per event, and
each went through aiormq's ``basic_publish`` on its own (its lock, a wait for room in the
connection's write queue, a countdown) before waiting for its confirm. For a burst that
bookkeeping cost more than the frames. ``publish_many`` does what ``basic_publish`` does on a
confirming channel, for a whole batch under one hold of the channel's lock: each event's
frames are encoded first (an event the encoder refuses is refused alone, before it takes a
delivery tag, so no later confirm is matched to the wrong event); then it takes the next
delivery tag, its confirm future and its message id (for ``mandatory`` returns) exactly as
aiormq records them, and its frames join the write queue in tag order. Acks, nacks, returns
and a closing channel settle these futures through aiormq's own handlers.

It relies on aiormq's channel attributes (``delivery_tag``, ``confirmations``,
``message_id_delivery_tag``, ``write_queue``, ``lock``, ``max_content_size``), pinned by the
lock file; the tests check the frames against aiormq's own and the confirms on a real broker.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Sequence
from typing import Any

import aiormq
from aiormq.abc import ChannelFrame
from pamqp import commands
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from shared.adapters.broker import (
    EVENTS_EXCHANGE,
    EventPublisher,
    UnpublishableError,
    shortstr_problem,
)
from shared.domain.errors import TransientError
from shared.domain.events import ChangeEvent

# Publishes whose frames go to the connection's writer as one write (one socket write instead
# of one per publish): bench_ingest's stream and bursts publish in batches of up to 256.
WRITE_GROUP = 64


def message_properties(event: ChangeEvent) -> commands.Basic.Properties:
    """The properties ``EventPublisher.publish`` gives an event."""
    return commands.Basic.Properties(
        content_type="application/json",
        delivery_mode=2,  # persistent
        message_id=event.event_id,
        headers={"x-attempt": event.attempt, "x-origin": event.origin},
    )


def encode(channel_number: int, max_content: int, event: ChangeEvent, exchange: str) -> bytes:
    """The publish's frames (method, content header, the body in frames of ``max_content``
    bytes) as aiormq writes them; ``UnpublishableError`` when the message cannot be sent."""
    for name, value in (
        ("exchange", exchange),
        ("routing key", event.routing_key),
        ("message id", event.event_id),
    ):
        problem = shortstr_problem(name, value)
        if problem:
            raise UnpublishableError(problem)
    body = event.to_bytes()
    frames: list[Any] = [
        commands.Basic.Publish(exchange=exchange, routing_key=event.routing_key, mandatory=True),
        ContentHeader(properties=message_properties(event), body_size=len(body)),
    ]
    if len(body) < max_content:
        frames.append(ContentBody(body))
    else:
        frames += [ContentBody(body[i : i + max_content]) for i in range(0, len(body), max_content)]
    try:
        return ChannelFrame.marshall(channel_number=channel_number, frames=frames).payload
    except (ValueError, TypeError, UnicodeError, OverflowError, struct.error) as exc:
        raise UnpublishableError(f"AMQP client could not encode the message: {exc}") from exc


def _settled(loop: asyncio.AbstractEventLoop, exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = loop.create_future()
    future.set_exception(exc)
    return future


def _read(future: asyncio.Future[Any]) -> None:
    """Nobody may await a confirm whose batch was given up (cancelled): mark it read."""
    if not future.cancelled():
        future.exception()


async def publish_many(
    publisher: EventPublisher,
    events: Sequence[ChangeEvent],
    *,
    exchange: str = EVENTS_EXCHANGE,
    put_timeout_s: float = 5.0,
) -> list[asyncio.Future[Any]]:
    """Queue every event on the publisher's channel, in order; one future per event, done when
    the broker confirmed it (result), or refused, returned or lost it (exception:
    ``UnpublishableError`` for a message that can never be sent, ``TransientError`` when the
    channel is closed or the connection stopped taking frames for ``put_timeout_s``, aiormq's
    own errors for a nack, a return or a connection lost)."""
    loop = asyncio.get_running_loop()
    try:
        # The concrete aiormq channel: its bookkeeping is what this module takes part in.
        channel: Any = await publisher.underlay()
    except (aiormq.exceptions.AMQPError, OSError, RuntimeError) as exc:
        return [_settled(loop, TransientError(f"no channel: {exc}")) for _ in events]
    if not getattr(channel, "publisher_confirms", False):
        raise RuntimeError("publish_many needs a channel with publisher confirms")
    futures: list[asyncio.Future[Any] | None] = []
    pending: list[tuple[int, str, bytes]] = []  # (index in futures, message id, frames)
    async with channel.lock:
        for event in events:
            if channel.is_closed:
                futures.append(_stuck(loop))
                continue
            try:
                payload = encode(channel.number, channel.max_content_size, event, exchange)
            except UnpublishableError as exc:
                futures.append(_settled(loop, exc))
                continue
            pending.append((len(futures), event.event_id, payload))
            futures.append(None)
            if len(pending) == WRITE_GROUP:
                if not await _write(channel, pending, futures, put_timeout_s):
                    break
                pending = []
        else:
            if pending:
                await _write(channel, pending, futures, put_timeout_s)
    # A connection that died with a full queue never drains it: the rest of the batch fails
    # now (left to the relay) instead of holding the lock for good.
    done = [_stuck(loop) if f is None else f for f in futures]
    return done + [_stuck(loop) for _ in events[len(done) :]]


def _stuck(loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    return _settled(loop, TransientError("channel closed or not writing"))


async def _write(
    channel: Any,
    pending: list[tuple[int, str, bytes]],
    futures: list[asyncio.Future[Any] | None],
    put_timeout_s: float,
) -> bool:
    """Queue ``pending``'s frames as one write, then give each its tag in order; False (and
    nothing counted) when the connection took no frame within ``put_timeout_s``."""
    payload = b"".join(frames for _, _, frames in pending)
    # Queued first, then given its tags: a put cancelled or timed out while waiting for room
    # queues nothing, and nothing comes between the put and the tags (no await).
    frame = ChannelFrame(payload=payload, drain_future=None, should_close=False)
    if channel.is_closed or not await _queued(channel.write_queue, frame, put_timeout_s):
        return False
    for index, message_id, _ in pending:
        confirmation = _register(channel, message_id)
        confirmation.add_done_callback(_read)
        futures[index] = confirmation
    return True


async def _queued(queue: asyncio.Queue[Any], frame: ChannelFrame, timeout_s: float) -> bool:
    """Put ``frame`` on the connection's write queue; False when no room came in time."""
    if not queue.full():
        queue.put_nowait(frame)
        return True
    try:
        async with asyncio.timeout(timeout_s):
            await queue.put(frame)
    except TimeoutError:
        return False
    return True


def _register(channel: Any, message_id: str) -> asyncio.Future[Any]:
    """The next delivery tag's confirm future, recorded as ``basic_publish`` records it."""
    channel.delivery_tag += 1
    tag = channel.delivery_tag
    confirmation: asyncio.Future[Any] | None = channel.confirmations.get(tag)
    if confirmation is None:
        confirmation = channel.create_future()
        channel.confirmations[tag] = confirmation
    channel.message_id_delivery_tag[message_id] = tag
    mapping = channel.message_id_delivery_tag
    confirmation.add_done_callback(lambda _: mapping.pop(message_id, None))
    return confirmation
