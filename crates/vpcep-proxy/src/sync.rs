//! `vpcep agent --control-plane URL[,URL...]`: long-polls a control-plane node for snapshots,
//! feeds a [`DataPlane`], and posts its reports back. A failed call moves the agent to the next
//! node at once; while no node answers it keeps serving the last snapshot and retries with a
//! jittered delay capped at [`AgentConfig::max_backoff`] (2 s). The first successful poll after
//! an outage also sends the pending report at once.
//!
//! Transport (see `vpcep_domain::dataplane`), signed with an operator's AK/SK:
//! - `GET /agent/v1/snapshot?since=<version>&timeout=<secs>`
//! - `POST /agent/v1/report` (204), re-sent every [`AgentConfig::heartbeat`] (or as often as the
//!   snapshot's `report_every_ms` asks) so the control plane counts the agent alive.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};
use vpcep_client::Client;
use vpcep_domain::dataplane::{AgentReport, Snapshot};

use crate::agent::DataPlane;
use crate::config::ProxyOptions;

/// Default long-poll wait asked of the control plane.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default interval at which the last report is sent again (the control plane may ask for a
/// shorter one in its snapshots, see `Snapshot::report_every_ms`).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Default ceiling of the retry delay when no control-plane node answers.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(2);
/// First retry delay.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Shortest interval between polls that return an unchanged version.
const MIN_UNCHANGED_POLL: Duration = Duration::from_secs(1);
/// Added to the long-poll timeout before the agent gives up on an answer.
const POLL_GRACE: Duration = Duration::from_secs(15);

