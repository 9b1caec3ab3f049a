//! vpcep data plane: realizes interface endpoints as TCP listeners that forward to the
//! endpoint service's backend, optionally with a PROXY protocol header, a client whitelist,
//! and sockets in other network namespaces.
//!
//! It never touches the database: it serves versioned [`Snapshot`]s of desired state and
//! answers [`AgentReport`]s (contract in [`vpcep_domain::dataplane`]). A config change never
//! re-binds a listener that stays, so its open connections are not dropped.
//!
//! Two ways to run it:
//! - in process: [`DataPlane::start`], then [`DataPlane::push`] snapshots and read
//!   [`DataPlane::reports`] (what `vpcep serve --with-agent` does);
//! - as an agent: [`run_agent`] long-polls the control plane and posts reports.
//!
//! # Layout
//! - [`config`]: snapshot → validated per-listener configs ([`config::plan`]), options;
//! - [`supervisor`]: diffs listeners by key, starts/updates/closes them, builds the report;
//! - `listener`: one listener's sockets (one per accept thread, `SO_REUSEPORT`), their accept
//!   loops and its swappable config;
//! - [`workers`]: the accept threads, a single-threaded runtime each, that serve the
//!   connections they accept;
//! - `connection`: whitelist → backend connect → PROXY header → copy;
//! - `copy`: `splice(2)` or buffered bidirectional copy with half-close;
//! - [`proxy_protocol`]: v1/v2 headers and the TLV numbers;
//! - [`netns`]: sockets in other network namespaces;
//! - [`kernel`]: the nftables fast path for `tcp_proxy = close` endpoints;
//! - [`metrics`]: per-endpoint counters;
//! - [`handover`]: listening sockets passed to a successor process (restarts refuse nothing);
//! - `agent` and `sync`: the running task and the control-plane client.
//!
//! Depends on `vpcep-domain` (contract types) and `vpcep-client` (signed HTTP) only.

mod agent;
pub mod config;
mod connection;
mod copy;
pub mod handover;
pub mod kernel;
mod listener;
pub mod metrics;
pub mod netns;
pub mod proxy_protocol;
pub mod supervisor;
mod sync;
pub mod workers;

pub use agent::{DataPlane, OfferedSockets};
pub use config::{CopyMode, KernelPathMode, ListenerKey, ProxyOptions, ProxyVersion, TcpProxy};
pub use metrics::{EndpointStats, StatsRegistry};
pub use supervisor::Supervisor;
pub use sync::{
    run_agent, AgentConfig, AgentError, DEFAULT_HEARTBEAT, DEFAULT_MAX_BACKOFF,
    DEFAULT_POLL_TIMEOUT,
};
pub use vpcep_domain::dataplane::{AgentReport, EndpointResult, EndpointSpec, PortPair, Snapshot};

/// The addresses of this host's interfaces (in the agent's own network namespace), which the
/// data plane never listens on or connects to (see [`vpcep_domain::dataplane::AddressPolicy`]).
pub fn host_addresses() -> Vec<std::net::IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|sa| {
            if let Some(v4) = sa.as_sockaddr_in() {
                Some(std::net::IpAddr::V4(v4.ip()))
            } else {
                sa.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip()))
            }
        })
        .collect()
}

/// Raises the soft limit of open files to the hard limit (an agent holds two sockets per
/// connection, plus two pipes per active one with splice) and returns the new limit.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    }
    Ok(hard)
}
