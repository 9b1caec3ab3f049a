//! The data plane as a running task: a [`Supervisor`] fed from a `watch` channel of snapshots,
//! publishing a report per applied snapshot. [`DataPlane`] is the in-process handle (what
//! `vpcep serve --with-agent` uses); [`crate::run_agent`] wraps it with the control-plane sync.

use std::sync::Arc;

use std::os::fd::OwnedFd;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vpcep_domain::dataplane::{AgentReport, Snapshot};

use crate::config::ProxyOptions;
use crate::handover::{HandoverSocket, Inherited, Offer};
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
    commands: mpsc::Sender<Command>,
    /// Cancelled once a successor took the listening sockets over.
    retired: CancellationToken,
}

/// Requests to the running supervisor.
enum Command {
    /// The current snapshot and duplicates of the listening sockets, for a successor.
    Offer(oneshot::Sender<Option<Offer>>),
}

impl DataPlane {
    /// Starts a data plane with no listener; it serves nothing until a snapshot is pushed.
    /// Must be called inside a tokio runtime.
    pub fn start(opts: ProxyOptions) -> DataPlane {
        Self::spawn(Supervisor::new(opts))
    }

    /// Starts a data plane on what a predecessor handed over (see [`crate::handover`]): it
    /// serves the predecessor's snapshot on the predecessor's own listening sockets, then tells
    /// the predecessor, which stops accepting and drains. Sockets the snapshot does not use are
    /// closed; listeners it lacks are bound as usual.
    pub async fn start_inheriting(
        opts: ProxyOptions,
        mut inherited: Inherited,
    ) -> std::io::Result<DataPlane> {
        let mut supervisor = Supervisor::new(opts);
        supervisor.adopt(std::mem::take(&mut inherited.listeners));
        let dp = Self::spawn(supervisor);
        let version = inherited.snapshot.version;
        dp.push(std::mem::take(&mut inherited.snapshot));
        dp.applied(version).await;
        tokio::task::spawn_blocking(move || inherited.done())
            .await
            .map_err(std::io::Error::other)??;
        Ok(dp)
    }

    fn spawn(supervisor: Supervisor) -> DataPlane {
        let (snapshots, snapshot_rx) = watch::channel(Arc::new(Snapshot::default()));
        let (report_tx, reports) = watch::channel(None);
        let (commands, command_rx) = mpsc::channel(4);
        let stats = supervisor.stats();
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(
            supervisor,
            snapshot_rx,
            report_tx,
            command_rx,
            stop.clone(),
        ));
        DataPlane {
            snapshots,
            reports,
            stats,
            stop,
            task,
            commands,
            retired: CancellationToken::new(),
        }
    }

    /// Offers the listening sockets (and `extra` ones of the process, e.g. its API's) to a
    /// successor on `socket` (see [`crate::handover`]); [`DataPlane::retired`] resolves once
    /// one took them over. Once the data plane stops, the socket is closed and its file removed:
    /// a successor started then binds anew.
    ///
    /// The `extra` sockets stay open (and offered) until [`OfferedSockets::withdraw`].
    pub fn offer_handover(
        &self,
        socket: HandoverSocket,
        extra: Vec<(String, OwnedFd)>,
    ) -> OfferedSockets {
        let commands = self.commands.clone();
        let retired = self.retired.clone();
        let stop = self.stop.clone();
        let offered = OfferedSockets(Arc::new(std::sync::Mutex::new(extra)));
        let extra = offered.clone();
        tokio::spawn(async move {
            let offer = || {
                let commands = commands.clone();
                let extra = extra.clone();
                async move {
                    let (tx, rx) = oneshot::channel();
                    commands.send(Command::Offer(tx)).await.ok()?;
                    let mut offer = rx.await.ok()??;
                    for (name, fd) in extra.0.lock().expect("offered sockets").iter() {
                        offer.extra.push((name.clone(), fd.try_clone().ok()?));
                    }
                    Some(offer)
                }
            };
            tokio::select! {
                done = crate::handover::offer(&socket, offer) => match done {
                    Ok(()) => {
                        tracing::info!("a successor took the listening sockets over; draining");
                        retired.cancel();
                    }
                    Err(e) => {
                        tracing::warn!("the handover socket failed: {e}; no successor can take over")
                    }
                },
                // Stopping: the socket closes and its file goes, so a successor binds anew.
                _ = stop.cancelled() => drop(socket),
            }
        });
        offered
    }

    /// Resolves once a successor took the listening sockets over: this process should stop
    /// ([`DataPlane::shutdown`] then drains its own connections).
    pub fn retired(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.retired.clone().cancelled_owned()
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
    mut commands: mpsc::Receiver<Command>,
    stop: CancellationToken,
) {
    let retry = supervisor.options().retry_interval;
    let mut current: Option<Arc<Snapshot>> = None;
    let mut failing = false;
    // The kernel path's counters reach the recorder once a second.
    let mut poll = tokio::time::interval(std::time::Duration::from_secs(1));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            _ = poll.tick() => {
                supervisor.poll_kernel().await;
                continue;
            }
            Some(Command::Offer(reply)) = commands.recv() => {
                let offer = current.as_ref().and_then(|snapshot| {
                    let listeners = supervisor.dup_sockets().ok()?;
                    Some(Offer { snapshot: (**snapshot).clone(), listeners, extra: Vec::new() })
                });
                let _ = reply.send(offer);
                continue;
            }
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

/// The process's own sockets offered to a successor beside the data plane's (e.g. its API's
/// listener), held open for it until withdrawn.
#[derive(Clone)]
pub struct OfferedSockets(Arc<std::sync::Mutex<Vec<(String, OwnedFd)>>>);

impl OfferedSockets {
    /// Closes them and offers them no more (the process stopped using them: a copy kept open
    /// would go on queueing connections nobody accepts).
    pub fn withdraw(&self) {
        self.0.lock().expect("offered sockets").clear();
    }
}
