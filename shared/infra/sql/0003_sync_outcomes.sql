-- Per-record outcome of every change the engine handled: the sync status people look at.
CREATE TABLE sync_outcomes (
    id bigserial PRIMARY KEY,
    connection_id uuid REFERENCES connections (id),
    event_id text NOT NULL,
    direction text NOT NULL,
    entity text NOT NULL,
    source_id text NOT NULL,
    target_id text,
    outcome text NOT NULL
        CHECK (outcome IN ('applied', 'echo', 'ignored', 'reverted', 'flagged', 'error')),
    reason text,
    remedy text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_outcomes_record ON sync_outcomes (connection_id, entity, source_id, created_at);
CREATE INDEX sync_outcomes_recent ON sync_outcomes (created_at);
