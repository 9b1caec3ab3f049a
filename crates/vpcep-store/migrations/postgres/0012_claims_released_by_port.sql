-- Fewer pages written per create: a service's port claims are released by their port_id and
-- service id (`DELETE ... WHERE port_id = $1 AND service_id = $2`, a range of the primary key,
-- which starts with port_id), so the index on service_id alone goes. In a profile of creates
-- (bench/wal-pages.py, 32 clients) it took 3.6 of the 44 pages each commit wrote. Both dialects
-- drop it.
DROP INDEX service_port_claims_service_idx;
