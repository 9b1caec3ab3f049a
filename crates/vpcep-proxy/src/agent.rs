//! The data plane as a running task: a [`Supervisor`] fed from a `watch` channel of snapshots,
//! publishing a report per applied snapshot. [`DataPlane`] is the in-process handle (what
//! `vpcep serve --with-agent` uses); [`crate::run_agent`] wraps it with the control-plane sync.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vpcep_domain::dataplane::{AgentReport, Snapshot};

use crate::config::ProxyOptions;
use crate::metrics::StatsRegistry;
use crate::supervisor::Supervisor;

/// A running data plane. Push snapshots in, read reports and counters out.
///
/// Dropping every snapshot sender (this handle included) shuts it down gracefully, as
/// [`DataPlane::shutdown`] does.
#[derive(Debug)]
pub struct DataPlane {
    snapshots: watch::Sender<Arc<Snapshot>>,
    reports: watch::Receiver<Option<Arc<AgentReport>>>,
    stats: StatsRegistry,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl DataPlane {
    /// Starts a data plane with no listener; it serves nothing until a snapshot is pushed.
    /// Must be called inside a tokio runtime.
    pub fn start(opts: ProxyOptions) -> DataPlane {
        let (snapshots, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
        let (report_tx, reports) = watch::channel(None);
        let supervisor = Supervisor::new(opts);
        let stats = supervisor.stats();
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(supervisor, snapshot_rx, report_tx, stop.clone()));
        DataPlane {
            snapshots,
            reports,
            stats,
            stop,
            task,
        }
    }

    /// Asks the data plane to serve `snapshot`. Only the latest pushed snapshot is applied:
    /// one pushed while another is being applied replaces it.
    pub fn push(&self, snapshot: Snapshot) {
        self.snapshots.send_replace(Arc::new(snapshot));
    }

    /// A sender to push snapshots from elsewhere (e.g. the control plane's feed).
    pub fn snapshot_sender(&self) -> watch::Sender<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// The latest report (`None` before the first snapshot is applied). A new report is
    /// published after each applied snapshot and when a retry changes the outcome.
    pub fn reports(&self) -> watch::Receiver<Option<Arc<AgentReport>>> {
        self.reports.clone()
    }

    /// Waits for the report of `version` (or a later one); `None` if the data plane stopped.
    pub async fn applied(&self, version: u64) -> Option<Arc<AgentReport>> {
        let mut rx = self.reports.clone();
        let r = rx
            .wait_for(|r| r.as_ref().is_some_and(|r| r.version >= version))
            .await
            .ok()?;
        r.clone()
    }

    /// Per-endpoint counters.
    pub fn stats(&self) -> &StatsRegistry {
        &self.stats
    }

    /// Stops accepting, lets connections drain up to
    /// [`ProxyOptions::drain_timeout`], aborts the rest, and returns when all are closed.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn supervise(
    mut supervisor: Supervisor,
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    reports: watch::Sender<Option<Arc<AgentReport>>>,
    stop: CancellationToken,
) {
    let retry = supervisor.options().retry_interval;
    let mut current: Option<Arc<Snapshot>> = None;
    let mut failing = false;
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            changed = snapshots.changed() => {
                if changed.is_err() {
                    break;
                }
                current = Some(snapshots.borrow_and_update().clone());
            }
            _ = tokio::time::sleep(retry), if failing => {}
        }
        if let Some(snapshot) = &current {
            let report = supervisor.apply(snapshot).await;
            failing = report.endpoints.iter().any(|e| !e.ok);
            reports.send_if_modified(|r| {
                if r.as_deref() == Some(&report) {
                    false
                } else {
                    *r = Some(Arc::new(report));
                    true
                }
            });
        }
    }
    supervisor.shutdown().await;
}
