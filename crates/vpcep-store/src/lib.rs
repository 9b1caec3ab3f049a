//! vpcep storage: one store type, [`SqlStore`], whose SQL serves both the embedded SQLite
//! default and PostgreSQL, and the conformance suite both must pass.
//!
//! Every method that changes state is one transaction. Rules that must hold under concurrent
//! requests are enforced inside it or by a constraint: port claims by a primary key, quotas (of
//! services, endpoints, VPCs, subnets and ports) by a conditional increment of a per-project
//! counter. Storage failures are told apart: busy ([`StoreError::Unavailable`]), disk full
//! ([`StoreError::Full`]) and files that cannot be used ([`StoreError::Fault`]).
//!
//! # Layout
//! [`SqlStore`]'s operations are inherent methods, one `impl` block per module; the modules below
//! call one another one way: `transitions` → `endpoints` → `services` → `permissions`,
//! `network`; all of them → `tags`, `usage`, `claims`, `dataplane`.
//! - [`sql`]: connection setup, migrations, the write path (SQLite: one writer thread with group
//!   commit; PostgreSQL: a transaction per call on a pool), the read connections, `backend`,
//!   `health` and `close`.
//! - `conn`: the connection interface all store SQL is written against: rusqlite for SQLite,
//!   sqlx's PostgreSQL driver, `$n` placeholders on both, owned rows read by column name.
//! - `query` and `record`: `WHERE` clauses and pages; rows as typed records.
//! - `guard`: the SQLite store's watch over its database file and WAL (removed, replaced or
//!   truncated under the running store: a lasting [`StoreError::Fault`]).
//! - `services`: endpoint services (rows, port claims, backends) and the default account.
//! - `endpoints`: endpoints and the owner's connections (endpoints read their service).
//! - `transitions`: the reconciler's passes: due services, then their endpoints, in one
//!   transaction.
//! - `permissions`: the permission records of services.
//! - `network`: VPCs, subnets, ports and address allocations.
//! - `tags`: tags of services and endpoints, and the tag queries.
//! - `usage`: per-project usage counters, which the quotas are checked against.
//! - `claims`: one owner per data-plane address of an address space.
//! - `dataplane`: the data plane's versioned desired state and the agents' reports.
//! - `dns`: what private DNS serves.
//! - `conformance` (feature `conformance`): behaviour every backend must show, one module per
//!   resource (each check runs on a fresh database of the test kit, `vpcep_testkit::db`).

mod claims;
#[cfg(feature = "conformance")]
pub mod conformance;
mod conn;
mod dataplane;
mod dns;
mod endpoints;
mod guard;
mod network;
mod permissions;
mod query;
mod record;
mod services;
pub mod sql;
mod tags;
mod transitions;
mod usage;

use std::sync::Arc;
use uuid::Uuid;
use vpcep_domain::dataplane::AddressPolicy;
use vpcep_domain::endpoint::{Endpoint, EndpointStatus};
use vpcep_domain::network::port::Port;
use vpcep_domain::network::subnet::Subnet;
use vpcep_domain::network::vpc::Vpc;
use vpcep_domain::service::{EndpointService, ServiceStatus};
use vpcep_domain::tag::Tag;
use vpcep_domain::{ApiError, ApiResult, ErrorCode};

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
    /// PostgreSQL ended the transaction because it collided with another one (deadlock
    /// `40P01`, serialization failure `40001`): nothing was written, and running it again may
    /// succeed. The store runs the call again itself, up to 3 times
    /// (`SqlStore::write_retryable`); past that it is answered as [`StoreError::Unavailable`]
    /// is.
    #[error("store conflict: {0}")]
    Conflict(String),
    /// The database's disk is full: nothing was written. Writes succeed again once space is
    /// freed (SQLite `SQLITE_FULL`, PostgreSQL `53100 disk_full`).
    #[error("storage full: {0}")]
    Full(String),
    /// The database cannot be read or written: an I/O error, a read-only or unopenable file,
    /// or (SQLite) a database file or WAL removed or replaced under the running store, which
    /// lasts until a restart. Nothing was written.
    #[error("storage fault: {0}")]
    Fault(String),
    /// Anything else; logged, answered as a 500. Keeps the error that caused it.
    #[error("store error: {0}")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// An [`StoreError::Internal`] caused by `e` (an error, or a message).
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        StoreError::Internal(Arc::from(e.into()))
    }
}

