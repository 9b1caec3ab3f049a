//! Sockets in other network namespaces.
//!
//! A socket belongs to the namespace of the thread that created it, for its whole life. So a
//! listening or connecting socket for namespace `ns` is created on a worker thread that has
//! entered `/var/run/netns/<ns>` with `setns(CLONE_NEWNET)`; the file descriptor is then handed
//! to tokio, and accepting, connecting and copying happen on the runtime as usual.
//!
//! One worker thread per namespace is kept. It is replaced when the namespace file now names a
//! different namespace (deleted and created again under the same name), detected by its inode.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};

use nix::sched::{setns, CloneFlags};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Where `ip netns` keeps its namespaces.
pub const NETNS_DIR: &str = "/var/run/netns";

type Job = Box<dyn FnOnce() + Send + 'static>;

#[derive(Debug)]
struct Worker {
    /// `(st_dev, st_ino)` of the namespace file the worker entered.
    id: (u64, u64),
    jobs: mpsc::Sender<Job>,
}

/// Creates sockets in the agent's own namespace or in named ones, keeping one worker thread
/// per named namespace.
#[derive(Debug, Default)]
pub struct NetnsPool {
    workers: Mutex<HashMap<String, Worker>>,
}

fn ns_path(name: &str) -> io::Result<PathBuf> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid network namespace name {name:?}"),
        ));
    }
    Ok(PathBuf::from(NETNS_DIR).join(name))
}

impl NetnsPool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on a thread inside namespace `name` and returns its result.
    pub async fn run_in<T, F>(&self, name: &str, f: F) -> io::Result<T>
    where
        F: FnOnce() -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let path = ns_path(name)?;
        let md = std::fs::metadata(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("network namespace {name}: {e}")))?;
        let id = (md.dev(), md.ino());
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        let jobs = self.worker(name, path, id).await?;
        jobs.send(job)
            .map_err(|_| io::Error::other(format!("network namespace {name}: worker stopped")))?;
        rx.await.map_err(|_| {
            io::Error::other(format!("network namespace {name}: worker dropped a job"))
        })?
    }

    async fn worker(
        &self,
        name: &str,
        path: PathBuf,
        id: (u64, u64),
    ) -> io::Result<mpsc::Sender<Job>> {
        {
            let workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(w) = workers.get(name).filter(|w| w.id == id) {
                return Ok(w.jobs.clone());
            }
        }
        let jobs = spawn_worker(name, path).await?;
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.to_string(),
                Worker {
                    id,
                    jobs: jobs.clone(),
                },
            );
        Ok(jobs)
    }

    /// A listening socket on `addr` in `netns` (or the agent's own namespace), with
    /// `SO_REUSEPORT` and `TCP_NODELAY` (inherited by accepted connections), registered with
    /// the current runtime.
    pub async fn bind(
        &self,
        netns: Option<&str>,
        addr: SocketAddr,
        backlog: u32,
    ) -> io::Result<TcpListener> {
        TcpListener::from_std(self.bind_std(netns, addr, backlog).await?)
    }

    /// [`NetnsPool::bind`], not registered with any runtime (non-blocking): for the caller to
    /// register with the runtime that will accept on it.
    pub async fn bind_std(
        &self,
        netns: Option<&str>,
        addr: SocketAddr,
        backlog: u32,
    ) -> io::Result<std::net::TcpListener> {
        match netns {
            None => listen_socket(addr, backlog),
            Some(ns) => self.run_in(ns, move || listen_socket(addr, backlog)).await,
        }
    }

    /// Starts a connection to `addr` from `netns` (or the agent's own namespace), with
    /// `TCP_NODELAY`: `connect` is issued and not waited for (see [`Connecting`]). Only socket
    /// creation hops to the namespace thread.
    ///
    /// `sends_first`: the caller writes as soon as the connection is up, so the handshake's
    /// last ACK is left to ride on that first segment (`TCP_QUICKACK` off before connect)
    /// instead of a packet of its own.
    pub async fn connect(
        &self,
        netns: Option<&str>,
        addr: SocketAddr,
        sends_first: bool,
    ) -> io::Result<Connecting> {
        let socket = match netns {
            None => stream_socket(addr)?,
            Some(ns) => self.run_in(ns, move || stream_socket(addr)).await?,
        };
        socket.set_tcp_nodelay(true)?;
        if sends_first {
            socket.set_tcp_quickack(false)?;
        }
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        Ok(Connecting { socket })
    }
}

/// A non-blocking socket whose `connect` is under way, not yet registered with a runtime.
#[derive(Debug)]
pub struct Connecting {
    socket: Socket,
}

impl Connecting {
    /// Sends `data` if the connection is already up, without waiting: how many bytes went, `0`
    /// while the handshake is still under way. To a backend on this host (loopback, or a
    /// namespace linked to this one) the handshake has completed by the time `connect`
    /// returns, so the first bytes leave at once, and the connection costs no wait for
    /// writability (a reactor round). An error here is the connect's own (refused,
    /// unreachable).
    pub fn send_now(&self, data: &[u8]) -> io::Result<usize> {
        match self.socket.send(data) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Registers the socket with the current runtime and, unless `connected` (a send went
    /// through), waits for the handshake's end: the connect's error, if it failed.
    pub async fn established(self, connected: bool) -> io::Result<TcpStream> {
        let stream = TcpStream::from_std(self.socket.into())?;
        if !connected {
            stream.writable().await?;
            if let Some(e) = stream.take_error()? {
                return Err(e);
            }
        }
        Ok(stream)
    }
}

/// Starts a thread that enters the namespace file at `path` and then runs jobs until the pool
/// drops its sender.
async fn spawn_worker(name: &str, path: PathBuf) -> io::Result<mpsc::Sender<Job>> {
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let (ready_tx, ready_rx) = oneshot::channel::<io::Result<()>>();
    let label = name.to_string();
    std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            let entered = std::fs::File::open(&path)
                .and_then(|f| setns(&f, CloneFlags::CLONE_NEWNET).map_err(io::Error::from));
            let ok = entered.is_ok();
            let _ = ready_tx.send(entered);
            if ok {
                while let Ok(job) = jobs_rx.recv() {
                    job();
                }
            }
        })?;
    match ready_rx.await {
        Ok(Ok(())) => Ok(jobs_tx),
        Ok(Err(e)) => Err(io::Error::new(
            e.kind(),
            format!("cannot enter network namespace {label}: {e}"),
        )),
        Err(_) => Err(io::Error::other(format!(
            "cannot enter network namespace {label}: worker died"
        ))),
    }
}

fn listen_socket(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    // Several agents (same user) may serve one endpoint on one host: the kernel spreads new
    // connections over their sockets, and losing one loses only its own connections.
    s.set_reuse_port(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt per
    // listener instead of one per connection.
    s.set_tcp_nodelay(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(s.into())
}

fn stream_socket(addr: SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_leave_the_netns_directory() {
        for bad in ["", "..", "a/b", "."] {
            assert_eq!(
                ns_path(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidInput
            );
        }
        assert_eq!(
            ns_path("vpc-a").unwrap(),
            PathBuf::from("/var/run/netns/vpc-a")
        );
    }

    #[tokio::test]
    async fn a_missing_namespace_is_a_clear_error() {
        let err = NetnsPool::new()
            .run_in("vpcep-no-such-ns", || Ok(()))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("network namespace vpcep-no-such-ns:"),
            "{err}"
        );
    }
}
