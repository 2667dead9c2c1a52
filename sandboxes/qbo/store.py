"""In-memory companies (realms): objects, tombstones, idempotency cache, request log, faults."""

from __future__ import annotations

import itertools
import secrets
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sandboxes.qbo.clock import qbo_time, utcnow
from sandboxes.qbo.entities import ENTITIES, PEOPLE

Obj = dict[str, Any]
REQUEST_LOG_SIZE = 10_000


def name_key(entity: str, name: object) -> tuple[str, str] | None:
    """The uniqueness key of a name-list record: people share one namespace (error 6240)."""
    if not name or ENTITIES.get(entity) is None or not ENTITIES[entity].unique_name:
        return None
    return ("people" if entity in PEOPLE else entity, str(name).strip().lower())


@dataclass
class RealmFaults:
    """Per-realm fault switches (control API: PUT /_sandbox/realms/{realmId}/faults)."""

    latency_ms: float = 0.0
    error_500_rate: float = 0.0
    error_503_rate: float = 0.0
    error_429_rate: float = 0.0
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_reorder: bool = False
    webhook_delay_seconds: float = 0.0
    webhook_bad_signature: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RequestRecord:
    time: str
    method: str
    path: str
    entity: str | None
    operation: str
    request_id: str | None
    status: int
    write: bool


@dataclass
class Realm:
    realm_id: str
    company_name: str
    objects: dict[str, dict[str, Obj]] = field(default_factory=dict)
    # entity -> id -> deletion time, for CDC's {"status": "Deleted"} entries
    tombstones: dict[str, dict[str, datetime]] = field(default_factory=dict)
    idempotency: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))
    # (namespace, lower-case name) -> (entity, id): keeps the 6240 check O(1)
    names: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)
    faults: RealmFaults = field(default_factory=RealmFaults)
    # real-time stamps of recent requests, for the 500/minute limit
    recent: deque[float] = field(default_factory=deque)
    recent_batches: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_id(self) -> str:
        return str(next(self._ids))

    def table(self, entity: str) -> dict[str, Obj]:
        return self.objects.setdefault(entity, {})

    def get(self, entity: str, obj_id: str) -> Obj | None:
        return self.objects.get(entity, {}).get(str(obj_id))

    def put(self, entity: str, obj: Obj) -> None:
        table = self.table(entity)
        field_name = ENTITIES[entity].unique_name if entity in ENTITIES else None
        if field_name:
            old = table.get(obj["Id"])
            old_key = name_key(entity, old.get(field_name)) if old is not None else None
            if old_key is not None and self.names.get(old_key) == (entity, obj["Id"]):
                del self.names[old_key]
            new_key = name_key(entity, obj.get(field_name))
            if new_key is not None:
                self.names[new_key] = (entity, obj["Id"])
        table[obj["Id"]] = obj

    def named(self, entity: str, name: object) -> tuple[str, str] | None:
        key = name_key(entity, name)
        return self.names.get(key) if key is not None else None

    def remove(self, entity: str, obj_id: str, when: datetime) -> None:
        self.table(entity).pop(obj_id, None)
        self.tombstones.setdefault(entity, {})[obj_id] = when


class Store:
    """All realms of this process; the lifespan owns one and ``reset`` empties it."""

    def __init__(self) -> None:
        self.realms: dict[str, Realm] = {}
        # Real realm ids are unique across companies everywhere; a random start keeps two sandbox
        # processes (or two test runs against one database) from handing out the same ids.
        self._realm_numbers = itertools.count(9130350000000001 + secrets.randbelow(10**8) * 1000)

    def new_realm(self, company_name: str) -> Realm:
        realm = Realm(str(next(self._realm_numbers)), company_name)
        self.realms[realm.realm_id] = realm
        return realm

    def get(self, realm_id: str) -> Realm | None:
        return self.realms.get(realm_id)

    def reset(self) -> None:
        self.realms.clear()


def stamp(obj: Obj, when: datetime | None = None) -> datetime:
    """Set MetaData.LastUpdatedTime (and the precise private copy used for ordering)."""
    moment = when or utcnow()
    meta = obj.setdefault("MetaData", {})
    meta.setdefault("CreateTime", qbo_time(moment))
    meta["LastUpdatedTime"] = qbo_time(moment)
    obj["_updated"] = moment
    return moment
