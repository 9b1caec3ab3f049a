//! Applies snapshots: diffs the running listeners against a snapshot's [`Plan`](crate::config::Plan) by
//! [`ListenerKey`] and
//! - closes listeners no longer wanted (new connections are refused at once; open ones drain
//!   up to [`ProxyOptions::drain_timeout`](crate::ProxyOptions::drain_timeout)),
//! - swaps the config of listeners that stay but changed (backend, `tcp_proxy`, whitelist):
//!   the socket is untouched, open connections keep their config, new ones take the new one,
//! - binds new listeners,
//!
//! and reports per endpoint what it realized.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use vpcep_domain::dataplane::{AddressPolicy, AgentReport, EndpointResult, Snapshot};

use crate::config::{self, ListenerKey, ProxyOptions};
use crate::connection::Route;
use crate::listener::{RunningListener, Shared};
use crate::metrics::StatsRegistry;

/// Owns the running listeners and applies snapshots to them.
#[derive(Debug)]
pub struct Supervisor {
    shared: Arc<Shared>,
    listeners: HashMap<ListenerKey, RunningListener>,
    /// Listeners that failed to start, with the error last logged.
    failing: HashMap<ListenerKey, String>,
    /// Listening sockets a predecessor handed over, served by the next [`Supervisor::apply`]
    /// instead of binding anew.
    adopted: HashMap<ListenerKey, std::net::TcpListener>,
    stats: StatsRegistry,
    /// Drains of closed listeners, so shutdown can wait for them too.
    drains: TaskTracker,
}

impl Supervisor {
    /// A supervisor with no listener.
    pub fn new(opts: ProxyOptions) -> Self {
        let stats = StatsRegistry::new(opts.export_metrics);
        Supervisor {
            shared: Arc::new(Shared::new(opts)),
            listeners: HashMap::new(),
            failing: HashMap::new(),
            adopted: HashMap::new(),
            stats,
            drains: TaskTracker::new(),
        }
    }

    /// The options it runs with.
    pub fn options(&self) -> &ProxyOptions {
        &self.shared.opts
    }

    /// The per-endpoint counters (shared: stays valid while the supervisor runs).
    pub fn stats(&self) -> StatsRegistry {
        self.stats.clone()
    }

    /// Serves these sockets (handed over by a predecessor, see [`crate::handover`]) for their
    /// keys in the next [`Supervisor::apply`], instead of binding anew.
    pub fn adopt(&mut self, sockets: HashMap<ListenerKey, std::net::TcpListener>) {
        self.adopted = sockets;
    }

    /// Duplicates of the listening sockets, for a successor (see [`crate::handover`]).
    pub fn dup_sockets(&self) -> std::io::Result<Vec<(ListenerKey, std::os::fd::OwnedFd)>> {
        self.listeners
            .iter()
            .map(|(k, l)| Ok((k.clone(), l.dup_socket()?)))
            .collect()
    }

    /// The listeners currently accepting, sorted.
    pub fn listening(&self) -> Vec<ListenerKey> {
        let mut keys: Vec<_> = self.listeners.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// What this data plane may listen on and connect to: the operator's grant, minus this
    /// host's addresses as they are now.
    pub fn policy(&self) -> AddressPolicy {
        let opts = &self.shared.opts;
        let mut host = crate::host_addresses();
        host.extend(opts.extra_host_addresses.iter().copied());
        AddressPolicy::new(opts.dataplane_cidrs.clone(), host)
    }

    /// Brings the listeners to what `snapshot` asks for and says how each endpoint fared.
    /// Listeners that failed to start are tried again by the next call.
    ///
    /// A listener that is no longer wanted, or that another endpoint now owns, is closed and
    /// its open connections are cut at once: after a reject or delete no byte more flows.
    pub async fn apply(&mut self, snapshot: &Snapshot) -> AgentReport {
        let plan = config::plan(snapshot, &self.policy());

        let gone: Vec<ListenerKey> = self
            .listeners
            .iter()
            .filter(|(k, l)| {
                plan.listeners
                    .get(*k)
                    .is_none_or(|c| c.endpoint_id != l.route().cfg.endpoint_id)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in gone {
            if let Some(l) = self.listeners.remove(&key) {
                info!(listener = %key, "closing listener and its connections");
                let closed = l.close(Duration::ZERO).await;
                self.drains.spawn(closed);
            }
        }

        let wanted: HashSet<&str> = plan
            .listeners
            .values()
            .map(|c| c.endpoint_id.as_str())
            .collect();
        self.stats.retain(&wanted);

        let mut failures: HashMap<&str, Vec<String>> = HashMap::new();
        for (key, cfg) in &plan.listeners {
            if let Some(l) = self.listeners.get(key) {
                if l.route().cfg != *cfg {
                    info!(listener = %key, endpoint_id = %cfg.endpoint_id, "updating listener config");
                    l.update(Arc::new(Route {
                        cfg: cfg.clone(),
                        metrics: self.stats.endpoint(&cfg.endpoint_id),
                    }));
                }
                continue;
            }
            let route = Arc::new(Route {
                cfg: cfg.clone(),
                metrics: self.stats.endpoint(&cfg.endpoint_id),
            });
            let adopted = self.adopted.remove(key);
            match RunningListener::start(key, route, self.shared.clone(), adopted).await {
                Ok(l) => {
                    info!(listener = %key, endpoint_id = %cfg.endpoint_id, backend = %cfg.backend, "listening");
                    self.listeners.insert(key.clone(), l);
                }
                Err(e) => {
                    if self.failing.get(key) != Some(&e) {
                        warn!(endpoint_id = %cfg.endpoint_id, "{e}; retrying every {:?}", self.shared.opts.retry_interval);
                        self.failing.insert(key.clone(), e.clone());
                    }
                    failures
                        .entry(cfg.endpoint_id.as_str())
                        .or_default()
                        .push(e);
                }
            }
        }
        // Sockets a predecessor handed over that this snapshot does not want are closed.
        self.adopted.clear();
        // An unchanged failure is logged once; one that cleared or is no longer wanted is
        // forgotten.
        let listening = &self.listeners;
        self.failing
            .retain(|k, _| plan.listeners.contains_key(k) && !listening.contains_key(k));

        let endpoints = plan
            .endpoints
            .iter()
            .map(|e| {
                let mut errors: Vec<String> = Vec::new();
                if let Some(err) = &e.error {
                    errors.push(err.clone());
                } else if let Some(f) = failures.get(e.endpoint_id.as_str()) {
                    errors.extend(f.iter().cloned());
                }
                let ok = errors.is_empty();
                if e.error.is_none() {
                    errors.extend(e.warning.map(str::to_string));
                }
                EndpointResult {
                    endpoint_id: e.endpoint_id.clone(),
                    ok,
                    error: (!errors.is_empty()).then(|| errors.join("; ")),
                }
            })
            .collect();
        AgentReport {
            agent_id: self.shared.opts.agent_id.clone(),
            version: snapshot.version,
            endpoints,
        }
    }

    /// Stops accepting everywhere, lets connections finish until the drain deadline, aborts
    /// the rest, and returns when every connection is closed.
    pub async fn shutdown(mut self) {
        let deadline = self.shared.opts.drain_timeout;
        for (key, l) in self.listeners.drain() {
            info!(listener = %key, "closing listener for shutdown");
            let drain = l.close(deadline).await;
            self.drains.spawn(drain);
        }
        self.drains.close();
        self.drains.wait().await;
    }
}
