//! Per-endpoint counters, kept in atomics that tests and the embedding process can read
//! ([`StatsRegistry`], also rendered as Prometheus text) and, when the registry exports them,
//! sent through the `metrics` facade to the process's recorder (an agent's `--metrics-listen`).
//! They name tenants' endpoints: never export them to a recorder that anyone may read.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `vpcep_agent_connections_active` | gauge | `endpoint_id` |
//! | `vpcep_agent_connections_total` | counter (connections forwarded: admitted by the whitelist) | `endpoint_id` |
//! | `vpcep_agent_bytes_total` | counter | `endpoint_id`, `direction` = `client_to_backend` \| `backend_to_client` |
//! | `vpcep_agent_connections_refused_total` | counter | `endpoint_id`, `reason` = `whitelist` \| `backend_unreachable` |
//! | `vpcep_agent_endpoint_path` | gauge (1 for the path the endpoint takes) | `endpoint_id`, `path` = `kernel` \| `userspace` |
//!
//! On the kernel path (see [`crate::kernel`]) connections and bytes come from nftables counters
//! (bytes are IP bytes, headers included) and `connections_active` stays 0.
//!
//! Exported handles are taken from the recorder installed when an endpoint first appears.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use metrics::{counter, gauge, Counter, Gauge};

/// Gauge of open forwarded connections.
pub const CONNECTIONS_ACTIVE: &str = "vpcep_agent_connections_active";
/// Counter of forwarded connections.
pub const CONNECTIONS_TOTAL: &str = "vpcep_agent_connections_total";
/// Counter of payload bytes, by direction.
pub const BYTES_TOTAL: &str = "vpcep_agent_bytes_total";
/// Counter of connections closed without forwarding, by reason.
pub const CONNECTIONS_REFUSED_TOTAL: &str = "vpcep_agent_connections_refused_total";
/// Gauge: 1 for the path (`kernel` or `userspace`) the endpoint's new connections take.
pub const ENDPOINT_PATH: &str = "vpcep_agent_endpoint_path";

/// Why a connection was closed without forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// The source is outside the endpoint's whitelist.
    Whitelist,
    /// The backend could not be reached in time.
    BackendUnreachable,
}

impl RefuseReason {
    /// The `reason` label.
    pub fn as_str(self) -> &'static str {
        match self {
            RefuseReason::Whitelist => "whitelist",
            RefuseReason::BackendUnreachable => "backend_unreachable",
        }
    }
}

/// Direction of payload bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client (consumer) to the backend (provider).
    ClientToBackend,
    /// From the backend to the client.
    BackendToClient,
}

/// A copy of one endpoint's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Forwarded connections open now.
    pub connections_active: u64,
    /// Forwarded connections since the endpoint appeared.
    pub connections_total: u64,
    /// Bytes from clients to the backend.
    pub bytes_client_to_backend: u64,
    /// Bytes from the backend to clients.
    pub bytes_backend_to_client: u64,
    /// Connections closed because of the whitelist.
    pub refused_whitelist: u64,
    /// Connections closed because the backend could not be reached.
    pub refused_backend_unreachable: u64,
    /// Whether new connections take the kernel path (nftables NAT).
    pub kernel_path: bool,
}

#[derive(Debug)]
struct Exported {
    active: Gauge,
    total: Counter,
    c2b: Counter,
    b2c: Counter,
    refused_whitelist: Counter,
    refused_backend: Counter,
    path_kernel: Gauge,
    path_userspace: Gauge,
}

/// The live counters of one endpoint, shared by its listeners and connections.
#[derive(Debug)]
pub(crate) struct EndpointMetrics {
    active: AtomicU64,
    total: AtomicU64,
    c2b: AtomicU64,
    b2c: AtomicU64,
    refused_whitelist: AtomicU64,
    refused_backend: AtomicU64,
    kernel_path: std::sync::atomic::AtomicBool,
    /// The recorder's handles, when exported.
    exported: Option<Exported>,
}

