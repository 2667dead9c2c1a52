"""RabbitMQ: connection, topology and a publisher that never drops silently.

Topology (README, "Messaging"):
- ``sync.events``: durable topic exchange; routing key ``<source>.<entity>.<operation>``.
- ``sync.qbo_to_released`` (``qbo.#``) and ``sync.released_to_qbo`` (``released.#``): quorum work
  queues; failures dead-letter at-least-once to ``sync.dlx`` -> ``sync.dead``; a delivery limit
  stops a message that keeps killing its consumer from looping forever.
- Retry ladder: one fanout exchange + queue per delay tier (``sync.retry.5s`` ...). A message waits
  out the queue TTL and dead-letters back to ``sync.events`` with its original routing key. Only
  plugins shipped and enabled by default are needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractChannel,
    AbstractRobustConnection,
    DeliveryMode,
    ExchangeType,
)
from aio_pika.connection import make_url
from aio_pika.exceptions import AMQPError, DeliveryError

from shared.domain.errors import SyncError, TransientError
from shared.domain.events import ChangeEvent
from shared.infra.errors import InfraUnavailable
from shared.infra.logging import scrub_text

EVENTS_EXCHANGE = "sync.events"
DEAD_EXCHANGE = "sync.dlx"
DEAD_QUEUE = "sync.dead"
QBO_TO_RELEASED = "sync.qbo_to_released"
RELEASED_TO_QBO = "sync.released_to_qbo"
# The bulk lane (an initial import, a bulk replay): its own queues, consumed apart from live.
BULK_SUFFIX = ".bulk"
WORK_QUEUES: dict[str, str] = {
    QBO_TO_RELEASED: "qbo.#",
    RELEASED_TO_QBO: "released.#",
    QBO_TO_RELEASED + BULK_SUFFIX: "bulk.qbo.#",
    RELEASED_TO_QBO + BULK_SUFFIX: "bulk.released.#",
}
# Delay tiers of the retry ladder, in seconds; attempt n waits RETRY_TIERS[min(n, last)].
RETRY_TIERS: tuple[int, ...] = (5, 30, 300)
# A message redelivered this often without an ack (consumer crashes) is dead-lettered.
DELIVERY_LIMIT = 10

RABBITMQ_HINT = (
    "start RabbitMQ (locally: rabbitmq-server -detached; or: docker compose -f "
    "deploy/docker-compose.yml up -d rabbitmq) or set AMQP_URL"
)


class UnroutableError(SyncError):
    """The broker returned or refused a publish: nothing is bound to take it."""


class UnpublishableError(SyncError):
    """The message can never be published as it is (a short string over 255 bytes, a value
    the AMQP encoder refuses): retrying cannot help, the caller quarantines it."""


# AMQP 0-9-1 short strings (exchange, routing key, message id, content type) hold 255 bytes.
SHORTSTR_BYTES = 255


def shortstr_problem(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{name} is not valid UTF-8"
    if size > SHORTSTR_BYTES:
        return f"{name} is {size} bytes, more than AMQP's {SHORTSTR_BYTES}"
    return None


def retry_exchange(seconds: int) -> str:
    return f"sync.retry.{seconds}s"


def retry_tier_for(attempt: int, tiers: tuple[int, ...] = RETRY_TIERS) -> int:
    """Delay before retry number ``attempt`` (1-based), capped at the longest tier."""
    return tiers[min(max(attempt, 1), len(tiers)) - 1]


@dataclass(frozen=True)
class Topology:
    """Names and knobs; tests shrink the tiers so a retry takes milliseconds."""

    retry_tiers: tuple[int, ...] = RETRY_TIERS
    delivery_limit: int = DELIVERY_LIMIT


@asynccontextmanager
async def connect_broker(
    url: str, *, timeout: float = 10.0
) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection (reconnects by itself), closed on exit.

    Built by hand rather than with ``aio_pika.connect_robust`` so that a connect which fails or is
    cancelled part-way (a probe timing out, a shutdown) still closes the connection: otherwise its
    reconnect task lives on, holding a socket, until the loop itself is gone.
    """
    connection = aio_pika.RobustConnection(make_url(url))
    try:
        await connection.connect(timeout=timeout)
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await connection.close()
        if isinstance(exc, OSError | AMQPError | aiormq.exceptions.AMQPError | TimeoutError):
            raise InfraUnavailable(
                "RabbitMQ", scrub_text(url), f"{type(exc).__name__}: {exc}; {RABBITMQ_HINT}"
            ) from exc
        raise
    try:
        yield connection
    finally:
        await connection.close()


def _work_queue_arguments(topology: Topology) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
        "x-delivery-limit": topology.delivery_limit,
    }


