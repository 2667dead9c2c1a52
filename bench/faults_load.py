"""The load and the effect checks of bench_faults.py: people editing contacts on both platforms.

Half the records are QBO customers (the product copies them to Re-Leased contacts), half are
Re-Leased contacts (copied to QBO customers). Each sender is a person editing their records in
turn: a record's next version is written only after the platform accepted the previous one, and
the version is in the name (``Fault Q007 v12``). The platforms notify the product by webhook as in
production, so every fault hits the whole path: webhook, inbox, relay, broker, engine, target.

What is checked is the EFFECT on the other platform, not messages:
- a watcher lists every target record about once a second; a record whose version ever goes down
  (an older version written over a newer one) is reordered;
- more than one target record for one source record (a create applied twice) is duplicated, and
  so is a target record written more often than its source had versions (an update applied
  twice): counted from the target platform's own request log;
- a record whose target does not reach the source's last version once everything has settled is
  lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import aiohttp

NAME = re.compile(r"^Fault ([QR]\d+) v(\d+)$")


@dataclass
class Platforms:
    qbo_base: str
    rl_base: str
    realm: str
    company: str
    http: aiohttp.ClientSession
    qbo_token: str = ""
    rl_token: str = ""

    async def call(self, method: str, url: str, **kw: Any) -> Any:
        async with self.http.request(method, url, **kw) as response:
            body = await response.read()
            if response.status >= 300:
                raise RuntimeError(f"{method} {url}: {response.status} {body[:200]!r}")
            return await response.json(content_type=None) if body else None

    async def tokens(self) -> None:
        made = await self.call("POST", f"{self.qbo_base}/_sandbox/realms/{self.realm}/tokens")
        self.qbo_token = str(made["access_token"])
        rl = await self.call("POST", f"{self.rl_base}/_sandbox/companies/{self.company}/tokens")
        self.rl_token = str(rl["access_token"])

    async def qbo(self, method: str, path: str, **kw: Any) -> Any:
        url = f"{self.qbo_base}/v3/company/{self.realm}/{path}"
        headers = {"Authorization": f"Bearer {self.qbo_token}", "Accept": "application/json"}
        return await self.call(method, url, headers=headers, **kw)

    async def rl(self, method: str, path: str, **kw: Any) -> Any:
        url = f"{self.rl_base}/api/v1/{path}"
        headers = {"Authorization": f"Bearer {self.rl_token}", "X-Company-Id": self.company}
        return await self.call(method, url, headers=headers, **kw)

    async def qbo_customers(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            query = f"select * from Customer STARTPOSITION {len(found) + 1} MAXRESULTS 1000"
            body = await self.qbo("GET", "query", params={"query": query})
            page = list(body["QueryResponse"].get("Customer", []))
            found += page
            if len(page) < 1000:
                return found

    async def rl_contacts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"pageSize": "1000", "page": str(page)}
            body = await self.rl("GET", "contacts", params=params)
            found += body["items"]
            if page >= int(body["pagination"]["pageCount"]):
                return found
            page += 1

    async def target_versions(self) -> dict[str, dict[str, int]]:
        """key -> {target record id: version}, both directions (Q keys live in Re-Leased)."""
        seen: dict[str, dict[str, int]] = defaultdict(dict)
        for record, name in [(c, c.get("name", "")) for c in await self.rl_contacts()]:
            match = NAME.match(str(name))
            if match and match[1].startswith("Q"):
                seen[match[1]][str(record["id"])] = int(match[2])
        for record in await self.qbo_customers():
            match = NAME.match(str(record.get("DisplayName", "")))
            if match and match[1].startswith("R"):
                seen[match[1]][str(record["Id"])] = int(match[2])
        return seen


@dataclass
class Record:
    key: str
    source_id: str = ""
    sync_token: str = "0"
    version: int = -1  # last version the source platform accepted


@dataclass
class Load:
    """``versions`` edits per record, then the sender moves on to a new record: creates keep
    happening under every fault, not only at the start."""

    platforms: Platforms
    rate: float
    versions: int
    records: list[Record] = field(default_factory=list)
    sent: int = 0
    retries: int = 0
    user_qbo_writes: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def write(self, record: Record, version: int) -> None:
        """One version of one record, retried until the source platform accepts it."""
        name = f"Fault {record.key} v{version}"
        while True:
            try:
                await self._write_once(record, name)
                record.version = version
                self.sent += 1
                return
            except (aiohttp.ClientError, RuntimeError, TimeoutError):
                self.retries += 1  # a person would try again (e.g. during the Re-Leased outage)
                await asyncio.sleep(1)

    async def _write_once(self, record: Record, name: str) -> None:
        p = self.platforms
        if record.key.startswith("Q"):
            body: dict[str, Any] = {"DisplayName": name}
            if record.source_id:
                body |= {"Id": record.source_id, "SyncToken": record.sync_token, "sparse": True}
            try:
                made = (await p.qbo("POST", "customer", json=body))["Customer"]
            except RuntimeError:
                if record.source_id:  # a stale SyncToken: read the current one for next time
                    current = await p.qbo("GET", f"customer/{record.source_id}")
                    record.sync_token = str(current["Customer"]["SyncToken"])
                raise
            self.user_qbo_writes += 1
            record.source_id, record.sync_token = str(made["Id"]), str(made["SyncToken"])
        elif record.source_id:
            await p.rl("PATCH", f"contacts/{record.source_id}", json={"name": name})
        else:
            made = await p.rl("POST", "contacts", json={"name": name, "isCustomer": True})
            record.source_id = str(made["id"])

    async def sender(self, n: int, senders: int) -> None:
        """Sender ``n``: one record on each platform at a time, edited in turn."""
        interval = senders / self.rate
        generation = 0
        while not self.stop.is_set():
            mine = [Record(f"{side}{n:02d}{generation:03d}") for side in "QR"]
            self.records += mine
            for version in range(self.versions):
                for record in mine:
                    next_at = time.monotonic() + interval
                    await self.write(record, version)
                    if self.stop.is_set():
                        return
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            generation += 1


@dataclass
class Watcher:
    """Lists the targets about once a second and remembers what each record showed."""

    platforms: Platforms
    highest: dict[str, int] = field(default_factory=dict)  # target id -> highest version seen
    regressions: list[str] = field(default_factory=list)
    targets: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    polls: int = 0
    # One look at a time: two overlapping looks could finish in the other order and show a
    # version going down that never did on the platform.
    _one: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def observe(self) -> dict[str, dict[str, int]]:
        async with self._one:
            return await self._observe()

    async def _observe(self) -> dict[str, dict[str, int]]:
        seen = await self.platforms.target_versions()
        for key, ids in seen.items():
            self.targets[key].update(ids)
            for target_id, version in ids.items():
                if version < self.highest.get(target_id, -1):
                    self.regressions.append(
                        f"{key} ({target_id}): v{version} after v{self.highest[target_id]}"
                    )
                self.highest[target_id] = max(version, self.highest.get(target_id, -1))
        self.polls += 1
        return seen

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # The Re-Leased outage answers 503 to everyone, the watcher too.
            with contextlib.suppress(aiohttp.ClientError, RuntimeError, TimeoutError):
                await self.observe()
            await asyncio.sleep(1)


@dataclass
class WriteLog:
    """Writes accepted by Re-Leased on contacts, per path, from the platform's own request log.
    Read every 15 s and merged (the sandbox keeps only its last 10,000 writes)."""

    platforms: Platforms
    seen: set[tuple[str, ...]] = field(default_factory=set)
    per_path: Counter[str] = field(default_factory=Counter)

    async def read(self) -> None:
        p = self.platforms
        url = f"{p.rl_base}/_sandbox/companies/{p.company}/requests"
        body = await p.call("GET", url, params={"pathContains": "/contacts"})
        for item in body["items"]:
            entry = tuple(str(item.get(k)) for k in ("time", "method", "path", "idempotencyKey"))
            if entry in self.seen:
                continue
            self.seen.add(entry)
            accepted = 200 <= int(item["status"]) < 300 and not item.get("replayed")
            if item["method"] in ("POST", "PATCH") and accepted:
                self.per_path[item["path"]] += 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(aiohttp.ClientError, RuntimeError, TimeoutError):
                await self.read()
            await asyncio.sleep(15)
