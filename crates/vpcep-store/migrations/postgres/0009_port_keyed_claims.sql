-- See the SQLite file of the same name: the port index of endpoint_services goes (the claims'
-- primary key answers which services use a port), and the claims' key puts the port number
-- before the side (same columns, so the same claims conflict).
DROP INDEX endpoint_services_port_idx;
ALTER TABLE service_port_claims DROP CONSTRAINT service_port_claims_pkey;
ALTER TABLE service_port_claims
    ADD CONSTRAINT service_port_claims_pkey PRIMARY KEY (port_id, protocol, port, side);
