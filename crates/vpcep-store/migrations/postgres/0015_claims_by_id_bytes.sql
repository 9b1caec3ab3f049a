-- Fewer bytes per claim: the port claims keep the backend port's id and the service's id as
-- their 16 bytes instead of 36 characters of text (as on SQLite, where a smaller row means
-- fewer pages written per create). A claim whose id is not a UUID fails the migration.
ALTER TABLE service_port_claims
    ALTER COLUMN port_id TYPE BYTEA USING decode(replace(port_id, '-', ''), 'hex'),
    ALTER COLUMN service_id TYPE BYTEA USING decode(replace(service_id, '-', ''), 'hex');
ALTER TABLE service_port_claims
    ADD CONSTRAINT service_port_claims_ids_are_uuids
    CHECK (octet_length(port_id) = 16 AND octet_length(service_id) = 16);
