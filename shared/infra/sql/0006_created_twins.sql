-- Twins the engine created on one side, written outside the handler's transaction the moment the
-- create returns. When that transaction then fails (a deadlock, a refused follow-up write, a
-- crash), the link goes with it but this row stays, so the twin's own notification can still tell
-- it is ours and link it instead of syncing it back as new (a duplicate on the first side).
CREATE TABLE created_twins (
    connection_id uuid NOT NULL REFERENCES connections (id),
    side text NOT NULL CHECK (side IN ('qbo', 'released')),  -- where the twin was created
    entity text NOT NULL,                                      -- links.entity
    record_id text NOT NULL,                                   -- the twin's id on that side
    source_id text NOT NULL,                                   -- what it was made from
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, side, entity, record_id)
);
-- Before creating, a handler asks whether an earlier attempt already made a twin of its record.
CREATE INDEX created_twins_source ON created_twins (connection_id, side, entity, source_id);
