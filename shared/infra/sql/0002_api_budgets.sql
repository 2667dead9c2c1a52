-- Per-account API budgets shared by every replica (guarantee 10).
-- A token bucket per key (e.g. "qbo:<realm>") and a fixed set of concurrency slots with leases.
CREATE TABLE api_budgets (
    key text PRIMARY KEY,
    tokens double precision NOT NULL,
    refilled_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    blocked_until timestamptz
);

CREATE TABLE api_slots (
    key text NOT NULL,
    slot integer NOT NULL,
    holder text,
    expires_at timestamptz,
    PRIMARY KEY (key, slot)
);
