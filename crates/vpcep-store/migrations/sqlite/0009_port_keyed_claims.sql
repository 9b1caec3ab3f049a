-- Fewer pages written per create. In a profile of creates (256 clients on 256 backend ports),
-- 340 of the 405 pages each commit wrote were leaves of two b-trees keyed by port_id:
-- - endpoint_services_port_idx goes: every service holds claims on its port_id (a service has
--   at least one port mapping, and its claims live as long as its row), so the claims' primary
--   key answers "which services use this port" too.
-- - The claims' key puts the port number before the side, so that a mapping whose client and
--   server ports are equal (443 -> 443) writes its two claims on one leaf instead of two. The
--   key holds the same columns: the same claims conflict.
DROP INDEX endpoint_services_port_idx;
CREATE TABLE service_port_claims_by_port (
    port_id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    side TEXT NOT NULL,
    port BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    CONSTRAINT service_port_claims_pkey PRIMARY KEY (port_id, protocol, port, side)
) WITHOUT ROWID;
INSERT INTO service_port_claims_by_port (port_id, protocol, side, port, service_id)
SELECT port_id, protocol, side, port, service_id FROM service_port_claims;
DROP TABLE service_port_claims;
ALTER TABLE service_port_claims_by_port RENAME TO service_port_claims;
CREATE INDEX service_port_claims_service_idx ON service_port_claims (service_id);
