"""Retention: what the tables may forget, and the job that forgets it in small batches.

Without it every table only grows (issue 17 measured about 0.89 GB of inbox and 0.35 GB of
``sync_outcomes`` per million events). Each rule deletes rows older than its setting, at most
``batch_rows`` per statement and transaction, with a pause between batches, so the job never
holds long locks or floods the WAL; a setting of 0 days keeps that table forever.

What is never deleted, whatever the settings:
- inbox rows still ``pending`` (the relay has not published them);
- inbox rows of an event that has an open dead letter or a parked copy (replay and resume
  look at them through the status views);
- dead letters still ``dead`` (only ``purged`` and ``replayed`` ones age out);
- OAuth state records before their state expired (single use would lapse).
Dedupe needs an inbox row only while a sender may redeliver (hours for both platforms) and the
reconciler's overlap window (minutes); the 14-day default keeps it well past both. Echo
suppression and twin lookups read ``write_ledger`` and ``created_twins`` for the recent past;
their defaults keep 30 and 90 days.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from shared.infra.logging import get_logger

log = get_logger(__name__)

_KEEP_INBOX = (
    "status <> 'pending' "
    "AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.event_id = t.event_id "
    "AND d.status = 'dead') "
    "AND NOT EXISTS (SELECT 1 FROM parked_events p WHERE p.event_id = t.event_id)"
)

# name -> (table, age column, extra condition); the age limit comes from the policy.
RULES: dict[str, tuple[str, str, str]] = {
    "inbox": ("inbox", "received_at", _KEEP_INBOX),
    "inbox_unknown_accounts": (
        "inbox",
        "received_at",
        "status = 'ignored' AND ignore_reason = 'no_connection'",
    ),
    "sync_outcomes": ("sync_outcomes", "created_at", "true"),
    "write_ledger": ("write_ledger", "written_at", "true"),
    "created_twins": ("created_twins", "created_at", "true"),
    "dead_letters": ("dead_letters", "updated_at", "status IN ('purged', 'replayed')"),
}


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep, per rule (0 keeps forever), and how the job paces itself."""

    inbox_days: float = 14
    inbox_unknown_accounts_days: float = 2
    sync_outcomes_days: float = 30
    write_ledger_days: float = 30
    created_twins_days: float = 90
    dead_letters_days: float = 30
    batch_rows: int = 5000
    pause_s: float = 0.05

    def days(self, rule: str) -> float:
        value: float = getattr(self, f"{rule}_days")
        return value


def _batch_sql(table: str, column: str, condition: str) -> str:
    return (
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("  # noqa: S608 - names from RULES only
        f"SELECT ctid FROM {table} t WHERE t.{column} < now() - make_interval(secs => $1) "
        f"AND {condition} LIMIT $2))"
    )


async def _prune_rule(pool: asyncpg.Pool, rule: str, policy: RetentionPolicy) -> int:
    table, column, condition = RULES[rule]
    sql = _batch_sql(table, column, condition)
    age_s = policy.days(rule) * 86400.0
    total = 0
    while True:
        async with pool.acquire() as conn:
            status = await conn.execute(sql, age_s, policy.batch_rows)
        deleted = int(status.rsplit(" ", 1)[-1])
        total += deleted
        if deleted < policy.batch_rows:
            return total
        await asyncio.sleep(policy.pause_s)


async def prune(pool: asyncpg.Pool, policy: RetentionPolicy) -> dict[str, int]:
    """One pass over every rule; the rows deleted per rule."""
    counts: dict[str, int] = {}
    for rule in RULES:
        if policy.days(rule) > 0:
            counts[rule] = await _prune_rule(pool, rule, policy)
    async with pool.acquire() as conn:
        status = await conn.execute("DELETE FROM oauth_state_uses WHERE expires_at < now()")
    counts["oauth_state_uses"] = int(status.rsplit(" ", 1)[-1])
    log.info("retention_pruned", **counts)
    return counts


async def run_retention(
    pool: asyncpg.Pool, policy: RetentionPolicy, interval_s: float, stop: asyncio.Event
) -> None:
    """Prune now and every ``interval_s`` until ``stop``; a failed pass is logged and retried."""
    while not stop.is_set():
        try:
            await prune(pool, policy)
        except Exception as exc:  # the job's outermost boundary: log it, try again later
            log.warning("retention_failed", error=f"{type(exc).__name__}: {exc}"[:200])
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            continue