impl EndpointMetrics {
    fn new(endpoint_id: &str, export: bool) -> Self {
        let id = endpoint_id.to_string();
        EndpointMetrics {
            active: AtomicU64::new(0),
            total: AtomicU64::new(0),
            c2b: AtomicU64::new(0),
            b2c: AtomicU64::new(0),
            refused_whitelist: AtomicU64::new(0),
            refused_backend: AtomicU64::new(0),
            kernel_path: std::sync::atomic::AtomicBool::new(false),
            exported: export.then(|| Exported {
                active: gauge!(CONNECTIONS_ACTIVE, "endpoint_id" => id.clone()),
                total: counter!(CONNECTIONS_TOTAL, "endpoint_id" => id.clone()),
                c2b: counter!(BYTES_TOTAL, "endpoint_id" => id.clone(), "direction" => "client_to_backend"),
                b2c: counter!(BYTES_TOTAL, "endpoint_id" => id.clone(), "direction" => "backend_to_client"),
                refused_whitelist: counter!(CONNECTIONS_REFUSED_TOTAL, "endpoint_id" => id.clone(), "reason" => RefuseReason::Whitelist.as_str()),
                refused_backend: counter!(CONNECTIONS_REFUSED_TOTAL, "endpoint_id" => id.clone(), "reason" => RefuseReason::BackendUnreachable.as_str()),
                path_kernel: gauge!(ENDPOINT_PATH, "endpoint_id" => id.clone(), "path" => "kernel"),
                path_userspace: {
                    let g = gauge!(ENDPOINT_PATH, "endpoint_id" => id, "path" => "userspace");
                    g.set(1.0);
                    g
                },
            }),
        }
    }

    /// Counts a refused connection.
    pub(crate) fn refused(&self, reason: RefuseReason) {
        match reason {
            RefuseReason::Whitelist => {
                self.refused_whitelist.fetch_add(1, Relaxed);
                if let Some(e) = &self.exported {
                    e.refused_whitelist.increment(1);
                }
            }
            RefuseReason::BackendUnreachable => {
                self.refused_backend.fetch_add(1, Relaxed);
                if let Some(e) = &self.exported {
                    e.refused_backend.increment(1);
                }
            }
        }
    }

    /// Counts a forwarded connection; it stays active until the guard drops.
    pub(crate) fn opened(self: &Arc<Self>) -> ActiveGuard {
        self.total.fetch_add(1, Relaxed);
        self.active.fetch_add(1, Relaxed);
        if let Some(e) = &self.exported {
            e.total.increment(1);
            e.active.increment(1.0);
        }
        ActiveGuard(self.clone())
    }

    /// Counts payload bytes.
    pub(crate) fn bytes(&self, direction: Direction, n: u64) {
        match direction {
            Direction::ClientToBackend => {
                self.c2b.fetch_add(n, Relaxed);
                if let Some(e) = &self.exported {
                    e.c2b.increment(n);
                }
            }
            Direction::BackendToClient => {
                self.b2c.fetch_add(n, Relaxed);
                if let Some(e) = &self.exported {
                    e.b2c.increment(n);
                }
            }
        }
    }

    /// Records which path new connections take.
    pub(crate) fn set_kernel_path(&self, kernel: bool) {
        self.kernel_path.store(kernel, Relaxed);
        if let Some(e) = &self.exported {
            e.path_kernel.set(if kernel { 1.0 } else { 0.0 });
            e.path_userspace.set(if kernel { 0.0 } else { 1.0 });
        }
    }

    /// Adds what an nftables counter of the kernel path grew by: `conn` (connections), `c2b`
    /// or `b2c` (bytes).
    pub(crate) fn kernel_add(&self, counter: &str, n: u64) {
        match counter {
            "conn" => {
                self.total.fetch_add(n, Relaxed);
                if let Some(e) = &self.exported {
                    e.total.increment(n);
                }
            }
            "c2b" => self.bytes(Direction::ClientToBackend, n),
            "b2c" => self.bytes(Direction::BackendToClient, n),
            _ => {}
        }
    }

    fn snapshot(&self) -> EndpointStats {
        EndpointStats {
            connections_active: self.active.load(Relaxed),
            connections_total: self.total.load(Relaxed),
            bytes_client_to_backend: self.c2b.load(Relaxed),
            bytes_backend_to_client: self.b2c.load(Relaxed),
            refused_whitelist: self.refused_whitelist.load(Relaxed),
            refused_backend_unreachable: self.refused_backend.load(Relaxed),
            kernel_path: self.kernel_path.load(Relaxed),
        }
    }
}

/// Keeps a connection counted as active.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Arc<EndpointMetrics>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
        if let Some(e) = &self.0.exported {
            e.active.decrement(1.0);
        }
    }
}

/// The counters of every endpoint the data plane serves, by endpoint id.
#[derive(Debug, Clone, Default)]
pub struct StatsRegistry(Arc<Registry>);

#[derive(Debug, Default)]
struct Registry {
    /// Whether new endpoints' counters also go to the `metrics` recorder.
    export: bool,
    map: Mutex<HashMap<String, Arc<EndpointMetrics>>>,
    /// Brings the kernel path's counters in before a read.
    refresh: Mutex<Vec<Refresher>>,
}

