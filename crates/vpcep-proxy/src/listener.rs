//! A running listener: its sockets and their accept loops, the atomically swappable config
//! that new connections take, and the connection tasks it spawned.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::config::{ListenerKey, ProxyOptions};
use crate::connection::{self, Route};
use crate::copy::CopySettings;
use crate::netns::NetnsPool;
use crate::workers::Workers;

/// What every listener and connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub opts: ProxyOptions,
    pub copy: CopySettings,
    pub netns: NetnsPool,
    /// The accept threads; `None` if they could not be started (then the runtime that
    /// applies snapshots accepts too).
    pub workers: Option<Workers>,
    /// Listening sockets held beyond each listener's first (its siblings, see
    /// [`RunningListener::start`]).
    extra_sockets: AtomicUsize,
    /// Most of those at once: a quarter of the open-file limit, so that listeners with many
    /// threads leave the descriptors to connections (a tenant's endpoints cannot take them all).
    extra_budget: usize,
}

impl Shared {
    pub(crate) fn new(opts: ProxyOptions) -> Self {
        let workers = match Workers::start(opts.threads) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(
                    "cannot start {} accept threads ({e}): accepting on the main runtime",
                    opts.threads
                );
                None
            }
        };
        let nofile = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1024, |(soft, _)| soft);
        Shared {
            workers,
            extra_sockets: AtomicUsize::new(0),
            extra_budget: usize::try_from(nofile / 4).unwrap_or(usize::MAX),
            copy: CopySettings {
                mode: opts.copy_mode,
                pipe_bytes: opts.pipe_bytes,
                buffer_bytes: opts.buffer_bytes,
            },
            opts,
            netns: NetnsPool::new(),
        }
    }
}

/// A listener's share of [`Shared::extra_sockets`], given back when dropped.
#[derive(Debug)]
struct ExtraSockets {
    shared: Arc<Shared>,
    held: usize,
}

impl ExtraSockets {
    fn new(shared: Arc<Shared>) -> Self {
        ExtraSockets { shared, held: 0 }
    }

    /// Takes one more if the budget has room.
    fn try_take(&mut self) -> bool {
        let taken = self
            .shared
            .extra_sockets
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.shared.extra_budget).then_some(n + 1)
            })
            .is_ok();
        self.held += usize::from(taken);
        taken
    }

    /// Holds exactly `n` (sockets already open, e.g. handed over, count whatever the budget).
    fn hold(&mut self, n: usize) {
        if n > self.held {
            self.shared
                .extra_sockets
                .fetch_add(n - self.held, Ordering::Relaxed);
        } else {
            self.shared
                .extra_sockets
                .fetch_sub(self.held - n, Ordering::Relaxed);
        }
        self.held = n;
    }
}

impl Drop for ExtraSockets {
    fn drop(&mut self) {
        self.hold(0);
    }
}

/// A bound listener and its connections.
#[derive(Debug)]
pub(crate) struct RunningListener {
    /// The config new connections take; a swap never touches accepted connections.
    route: Arc<ArcSwap<Route>>,
    /// Cancelled to stop accepting; each socket closes once its accept task and this listener
    /// let go of it.
    stop: CancellationToken,
    /// Cancelled to end the connections still open after the drain deadline.
    abort: CancellationToken,
    /// One accept loop per listening socket.
    accept_tasks: Vec<JoinHandle<()>>,
    /// Connection tasks, so a drain can wait for them.
    conns: TaskTracker,
    /// The listening sockets, shared with their accept loops: a successor takes duplicates
    /// over ([`crate::handover`]); closed with the listener.
    sockets: Vec<Arc<TcpListener>>,
    /// All but the first of them, counted against the data plane's budget.
    _extra: ExtraSockets,
}

/// The error text of a bind failure, without the `(os error N)` suffix.
fn bind_error(key: &ListenerKey, e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    format!("cannot listen on {key}: {text}")
}

