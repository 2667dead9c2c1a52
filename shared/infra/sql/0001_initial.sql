-- Initial schema: the tables architecture.md lists. Later changes come as new files.

-- One row per Re-Leased company <-> QBO realm binding. The binding is written once (trigger below).
CREATE TABLE connections (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    released_company_id text NOT NULL UNIQUE,
    qbo_realm_id text UNIQUE,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'active', 'paused', 'revoked')),
    status_reason text,
    qbo_tokens bytea,              -- Fernet-encrypted JSON (access + refresh token, expiries)
    qbo_tokens_version integer NOT NULL DEFAULT 0,
    released_credentials bytea,    -- Fernet-encrypted JSON
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION connections_binding_is_write_once() RETURNS trigger AS $$
BEGIN
    IF OLD.qbo_realm_id IS NOT NULL AND NEW.qbo_realm_id IS DISTINCT FROM OLD.qbo_realm_id THEN
        RAISE EXCEPTION 'connection % is bound to realm % forever', OLD.id, OLD.qbo_realm_id
            USING ERRCODE = 'check_violation', HINT = 'ONE_TO_ONE_CONNECTION';
    END IF;
    IF NEW.released_company_id IS DISTINCT FROM OLD.released_company_id THEN
        RAISE EXCEPTION 'connection % is bound to company % forever', OLD.id, OLD.released_company_id
            USING ERRCODE = 'check_violation', HINT = 'ONE_TO_ONE_CONNECTION';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER connections_write_once
    BEFORE UPDATE ON connections
    FOR EACH ROW EXECUTE FUNCTION connections_binding_is_write_once();

-- Webhook inbox: dedupe on event_id and transactional outbox for the relay.
CREATE TABLE inbox (
    event_id text PRIMARY KEY,
    source text NOT NULL CHECK (source IN ('qbo', 'released')),
    connection_id uuid REFERENCES connections (id),
    account_id text NOT NULL,      -- QBO realm id or Re-Leased company id
    entity text NOT NULL,
    entity_id text NOT NULL,
    operation text NOT NULL,
    origin text NOT NULL DEFAULT 'webhook' CHECK (origin IN ('webhook', 'reconciler', 'replay')),
    routing_key text NOT NULL,
    event jsonb NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'published', 'ignored')),
    ignore_reason text,
    received_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX inbox_pending ON inbox (received_at) WHERE status = 'pending';
CREATE INDEX inbox_record ON inbox (source, account_id, entity, entity_id);

-- One row per linked record pair. A contact that is both customer and supplier has two rows
-- (one per QBO type) sharing the Re-Leased id.
CREATE TABLE links (
    id bigserial PRIMARY KEY,
    connection_id uuid NOT NULL REFERENCES connections (id),
    entity text NOT NULL,          -- canonical entity (contact, invoice, ...)
    qbo_type text NOT NULL,        -- QBO entity name (Customer, Vendor, Invoice, ...)
    qbo_id text,
    released_id text,
    qbo_version text,              -- SyncToken last seen/written
    released_version text,         -- version last seen/written
    snapshot jsonb,                -- last-synced canonical fields (the merge base)
    snapshot_hash text,
    status text NOT NULL DEFAULT 'linked'
        CHECK (status IN ('linked', 'unlinked', 'error', 'voided')),
    last_error text,
    last_synced_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, qbo_type, qbo_id),
    UNIQUE (connection_id, entity, qbo_type, released_id)
);

-- What we wrote, so our own writes are recognised when they come back as notifications.
CREATE TABLE write_ledger (
    id bigserial PRIMARY KEY,
    connection_id uuid NOT NULL REFERENCES connections (id),
    side text NOT NULL CHECK (side IN ('qbo', 'released')),
    entity text NOT NULL,
    record_id text NOT NULL,
    version text,
    content_hash text NOT NULL,
    event_id text,
    written_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX write_ledger_record ON write_ledger (connection_id, side, record_id, written_at DESC);

CREATE TABLE conflicts (
    id bigserial PRIMARY KEY,
    connection_id uuid NOT NULL REFERENCES connections (id),
    link_id bigint REFERENCES links (id),
    entity text NOT NULL,
    event_id text,
    kind text NOT NULL,            -- field_conflict, policy_flag, ...
    fields jsonb NOT NULL DEFAULT '{}'::jsonb,
    winner text,
    detail text,
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    resolved_by text
);
CREATE INDEX conflicts_open ON conflicts (connection_id, created_at) WHERE resolved_at IS NULL;

-- Mirror of the sync.dead queue, with what operators need to decide on a replay.
CREATE TABLE dead_letters (
    id bigserial PRIMARY KEY,
    event_id text NOT NULL,
    routing_key text NOT NULL,
    queue text NOT NULL,
    connection_id uuid,
    event jsonb NOT NULL,
    error_class text NOT NULL,
    error text NOT NULL,
    remedy text,
    attempts integer NOT NULL DEFAULT 1,
    history jsonb NOT NULL DEFAULT '[]'::jsonb,
    replay_count integer NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'replayed', 'purged')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, queue)
);
CREATE INDEX dead_letters_status ON dead_letters (status, created_at);

-- Reconciler high-water marks, one per connection and stream.
CREATE TABLE cursors (
    connection_id uuid NOT NULL REFERENCES connections (id),
    name text NOT NULL,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, name)
);