/// Maps store failures to API errors: domain refusals pass through, a busy database is 503, a
/// full disk 507 EndPoint.0507, a database that cannot be read or written 503 EndPoint.0503
/// (each logged, with a message that says what happened and no internals); anything else is
/// logged and answered as a generic 500.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Api(a) => a,
            // The error's own text says which ("store unavailable: ..." or "store conflict: ...").
            busy @ (StoreError::Unavailable(_) | StoreError::Conflict(_)) => {
                tracing::warn!(error = %busy, "store busy");
                ApiError::new(ErrorCode::Unavailable, "The service is busy. Please retry.")
            }
            StoreError::Full(m) => {
                tracing::error!(error = %m, "storage full");
                metrics::counter!("vpcep_store_failures_total", "kind" => "full").increment(1);
                ApiError::new(
                ErrorCode::StorageFull,
                "The server's storage is full: nothing was changed. Retry once the operator has freed space.",
            )
            }
            StoreError::Fault(m) => {
                tracing::error!(error = %m, "storage fault");
                metrics::counter!("vpcep_store_failures_total", "kind" => "fault").increment(1);
                ApiError::new(
                ErrorCode::StorageFault,
                "The server cannot read or write its database: the change was not confirmed. Retry later; the operator must check the database.",
            )
            }
            StoreError::Internal(m) => {
                tracing::error!(error = %m, source = ?m, "store error");
                ApiError::internal()
            }
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            sqlx::Error::Database(db)
                if matches!(db.code().as_deref(), Some("40001") | Some("40P01")) =>
            {
                // PostgreSQL serialization failure, deadlock
                StoreError::Conflict(e.to_string())
            }
            sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5") | Some("6")) => {
                // SQLITE_BUSY, SQLITE_LOCKED
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
            _ => StoreError::internal(e),
        }
    }
}

/// How the reconciler judges the data plane ([`SqlStore::complete_creations_gated`]).
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

/// What [`SqlStore::agents_overview`] answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentsOverview {
    /// Every agent that ever reported, with the time (ms) of its last report.
    pub agents: Vec<(String, i64)>,
    /// (number of live agents serving an endpoint, number of such endpoints), by the first.
    pub endpoints_by_serving_agents: Vec<(u64, u64)>,
}

/// Results of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// Filters of the endpoint-service lists (`list_endpoint_service`, `list_service_public_details`).
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
    /// The services of one project (`list_endpoint_service`).
    Project(String),
    /// The services owned by these accounts (`list_service_public_details`: operators' public
    /// services).
    Domains(Vec<String>),
}

/// How a service is looked up across tenants (`list_service_describe_details` describe).
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
pub type ServiceMutation = Arc<dyn Fn(&mut EndpointService) -> ApiResult<()> + Send + Sync>;

/// A change to a stored VPC, given the VPC's subnets (for CIDR checks).
pub type VpcMutation = Arc<dyn Fn(&mut Vpc, &[Subnet]) -> ApiResult<()> + Send + Sync>;
/// A change to a stored subnet.
pub type SubnetMutation = Arc<dyn Fn(&mut Subnet) -> ApiResult<()> + Send + Sync>;
/// A change to a stored port.
pub type PortMutation = Arc<dyn Fn(&mut Port) -> ApiResult<()> + Send + Sync>;