async def declare_topology(channel: AbstractChannel, topology: Topology | None = None) -> None:
    """Declare everything idempotently; safe for every process to call at start-up."""
    topo = topology or Topology()
    events = await channel.declare_exchange(EVENTS_EXCHANGE, ExchangeType.TOPIC, durable=True)
    dead = await channel.declare_exchange(DEAD_EXCHANGE, ExchangeType.FANOUT, durable=True)
    dead_queue = await channel.declare_queue(
        DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_queue.bind(dead)
    for name, pattern in WORK_QUEUES.items():
        queue = await channel.declare_queue(
            name, durable=True, arguments=_work_queue_arguments(topo)
        )
        await queue.bind(events, routing_key=pattern)
    for seconds in topo.retry_tiers:
        exchange = await channel.declare_exchange(
            retry_exchange(seconds), ExchangeType.FANOUT, durable=True
        )
        queue = await channel.declare_queue(
            retry_exchange(seconds),
            durable=True,
            arguments={
                "x-message-ttl": seconds * 1000,
                "x-dead-letter-exchange": EVENTS_EXCHANGE,
            },
        )
        await queue.bind(exchange)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class EventPublisher:
    """Publishes with confirms and ``mandatory``: a publish returns only once the broker owns it.

    An unroutable message raises ``UnroutableError``; a lost connection raises ``TransientError``;
    a message that can never be sent raises ``UnpublishableError``. Short strings are checked
    in bytes before the channel sees the message: the AMQP client counts a publish for confirms
    before it encodes the frames, so an encoding failure inside it would shift every later
    confirm on that channel onto the wrong message. Should the client still fail that way, the
    channel is replaced before anything else is published on it.
    """

    def __init__(
        self, channel: AbstractChannel, connection: AbstractRobustConnection | None = None
    ) -> None:
        self._channel = channel
        self._connection = connection
        self._reopening: asyncio.Lock = asyncio.Lock()
        # The aiormq channel under ``channel``, looked up again only once it is closed (a
        # reconnect replaces it): asking aio-pika each time waits on the connection per publish.
        self._underlay: aiormq.abc.AbstractChannel | None = None

    @classmethod
    async def open(cls, connection: AbstractRobustConnection) -> EventPublisher:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(channel, connection)

    async def _replace_channel(self, broken: AbstractChannel) -> None:
        """A fresh channel (confirm counting starts over) in place of one that may be out of
        step; publishes already waiting on the old one fail and are retried by their caller."""
        async with self._reopening:
            if self._channel is not broken or self._connection is None:
                return
            self._channel = await self._connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self._underlay = None
        with contextlib.suppress(Exception):
            # The miscounted confirm waits of the old channel fail on close; nobody awaits them.
            underlay = await broken.get_underlay_channel()
            for waiter in list(getattr(underlay, "confirmations", {}).values()):
                waiter.add_done_callback(_consume)
        with contextlib.suppress(Exception):
            await broken.close()

    async def close(self) -> None:
        await self._channel.close()

    async def underlay(self) -> aiormq.abc.AbstractChannel:
        """The aiormq channel under ours, looked up again only once closed (a reconnect)."""
        if self._underlay is None or self._underlay.is_closed:
            self._underlay = await self._channel.get_underlay_channel()
        return self._underlay

    async def publish(self, event: ChangeEvent, *, exchange: str = EVENTS_EXCHANGE) -> None:
        key, body = event.routing_key, event.to_bytes()
        headers = {"x-attempt": event.attempt, "x-origin": event.origin}
        await self.publish_bytes(exchange, key, body, message_id=event.event_id, headers=headers)

    async def publish_bytes(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        headers: dict[str, Any] | None = None,
        expiration: float | None = None,
    ) -> None:
        for name, value in (
            ("exchange", exchange),
            ("routing key", routing_key),
            ("message id", message_id),
        ):
            problem = shortstr_problem(name, value)
            if problem:
                raise UnpublishableError(problem)
        properties = aiormq.spec.Basic.Properties(
            content_type="application/json",
            delivery_mode=DeliveryMode.PERSISTENT.value,
            message_id=message_id,
            headers=headers or {},
            expiration=None if expiration is None else str(int(expiration * 1000)),
        )
        channel = self._channel
        try:
            underlay = await self.underlay()
            # wait=False: the frames are queued for the connection's writer and the channel's
            # lock is let go at once. aio-pika waits for the writer to drain every publish while
            # holding that lock, so a busy event loop (a receiver under load) let through only
            # one publish per loop turn. The call still returns only once the broker confirmed.
            await underlay.basic_publish(  # type: ignore[call-arg]  # the ABC lacks `wait`
                body,
                exchange=exchange,
                routing_key=routing_key,
                properties=properties,
                mandatory=True,
                wait=False,
            )
        except DeliveryError as exc:
            raise UnroutableError(
                f"broker did not accept {routing_key!r} on {exchange!r}: {exc}"
            ) from exc
        except (AMQPError, aiormq.exceptions.AMQPError, OSError, RuntimeError) as exc:
            raise TransientError(f"publish to {exchange!r} failed: {exc}") from exc
        except (ValueError, TypeError, UnicodeError, struct.error) as exc:
            # Refused by the encoder after the client may have counted it: start over.
            await self._replace_channel(channel)
            raise UnpublishableError(f"AMQP client could not encode the message: {exc}") from exc


class ConnectionGate:
    """Says whether publishing is worth trying: the robust connection is connected right now
    (while it reconnects, publishers leave events in the inbox for the relay)."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection

    def available(self) -> bool:
        connected = getattr(self._connection, "connected", None)
        if isinstance(connected, asyncio.Event):
            return connected.is_set()
        return not self._connection.is_closed
