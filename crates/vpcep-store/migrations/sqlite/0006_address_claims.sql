-- Data-plane address ownership. Every address the data plane listens on (an interface endpoint's
-- ip) or connects to (an endpoint service's backend) is held by exactly one VPC per address space
-- ('host' for VPCs without a network namespace, 'netns:<name>' otherwise); resources of that VPC
-- share the claim (refs). The primary key makes the first claimant the owner under concurrency.
CREATE TABLE address_claims (
    space TEXT NOT NULL,
    ip TEXT NOT NULL,
    ipn BIGINT NOT NULL,
    vpc_id TEXT NOT NULL,
    refs BIGINT NOT NULL,
    PRIMARY KEY (space, ip)
);
-- Range reads (the addresses of a subnet held by other VPCs).
CREATE INDEX address_claims_range_idx ON address_claims (space, ipn);

-- An interface endpoint's address space (NULL: not yet evaluated) and whether it holds its claim.
ALTER TABLE endpoints ADD COLUMN addr_space TEXT;
ALTER TABLE endpoints ADD COLUMN addr_held BIGINT NOT NULL DEFAULT 0;
-- A service's backend address (NULL ip: a domain name, or not yet evaluated when the space is
-- NULL too) and whether it holds its claim.
ALTER TABLE endpoint_services ADD COLUMN backend_space TEXT;
ALTER TABLE endpoint_services ADD COLUMN backend_ip TEXT;
ALTER TABLE endpoint_services ADD COLUMN backend_held BIGINT NOT NULL DEFAULT 0;

-- The few resources that do not hold their claim (waiting for it, or never evaluated).
CREATE INDEX endpoints_addr_waiting_idx ON endpoints (addr_space, ip) WHERE addr_held = 0 AND ip IS NOT NULL;
CREATE INDEX endpoint_services_backend_waiting_idx ON endpoint_services (backend_space, backend_ip) WHERE backend_held = 0;
