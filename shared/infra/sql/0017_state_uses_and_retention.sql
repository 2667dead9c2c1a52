-- Issue 17. An OAuth state is accepted once: its fingerprint is recorded on first use and the
-- retention job drops it after it has expired anyway.
CREATE TABLE oauth_state_uses (
    fingerprint text PRIMARY KEY,          -- sha256 of the state, hex
    used_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX oauth_state_uses_expiry ON oauth_state_uses (expires_at);

-- Retention deletes settled inbox rows by age in batches; pending rows are never touched.
CREATE INDEX inbox_settled_received ON inbox (received_at) WHERE status <> 'pending';
-- ... and dead letters by status and age (purged, replayed).
CREATE INDEX dead_letters_updated ON dead_letters (status, updated_at);
-- ... and the echo-suppression ledger and twin records by age.
CREATE INDEX write_ledger_written ON write_ledger (written_at);
CREATE INDEX created_twins_created ON created_twins (created_at);
