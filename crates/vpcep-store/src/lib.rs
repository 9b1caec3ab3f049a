//! vpcep storage: one [`Store`] trait, one SQL implementation serving both the embedded SQLite
//! default and PostgreSQL, and the conformance suite both must pass.
//!
//! Every method that changes state is one transaction. Rules that must hold under concurrent
//! requests are enforced inside it or by a constraint: port claims by a primary key, quotas (of
//! services, endpoints, VPCs, subnets and ports) by a conditional increment of a per-project
//! counter. Storage failures are told apart: busy ([`StoreError::Unavailable`]), disk full
//! ([`StoreError::Full`]) and files that cannot be used ([`StoreError::Fault`]).
//!
//! # Layout
//! - [`sql`]: connection setup, migrations, the write path (SQLite: one writer thread with group
//!   commit; PostgreSQL: a transaction per call on a pool) and the read connections.
//! - `guard`: the SQLite store's watch over its database file and WAL (removed, replaced or
//!   truncated under the running store: a lasting [`StoreError::Fault`]).
//! - `inventory`: VPCs, subnets, ports and address allocations, with their quotas.
//! - `conn`: the connection interface all store SQL is written against: rusqlite for SQLite,
//!   `sqlx::Any` for PostgreSQL, `$n` placeholders on both, owned rows read by column name.
//! - `services`: endpoint-service rows, port claims, tags and usage counters.
//! - [`conformance`] (feature `conformance`): behaviour every backend must show.

mod claims;
#[cfg(feature = "conformance")]
pub mod conformance;
mod conn;
mod dataplane;
mod dns;
mod endpoints;
mod guard;
mod inventory;
mod permissions;
mod query;
mod record;
mod services;
pub mod sql;
mod store_impl;

use async_trait::async_trait;
use std::net::Ipv4Addr;
use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::dataplane::AddressPolicy;
use vpcep_domain::endpoint::{Endpoint, EndpointStatus};
use vpcep_domain::list::Page;
use vpcep_domain::model::{EndpointService, ResourceKind, ServiceStatus, Tag};
use vpcep_domain::network::{NewPort, Port, PrivateIp, Subnet, Vpc};
use vpcep_domain::{ApiError, ApiResult};

pub use endpoints::{DATAPLANE_FAILURE, DATAPLANE_WARNING};
pub use sql::{open, SqlStore, StoreOptions};

/// Why a store call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A rule of the API refused the change (not found, port conflict, quota, ...).
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The database is busy or unreachable; the client may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database's disk is full: nothing was written. Writes succeed again once space is
    /// freed (SQLite `SQLITE_FULL`, PostgreSQL `53100 disk_full`).
    #[error("storage full: {0}")]
    Full(String),
    /// The database cannot be read or written: an I/O error, a read-only or unopenable file,
    /// or (SQLite) a database file or WAL removed or replaced under the running store, which
    /// lasts until a restart. Nothing was written.
    #[error("storage fault: {0}")]
    Fault(String),
    /// Anything else; logged, answered as a 500.
    #[error("store error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db)
                if matches!(
                    db.code().as_deref(),
                    Some("40001") | Some("40P01") | Some("5") | Some("6")
                ) =>
            {
                // serialization failure, deadlock (PostgreSQL); SQLITE_BUSY, SQLITE_LOCKED
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db) if db.code().as_deref() == Some("53100") => {
                // PostgreSQL disk_full
                StoreError::Full(e.to_string())
            }
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("58030") | Some("25006")) =>
            {
                // PostgreSQL io_error, read_only_sql_transaction
                StoreError::Fault(e.to_string())
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// How the reconciler judges the data plane ([`Store::complete_creations_gated`]).
#[derive(Debug, Clone)]
pub struct DataplaneGate {
    /// Agents that reported at or after this time (ms since the epoch) are alive; only their
    /// reports count.
    pub alive_since: i64,
    /// When set, endpoints the owner wants that no live agent serves, and that entered their
    /// status at or before this time, become `failed` ("no live data-plane agent ..."). `None`
    /// while the node is young (its agents may not have reported yet).
    pub unserved_before: Option<i64>,
    /// What the data plane may connect to: due `creating` services whose backend it refuses
    /// become `failed`.
    pub policy: AddressPolicy,
}

/// What [`Store::agents_overview`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentsOverview {
    /// Every agent that ever reported, with the time (ms) of its last report.
    pub agents: Vec<(String, i64)>,
    /// (number of live agents serving an endpoint, number of such endpoints), by the first.
    pub endpoints_by_serving_agents: Vec<(u64, u64)>,
}

