-- Network inventory: VPCs, subnets, ports and the addresses allocated in subnets.

CREATE TABLE vpcs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    cidr TEXT NOT NULL,
    routes TEXT NOT NULL,
    enterprise_project_id TEXT NOT NULL,
    usage_metrics BIGINT NOT NULL,
    vni BIGINT NOT NULL,
    netns TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT vpcs_id_key UNIQUE (id)
);
CREATE INDEX vpcs_project_idx ON vpcs (project_id, seq);
CREATE UNIQUE INDEX vpcs_project_name_key ON vpcs (project_id, name) WHERE name <> '';

CREATE TABLE subnets (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    neutron_subnet_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    vpc_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    cidr TEXT NOT NULL,
    gateway_ip TEXT NOT NULL,
    dhcp_enable BIGINT NOT NULL,
    primary_dns TEXT,
    secondary_dns TEXT,
    dns_list TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    extra_dhcp_opts TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT subnets_id_key UNIQUE (id),
    CONSTRAINT subnets_neutron_subnet_id_key UNIQUE (neutron_subnet_id)
);
CREATE INDEX subnets_project_idx ON subnets (project_id, seq);
CREATE INDEX subnets_vpc_idx ON subnets (vpc_id);

CREATE TABLE ports (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    subnet_id TEXT NOT NULL,
    neutron_subnet_id TEXT NOT NULL,
    vpc_id TEXT NOT NULL,
    name TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    mac_address TEXT NOT NULL,
    device_owner TEXT NOT NULL,
    device_id TEXT NOT NULL,
    admin_state_up BIGINT NOT NULL,
    security_groups TEXT NOT NULL,
    allowed_address_pairs TEXT NOT NULL,
    extra_dhcp_opts TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT ports_id_key UNIQUE (id)
);
CREATE INDEX ports_project_idx ON ports (project_id, seq);
CREATE INDEX ports_subnet_idx ON ports (subnet_id);

-- Every address handed out in a subnet (ports and endpoints): the primary key makes an address
-- impossible to hand out twice.
CREATE TABLE ip_allocations (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    subnet_id TEXT NOT NULL,
    ip BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    device_owner TEXT NOT NULL,
    CONSTRAINT ip_allocations_id_key UNIQUE (id),
    CONSTRAINT ip_allocations_subnet_ip_key UNIQUE (subnet_id, ip)
);
CREATE INDEX ip_allocations_owner_idx ON ip_allocations (owner_id);
CREATE INDEX endpoint_services_port_idx ON endpoint_services (port_id);
