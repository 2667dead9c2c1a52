"""The change event: the one message shape on the bus.

Events are thin on purpose (no record payload): a consumer always fetches the current record, so
late, duplicate and reordered events converge on the same result.

Every text field is bounded in UTF-8 bytes, because that is what the wires count: AMQP's
message id and routing key are short strings of at most 255 bytes, and PostgreSQL refuses NUL
characters and text that is not valid UTF-8 (a lone surrogate cannot even be encoded). An event
that passes these checks can always be stored and published; one that does not is refused at
the edge, on its own, before it reaches a batch or a channel.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

Source = Literal["qbo", "released"]
Origin = Literal["webhook", "reconciler", "replay"]
Lane = Literal["live", "bulk"]

# Routing-key words must not contain the topic separators.
_FORBIDDEN_IN_KEY = (".", "*", "#", " ")

# Byte limits per text field. The routing key is ``<source>.<entity>.<operation>``, at most
# 8 + 1 + 64 + 1 + 32 = 106 bytes; the event id is the AMQP message id (255 bytes at most).
TEXT_LIMITS: dict[str, int] = {
    "event_id": 200,
    "account_id": 200,
    "entity": 64,
    "entity_id": 200,
    "operation": 32,
    "replay_of": 200,
    "version": 200,
    "related_id": 200,
    "resource_url": 2048,
}
_REQUIRED = ("event_id", "account_id", "entity", "entity_id", "operation")
_LIMITS = tuple(TEXT_LIMITS.items())


def wire_text_problem(value: str, max_bytes: int) -> str | None:
    """Why ``value`` cannot travel as a bounded wire string, or None when it can."""
    if value.isascii():  # nearly every id: its length is its size, no encoding needed
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            return "is not valid UTF-8 (lone surrogate)"
    if size > max_bytes:
        return f"is {size} bytes, more than {max_bytes}"
    if "\x00" in value:
        return "contains a NUL character"
    return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ChangeEvent(BaseModel):
    """A notification that one record changed on one side."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1)
    source: Source
    connection_id: UUID | None = None
    account_id: str = Field(min_length=1, description="QBO realm id or Re-Leased company id")
    entity: str = Field(min_length=1)
    entity_id: str = Field(min_length=1)
    operation: str = Field(min_length=1)
    occurred_at: datetime
    received_at: datetime = Field(default_factory=_utcnow)
    origin: Origin = "webhook"
    attempt: int = Field(default=0, ge=0)
    replay_of: str | None = None
    # Optional hints from the notification; consumers still fetch the current record.
    version: str | None = Field(default=None, description="SyncToken/lastUpdated or version")
    related_id: str | None = Field(default=None, description="merged-away id on QBO merges")
    resource_url: str | None = None
    # "bulk": an initial import's or a bulk replay's; it travels its own lane (queues and a budget
    # that leaves a share for live traffic), so live events never wait behind it.
    lane: Lane = "live"

    @field_validator("entity", "operation")
    @classmethod
    def _routing_word(cls, value: str) -> str:
        if any(ch in value for ch in _FORBIDDEN_IN_KEY):
            raise ValueError(f"{value!r} cannot be part of a routing key")
        return value.lower()

    @field_validator(*TEXT_LIMITS)
    @classmethod
    def _wire_text(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        problem = wire_text_problem(value, TEXT_LIMITS[info.field_name or ""])
        if problem:
            raise ValueError(f"{info.field_name} {problem}")
        return value

    @classmethod
    def checked(cls, **fields: Any) -> ChangeEvent:
        """Build from values a parser already typed, checking only what validation would add.

        The webhook path builds thousands of these a second; full validation of values that
        are already the right types costs more than the rest of the parsing.
        """
        for name in ("entity", "operation"):
            word = fields[name]
            # An ASCII letters-and-digits word (nearly all) has none of the separators.
            if not (word.isascii() and word.isalnum()) and (
                not word or any(ch in word for ch in _FORBIDDEN_IN_KEY)
            ):
                raise ValueError(f"{name} {word[:40]!r} cannot be part of a routing key")
            fields[name] = word.lower()
        for name in _REQUIRED:
            if not fields[name]:
                raise ValueError(f"{name} must not be empty")
        for name, limit in _LIMITS:
            value = fields.get(name)
            # Inline for the usual short ASCII id; anything else gets the full check.
            if value is None or (value.isascii() and len(value) <= limit and "\x00" not in value):
                continue
            problem = wire_text_problem(value, limit)
            if problem:
                raise ValueError(f"{name} {problem}")
        return cls._assembled(fields)

    @classmethod
    def _assembled(cls, fields: dict[str, Any]) -> ChangeEvent:
        """``model_construct`` for values already checked, without its per-field search for
        defaults (half the cost of building an event): the defaults are looked up once."""
        values = dict(_defaults())  # every field, in declaration order (serialisers keep it)
        values.update(fields)
        if "received_at" not in fields:
            values["received_at"] = _utcnow()
        return cls._of(values, set(fields))

    @classmethod
    def _of(cls, values: dict[str, Any], fields_set: set[str]) -> ChangeEvent:
        event = cls.__new__(cls)
        object.__setattr__(event, "__dict__", values)
        object.__setattr__(event, "__pydantic_fields_set__", fields_set)
        object.__setattr__(event, "__pydantic_extra__", None)
        object.__setattr__(event, "__pydantic_private__", None)
        return event

    def owned_by(self, connection_id: UUID) -> ChangeEvent:
        """This event bound to its connection (``model_copy`` with an update, cheaper)."""
        values = self.__dict__.copy()
        values["connection_id"] = connection_id
        return self._of(values, self.__pydantic_fields_set__ | {"connection_id"})

    @property
    def routing_key(self) -> str:
        """``<source>.<entity>.<operation>`` on the topic exchange (``bulk.`` first in the bulk
        lane)."""
        key = f"{self.source}.{self.entity}.{self.operation}"
        return f"bulk.{key}" if self.lane == "bulk" else key

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, body: bytes) -> ChangeEvent:
        return cls.model_validate_json(body)


@cache
def _defaults() -> dict[str, Any]:
    """Every field with its default, in declaration order; None stands in for the required
    ones, which ``checked`` callers always give."""
    return {
        name: None if info.is_required() or info.default_factory else info.default
        for name, info in ChangeEvent.model_fields.items()
    }


def derive_event_id(
    source: Source,
    account_id: str,
    entity: str,
    entity_id: str,
    operation: str,
    occurred_at: str,
) -> str:
    """A stable id for notifications that carry none (legacy QBO format, reconciler finds)."""
    material = "\x1f".join(
        (source, account_id, entity.lower(), entity_id, operation.lower(), occurred_at)
    )
    return f"{source}-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]