/// Results of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Filters of the endpoint-service lists (#12, #19).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceFilter {
    /// Case-insensitive substring of the full service name.
    pub name_contains: Option<String>,
    /// Exact id.
    pub id: Option<String>,
    /// Exact status.
    pub status: Option<ServiceStatus>,
}

impl ServiceFilter {
    /// True when no filter is set (the total can then come from the usage counter).
    pub fn is_empty(&self) -> bool {
        *self == ServiceFilter::default()
    }
}

/// Whose services a list covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceScope {
    /// The services of one project (#12).
    Project(String),
    /// The services owned by these accounts (#19: operators' public services).
    Domains(Vec<String>),
}

/// How a service is looked up across tenants (#16 describe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceLookup {
    /// By id.
    Id(Uuid),
    /// By full name `region.name.id`.
    FullName(String),
}

/// A change to a stored service, decided by pure domain code inside the store's transaction.
/// It may refuse the change with an [`ApiError`]; returning without touching the service writes
/// nothing.
pub type ServiceMutation = Box<dyn FnOnce(&mut EndpointService) -> ApiResult<()> + Send>;

/// A change to a stored VPC, given the VPC's subnets (for CIDR checks).
pub type VpcMutation = Box<dyn FnOnce(&mut Vpc, &[Subnet]) -> ApiResult<()> + Send>;
/// A change to a stored subnet.
pub type SubnetMutation = Box<dyn FnOnce(&mut Subnet) -> ApiResult<()> + Send>;
/// A change to a stored port.
pub type PortMutation = Box<dyn FnOnce(&mut Port) -> ApiResult<()> + Send>;

/// Filters of the port list (#5 of the VPC subset). A filter given several values matches any
/// of them (`?id=a&id=b`); filters combine with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortFilter {
    pub ids: Vec<String>,
    pub names: Vec<String>,
    /// Subnet (network) ids.
    pub network_ids: Vec<String>,
    pub mac_addresses: Vec<String>,
    pub device_ids: Vec<String>,
    pub device_owners: Vec<String>,
    /// `ACTIVE` or `DOWN`.
    pub status: Option<String>,
    pub admin_state_up: Option<bool>,
    /// Fixed IPs (`fixed_ips=ip_address=...`).
    pub ip_addresses: Vec<String>,
    /// Subnets named in `fixed_ips=subnet_id=...` (either the subnet id or its OpenStack id).
    pub fixed_subnet_ids: Vec<String>,
    /// Security group ids: ports in any of them.
    pub security_groups: Vec<String>,
}

/// Resource kinds counted per project.
pub const USAGE_ENDPOINT_SERVICE: &str = "endpoint_service";
/// Endpoints counted per project.
pub const USAGE_ENDPOINT: &str = "endpoint";
/// VPCs counted per project.
pub const USAGE_VPC: &str = "vpc";
/// Subnets counted per project.
pub const USAGE_SUBNET: &str = "subnet";
/// Ports counted per project.
pub const USAGE_PORT: &str = "port";

