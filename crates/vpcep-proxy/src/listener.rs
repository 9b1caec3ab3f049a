//! A running listener: the socket, its accept loop, the atomically swappable config that new
//! connections take, and the connection tasks it spawned.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
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

/// What every listener and connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub opts: ProxyOptions,
    pub copy: CopySettings,
    pub netns: NetnsPool,
}

impl Shared {
    pub(crate) fn new(opts: ProxyOptions) -> Self {
        Shared {
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

/// A bound listener and its connections.
#[derive(Debug)]
pub(crate) struct RunningListener {
    /// The config new connections take; a swap never touches accepted connections.
    route: Arc<ArcSwap<Route>>,
    /// Cancelled to stop accepting; the accept task then drops (closes) the socket.
    stop: CancellationToken,
    /// Cancelled to end the connections still open after the drain deadline.
    abort: CancellationToken,
    /// One accept loop per runtime worker, all on the one socket.
    accept_tasks: Vec<JoinHandle<()>>,
    /// Connection tasks, so a drain can wait for them.
    conns: TaskTracker,
    /// A duplicate of the listening socket, for a successor to take over
    /// ([`crate::handover`]); closed with the listener.
    socket: OwnedFd,
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
    /// Binds `key` (or serves `adopted`, a socket a predecessor bound for it) and starts
    /// accepting.
    pub(crate) async fn start(
        key: &ListenerKey,
        route: Arc<Route>,
        shared: Arc<Shared>,
        adopted: Option<std::net::TcpListener>,
    ) -> Result<Self, String> {
        let listener = match adopted {
            Some(l) => l
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(l))
                .map_err(|e| format!("cannot serve the socket handed over for {key}: {e}"))?,
            None => shared
                .netns
                .bind(key.netns.as_deref(), key.addr, shared.opts.backlog)
                .await
                .map_err(|e| bind_error(key, &e))?,
        };
        let socket = listener
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| bind_error(key, &e))?;
        let route = Arc::new(ArcSwap::new(route));
        let stop = CancellationToken::new();
        let abort = CancellationToken::new();
        let conns = TaskTracker::new();
        // As many accept loops as the runtime has workers: under a burst of connections every
        // worker accepts (each connection's task then starts on the worker that accepted it),
        // instead of one loop feeding them all. One socket, so a handover passes one socket
        // and no accept queue is split.
        let listener = Arc::new(listener);
        let loops = tokio::runtime::Handle::current()
            .metrics()
            .num_workers()
            .max(1);
        let accept_tasks = (0..loops)
            .map(|_| {
                tokio::spawn(accept_loop(
                    listener.clone(),
                    key.clone(),
                    route.clone(),
                    shared.clone(),
                    stop.clone(),
                    abort.clone(),
                    conns.clone(),
                ))
            })
            .collect();
        Ok(RunningListener {
            route,
            stop,
            abort,
            accept_tasks,
            conns,
            socket,
        })
    }

    /// Another descriptor of the listening socket (for a successor).
    pub(crate) fn dup_socket(&self) -> io::Result<OwnedFd> {
        self.socket.try_clone()
    }

    /// The config new connections use.
    pub(crate) fn route(&self) -> Arc<Route> {
        self.route.load_full()
    }

    /// New connections from now on use `route`.
    pub(crate) fn update(&self, route: Arc<Route>) {
        self.route.store(route);
    }

    /// Stops accepting and closes the socket (returns once it is closed), then lets the open
    /// connections run until they end or `deadline` passes. The returned future finishes when
    /// every connection is gone.
    pub(crate) async fn close(self, deadline: Duration) -> impl std::future::Future<Output = ()> {
        self.stop.cancel();
        for task in self.accept_tasks {
            let _ = task.await;
        }
        drop(self.socket);
        let (conns, abort) = (self.conns, self.abort);
        conns.close();
        async move {
            if tokio::time::timeout(deadline, conns.wait()).await.is_err() {
                debug!(
                    "drain deadline passed with {} connections open: aborting them",
                    conns.len()
                );
                abort.cancel();
                conns.wait().await;
            }
        }
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
