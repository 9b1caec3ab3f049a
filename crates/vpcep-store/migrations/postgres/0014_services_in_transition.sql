-- Fewer pages written per create: the reconciler's index on (status, status_at) holds only the
-- services it waits on, those `creating` or `deleting`. A service with nothing to wait for is
-- stored `available` at once and never enters it; before, every create wrote its entry (about
-- 2 of the 40 pages each 32-client create commit wrote, bench/wal-pages.py). The reconciler's
-- queries repeat the index's condition: SQLite uses a partial index only for a query whose
-- WHERE clause contains that condition as written. Both dialects.
DROP INDEX endpoint_services_status_idx;
CREATE INDEX endpoint_services_transition_idx ON endpoint_services (status, status_at)
    WHERE status IN ('creating', 'deleting');