/// The checks an endpoint create runs against its target service and the service's permission
/// entries, inside the create's transaction (decided by pure domain code).
pub type EndpointCheck = Box<dyn FnOnce(&EndpointService, &[String]) -> ApiResult<()> + Send>;
/// A change to a stored endpoint.
pub type EndpointMutation = Box<dyn FnOnce(&mut Endpoint) -> ApiResult<()> + Send>;
/// A change applied to each of several connections.
pub type ConnectionMutation = Arc<dyn Fn(&mut Endpoint) -> ApiResult<()> + Send + Sync>;
/// A change to the tags of one resource.
pub type TagMutation = Box<dyn FnOnce(&mut Vec<Tag>) -> ApiResult<()> + Send>;

/// Filters of the consumer's endpoint list (#13).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointFilter {
    /// Case-insensitive substring of the target service's full name.
    pub service_name_contains: Option<String>,
    pub vpc_id: Option<String>,
    pub id: Option<String>,
}

/// Filters of the owner's connection list (#15).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionFilter {
    /// Endpoint id.
    pub id: Option<String>,
    pub marker_id: Option<u32>,
    pub status: Option<EndpointStatus>,
}

/// One endpoint's outcome of a connection operation (#1, #22).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionOutcome {
    /// The endpoint id as given.
    pub id: String,
    /// The endpoint as it is now (unchanged when refused); `None` when the service has no such
    /// endpoint.
    pub endpoint: Option<Endpoint>,
    /// Why this endpoint was refused.
    pub error: Option<ApiError>,
}

impl ConnectionOutcome {
    /// A refusal without an endpoint to show.
    pub fn refused(id: impl Into<String>, error: ApiError) -> Self {
        ConnectionOutcome {
            id: id.into(),
            endpoint: None,
            error: Some(error),
        }
    }
}

/// A resource with its name and tags (for the tag queries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedResource {
    pub id: String,
    pub name: String,
    pub tags: Vec<Tag>,
}

/// One endpoint private DNS answers for (see [`Store::dns_records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    /// Endpoint id.
    pub endpoint_id: String,
    /// The consumer VPC the endpoint lives in.
    pub vpc_id: String,
    /// That VPC's network namespace (the inventory's `netns`), if any.
    pub netns: Option<String>,
    /// The endpoint's IPv4 address (`ip`).
    pub ip: String,
    /// The endpoint's IPv6 address (`ipv6_address`), if any.
    pub ipv6: Option<String>,
    /// The endpoint's `dns_names`, as stored.
    pub names: Vec<String>,
}

/// Everything private DNS serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsRecords {
    /// Endpoints whose names resolve.
    pub entries: Vec<DnsEntry>,
    /// Every network namespace some VPC lives in (each gets its own view).
    pub namespaces: Vec<String>,
}

