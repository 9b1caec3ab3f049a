-- Consumers: endpoints, service permissions (whitelists of accounts), backend resources.

CREATE TABLE endpoints (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    domain_id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    service_type TEXT NOT NULL,
    vpc_id TEXT NOT NULL,
    subnet_id TEXT,
    ip TEXT,
    ever_accepted BIGINT NOT NULL,
    status TEXT NOT NULL,
    marker_id BIGINT NOT NULL,
    enable_dns BIGINT NOT NULL,
    dns_names TEXT NOT NULL,
    whitelist TEXT NOT NULL,
    enable_whitelist BIGINT NOT NULL,
    routetables TEXT NOT NULL,
    description TEXT NOT NULL,
    connection_description TEXT NOT NULL,
    policy_statement TEXT,
    policy_document TEXT,
    specification_name TEXT NOT NULL,
    ip_version TEXT NOT NULL,
    ipv6_address TEXT,
    error_code TEXT,
    error_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    status_at BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT endpoints_id_key UNIQUE (id)
);
CREATE INDEX endpoints_project_created_idx ON endpoints (project_id, created_at, seq);
CREATE INDEX endpoints_project_updated_idx ON endpoints (project_id, updated_at, seq);
CREATE INDEX endpoints_service_created_idx ON endpoints (service_id, created_at, seq);
CREATE INDEX endpoints_service_updated_idx ON endpoints (service_id, updated_at, seq);
CREATE INDEX endpoints_status_idx ON endpoints (status, status_at);
CREATE UNIQUE INDEX endpoints_marker_id_key ON endpoints (marker_id);

-- Who may connect to a service besides its owner.
CREATE TABLE service_permissions (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    service_id TEXT NOT NULL,
    permission TEXT NOT NULL,
    permission_type TEXT NOT NULL,
    description TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT service_permissions_id_key UNIQUE (id),
    CONSTRAINT service_permissions_service_permission_key UNIQUE (service_id, permission)
);
CREATE INDEX service_permissions_service_idx ON service_permissions (service_id, created_at, seq);

-- Backend resources added through the v2 add-server-resources call (JSON list).
ALTER TABLE endpoint_services ADD COLUMN server_resources TEXT NOT NULL DEFAULT '[]';

-- Named counters (e.g. the next endpoint marker_id), incremented atomically in transactions.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('marker_id', 16777216);
