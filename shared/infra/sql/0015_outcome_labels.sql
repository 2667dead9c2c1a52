-- The number or name of the record an outcome is about (INV-1042, "Harbour Cafe"), as the engine
-- read it from the source side: support staff search sync results by it, also for records that
-- never got a link (a create that failed). NULL when the engine did not read the record.
ALTER TABLE sync_outcomes ADD COLUMN label text;
-- Sync results take the latest outcome (and the latest label) per record of a connection; these
-- let PostgreSQL read them in order instead of sorting every outcome of the connection
-- (bench/bench_results.py, 200,000 outcomes over 50,000 records: about 0.3 s a page; 75 s with
-- per-record subqueries, 1.2 s set-based without these indexes).
CREATE INDEX sync_outcomes_latest
    ON sync_outcomes (connection_id, direction, entity, source_id, created_at DESC, id DESC);
CREATE INDEX sync_outcomes_labels
    ON sync_outcomes (connection_id, direction, entity, source_id, created_at DESC)
    WHERE label IS NOT NULL;