/// The storage behind the control plane. Implementations must pass [`conformance`].
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is (`sqlite` or `postgres`), for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Stores `toml` as the default account unless one is stored already; answers the stored one.
    async fn default_account(&self, toml: String) -> StoreResult<String>;

    /// The stored default account, if one was stored (never stores one).
    async fn stored_default_account(&self) -> StoreResult<Option<String>>;

    /// Inserts a new service with its port claims, tags and usage count in one transaction.
    /// Refuses with EndPoint.3044 when a port is claimed by another service on the same
    /// `port_id`, and with Endpoint.1018 when the project already has `quota` services.
    async fn create_service(&self, service: &EndpointService, quota: u64) -> StoreResult<()>;

    /// One service of a project.
    async fn get_service(&self, project_id: &str, id: Uuid)
        -> StoreResult<Option<EndpointService>>;

    /// One service of any project, by id or full name.
    async fn find_service(&self, lookup: &ServiceLookup) -> StoreResult<Option<EndpointService>>;

    /// A page of services and the total matching the filter.
    async fn list_services(
        &self,
        scope: &ServiceScope,
        filter: &ServiceFilter,
        page: &Page,
    ) -> StoreResult<(Vec<EndpointService>, u64)>;

    /// Loads a service of a project, lets `mutate` change it, and writes the result (row, port
    /// claims when ports or `port_id` changed) in the same transaction. 404 when absent.
    async fn modify_service(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: ServiceMutation,
    ) -> StoreResult<EndpointService>;

    /// Moves services that have been `creating` since `cutoff` or earlier to `available`;
    /// answers how many moved. Safe to run on several nodes at once.
    async fn complete_creations(&self, cutoff: i64, now: i64, limit: u32) -> StoreResult<u64>;

    /// Removes services that have been `deleting` since `cutoff` or earlier, with their claims,
    /// tags and usage; answers how many went. Safe to run on several nodes at once.
    async fn complete_deletions(&self, cutoff: i64, limit: u32) -> StoreResult<u64>;

    // ---- network inventory (VPC API subset) ----

    /// Inserts a VPC; a name already used in the project is VPC.0115, a project that already
    /// holds `quota` VPCs 409 VPC.0114 (counted in [`USAGE_VPC`]).
    async fn create_vpc(&self, vpc: &Vpc, quota: u64) -> StoreResult<()>;
    /// One VPC of a project.
    async fn get_vpc(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Vpc>>;
    /// VPCs of a project after `marker` (insertion order).
    async fn list_vpcs(
        &self,
        project_id: &str,
        id: Option<&str>,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Vpc>>;
    /// Changes a VPC in one transaction (404 VPC.0003 when absent).
    async fn modify_vpc(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: VpcMutation,
    ) -> StoreResult<Vpc>;
    /// Deletes a VPC without subnets (409 VPC.0109 otherwise), giving back its quota.
    async fn delete_vpc(&self, project_id: &str, id: Uuid) -> StoreResult<()>;
    /// Inserts a subnet inside its VPC's CIDR, not overlapping its siblings (VPC.0204); a
    /// project that already holds `quota` subnets is 409 VPC.0114 ([`USAGE_SUBNET`]).
    async fn create_subnet(&self, subnet: &Subnet, quota: u64) -> StoreResult<()>;
    /// One subnet of a project, with its free-address count.
    async fn get_subnet(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Subnet>>;
    /// Subnets of a project (optionally of one VPC) after `marker`.
    async fn list_subnets(
        &self,
        project_id: &str,
        vpc_id: Option<&str>,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Subnet>>;
    /// Changes a subnet in one transaction (404 VPC.0202 when absent).
    async fn modify_subnet(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: SubnetMutation,
    ) -> StoreResult<Subnet>;
    /// Deletes a subnet of `vpc_id` with no address in use (409 VPC.0211 otherwise), giving
    /// back its quota.
    async fn delete_subnet(&self, project_id: &str, vpc_id: Uuid, id: Uuid) -> StoreResult<()>;
    /// Creates a port in its subnet with the requested or the lowest free address; a project
    /// that already holds `quota` ports is 409 VPC.0114 ([`USAGE_PORT`]).
    async fn create_port(
        &self,
        project_id: &str,
        port: NewPort,
        id: Uuid,
        mac: String,
        now: i64,
        quota: u64,
    ) -> StoreResult<Port>;
    /// One port of a project.
    async fn get_port(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Port>>;
    /// Ports of a project after `marker`.
    async fn list_ports(
        &self,
        project_id: &str,
        filter: &PortFilter,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<Port>>;
    /// Changes a port in one transaction (404 VPC.0702 when absent).
    async fn modify_port(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: PortMutation,
    ) -> StoreResult<Port>;
    /// Deletes a port no endpoint service uses (409 VPC.0710 otherwise), freeing its address
    /// and its quota.
    async fn delete_port(&self, project_id: &str, id: Uuid) -> StoreResult<()>;
    /// The allocated addresses of a subnet (404 VPC.0202 when the subnet is absent).
    async fn list_private_ips(
        &self,
        project_id: &str,
        subnet_id: Uuid,
        limit: u32,
        marker: Option<&str>,
    ) -> StoreResult<Vec<PrivateIp>>;

    // ---- endpoints, connections, tags ----

    /// Creates an endpoint in one transaction: `check` decides on the target service (and its
    /// permission entries), then the quota, the caller's VPC and subnet, an address (`port_ip`
    /// or the lowest free one), a marker id and the row. Answers the stored endpoint.
    async fn create_endpoint(
        &self,
        endpoint: &Endpoint,
        port_ip: Option<Ipv4Addr>,
        quota: u64,
        check: EndpointCheck,
    ) -> StoreResult<Endpoint>;
    /// One endpoint of a project.
    async fn get_endpoint(&self, project_id: &str, id: Uuid) -> StoreResult<Option<Endpoint>>;
    /// A page of a project's endpoints and the total.
    async fn list_endpoints(
        &self,
        project_id: &str,
        filter: &EndpointFilter,
        page: &Page,
    ) -> StoreResult<(Vec<Endpoint>, u64)>;
    /// Changes an endpoint of a project in one transaction (404 EndPoint.2006 when absent).
    async fn modify_endpoint(
        &self,
        project_id: &str,
        id: Uuid,
        now: i64,
        mutate: EndpointMutation,
    ) -> StoreResult<Endpoint>;
    /// A page of the connections (endpoints) of a service the project owns (404 otherwise).
    async fn list_connections(
        &self,
        project_id: &str,
        service_id: Uuid,
        filter: &ConnectionFilter,
        page: &Page,
    ) -> StoreResult<(Vec<Endpoint>, u64)>;
    /// Applies `mutate` to each named connection of a service the project owns, in one
    /// transaction; each endpoint gets its own result (unknown, of another service, refused).
    async fn modify_connections(
        &self,
        project_id: &str,
        service_id: Uuid,
        ids: Vec<Uuid>,
        now: i64,
        mutate: ConnectionMutation,
    ) -> StoreResult<Vec<ConnectionOutcome>>;
    /// Changes the tags of a service or endpoint of a project (404 when absent).
    async fn modify_tags(
        &self,
        project_id: &str,
        kind: ResourceKind,
        id: Uuid,
        change: TagMutation,
    ) -> StoreResult<()>;
    /// Every tag of a project's resources of one kind, sorted by key and value.
    async fn project_tags(&self, project_id: &str, kind: ResourceKind) -> StoreResult<Vec<Tag>>;
    /// Every resource of one kind in a project, with its name and tags.
    async fn tagged_resources(
        &self,
        project_id: &str,
        kind: ResourceKind,
    ) -> StoreResult<Vec<TaggedResource>>;

    // ---- data plane ----

    /// Like [`Store::complete_creations`], but with a data plane: services become `available`
    /// only while an agent is alive (`failed` when the data plane may not connect to their
    /// backend), and endpoints follow live agents' reports (`accepted` ⇄ `failed`; see
    /// [`DataplaneGate`]).
    async fn complete_creations_gated(
        &self,
        cutoff: i64,
        now: i64,
        limit: u32,
        gate: DataplaneGate,
    ) -> StoreResult<u64>;
    /// Settles address claims (see the `claims` module): resources stored before claims
    /// existed are evaluated, and addresses whose owner is gone go to the oldest resource
    /// waiting for them. Answers how many resources now hold their address.
    async fn settle_claims(&self, limit: u32) -> StoreResult<u64>;
    /// A value that changes whenever any endpoint is created, changed or removed (cheap: private
    /// DNS polls it and reads [`Store::dns_records`] only when it moves).
    async fn dns_fingerprint(&self) -> StoreResult<(i64, i64, i64)>;
    /// What private DNS answers: accepted interface endpoints with `enable_dns`, an address
    /// their VPC holds, and their names; plus the namespaces VPCs live in.
    async fn dns_records(&self) -> StoreResult<DnsRecords>;
    /// The current version of the data plane's desired state.
    async fn dataplane_version(&self) -> StoreResult<u64>;
    /// The data plane's desired state: every endpoint agents must serve, with its version.
    /// Endpoints whose address or backend the data plane may not use (not held by their VPC, or
    /// refused by `policy`) carry the reason in `refused`.
    async fn dataplane_snapshot(
        &self,
        policy: &AddressPolicy,
    ) -> StoreResult<vpcep_domain::dataplane::Snapshot>;
    /// Records what an agent realized (replacing its previous report).
    async fn record_agent_report(
        &self,
        report: &vpcep_domain::dataplane::AgentReport,
        now: i64,
    ) -> StoreResult<()>;
    /// The agents and when each last reported, and how many endpoints the owner wants
    /// (`accepted` or `failed`) are served by how many agents alive since `alive_since`.
    async fn agents_overview(&self, alive_since: i64) -> StoreResult<AgentsOverview>;
    /// Closes the database for this process (see [`SqlStore::close`]): what a stopping server
    /// does last, so that a successor can open a SQLite file this process held.
    async fn close(&self);
    /// When the oldest resource still in `creating` or `deleting` entered that state.
    async fn oldest_transition(&self) -> StoreResult<Option<i64>>;
    // ---- service permissions and quota usage (#3, #4, #5, #14, #18, #27) ----

    /// A page of the permission records of a service of the project, optionally only those
    /// whose entry contains `contains` (case-insensitive), and the total matching. 404
    /// EndPoint.0005 when the project has no such service.
    async fn list_permissions(
        &self,
        project_id: &str,
        service_id: Uuid,
        contains: Option<&str>,
        page: &Page,
    ) -> StoreResult<(Vec<Permission>, u64)>;

    /// Applies `change` to the permission records of a service of the project in one
    /// transaction (404 EndPoint.0005 when the project has no such service) and answers the
    /// records it names (see [`PermissionChange`]). A refused change writes nothing.
    async fn change_permissions(
        &self,
        project_id: &str,
        service_id: Uuid,
        now: i64,
        change: PermissionChange,
    ) -> StoreResult<Vec<Permission>>;

    /// The usage counter of `resource` ([`USAGE_ENDPOINT_SERVICE`], [`USAGE_ENDPOINT`],
    /// [`USAGE_VPC`], [`USAGE_SUBNET`], [`USAGE_PORT`]) of a project: resources it holds, those
    /// being deleted included.
    async fn project_usage(&self, project_id: &str, resource: &str) -> StoreResult<u64>;

    /// Whether the store can serve: `Err` ([`StoreError::Fault`]) once the SQLite database file
    /// or its WAL was removed or replaced under the running store (checked in the background
    /// and before each write is acknowledged). Cheap: `/health` calls it.
    fn health(&self) -> StoreResult<()>;
}

// ---- service permissions ----

use vpcep_domain::permission::Permission;

/// A change to the permission records of one service ([`Store::change_permissions`]). Records
/// are unique per entry; a service holds at most `MAX_PERMISSIONS` (500) of them, more is
/// EndPoint.3049.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionChange {
    /// Adds the entries not yet present, as the given records (#3 `add`); present entries keep
    /// their record. Answers the stored record of each distinct entry, in order.
    Add(Vec<Permission>),
    /// Like `Add`, and present entries take the given description (#4 batch-create).
    Upsert(Vec<Permission>),
    /// Removes the records of these entries; absent ones are ignored (#3 `remove`). Answers the
    /// removed records.
    RemoveEntries(Vec<String>),
    /// Removes the records with these ids (#5); one unknown id is 404 EndPoint.0005 and removes
    /// nothing. Answers the removed records, in order.
    RemoveIds(Vec<Uuid>),
    /// Sets the description of one record (#27); an unknown id is 404 EndPoint.0005. Answers
    /// the record.
    Describe {
        /// The record.
        id: Uuid,
        /// The new description.
        description: String,
    },
}
