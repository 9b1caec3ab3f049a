-- vpcep schema, SQLite dialect. The PostgreSQL file of the same name must stay equivalent.

-- The account created on first start when no accounts file is given (TOML, accounts-file format).
CREATE TABLE default_account (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    toml TEXT NOT NULL
);

-- Per-project resource counts: quota checks and unfiltered list totals read them.
CREATE TABLE project_usage (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    used BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);

CREATE TABLE endpoint_services (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    domain_id TEXT NOT NULL,
    short_name TEXT,
    full_name TEXT NOT NULL,
    port_id TEXT NOT NULL,
    vpc_id TEXT NOT NULL,
    server_type TEXT NOT NULL,
    service_type TEXT NOT NULL,
    approval_enabled BIGINT NOT NULL,
    status TEXT NOT NULL,
    tcp_proxy TEXT NOT NULL,
    ports TEXT NOT NULL,
    description TEXT NOT NULL,
    ip TEXT,
    ip_version TEXT NOT NULL,
    snat_network_id TEXT,
    enable_policy BIGINT NOT NULL,
    supported_editions TEXT NOT NULL,
    error_code TEXT,
    error_message TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    status_at BIGINT NOT NULL,
    CONSTRAINT endpoint_services_id_key UNIQUE (id)
);
CREATE INDEX endpoint_services_project_created_idx ON endpoint_services (project_id, created_at, seq);
CREATE INDEX endpoint_services_project_updated_idx ON endpoint_services (project_id, updated_at, seq);
CREATE INDEX endpoint_services_project_status_idx ON endpoint_services (project_id, status, created_at, seq);
CREATE INDEX endpoint_services_domain_created_idx ON endpoint_services (domain_id, created_at, seq);
CREATE INDEX endpoint_services_full_name_idx ON endpoint_services (full_name);
CREATE INDEX endpoint_services_status_idx ON endpoint_services (status, status_at);

-- One row per (backend port, protocol, side, port number) a service uses: services that share a
-- port_id may not repeat a client port or a server port of the same protocol. The primary key
-- enforces it under concurrency.
CREATE TABLE service_port_claims (
    port_id TEXT NOT NULL,
    protocol TEXT NOT NULL,
    side TEXT NOT NULL,
    port BIGINT NOT NULL,
    service_id TEXT NOT NULL,
    CONSTRAINT service_port_claims_pkey PRIMARY KEY (port_id, protocol, side, port)
);
CREATE INDEX service_port_claims_service_idx ON service_port_claims (service_id);

CREATE TABLE resource_tags (
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (resource_type, resource_id, key)
);
CREATE INDEX resource_tags_project_idx ON resource_tags (project_id, resource_type, key, value);