/// Filters of the port list (`list_ports`). A filter given several values matches any
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
pub type EndpointCheck = Arc<dyn Fn(&EndpointService, &[String]) -> ApiResult<()> + Send + Sync>;
/// A change to a stored endpoint.
pub type EndpointMutation = Arc<dyn Fn(&mut Endpoint) -> ApiResult<()> + Send + Sync>;
/// A change applied to each of several connections.
pub type ConnectionMutation = Arc<dyn Fn(&mut Endpoint) -> ApiResult<()> + Send + Sync>;
/// A change to the tags of one resource.
pub type TagMutation = Arc<dyn Fn(&mut Vec<Tag>) -> ApiResult<()> + Send + Sync>;

/// Filters of the consumer's endpoint list (`list_endpoints`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointFilter {
    /// Case-insensitive substring of the target service's full name.
    pub service_name_contains: Option<String>,
    pub vpc_id: Option<String>,
    pub id: Option<String>,
}

/// Filters of the owner's connection list (`list_service_connections`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionFilter {
    /// Endpoint id.
    pub id: Option<String>,
    pub marker_id: Option<u32>,
    pub status: Option<EndpointStatus>,
}

/// One endpoint's outcome of a connection operation (`accept_or_reject_endpoint`,
/// `update_endpoint_connections_desc`).
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

/// One endpoint private DNS answers for (see [`SqlStore::dns_records`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsEntry {
    /// Endpoint id.
    pub endpoint_id: String,
    /// The consumer VPC the endpoint lives in.
    pub vpc_id: String,
    /// That VPC's network namespace (the VPC's `netns`), if any.
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

// ---- service permissions ----

use vpcep_domain::permission::Permission;

/// A change to the permission records of one service ([`SqlStore::change_permissions`]). Records
/// are unique per entry; a service holds at most `MAX_PERMISSIONS` (500) of them, more is
/// EndPoint.3049.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionChange {
    /// Adds the entries not yet present, as the given records (`add_or_remove_service_permissions`
    /// `add`); present entries keep their record. Answers the stored record of each distinct entry,
    /// in order.
    Add(Vec<Permission>),
    /// Like `Add`, and present entries take the given description
    /// (`batch_add_endpoint_service_permissions` batch-create).
    Upsert(Vec<Permission>),
    /// Removes the records of these entries; absent ones are ignored
    /// (`add_or_remove_service_permissions` `remove`). Answers the removed records.
    RemoveEntries(Vec<String>),
    /// Removes the records with these ids (`batch_remove_endpoint_service_permissions`); one
    /// unknown id is 404 EndPoint.0005 and removes nothing. Answers the removed records, in order.
    RemoveIds(Vec<Uuid>),
    /// Sets the description of one record (`update_endpoint_service_permission_desc`); an unknown
    /// id is 404 EndPoint.0005. Answers the record.
    Describe {
        /// The record.
        id: Uuid,
        /// The new description.
        description: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn internal_errors_keep_their_source_and_answer_a_bare_500() {
        let e = StoreError::from(sqlx::Error::Protocol("unexpected frame".into()));
        assert!(matches!(e, StoreError::Internal(_)), "{e:?}");
        assert_eq!(
            e.to_string(),
            "store error: encountered unexpected or invalid data: unexpected frame"
        );
        let source = e.source().expect("the cause is the error's source");
        assert_eq!(
            source.to_string(),
            "encountered unexpected or invalid data: unexpected frame"
        );
        let StoreError::Internal(cause) = &e else {
            unreachable!()
        };
        assert!(cause.downcast_ref::<sqlx::Error>().is_some(), "{cause:?}");
        let api = ApiError::from(e);
        assert_eq!(api, ApiError::internal(), "no internals reach the client");
    }

    #[test]
    fn api_refusals_pass_through_unchanged() {
        let refusal = ApiError::new(ErrorCode::VpcMissing, "VPC x not found");
        assert_eq!(ApiError::from(StoreError::from(refusal.clone())), refusal);
    }
}
