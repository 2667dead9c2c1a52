-- The send times of each key's recent requests (at most one limit's worth, oldest first), so the
-- budget can refuse a request that would make any sliding window hold more than the limit; the
-- token bucket then only smooths, and may refill at nearly the whole limit.
ALTER TABLE api_budgets ADD COLUMN hits timestamptz[] NOT NULL DEFAULT '{}';
