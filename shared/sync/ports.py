"""What the engine needs from the world, as Protocols: the two APIs and the store of one change.

The engine and its handlers see only these. ``shared.adapters`` holds the real implementations
(the HTTP clients, PostgreSQL repositories inside the message's transaction) and the composition
roots in ``shared.bootstrap`` plug them in; the engine's unit tests plug in fakes held in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import IO, Any, Protocol
from uuid import UUID

from shared.domain.connections import Connection
from shared.domain.events import ChangeEvent
from shared.domain.links import Link
from shared.domain.outcomes import OutcomeRecord
from shared.domain.resolution import OpenConflict

# -- the two platforms ---------------------------------------------------------------------------


class QboApi(Protocol):
    """One QBO realm. Failures arrive as the classes of ``shared.domain.errors``."""

    async def get(self, entity: str, entity_id: str) -> dict[str, Any]: ...

    async def query_all(self, entity: str, where: str = "") -> list[dict[str, Any]]: ...

    async def write(
        self, entity: str, body: dict[str, Any], *, request_id: str, operation: str | None = None
    ) -> dict[str, Any]: ...

    async def upload(
        self,
        metadata: dict[str, Any],
        content: IO[bytes],
        *,
        file_name: str,
        content_type: str,
        request_id: str,
    ) -> dict[str, Any]: ...

    def stream_file(self, url: str, chunk_size: int = ...) -> AsyncIterator[bytes]: ...


class ReleasedApi(Protocol):
    """One Re-Leased company. Writes carry an idempotency key and, for updates, the version."""

    async def get(self, path: str) -> dict[str, Any]: ...

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        if_match: int | str | None = None,
    ) -> Any: ...

    async def list_all(self, path: str, **filters: str) -> list[dict[str, Any]]: ...

    async def spare(self, requests: int) -> bool:
        """Whether ``requests`` could be sent now without waiting for the company's budget."""

    async def accounting(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        idempotency_key: str,
        if_match: int | str | None = None,
    ) -> dict[str, Any]:
        """A write only the accounting side (we, who made the connection) may make."""

    async def upload_attachment(
        self,
        path: str,
        content: IO[bytes],
        *,
        file_name: str,
        content_type: str,
        idempotency_key: str,
    ) -> dict[str, Any]: ...

    def stream(self, path: str, chunk_size: int = ...) -> AsyncIterator[bytes]: ...


class ClientSource(Protocol):
    """The API clients of a connection."""

    def qbo(self, connection: Connection) -> QboApi: ...

    def released(self, connection: Connection) -> ReleasedApi: ...


class ConnectionSource(Protocol):
    async def connection_for(self, event: ChangeEvent) -> Connection | None:
        """The connection the event's account belongs to; None when there is none."""


# -- the store of one change (inside the message's transaction) ---------------------------------


class LinkStore(Protocol):
    async def by_qbo(self, connection_id: UUID, qbo_type: str, qbo_id: str) -> Link | None: ...

    async def by_id(self, link_id: int) -> Link | None: ...

    async def by_released(
        self, connection_id: UUID, entity: str, released_id: str
    ) -> list[Link]: ...

    async def save(
        self,
        connection_id: UUID,
        entity: str,
        qbo_type: str,
        *,
        qbo: tuple[str, str | None],
        released: tuple[str, str | None],
        snapshot: dict[str, Any],
        status: str = "linked",
    ) -> int:
        """Insert or update the pair (keyed by QBO type and id), recording both versions and the
        merge base; the link's id."""

    async def set_status(self, link_id: int, status: str, error: str | None = None) -> None: ...

    async def class_of_option(self, connection_id: UUID, option_id: str) -> str | None:
        """The QBO Class linked to a Re-Leased tracking option."""

    async def attachment_holders(
        self, connection_id: UUID, attachment: str, *, live: bool = False
    ) -> list[Link]:
        """Every link (only the linked ones when ``live``) naming this Re-Leased attachment."""

    async def attachment_on(self, connection_id: UUID, document: str, sha256: str) -> bool:
        """Whether a linked attachment with this content is on the QBO document ``document``."""


class ConflictStore(Protocol):
    async def record(
        self,
        connection_id: UUID,
        entity: str,
        kind: str,
        *,
        link_id: int | None,
        event_id: str,
        fields: dict[str, Any],
        winner: str | None,
        detail: str,
    ) -> int: ...

    async def open_conflict(self, conflict_id: int) -> OpenConflict | None:
        """The conflict, locked for this change, when it is still open."""
        ...

    async def close(self, conflict_id: int, resolved_by: str, resolution: str) -> None: ...

    async def note(self, conflict_id: int, resolution: str) -> None: ...


class TwinLedger(Protocol):
    """Twins the engine created. ``record`` commits on its own, whatever becomes of the change's
    transaction (the create on the other side cannot be rolled back); the reads see it."""

    async def record(
        self, connection_id: UUID, side: str, entity: str, record_id: str, source_id: str
    ) -> None: ...

    async def source_of(
        self, connection_id: UUID, side: str, entity: str, record_id: str
    ) -> str | None: ...

    async def twin_of(
        self, connection_id: UUID, side: str, entity: str, source_id: str
    ) -> str | None: ...


class Locks(Protocol):
    """Locks held until the change's transaction ends, on every replica."""

    async def lock(self, key: str) -> None: ...

    async def try_lock(self, key: str) -> bool:
        """``lock`` without waiting: False when another transaction holds it."""

    async def try_lock_shared(self, key: str) -> bool:
        """A shared hold on ``key`` without waiting: False only while another transaction
        holds it with ``lock``."""


class OutcomeStore(Protocol):
    async def record(self, item: OutcomeRecord) -> None: ...


class SyncStore(Protocol):
    """Everything one change reads and writes besides the two APIs; it commits or rolls back as
    one with the change (the consumer acks the message only after the commit)."""

    @property
    def links(self) -> LinkStore: ...

    @property
    def conflicts(self) -> ConflictStore: ...

    @property
    def twins(self) -> TwinLedger: ...

    @property
    def locks(self) -> Locks: ...

    @property
    def outcomes(self) -> OutcomeStore: ...