/// Reads counters kept outside the registry (the kernel path's) into it.
#[derive(Clone)]
struct Refresher(u64, Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Refresher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Refresher({})", self.0)
    }
}

impl StatsRegistry {
    /// An empty registry; with `export`, counters also go to the process's `metrics` recorder.
    pub fn new(export: bool) -> Self {
        StatsRegistry(Arc::new(Registry {
            export,
            map: Mutex::default(),
            refresh: Mutex::default(),
        }))
    }

    /// Calls `f` before every read of the counters, until [`StatsRegistry::remove_refresher`]
    /// with the returned id.
    pub(crate) fn add_refresher(&self, f: Arc<dyn Fn() + Send + Sync>) -> u64 {
        static NEXT: std::sync::atomic::AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Relaxed);
        self.refreshers().push(Refresher(id, f));
        id
    }

    pub(crate) fn remove_refresher(&self, id: u64) {
        self.refreshers().retain(|r| r.0 != id);
    }

    fn refreshers(&self) -> std::sync::MutexGuard<'_, Vec<Refresher>> {
        self.0.refresh.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refresh(&self) {
        let fs: Vec<_> = self.refreshers().iter().map(|r| r.1.clone()).collect();
        for f in fs {
            f();
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<EndpointMetrics>>> {
        self.0.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn endpoint(&self, endpoint_id: &str) -> Arc<EndpointMetrics> {
        let export = self.0.export;
        self.map()
            .entry(endpoint_id.to_string())
            .or_insert_with(|| Arc::new(EndpointMetrics::new(endpoint_id, export)))
            .clone()
    }

    /// The counters of an endpoint the registry still has.
    pub(crate) fn existing(&self, endpoint_id: &str) -> Option<Arc<EndpointMetrics>> {
        self.map().get(endpoint_id).cloned()
    }

    /// Forgets endpoints that are gone (their open connections keep their own reference).
    pub(crate) fn retain(&self, keep: &std::collections::HashSet<&str>) {
        self.map().retain(|id, _| keep.contains(id.as_str()));
    }

    /// The counters of one endpoint, if it is served.
    pub fn get(&self, endpoint_id: &str) -> Option<EndpointStats> {
        self.refresh();
        self.map().get(endpoint_id).map(|m| m.snapshot())
    }

    /// The counters of every served endpoint.
    pub fn all(&self) -> HashMap<String, EndpointStats> {
        self.refresh();
        self.map()
            .iter()
            .map(|(k, v)| (k.clone(), v.snapshot()))
            .collect()
    }

    /// The counters in the Prometheus text format, with the names and labels of the module
    /// docs (what an operator reads where the registry is not exported to a recorder).
    pub fn render_prometheus(&self) -> String {
        use std::fmt::Write as _;
        let mut all: Vec<(String, EndpointStats)> = self.all().into_iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, rows: &mut dyn Iterator<Item = (String, u64)>| {
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        };
        let id = |e: &str| format!("endpoint_id=\"{e}\"");
        family(
            CONNECTIONS_ACTIVE,
            "gauge",
            &mut all.iter().map(|(e, s)| (id(e), s.connections_active)),
        );
        family(
            CONNECTIONS_TOTAL,
            "counter",
            &mut all.iter().map(|(e, s)| (id(e), s.connections_total)),
        );
        family(
            BYTES_TOTAL,
            "counter",
            &mut all.iter().flat_map(|(e, s)| {
                [
                    (
                        format!("{},direction=\"client_to_backend\"", id(e)),
                        s.bytes_client_to_backend,
                    ),
                    (
                        format!("{},direction=\"backend_to_client\"", id(e)),
                        s.bytes_backend_to_client,
                    ),
                ]
            }),
        );
        family(
            CONNECTIONS_REFUSED_TOTAL,
            "counter",
            &mut all.iter().flat_map(|(e, s)| {
                [
                    (
                        format!("{},reason=\"whitelist\"", id(e)),
                        s.refused_whitelist,
                    ),
                    (
                        format!("{},reason=\"backend_unreachable\"", id(e)),
                        s.refused_backend_unreachable,
                    ),
                ]
            }),
        );
        family(
            ENDPOINT_PATH,
            "gauge",
            &mut all.iter().flat_map(|(e, s)| {
                [
                    (format!("{},path=\"kernel\"", id(e)), s.kernel_path as u64),
                    (
                        format!("{},path=\"userspace\"", id(e)),
                        !s.kernel_path as u64,
                    ),
                ]
            }),
        );
        out
    }
}
