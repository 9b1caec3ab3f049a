//! `vpcep agent --control-plane URL`: long-polls the control plane for snapshots, feeds a
//! [`DataPlane`], and posts its reports back. While the control plane is unreachable the
//! agent keeps serving the last snapshot and retries with exponential backoff.
//!
//! Transport (see `vpcep_domain::dataplane`), signed with an operator's AK/SK:
//! - `GET /agent/v1/snapshot?since=<version>&timeout=<secs>`
//! - `POST /agent/v1/report` (204), re-sent every [`AgentConfig::heartbeat`] so a restarted
//!   control plane learns the realized state without waiting for a change.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use tokio::sync::watch;
use tracing::{info, warn};
use vpcep_client::Client;
use vpcep_domain::dataplane::{AgentReport, Snapshot};

use crate::agent::DataPlane;
use crate::config::ProxyOptions;

/// Default long-poll wait asked of the control plane.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// Default interval at which the last report is sent again.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Default ceiling of the retry backoff.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// First retry delay.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Shortest interval between polls that return an unchanged version.
const MIN_UNCHANGED_POLL: Duration = Duration::from_secs(1);
/// Added to the long-poll timeout before the agent gives up on an answer.
const POLL_GRACE: Duration = Duration::from_secs(15);

/// How `vpcep agent` reaches its control plane, and how it proxies.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Base URL of the control plane, e.g. `http://127.0.0.1:8480`.
    pub control_plane: String,
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
    /// Ceiling of the retry backoff when the control plane is down.
    pub max_backoff: Duration,
    /// Data-plane options (agent id, PROXY version, copy mode, drain deadline, …).
    pub proxy: ProxyOptions,
    /// PEM CA certificates an `https://` control plane is verified against (`--ca-cert`);
    /// `None`: the system's roots.
    pub ca_cert_pem: Option<Vec<u8>>,
}

impl AgentConfig {
    /// A config with default timings and proxy options.
    pub fn new(control_plane: &str, access_key: &str, secret_key: &str) -> Self {
        AgentConfig {
            control_plane: control_plane.to_string(),
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
}

/// Runs the agent until `shutdown` completes, then stops accepting and drains connections up
/// to `cfg.proxy.drain_timeout`. Control-plane outages are logged and retried, never fatal.
pub async fn run_agent(
    cfg: AgentConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), AgentError> {
    let client = Client::new(
        &cfg.control_plane,
        &cfg.access_key,
        &cfg.secret_key,
        &cfg.project_id,
    )
    .and_then(|c| match &cfg.ca_cert_pem {
        Some(pem) => c.with_ca_cert(pem),
        None => Ok(c),
    })
    .map_err(|e| AgentError::Config(e.to_string()))?;
    let dp = DataPlane::start(cfg.proxy.clone());
    info!(control_plane = %cfg.control_plane, agent_id = %cfg.proxy.agent_id, "agent started");
    tokio::select! {
        _ = shutdown => info!("agent shutting down"),
        _ = poll_snapshots(&client, &cfg, dp.snapshot_sender()) => {}
        _ = post_reports(&client, &cfg, dp.reports()) => {}
    }
    dp.shutdown().await;
    Ok(())
}

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
        let d = self.next;
        self.next = (self.next * 2).min(self.max.max(MIN_BACKOFF));
        d
    }
}

async fn poll_snapshots(
    client: &Client,
    cfg: &AgentConfig,
    snapshots: watch::Sender<Arc<Snapshot>>,
) {
    let mut since: Option<u64> = None;
    let mut backoff = Backoff::new(cfg.max_backoff);
    let wait = cfg.poll_timeout.as_secs();
    loop {
        let path = match since {
            Some(v) => format!("/agent/v1/snapshot?since={v}&timeout={wait}"),
            None => format!("/agent/v1/snapshot?timeout={wait}"),
        };
        let asked = tokio::time::Instant::now();
        let answer = tokio::time::timeout(
            cfg.poll_timeout + POLL_GRACE,
            client.call::<(), Snapshot>(Method::GET, &path, None),
        )
        .await;
        let failure = match answer {
            Ok(Ok(snapshot)) => {
                backoff.reset();
                if since != Some(snapshot.version) {
                    info!(
                        version = snapshot.version,
                        endpoints = snapshot.endpoints.len(),
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
        let delay = backoff.step();
        warn!(
            "snapshot poll failed: {failure}; serving the current snapshot, retrying in {delay:?}"
        );
        tokio::time::sleep(delay).await;
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
    client: &Client,
    cfg: &AgentConfig,
    mut reports: watch::Receiver<Option<Arc<AgentReport>>>,
) {
    let mut backoff = Backoff::new(cfg.max_backoff);
    let mut last: Option<Arc<AgentReport>> = None;
    loop {
        tokio::select! {
            changed = reports.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(cfg.heartbeat), if last.is_some() => {}
        }
        // Send the newest report; on failure retry, switching to a newer one if it appears.
        loop {
            let Some(report) = reports.borrow_and_update().clone() else {
                break;
            };
            match post_report(client, &report).await {
                Ok(()) => {
                    backoff.reset();
                    last = Some(report);
                    break;
                }
                Err(e) => {
                    let delay = backoff.step();
                    warn!(
                        version = report.version,
                        "posting the report failed: {e}; retrying in {delay:?}"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}
