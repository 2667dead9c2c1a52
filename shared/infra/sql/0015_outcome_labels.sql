-- The number or name of the record an outcome is about (INV-1042, "Harbour Cafe"), as the engine
-- read it from the source side: support staff search sync results by it, also for records that
-- never got a link (a create that failed). NULL when the engine did not read the record.
ALTER TABLE sync_outcomes ADD COLUMN label text;
CREATE INDEX sync_outcomes_label ON sync_outcomes (connection_id, lower(label)) WHERE label IS NOT NULL;
