//! Applies snapshots: diffs the running listeners against a snapshot's [`Plan`] by
//! [`ListenerKey`] and
//! - closes listeners no longer wanted (new connections are refused at once; open ones drain
//!   up to [`ProxyOptions::drain_timeout`](crate::ProxyOptions::drain_timeout)),
//! - swaps the config of listeners that stay but changed (backend, `tcp_proxy`, whitelist):
//!   the socket is untouched, open connections keep their config, new ones take the new one,
//! - binds new listeners,
//!
//! and reports per endpoint what it realized. Where the kernel path is on, it also brings the
//! data plane's nftables table to the plan (see [`crate::kernel`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use vpcep_domain::dataplane::{AddressPolicy, AgentReport, EndpointResult, Snapshot};

use crate::config::{self, KernelPathMode, ListenerKey, Plan, ProxyOptions};
use crate::connection::Route;
use crate::kernel::{self, KernelPath};
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
    adopted: HashMap<ListenerKey, Vec<std::net::TcpListener>>,
    stats: StatsRegistry,
    /// Drains of closed listeners, so shutdown can wait for them too.
    drains: TaskTracker,
    /// The nftables table, while the kernel path is in use.
    kernel: Option<KernelPath>,
    /// Whether the kernel path was tried (once, at the first apply).
    kernel_tried: bool,
    /// The registry's reader of the table's counters.
    kernel_refresher: Option<u64>,
    /// Per endpoint, whether it takes the kernel path (as last logged).
    paths: HashMap<String, bool>,
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
            kernel: None,
            kernel_tried: false,
            kernel_refresher: None,
            paths: HashMap::new(),
        }
    }

    /// The nftables table of the kernel path, while it is in use.
    pub fn kernel_table(&self) -> Option<&str> {
        self.kernel.as_ref().map(|k| k.table())
    }

    /// Brings the kernel path's counters into the registry (and so to the recorder).
    pub async fn poll_kernel(&self) {
        if self.kernel.is_some() {
            let stats = self.stats.clone();
            let _ = tokio::task::spawn_blocking(move || stats.all()).await;
        }
    }

    /// Brings the nftables table to `plan`: rules for the listeners the kernel can serve,
    /// replaced in one transaction; logs the path of each endpoint when it changes.
    async fn apply_kernel(&mut self, plan: &Plan) {
        if self.shared.opts.kernel_path == KernelPathMode::Off {
            if !self.kernel_tried {
                // Even without it, no table of a killed data plane may go on translating.
                self.kernel_tried = true;
                let _ = tokio::task::spawn_blocking(kernel::remove_stale_tables).await;
            }
            return;
        }
        if !self.kernel_tried {
            self.kernel_tried = true;
            match tokio::task::spawn_blocking(KernelPath::start).await {
                Ok(Ok(k)) => {
                    info!(table = %k.table(), "kernel path on: tcp_proxy close endpoints in this namespace are forwarded by nftables");
                    let refresher = Arc::new(k.refresher(self.stats.clone()));
                    self.kernel_refresher = Some(self.stats.add_refresher(refresher));
                    self.kernel = Some(k);
                }
                Ok(Err(e)) => {
                    info!("kernel path unavailable ({e}); every endpoint takes the user-space path")
                }
                Err(e) => warn!("kernel path: {e}"),
            }
        }
        if let Some(mut k) = self.kernel.take() {
            let (eligible, others): (Vec<_>, Vec<_>) = plan
                .listeners
                .iter()
                .partition(|(key, cfg)| kernel::userspace_reason(key, cfg).is_none());
            let wanted: Vec<_> = eligible
                .into_iter()
                .map(|(key, cfg)| (key.clone(), cfg.clone(), kernel::route_source(cfg.backend)))
                .collect();
            let others: Vec<_> = others
                .into_iter()
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect();
            let stats = self.stats.clone();
            let (table, tag) = (k.table().to_string(), k.tag());
            let done = tokio::task::spawn_blocking(move || {
                let others: Vec<_> = others.iter().map(|(k, c)| (k, c)).collect();
                let r = k.apply(&wanted, &others, &stats);
                (k, r)
            })
            .await;
            match done {
                Ok((k, Ok(()))) => self.kernel = Some(k),
                Ok((k, Err(e))) => {
                    warn!("kernel path failed: {e}; its table is removed and every endpoint takes the user-space path");
                    let _ = tokio::task::spawn_blocking(move || k.abandon()).await;
                }
                Err(e) => {
                    warn!("kernel path failed: {e}; its table is removed and every endpoint takes the user-space path");
                    let _ = tokio::task::spawn_blocking(move || kernel::abandon_table(&table, tag))
                        .await;
                }
            }
            if self.kernel.is_none() {
                if let Some(id) = self.kernel_refresher.take() {
                    self.stats.remove_refresher(id);
                }
            }
        }
        let on = self.kernel.is_some();
        let mut seen = HashSet::new();
        for (key, cfg) in &plan.listeners {
            if !seen.insert(cfg.endpoint_id.as_str()) {
                continue;
            }
            let reason = if on {
                kernel::userspace_reason(key, cfg)
            } else {
                Some("kernel path unavailable or off")
            };
            let kernel = reason.is_none();
            if self.paths.get(&cfg.endpoint_id) != Some(&kernel) {
                match reason {
                    None => info!(endpoint_id = %cfg.endpoint_id, "path: kernel (nftables)"),
                    Some(why) => info!(endpoint_id = %cfg.endpoint_id, "path: user space ({why})"),
                }
                self.paths.insert(cfg.endpoint_id.clone(), kernel);
            }
            self.stats
                .endpoint(&cfg.endpoint_id)
                .set_kernel_path(kernel);
        }
        self.paths.retain(|id, _| seen.contains(id.as_str()));
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
    pub fn adopt(&mut self, sockets: HashMap<ListenerKey, Vec<std::net::TcpListener>>) {
        self.adopted = sockets;
    }

    /// Duplicates of the listening sockets, for a successor (see [`crate::handover`]).
    pub fn dup_sockets(&self) -> std::io::Result<Vec<(ListenerKey, std::os::fd::OwnedFd)>> {
        let mut out = Vec::new();
        for (k, l) in &self.listeners {
            out.extend(l.dup_sockets()?.into_iter().map(|fd| (k.clone(), fd)));
        }
        Ok(out)
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
            let adopted = self.adopted.remove(key).unwrap_or_default();
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
        self.apply_kernel(&plan).await;
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
        if let Some(k) = self.kernel.take() {
            let stats = self.stats.clone();
            let stop = tokio::task::spawn_blocking(move || k.stop(&stats, deadline));
            self.drains.spawn(async move {
                let _ = stop.await;
            });
        }
        self.drains.close();
        self.drains.wait().await;
        if let Some(id) = self.kernel_refresher.take() {
            self.stats.remove_refresher(id);
        }
    }
}
