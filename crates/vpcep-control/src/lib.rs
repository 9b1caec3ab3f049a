//! vpcep use cases: what each API operation does, as functions over the domain and one store
//! call each, plus the reconciler that finishes transitional states. No HTTP here: the API layer
//! parses requests into these calls and renders their results.
//!
//! # Layout
//! - [`accounts`]: the accounts file, the default accounts, the AK registry.
//! - [`services`]: endpoint-service operations (v1, and v2 add-server-resources and upgrade).
//! - [`endpoints`]: the consumer's endpoints and the owner's connections to a service.
//! - [`permissions`]: a service's permissions (whitelists).
//! - [`tags`]: tags on services and endpoints.
//! - [`quotas`]: per-project usage and limits.
//! - [`network`]: the VPC API subset (VPCs, subnets, ports) and the preload of the
//!   operator's `--inventory` file.
//! - [`dataplane`]: the feed agents long-poll and their reports.
//! - [`reconciler`]: drives `creating` → `available`, `deleting` → gone, and statuses from
//!   agents' reports.

pub mod accounts;
pub mod dataplane;
pub mod endpoints;
pub mod network;
pub mod permissions;
pub mod quotas;
pub mod reconciler;
pub mod services;
pub mod tags;

use accounts::{Account, Registry};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use vpcep_domain::dataplane::AddressPolicy;
use vpcep_store::SqlStore;

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

    /// Whether a new service's `creating` ends as soon as it is stored: no provisioning delay,
    /// and no data plane whose agents it waits for (see `reconciler`).
    pub fn creation_completes_at_once(&self) -> bool {
        self.provisioning_delay.is_zero() && !self.dataplane
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
