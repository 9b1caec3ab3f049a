-- Fewer pages written per create. A service's port claims are keyed rows: stored WITHOUT ROWID
-- the primary key is the table (one b-tree per claim instead of a rowid table plus its key
-- index). PostgreSQL's file of the same name changes nothing (a heap with its key index is how
-- PostgreSQL stores every table).
CREATE TABLE service_port_claims_compact (
    port_id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    side TEXT NOT NULL,
    port BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    CONSTRAINT service_port_claims_pkey PRIMARY KEY (port_id, protocol, side, port)
) WITHOUT ROWID;
INSERT INTO service_port_claims_compact (port_id, protocol, side, port, service_id)
SELECT port_id, protocol, side, port, service_id FROM service_port_claims;
DROP TABLE service_port_claims;
ALTER TABLE service_port_claims_compact RENAME TO service_port_claims;
CREATE INDEX service_port_claims_service_idx ON service_port_claims (service_id);