impl RunningListener {
    /// Binds `key` (or serves `adopted`, the sockets a predecessor bound for it) and starts
    /// accepting.
    ///
    /// One listening socket per accept thread ([`Workers`]), side by side with `SO_REUSEPORT`,
    /// each with its own accept loop on its thread: the kernel spreads new connections over
    /// the sockets, no two loops wait on (and race for) one accept queue, and a connection is
    /// served where it was accepted. Sockets handed over are all served, however many (closing
    /// one would reset the connections in its queue), spread over the threads; if they are
    /// fewer than the threads, more are bound beside them.
    pub(crate) async fn start(
        key: &ListenerKey,
        route: Arc<Route>,
        shared: Arc<Shared>,
        adopted: Vec<std::net::TcpListener>,
    ) -> Result<Self, String> {
        let current = [tokio::runtime::Handle::current()];
        let runtimes = match &shared.workers {
            Some(w) => w.handles(),
            None => &current,
        };
        let mut extra = ExtraSockets::new(shared.clone());
        extra.hold(adopted.len().saturating_sub(1));
        let mut listeners = Vec::with_capacity(runtimes.len().max(adopted.len()));
        for l in adopted {
            l.set_nonblocking(true)
                .map_err(|e| format!("cannot serve the socket handed over for {key}: {e}"))?;
            listeners.push(l);
        }
        while listeners.len() < runtimes.len() {
            if !listeners.is_empty() && !extra.try_take() {
                debug!(
                    listener = %key,
                    "the data plane holds {} extra listening sockets: serving it with {} of {}",
                    shared.extra_budget,
                    listeners.len(),
                    runtimes.len()
                );
                break;
            }
            // The siblings take the first socket's address: the same port when the key asks
            // for any (port 0).
            let addr = match listeners.first() {
                Some(l) => l.local_addr().map_err(|e| bind_error(key, &e))?,
                None => key.addr,
            };
            match shared
                .netns
                .bind_std(key.netns.as_deref(), addr, shared.opts.backlog)
                .await
            {
                Ok(l) => listeners.push(l),
                Err(e) if listeners.is_empty() => return Err(bind_error(key, &e)),
                // A sibling is an optimization: with the descriptors short (EMFILE), the
                // listener is served by the sockets it has.
                Err(e) => {
                    warn!(
                        listener = %key,
                        "{}; serving it with {} of {} sockets",
                        bind_error(key, &e),
                        listeners.len(),
                        runtimes.len()
                    );
                    break;
                }
            }
        }
        let route = Arc::new(ArcSwap::new(route));
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let conns = TaskTracker::new();
        // Each registered with its thread's own reactor and accepted on there. A socket that
        // cannot be registered is closed and the listener served by the others; with none left,
        // nothing was started.
        let total = listeners.len();
        let mut accept_tasks = Vec::with_capacity(total);
        let mut sockets = Vec::with_capacity(total);
        let mut last_error = None;
        for (l, rt) in listeners.into_iter().zip(runtimes.iter().cycle()) {
            let registered = {
                let _in = rt.enter();
                TcpListener::from_std(l)
            };
            let listener = match registered {
                Ok(l) => Arc::new(l),
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            };
            sockets.push(listener.clone());
            accept_tasks.push(rt.spawn(accept_loop(
                listener,
                key.clone(),
                route.clone(),
                shared.clone(),
                stop.clone(),
                abort.clone(),
                conns.clone(),
            )));
        }
        extra.hold(sockets.len().saturating_sub(1));
        if let Some(e) = last_error {
            if sockets.is_empty() {
                return Err(bind_error(key, &e));
            }
            warn!(
                listener = %key,
                "cannot serve {} of its {total} sockets ({e}); serving it with the others",
                total - sockets.len()
            );
        }
        Ok(RunningListener {
            route,
            stop,
            abort,
            accept_tasks,
            conns,
            sockets,
            _extra: extra,
        })
    }

    /// Other descriptors of the listening sockets (for a successor).
    pub(crate) fn dup_sockets(&self) -> io::Result<Vec<OwnedFd>> {
        self.sockets
            .iter()
            .map(|l| l.as_fd().try_clone_to_owned())
            .collect()
    }

    /// The config new connections use.
    pub(crate) fn route(&self) -> Arc<Route> {
        self.route.load_full()
    }

    /// New connections from now on use `route`.
    pub(crate) fn update(&self, route: Arc<Route>) {
        self.route.store(route);
    }

    /// Stops accepting and closes the sockets (returns once they are closed), then lets the open
    /// connections run until they end or `deadline` passes. The returned future finishes when
    /// every connection is gone.
    pub(crate) async fn close(
        mut self,
        deadline: Duration,
    ) -> impl std::future::Future<Output = ()> {
        self.stop.cancel();
        for task in std::mem::take(&mut self.accept_tasks) {
            let _ = task.await;
        }
        self.sockets.clear();
        // Ours to cancel at the deadline now, not when `self` drops below.
        let abort = std::mem::take(&mut self.abort);
        let conns = self.conns.clone();
        conns.close();
        async move {
            // Dropped before the deadline (its runtime going away), it ends them too.
            let abort = abort.drop_guard();
            if tokio::time::timeout(deadline, conns.wait()).await.is_err() {
                debug!(
                    "drain deadline passed with {} connections open: aborting them",
                    conns.len()
                );
                abort.disarm().cancel();
                conns.wait().await;
            }
        }
    }
}

/// A listener dropped without [`RunningListener::close`] (its runtime going away) stops at once:
/// its accept loops and connections run on the accept threads, which outlive it.
impl Drop for RunningListener {
    fn drop(&mut self) {
        self.stop.cancel();
        self.abort.cancel();
    }
}

async fn accept_loop(
    listener: Arc<TcpListener>,
    key: ListenerKey,
    route: Arc<ArcSwap<Route>>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    abort: CancellationToken,
    conns: TaskTracker,
) {
    let local = (!key.addr.ip().is_unspecified()).then_some(key.addr);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                conns.spawn(connection::serve(
                    stream,
                    peer,
                    local,
                    route.load_full(),
                    shared.clone(),
                    abort.clone(),
                ));
            }
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // EMFILE/ENFILE/ENOBUFS: back off instead of spinning.
                warn!(listener = %key, "accept failed: {e}");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
    debug!(listener = %key, "listener closed");
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
