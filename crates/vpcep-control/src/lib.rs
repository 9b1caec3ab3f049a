//! vpcep use cases: what each API operation does, as functions over the domain and one store
//! call each, plus the reconciler that finishes transitional states. No HTTP here: the API layer
//! parses requests into these calls and renders their results.
//!
//! # Layout
//! - [`accounts`]: the accounts file, the default account, the AK registry.
//! - [`services`]: endpoint-service operations (#7, #10, #12, #16, #17, #19, #25, #26).
//! - [`reconciler`]: drives `creating` → `available` and `deleting` → gone.

pub mod accounts;
pub mod dataplane;
pub mod endpoints;
pub mod network;
pub mod reconciler;
pub mod services;
pub mod tags;

use accounts::{Account, Registry};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use vpcep_domain::dataplane::AddressPolicy;
use vpcep_domain::{ApiError, ErrorCode};
use vpcep_store::{SqlStore, StoreError};

/// Everything a use case needs; one per process, shared.
pub struct Ctx {
    /// The storage.
    pub store: Arc<SqlStore>,
    /// Region name used in service names.
    pub region: String,
    /// Tenants.
    pub accounts: Arc<Registry>,
    /// Wakes the reconciler after a change it should act on.
    pub reconciler_wake: Arc<Notify>,
    /// How long transitions take (emulates a real cloud's provisioning time).
    pub provisioning_delay: Duration,
    /// Whether a data plane realizes endpoints: then services become `available` only while an
    /// agent is alive, and endpoints `accepted` only once an agent reports them realized.
    pub dataplane: bool,
    /// What the data plane may listen on and connect to (`--dataplane-cidrs`, the host's own
    /// addresses): endpoints and services it refuses are never served and show why.
    pub policy: Arc<AddressPolicy>,
    /// How long an agent counts as alive after its last report, and how long an endpoint no
    /// live agent serves stays `accepted` (`--agent-grace`).
    pub agent_grace: Duration,
    /// When this node started (ms): endpoints no agent serves turn `failed` only once the node
    /// has been up for `agent_grace`, so its agents had time to report.
    pub started_at: i64,
}

impl Ctx {
    /// Tells the reconciler there is new work.
    pub fn wake_reconciler(&self) {
        self.reconciler_wake.notify_one();
    }
}

/// The authenticated caller of a project-scoped operation.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who signed the request.
    pub account: Arc<Account>,
    /// The `{project_id}` of the path, owned by `account`.
    pub project_id: String,
}

/// Maps store failures to API errors: domain refusals pass through, a busy database is 503, a
/// full disk 507 EndPoint.0507, a database that cannot be read or written 503 EndPoint.0503
/// (each logged, with a message that says what happened and no internals); anything else is
/// logged and answered as a generic 500.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Api(a) => a,
        StoreError::Unavailable(m) => {
            tracing::warn!(error = %m, "store unavailable");
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
            tracing::error!(error = %m, "store error");
            ApiError::internal()
        }
    }
}

// Permissions (#3, #4, #5, #18, #27) and quotas (#14).
pub mod permissions;
pub mod quotas;
