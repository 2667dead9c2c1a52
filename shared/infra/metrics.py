"""Prometheus metrics of every process, in one place so every layer counts the same way.

Each process exposes its own registry (``prometheus_client``'s default) at ``GET /metrics``: the
receivers and the admin service on their HTTP port, consumers and the reconciler on their ops
port. Labels are low-cardinality words (source, side, entity, direction, outcome, error class,
queue); a connection id appears only on the per-connection gauges the admin service samples.
Names and meanings are listed in docs/operations.md ("Metrics").
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate

# Seconds from our receipt of a change to the other side being brought in line: webhook
# deliveries of a busy minute land in the middle buckets; a retry ladder in the upper ones.
_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600)
_HANDLER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

WEBHOOKS = Counter(
    "sync_webhooks",
    "Webhook deliveries answered by a receiver, by source and HTTP status",
    ["source", "status"],
)
EVENTS = Counter(
    "sync_events",
    "Change events the engine finished, by entity, direction and outcome",
    ["entity", "direction", "outcome"],
)
PROPAGATION = Histogram(
    "sync_propagation_seconds",
    "From our receipt of a change to its outcome being recorded (applied changes only)",
    ["direction"],
    buckets=_LATENCY_BUCKETS,
)
HANDLER = Histogram(
    "sync_handler_seconds",
    "Time one message spent in the consumer (handler and settling), by queue and result",
    ["queue", "result"],
    buckets=_HANDLER_BUCKETS,
)
FAILURES = Counter(
    "sync_failures",
    "Failed attempts by how they ended (retry, dead, parked) and error class",
    ["queue", "result", "error_class"],
)
API_REQUESTS = Counter(
    "sync_api_requests",
    "Requests sent to QBO or Re-Leased, by side and HTTP status (0: no answer)",
    ["side", "status"],
)
API_THROTTLED = Counter(
    "sync_api_throttled",
    "429 answers from QBO or Re-Leased, by side",
    ["side"],
)
API_BUDGET_WAIT = Histogram(
    "sync_api_budget_wait_seconds",
    "Time a request waited for a budget token and a concurrency slot, by side",
    ["side"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60),
)
API_BUDGET_USED = Gauge(
    "sync_api_budget_used_ratio",
    "Share of the burst allowance in use for the busiest realm or company, by side (1: empty)",
    ["side"],
)
API_BUDGET_BLOCKED = Gauge(
    "sync_api_budget_blocked",
    "Realms or companies whose budget is blocked after a 429 right now, by side",
    ["side"],
)
RECONCILE_REPAIRS = Counter(
    "sync_reconcile_repairs",
    "Changes the reconciler found that no webhook announced, by source and entity",
    ["source", "entity"],
)
QUEUE_DEPTH = Gauge(
    "sync_queue_messages",
    "Messages ready in a queue, sampled by the process that watches it",
    ["queue"],
)
CONNECTIONS = Gauge(
    "sync_connections",
    "Connections by status (paused with a reason of re-authorisation counts as needs_reauth)",
    ["status"],
)
CONNECTION_LAG = Gauge(
    "sync_connection_lag_seconds",
    "Age of the oldest change of a connection not yet handled (0: caught up)",
    ["connection_id"],
)
DEAD_LETTERS = Gauge("sync_dead_letters", "Dead letters waiting for a person")
PARKED = Gauge("sync_parked_events", "Events parked for paused or revoked connections")
OPEN_CONFLICTS = Gauge("sync_open_conflicts", "Conflicts not yet resolved")

CONTENT_TYPE = CONTENT_TYPE_LATEST


def exposition() -> bytes:
    """The process's metrics in the Prometheus text format."""
    return _generate(REGISTRY)


def side_of(api_name: str) -> str:
    """``QBO`` / ``Re-Leased`` (the transport's names) as a label value."""
    return "qbo" if api_name.upper() == "QBO" else "released"
