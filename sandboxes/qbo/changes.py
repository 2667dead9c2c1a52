"""The change notices that writes emit and the webhook dispatcher turns into deliveries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Change:
    realm_id: str
    entity: str
    entity_id: str
    operation: str  # legacy word: Create, Update, Delete, Merge, Void, Emailed
    when: datetime
    deleted_id: str | None = None


Notify = Callable[[Change], None]