/// How `vpcep agent` reaches its control plane, and how it proxies.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URLs of the control-plane nodes, e.g. `http://127.0.0.1:8480`; the agent follows
    /// one and moves to the next after a failed call.
    pub control_planes: Vec<String>,
    /// Access key of an operator account.
    pub access_key: String,
    /// Secret key of that account.
    pub secret_key: String,
    /// Sent as `X-Project-Id` (the agent paths carry no `{project_id}`); may be empty.
    pub project_id: String,
    /// Long-poll wait asked of the control plane (`timeout=`).
    pub poll_timeout: Duration,
    /// Interval at which the last report is re-sent.
    pub heartbeat: Duration,
    /// Ceiling of the retry delay when no node answers (with jitter).
    pub max_backoff: Duration,
    /// Data-plane options (agent id, PROXY version, copy mode, drain deadline, …).
    pub proxy: ProxyOptions,
    /// PEM CA certificates an `https://` control plane is verified against (`--ca-cert`);
    /// `None`: the system's roots.
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl AgentConfig {
    /// A config for one control-plane node with default timings and proxy options.
    pub fn new(control_plane: &str, access_key: &str, secret_key: &str) -> Self {
        AgentConfig {
            control_planes: vec![control_plane.to_string()],
            access_key: access_key.to_string(),
            secret_key: secret_key.to_string(),
            project_id: String::new(),
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            heartbeat: DEFAULT_HEARTBEAT,
            max_backoff: DEFAULT_MAX_BACKOFF,
            proxy: ProxyOptions::default(),
            ca_cert_pem: None,
        }
    }
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The control-plane URL or credentials cannot make a client.
    #[error("invalid agent configuration: {0}")]
    Config(String),
    /// The handover socket (see [`crate::handover`]) cannot be used.
    #[error("handover socket {path}: {source}")]
    Handover {
        /// The socket's path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The control-plane nodes and the one the agent follows now.
struct Nodes {
    clients: Vec<Client>,
    current: AtomicUsize,
}

impl Nodes {
    fn current(&self) -> (usize, &Client) {
        let i = self.current.load(Ordering::Relaxed) % self.clients.len();
        (i, &self.clients[i])
    }

    /// After a failed call to node `failed`: follow the next one (unless another task moved
    /// on already). Answers the node followed now.
    fn next_after(&self, failed: usize) -> usize {
        let next = (failed + 1) % self.clients.len();
        let _ = self
            .current
            .compare_exchange(failed, next, Ordering::Relaxed, Ordering::Relaxed);
        next
    }
}

/// Runs the agent until `shutdown` completes, then stops accepting and drains connections up
/// to `cfg.proxy.drain_timeout`. Control-plane outages are logged and retried on every node,
/// never fatal. With a handover socket, a running predecessor's listening sockets are taken over
/// first, and this agent offers its own to a successor: once one took them over, it drains
/// and returns.
pub async fn run_agent(
    cfg: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    if cfg.control_planes.is_empty() {
        return Err(AgentError::Config("no control-plane URL".into()));
    }
    let clients = cfg
        .control_planes
        .iter()
        .map(|url| {
            Client::new(url, &cfg.access_key, &cfg.secret_key, &cfg.project_id)
                .and_then(|c| match &cfg.ca_cert_pem {
                    Some(pem) => c.with_ca_cert(pem),
                    None => Ok(c),
                })
                .map_err(|e| AgentError::Config(format!("{url}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let nodes = Nodes {
        clients,
        current: AtomicUsize::new(0),
    };
    let dp = start_data_plane(&cfg.proxy).await?;
    info!(control_planes = ?cfg.control_planes, agent_id = %cfg.proxy.agent_id, "agent started");
    // A call that gets through after failures wakes the other task from its retry delay.
    let kicks = Kicks::default();
    let heartbeat = watch::channel(cfg.heartbeat).0;
    tokio::select! {
        _ = shutdown => info!("agent shutting down"),
        _ = dp.retired() => info!("a successor took over; draining the connections of this agent"),
        _ = poll_snapshots(&nodes, &cfg, dp.snapshot_sender(), &kicks, &heartbeat) => {}
        _ = post_reports(&nodes, &cfg, dp.reports(), &kicks, heartbeat.subscribe()) => {}
    }
    dp.shutdown().await;
    Ok(())
}

/// Wake-ups between the poll and report tasks: a node answered again, retry now.
#[derive(Default)]
struct Kicks {
    poll: Notify,
    report: Notify,
}

/// The data plane: on a predecessor's sockets when one hands them over, offering its own at
/// the handover socket when configured.
async fn start_data_plane(opts: &ProxyOptions) -> Result<DataPlane, AgentError> {
    let Some(path) = opts.handover_socket.clone() else {
        return Ok(DataPlane::start(opts.clone()));
    };
    let failed = |source: std::io::Error| AgentError::Handover {
        path: path.display().to_string(),
        source,
    };
    let asked = path.clone();
    let inherited = tokio::task::spawn_blocking(move || crate::handover::take_over(&asked))
        .await
        .map_err(|e| failed(std::io::Error::other(e)))?
        .map_err(failed)?;
    let dp = match inherited {
        Some(inherited) => {
            info!(
                listeners = inherited.listeners.len(),
                "took the listening sockets over from the running agent"
            );
            DataPlane::start_inheriting(opts.clone(), inherited)
                .await
                .map_err(failed)?
        }
        None => DataPlane::start(opts.clone()),
    };
    dp.offer_handover(crate::handover::bind(&path).map_err(failed)?, Vec::new());
    Ok(dp)
}

/// Exponential delays from [`MIN_BACKOFF`] to a ceiling, each with ±20% jitter (never past the
/// ceiling) so that agents do not retry in step.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(max: Duration) -> Self {
        Backoff {
            next: MIN_BACKOFF,
            max,
        }
    }
    fn reset(&mut self) {
        self.next = MIN_BACKOFF;
    }
    fn step(&mut self) -> Duration {
        let max = self.max.max(MIN_BACKOFF);
        let d = self.next;
        self.next = (self.next * 2).min(max);
        d.mul_f64(rand::thread_rng().gen_range(0.8..1.2)).min(max)
    }
}

async fn poll_snapshots(
    nodes: &Nodes,
    cfg: &AgentConfig,
    snapshots: watch::Sender<Arc<Snapshot>>,
    kicks: &Kicks,
    heartbeat: &watch::Sender<Duration>,
) {
    let mut since: Option<u64> = None;
    let mut backoff = Backoff::new(cfg.max_backoff);
    let mut failed_in_a_row = 0usize;
    let wait = cfg.poll_timeout.as_secs();
    loop {
        let path = match since {
            Some(v) => format!("/agent/v1/snapshot?since={v}&timeout={wait}"),
            None => format!("/agent/v1/snapshot?timeout={wait}"),
        };
        let (node, client) = nodes.current();
        let asked = tokio::time::Instant::now();
        let answer = tokio::time::timeout(
            cfg.poll_timeout + POLL_GRACE,
            client.call::<(), Snapshot>(Method::GET, &path, None),
        )
        .await;
        let failure = match answer {
            Ok(Ok(snapshot)) => {
                if failed_in_a_row > 0 {
                    // Back after an outage: the pending report goes now, not at its next retry.
                    kicks.report.notify_one();
                }
                failed_in_a_row = 0;
                backoff.reset();
                if let Some(ms) = snapshot.report_every_ms.filter(|ms| *ms > 0) {
                    heartbeat.send_if_modified(|h| {
                        let asked = cfg.heartbeat.min(Duration::from_millis(ms));
                        std::mem::replace(h, asked) != asked
                    });
                }
                if since != Some(snapshot.version) {
                    info!(
                        version = snapshot.version,
                        endpoints = snapshot.endpoints.len(),
                        node = %cfg.control_planes[node],
                        "new snapshot"
                    );
                    since = Some(snapshot.version);
                    snapshots.send_replace(Arc::new(snapshot));
                } else if asked.elapsed() < MIN_UNCHANGED_POLL {
                    // A server that answers an unchanged version at once (no long-poll
                    // support) must not make the agent spin.
                    tokio::time::sleep(MIN_UNCHANGED_POLL).await;
                }
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "no answer in time".to_string(),
        };
        failed_in_a_row += 1;
        let next = nodes.next_after(node);
        // The next node is tried at once; a delay only once every node failed in this round.
        if !failed_in_a_row.is_multiple_of(nodes.clients.len()) {
            warn!(
                node = %cfg.control_planes[node],
                "snapshot poll failed: {failure}; trying {}",
                cfg.control_planes[next]
            );
            continue;
        }
        let delay = backoff.step();
        warn!(
            node = %cfg.control_planes[node],
            "snapshot poll failed: {failure}; no control-plane node answers: serving the current snapshot, retrying in {delay:?}"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = kicks.poll.notified() => {}
        }
    }
}

async fn post_report(client: &Client, report: &AgentReport) -> Result<(), String> {
    let body = serde_json::to_vec(report).map_err(|e| e.to_string())?;
    let r = client
        .send_raw(Method::POST, "/agent/v1/report", Some(body))
        .await
        .map_err(|e| e.to_string())?;
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        Err(format!(
            "HTTP {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ))
    }
}

async fn post_reports(
    nodes: &Nodes,
    cfg: &AgentConfig,
    mut reports: watch::Receiver<Option<Arc<AgentReport>>>,
    kicks: &Kicks,
    mut heartbeat: watch::Receiver<Duration>,
) {
    let mut backoff = Backoff::new(cfg.max_backoff);
    let mut failing = false;
    let mut last: Option<Arc<AgentReport>> = None;
    loop {
        let every = *heartbeat.borrow_and_update();
        tokio::select! {
            changed = reports.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = heartbeat.changed() => continue,
            _ = tokio::time::sleep(every), if last.is_some() => {}
        }
        // Send the newest report; on failure try the next node, then retry, switching to a
        // newer report if one appears, and at once when a poll got through again.
        loop {
            let Some(report) = reports.borrow_and_update().clone() else {
                break;
            };
            let (node, client) = nodes.current();
            match post_report(client, &report).await {
                Ok(()) => {
                    if std::mem::take(&mut failing) {
                        kicks.poll.notify_one();
                    }
                    backoff.reset();
                    last = Some(report);
                    break;
                }
                Err(e) => {
                    failing = true;
                    nodes.next_after(node);
                    let delay = backoff.step();
                    warn!(
                        version = report.version,
                        node = %cfg.control_planes[node],
                        "posting the report failed: {e}; retrying in {delay:?}"
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = kicks.report.notified() => {}
                    }
                }
            }
        }
    }
}
