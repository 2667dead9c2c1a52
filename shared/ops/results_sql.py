"""The SQL behind sync results (``shared.ops.results``); $1 is the connection.

Each record's latest outcome comes from ``sync_results_latest`` (kept by triggers on
``sync_outcomes``, migration 0018), never from the history. Two shapes read it:
- ``PAGE`` when every filter is on that table (the usual listing: newest first, by entity,
  outcome, direction, time): it takes one page in index order and looks up only that page's
  links, dead letters and parked copies, and ``COUNT`` counts the matches on the table alone;
- ``SEARCH`` when a filter needs the joined columns (text on either side's id, number or name;
  error class): the records that filter can match are found first (``_CANDIDATES``), and only
  those are joined and filtered exactly.
bench/bench_results.py measures both beside the history-derived query they replace.
"""

from __future__ import annotations

# $2 entity, $3 outcome, $6/$7 time range, $8 direction, $9 source id.
_PICKED = """
    SELECT l.outcome_id AS id, l.event_id, l.direction, l.entity, l.source_id, l.target_id,
        l.outcome, l.reason, l.remedy, l.created_at, l.label AS outcome_label
    FROM sync_results_latest l
    WHERE l.connection_id = $1
      AND ($8::text IS NULL OR l.direction = $8) AND ($2::text IS NULL OR l.entity = $2)
      AND ($9::text IS NULL OR l.source_id = $9)
      AND ($3::text IS NULL OR l.outcome = $3)
      AND ($6::timestamptz IS NULL OR l.created_at >= $6)
      AND ($7::timestamptz IS NULL OR l.created_at < $7)
"""

_COLUMNS = """
    p.*, coalesce(q.id, r.id) AS link_id, coalesce(q.qbo_type, r.qbo_type) AS qbo_type,
    coalesce(q.qbo_id, r.qbo_id) AS qbo_id,
    coalesce(q.released_id, r.released_id) AS released_id,
    coalesce(q.status, r.status) AS link_status,
    coalesce(q.last_synced_at, r.last_synced_at) AS last_synced_at,
    coalesce(q.snapshot->>'number', r.snapshot->>'number', q.snapshot->>'name',
             r.snapshot->>'name', p.outcome_label) AS label,
    d.id AS dead_letter_id, d.error_class, d.remedy AS dead_letter_remedy
"""

# Records a text ($5) or error-class ($4) filter can match, found without joining every record:
# the latest row's own ids and label, the links whose ids, number or name match (mapped to the
# records they join in ``_ROW``), the records with a dead letter of that class. A superset: the
# exact filter runs on the joined rows.
_CANDIDATES = """
    AND ($5::text IS NULL OR (l.direction, l.source_id) IN (
        SELECT 'qbo_to_released', k.qbo_id FROM links k WHERE k.connection_id = $1
          AND (k.qbo_id ILIKE $5 OR k.released_id ILIKE $5 OR k.snapshot->>'number' ILIKE $5
               OR k.snapshot->>'name' ILIKE $5)
        UNION ALL
        SELECT 'released_to_qbo', k.released_id FROM links k WHERE k.connection_id = $1
          AND (k.qbo_id ILIKE $5 OR k.released_id ILIKE $5 OR k.snapshot->>'number' ILIKE $5
               OR k.snapshot->>'name' ILIKE $5)
        UNION ALL
        SELECT m.direction, m.source_id FROM sync_results_latest m WHERE m.connection_id = $1
          AND (m.source_id ILIKE $5 OR m.target_id ILIKE $5 OR m.label ILIKE $5)))
    AND ($4::text IS NULL OR (l.entity, l.source_id) IN (
        SELECT x.event->>'entity', x.event->>'entity_id' FROM dead_letters x
        WHERE x.connection_id = $1 AND x.status = 'dead' AND x.error_class = $4))
"""

# One record's joined row: the first link by id on either side, its open dead letter (the
# newest), whether a copy is parked; each looked up by index for the records in ``picked``.
_ROW = f"""
SELECT {_COLUMNS},
    EXISTS (SELECT 1 FROM parked_events pk WHERE pk.connection_id = $1
            AND pk.event->>'entity_id' = p.source_id) AS parked
FROM picked p
LEFT JOIN LATERAL (
    SELECT * FROM links k WHERE p.direction = 'qbo_to_released' AND k.connection_id = $1
      AND lower(k.qbo_type) = p.entity AND k.qbo_id = p.source_id ORDER BY k.id LIMIT 1
) q ON true
LEFT JOIN LATERAL (
    SELECT * FROM links k WHERE p.direction = 'released_to_qbo' AND k.connection_id = $1
      AND k.released_id = p.source_id ORDER BY k.id LIMIT 1
) r ON true
LEFT JOIN LATERAL (
    SELECT id, error_class, remedy FROM dead_letters x WHERE x.connection_id = $1
      AND x.status = 'dead' AND x.event->>'entity' = p.entity
      AND x.event->>'entity_id' = p.source_id ORDER BY x.id DESC LIMIT 1
) d ON true
"""  # noqa: S608 - fixed fragments only

# No text or error-class filter: one page in index order, then its rows ($4 and $5 unused).
PAGE = f"""
WITH picked AS ({_PICKED}
    ORDER BY l.created_at DESC, l.outcome_id DESC
    LIMIT $10 OFFSET $11
)
{_ROW}
WHERE $4::text IS NULL AND $5::text IS NULL
ORDER BY p.created_at DESC, p.id DESC
"""

# A text or error-class filter: the candidates' rows, filtered exactly, counted, paged.
SEARCH = f"""
WITH picked AS ({_PICKED}{_CANDIDATES}
), joined AS ({_ROW})
SELECT *, count(*) OVER () AS total FROM joined
WHERE ($4::text IS NULL OR error_class = $4)
  AND ($5::text IS NULL OR source_id ILIKE $5 OR target_id ILIKE $5 OR qbo_id ILIKE $5
       OR released_id ILIKE $5 OR label ILIKE $5)
ORDER BY created_at DESC, id DESC
LIMIT $10 OFFSET $11
"""  # noqa: S608 - built from this module's fixed fragments only

COUNT = f"SELECT count(*) FROM ({_PICKED}) c WHERE $4::text IS NULL AND $5::text IS NULL"  # noqa: S608
