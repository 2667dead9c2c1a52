-- Issue 15. Sync results list each record's latest outcome. Deriving it from the whole history on
-- every page read every outcome of the connection (about 0.3 s a page at 200,000 outcomes over
-- 50,000 records, bench/bench_results.py). This table holds one row per record (connection,
-- direction, entity, source id): its latest outcome and its latest known label. Triggers on
-- sync_outcomes keep it current in the writer's own transaction, so it never disagrees with the
-- history: an insert moves a record's row forward (never back: an outcome older than the one held
-- does not replace it), a delete (retention, or any other) of the outcome a row points at
-- recomputes that record from what is left, or drops it when nothing is left.
CREATE TABLE sync_results_latest (
    connection_id uuid NOT NULL,
    direction text NOT NULL,
    entity text NOT NULL,
    source_id text NOT NULL,
    outcome_id bigint NOT NULL,
    event_id text NOT NULL,
    target_id text,
    outcome text NOT NULL,
    reason text,
    remedy text,
    label text,                        -- the newest non-null label among the record's outcomes
    created_at timestamptz NOT NULL,
    PRIMARY KEY (connection_id, direction, entity, source_id)
);
CREATE UNIQUE INDEX sync_results_latest_outcome ON sync_results_latest (outcome_id);
-- A page is the newest results of one connection.
CREATE INDEX sync_results_latest_recent
    ON sync_results_latest (connection_id, created_at DESC, outcome_id DESC);
-- A page looks up only its own records' links, open dead letters and parked copies.
CREATE INDEX links_results_qbo ON links (connection_id, lower(qbo_type), qbo_id, id);
CREATE INDEX links_results_released ON links (connection_id, released_id, id);
CREATE INDEX dead_letters_results
    ON dead_letters (connection_id, (event->>'entity'), (event->>'entity_id'), id DESC)
    WHERE status = 'dead';
CREATE INDEX parked_events_results ON parked_events (connection_id, (event->>'entity_id'));

-- The newest outcome per record among the rows just inserted, with their newest non-null label.
-- An outcome older than the one held never replaces it; a label it brings only fills a gap.
-- The label is the record's number or name: it stays with the record's row as long as the row
-- is listed, even when retention removed the outcome that carried it.
CREATE FUNCTION sync_results_latest_upsert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH newest AS (
        SELECT DISTINCT ON (connection_id, direction, entity, source_id) *
        FROM added WHERE connection_id IS NOT NULL
        ORDER BY connection_id, direction, entity, source_id, created_at DESC, id DESC
    ), labelled AS (
        SELECT DISTINCT ON (connection_id, direction, entity, source_id)
            connection_id, direction, entity, source_id, label
        FROM added WHERE connection_id IS NOT NULL AND label IS NOT NULL
        ORDER BY connection_id, direction, entity, source_id, created_at DESC, id DESC
    )
    INSERT INTO sync_results_latest AS l (connection_id, direction, entity, source_id, outcome_id,
        event_id, target_id, outcome, reason, remedy, label, created_at)
    SELECT n.connection_id, n.direction, n.entity, n.source_id, n.id, n.event_id, n.target_id,
        n.outcome, n.reason, n.remedy, b.label, n.created_at
    FROM newest n LEFT JOIN labelled b USING (connection_id, direction, entity, source_id)
    -- One lock order for every writer (a batch insert against a single one).
    ORDER BY n.connection_id, n.direction, n.entity, n.source_id
    ON CONFLICT (connection_id, direction, entity, source_id) DO UPDATE SET
        outcome_id = excluded.outcome_id, event_id = excluded.event_id,
        target_id = excluded.target_id, outcome = excluded.outcome, reason = excluded.reason,
        remedy = excluded.remedy, created_at = excluded.created_at,
        label = coalesce(excluded.label, l.label)
    WHERE (excluded.created_at, excluded.outcome_id) > (l.created_at, l.outcome_id);
    UPDATE sync_results_latest l SET label = b.label
    FROM (SELECT DISTINCT ON (connection_id, direction, entity, source_id)
              connection_id, direction, entity, source_id, label
          FROM added WHERE connection_id IS NOT NULL AND label IS NOT NULL
          ORDER BY connection_id, direction, entity, source_id, created_at DESC, id DESC) b
    WHERE l.label IS NULL AND l.connection_id = b.connection_id AND l.direction = b.direction
      AND l.entity = b.entity AND l.source_id = b.source_id;
    RETURN NULL;
END $$;

CREATE FUNCTION sync_results_latest_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        DELETE FROM sync_results_latest l USING removed r WHERE l.outcome_id = r.id
        RETURNING l.connection_id, l.direction, l.entity, l.source_id
    )
    INSERT INTO sync_results_latest (connection_id, direction, entity, source_id, outcome_id,
        event_id, target_id, outcome, reason, remedy, label, created_at)
    SELECT o.connection_id, o.direction, o.entity, o.source_id, o.id, o.event_id, o.target_id,
        o.outcome, o.reason, o.remedy,
        (SELECT b.label FROM sync_outcomes b WHERE b.connection_id = o.connection_id
            AND b.direction = o.direction AND b.entity = o.entity AND b.source_id = o.source_id
            AND b.label IS NOT NULL ORDER BY b.created_at DESC, b.id DESC LIMIT 1),
        o.created_at
    FROM gone g CROSS JOIN LATERAL (
        SELECT * FROM sync_outcomes s WHERE s.connection_id = g.connection_id
          AND s.direction = g.direction AND s.entity = g.entity AND s.source_id = g.source_id
        ORDER BY s.created_at DESC, s.id DESC LIMIT 1) o
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER sync_outcomes_latest_insert AFTER INSERT ON sync_outcomes
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT
    EXECUTE FUNCTION sync_results_latest_upsert();
CREATE TRIGGER sync_outcomes_latest_delete AFTER DELETE ON sync_outcomes
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT
    EXECUTE FUNCTION sync_results_latest_forget();

-- What the history holds today.
INSERT INTO sync_results_latest (connection_id, direction, entity, source_id, outcome_id,
    event_id, target_id, outcome, reason, remedy, label, created_at)
SELECT DISTINCT ON (o.connection_id, o.direction, o.entity, o.source_id)
    o.connection_id, o.direction, o.entity, o.source_id, o.id, o.event_id, o.target_id,
    o.outcome, o.reason, o.remedy,
    (SELECT b.label FROM sync_outcomes b WHERE b.connection_id = o.connection_id
        AND b.direction = o.direction AND b.entity = o.entity AND b.source_id = o.source_id
        AND b.label IS NOT NULL ORDER BY b.created_at DESC, b.id DESC LIMIT 1),
    o.created_at
FROM sync_outcomes o WHERE o.connection_id IS NOT NULL
ORDER BY o.connection_id, o.direction, o.entity, o.source_id, o.created_at DESC, o.id DESC;

-- Resolving a field conflict by choosing a side goes through the engine (a change event carries
-- it): the side chosen and by whom are kept here until the engine has made both sides hold that
-- side's value and closes the conflict; ``resolution`` says what it wrote, or why it could not.
ALTER TABLE conflicts
    ADD COLUMN requested_side text CHECK (requested_side IN ('qbo', 'released')),
    ADD COLUMN requested_by text,
    ADD COLUMN requested_at timestamptz,
    ADD COLUMN resolution text;
