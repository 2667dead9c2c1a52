-- When a bulk caller (an import, a bulk replay) last spent a token for the key. Bulk sends are
-- spaced at least a little under the window's even pace apart, so the window never fills in
-- bunches that leave it in bunches a minute later: a live request that finds the window full
-- then waits for the next place to free, about a second, not for the next bunch.
ALTER TABLE api_budgets ADD COLUMN paced_at timestamptz;
