//! The contract between the control plane and data-plane agents: the desired state an agent
//! realizes (a versioned snapshot of endpoints to serve) and the report it sends back.
//!
//! Transport (served by the control plane, signed like every API call, operator accounts only):
//! - `GET /agent/v1/snapshot?since=<version>&timeout=<seconds>`: answers the current
//!   [`Snapshot`] at once when its version differs from `since` (or `since` is absent), else
//!   waits up to `timeout` seconds (default and most: 25, so that the answer comes before the
//!   API's 30-second request timeout) for a change and then answers the current snapshot
//!   (possibly still the same version).
//! - `POST /agent/v1/report` with an [`AgentReport`]: what the agent realized; answers 204.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Everything an agent must serve. Versions only grow; an agent applies a snapshot as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Snapshot {
    /// Monotonic version of the desired state.
    pub version: u64,
    /// Endpoints to serve: every accepted interface endpoint whose service can carry traffic.
    pub endpoints: Vec<EndpointSpec>,
}

/// One endpoint to realize: listen on `ip` and each `client_port`, forward to `backend_ip` and
/// the matching `server_port`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointSpec {
    /// Endpoint id (UUID).
    pub endpoint_id: String,
    /// The endpoint's marker id (packet id), carried in PROXY protocol TLVs.
    pub marker_id: u32,
    /// The endpoint service's id.
    pub service_id: String,
    /// Address to listen on (the endpoint's IP in the consumer's subnet).
    pub ip: String,
    /// Network namespace to listen in (`ip netns` name); `None`: the agent's own.
    #[serde(default)]
    #[schema(required = true)]
    pub listen_netns: Option<String>,
    /// Backend address (the fixed IP of the service's `port_id`, or the service's `ip`).
    pub backend_ip: String,
    /// Network namespace to connect from; `None`: the agent's own.
    #[serde(default)]
    #[schema(required = true)]
    pub backend_netns: Option<String>,
    /// Port mappings of the service.
    pub ports: Vec<PortPair>,
    /// The service's `tcp_proxy`: `close`, `toa_open`, `proxy_open`, `open` or `proxy_vni`.
    pub tcp_proxy: String,
    /// 24-bit virtual network id of the consumer's VPC (sent with `proxy_vni`).
    pub vni: u32,
    /// Whether only `whitelist` sources may connect.
    pub whitelist_enabled: bool,
    /// Allowed client addresses or CIDRs (IPv4) when `whitelist_enabled`.
    pub whitelist: Vec<String>,
}

/// `client_port` → `server_port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PortPair {
    /// Port the agent listens on.
    pub client_port: u16,
    /// Port on the backend.
    pub server_port: u16,
}

/// What an agent realized from one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentReport {
    /// A stable name of the agent (host name by default).
    pub agent_id: String,
    /// The snapshot version these results are for.
    pub version: u64,
    /// One entry per endpoint of that snapshot.
    pub endpoints: Vec<EndpointResult>,
}

/// How one endpoint fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EndpointResult {
    /// Endpoint id.
    pub endpoint_id: String,
    /// True when every listener of the endpoint is up.
    pub ok: bool,
    /// Why not (e.g. "cannot listen on 10.0.0.5:80: address not available"), or a warning about
    /// what the data plane cannot do for this endpoint (e.g. TOA), shown in the resource's
    /// `error` field.
    #[serde(default)]
    pub error: Option<String>,
}
