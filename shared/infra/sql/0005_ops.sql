-- Operations: parked events for paused connections, and indexes the ops queries lean on.

-- Work for a connection that cannot run right now (paused, or its grant is dead). Parking, not
-- retrying, keeps such events from burning attempts; resume republishes them in ``id`` order.
CREATE TABLE parked_events (
    id bigserial PRIMARY KEY,
    connection_id uuid NOT NULL REFERENCES connections (id),
    event_id text NOT NULL,
    queue text NOT NULL,
    routing_key text NOT NULL,
    event jsonb NOT NULL,
    reason text NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, queue)
);
CREATE INDEX parked_events_connection ON parked_events (connection_id, id);

-- dlq list / replay / purge filter by connection and time; status pages count per connection.
CREATE INDEX dead_letters_connection ON dead_letters (connection_id, status, created_at);
-- Lag (syncctl status): a connection's recent inbox events, and whether each was handled yet.
-- One more index on the inbox costs each webhook insert a little; status must not scan the inbox.
CREATE INDEX inbox_connection_received ON inbox (connection_id, received_at);
CREATE INDEX sync_outcomes_event ON sync_outcomes (event_id);
