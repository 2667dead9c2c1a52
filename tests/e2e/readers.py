"""Readers for the end-to-end tests: what each sandbox holds, what our tables recorded, and
waiting for the engine (a link to appear, the loop to go quiet)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from shared.domain.connections import Connection
from tests.e2e.stack import Stack, eventually

# -- Re-Leased ----------------------------------------------------------------------------------


async def contacts_named(stack: Stack, company: str, name: str) -> list[dict[str, Any]]:
    """The company's contacts (archived too) named ``name``, from every page of the listing."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        query = f"/contacts?includeArchived=true&pageSize=1000&page={page}"
        answer = await stack.released_api(company, "GET", query)
        found.extend(c for c in answer["items"] if c["name"] == name)
        if page >= int(answer.get("pagination", {}).get("pageCount", 1) or 1):
            return found
        page += 1


async def rl_docs(stack: Stack, company: str, path: str = "/invoices") -> list[dict[str, Any]]:
    """Every Re-Leased document at ``path`` (``/invoices`` or ``/credit-notes``)."""
    page = await stack.released_api(company, "GET", f"{path}?pageSize=1000")
    return list(page["items"])


async def rl_doc(stack: Stack, company: str, path: str, doc_id: str) -> dict[str, Any]:
    """One Re-Leased document, read through the public API."""
    found: dict[str, Any] = await stack.released_api(company, "GET", f"{path}/{doc_id}")
    return found


async def rl_payments(stack: Stack, company: str, doc_id: str) -> list[dict[str, Any]]:
    """The Re-Leased payments (reversed ones too) on document ``doc_id``."""
    page = await stack.released_api(company, "GET", "/payments?pageSize=1000")
    return [p for p in page["items"] if p["documentId"] == doc_id]


# -- QBO ----------------------------------------------------------------------------------------


async def qbo_writes(stack: Stack, realm: str, entity: str) -> int:
    """How many writes of ``entity`` the QBO realm received through its API."""
    url = f"{stack.qbo_base}/_sandbox/realms/{realm}/requests?entity={entity}"
    return len([r for r in (await stack.call("GET", url))["requests"] if r["write"]])


# -- our tables ---------------------------------------------------------------------------------


async def link_of(
    pool: asyncpg.Pool, qbo_type: str, qbo_id: str, connection: Connection
) -> asyncpg.Record | None:
    """The link row of a QBO object, if the engine has linked it."""
    async with pool.acquire() as conn:
        return await conn.fetchrow(
            "SELECT * FROM links WHERE qbo_type = $1 AND qbo_id = $2 AND connection_id = $3",
            qbo_type,
            qbo_id,
            connection.id,
        )


async def linked_qbo_id(pool: asyncpg.Pool, entity: str, released_id: str) -> str | None:
    """The QBO id linked to a Re-Leased object, if any (poll it with ``eventually``)."""
    async with pool.acquire() as conn:
        found: str | None = await conn.fetchval(
            "SELECT qbo_id FROM links WHERE entity = $1 AND released_id = $2",
            entity,
            released_id,
        )
        return found


async def outcome_rows(
    pool: asyncpg.Pool, source_id: str, connection: Connection
) -> list[asyncpg.Record]:
    """What the engine recorded for each event about ``source_id``, oldest first."""
    async with pool.acquire() as conn:
        return list(
            await conn.fetch(
                "SELECT outcome, reason, remedy, entity FROM sync_outcomes WHERE source_id = $1 "
                "AND connection_id = $2 ORDER BY id",
                source_id,
                connection.id,
            )
        )


async def flags(pool: asyncpg.Pool, connection: Connection, entity: str) -> int:
    """How many policy flags (a change a person must look at) the engine raised on ``entity``."""
    async with pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM conflicts WHERE connection_id = $1 AND entity = $2 "
            "AND kind = 'policy_flag'",
            connection.id,
            entity,
        )
        return count


# -- waiting ------------------------------------------------------------------------------------


async def linked_released(
    pool: asyncpg.Pool, qbo_type: str, qbo_id: str, connection: Connection
) -> str:
    """Wait until a QBO object is linked; return its Re-Leased id."""

    async def found() -> str | None:
        row = await link_of(pool, qbo_type, qbo_id, connection)
        return str(row["released_id"]) if row else None

    return str(await eventually(found))


async def settle(seconds: float = 2.0) -> None:
    """Give echoes time to travel the whole loop (webhook, queue, engine) before counting."""
    await asyncio.sleep(seconds)
