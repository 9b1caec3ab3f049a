//! Handing the listening sockets of a running data plane to its successor, so that a planned
//! restart refuses no connection.
//!
//! A data plane with a handover socket (`ProxyOptions::handover_socket`, a Unix socket path)
//! offers its listening sockets there. A new process started with the same path first asks for
//! them ([`take_over`]): it receives the predecessor's current snapshot and a duplicate of every
//! listening socket (`SCM_RIGHTS`), serves them at once (the kernel's accept queue is the same,
//! so no connection is refused or lost), and then says it is done. The predecessor then stops
//! accepting — the sockets stay open, held by the successor — drains its own connections for
//! `drain_timeout` and exits as soon as they finish. The successor then offers the sockets at
//! the same path for the next restart.
//!
//! Both ends check that the peer runs as the same user (`SO_PEERCRED`), and the socket's
//! directory is created `0700`: no other local user can hand sockets in or take them.
//!
//! Wire format: the successor writes `TAKE\n`; the predecessor answers a big-endian `u32`
//! length and a JSON [`Header`], then the descriptors in batches (one byte of payload each,
//! `SCM_RIGHTS` ancillary data) in the header's order; the successor answers `DONE\n`.

use std::collections::HashMap;
use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdUnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};
use vpcep_domain::dataplane::Snapshot;

use crate::config::ListenerKey;

/// Descriptors per `sendmsg` (below the kernel's `SCM_MAX_FD` of 253).
const BATCH: usize = 200;
/// How long either side waits for the other on the handover socket.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest header accepted (a snapshot of very many endpoints still fits).
const MAX_HEADER: usize = 64 * 1024 * 1024;

/// What the predecessor sends before the descriptors.
#[derive(Debug, Serialize, Deserialize)]
pub struct Header {
    /// The desired state it was serving (the successor serves it until its own first poll).
    pub snapshot: Snapshot,
    /// The data plane's listeners, in the order of the descriptors; a listener served by
    /// several sockets is named once per socket.
    pub listeners: Vec<WireKey>,
    /// Other listening sockets of the process by name (e.g. `api` for the control plane's),
    /// after the listeners.
    pub extra: Vec<String>,
}

/// A [`ListenerKey`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireKey {
    /// The namespace.
    pub netns: Option<String>,
    /// The address.
    pub addr: std::net::SocketAddr,
}

impl From<&ListenerKey> for WireKey {
    fn from(k: &ListenerKey) -> Self {
        WireKey {
            netns: k.netns.clone(),
            addr: k.addr,
        }
    }
}

impl From<WireKey> for ListenerKey {
    fn from(k: WireKey) -> Self {
        ListenerKey {
            netns: k.netns,
            addr: k.addr,
        }
    }
}

/// What a predecessor handed over.
#[derive(Debug)]
pub struct Inherited {
    /// The snapshot it was serving.
    pub snapshot: Snapshot,
    /// Its data-plane listening sockets: one or more per listener (side by side with
    /// `SO_REUSEPORT`).
    pub listeners: HashMap<ListenerKey, Vec<std::net::TcpListener>>,
    /// Its other listening sockets, by name.
    pub extra: HashMap<String, std::net::TcpListener>,
    conn: UnixStream,
}

impl Inherited {
    /// Tells the predecessor the sockets are served here: it stops accepting and drains.
    pub fn done(mut self) -> io::Result<()> {
        self.conn.write_all(b"DONE\n")
    }
}

/// What a running data plane offers: its snapshot and duplicates of its listening sockets.
#[derive(Debug)]
pub struct Offer {
    /// The snapshot being served.
    pub snapshot: Snapshot,
    /// Duplicates of the listening sockets (a listener's key once per socket).
    pub listeners: Vec<(ListenerKey, OwnedFd)>,
    /// Other listening sockets, by name.
    pub extra: Vec<(String, OwnedFd)>,
}

/// The default handover socket of an agent: `/run/vpcep/<agent_id>.sock` for root, else
/// `$XDG_RUNTIME_DIR/vpcep/<agent_id>.sock`, else `<temp dir>/vpcep-<uid>/<agent_id>.sock`.
pub fn default_path(agent_id: &str) -> PathBuf {
    let uid = rustix::process::geteuid();
    let dir = if uid.is_root() {
        PathBuf::from("/run/vpcep")
    } else if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR") {
        PathBuf::from(d).join("vpcep")
    } else {
        std::env::temp_dir().join(format!("vpcep-{}", uid.as_raw()))
    };
    let name: String = agent_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{name}.sock"))
}

/// Refuses a peer that does not run as this process's user.
fn check_peer(s: &UnixStream) -> io::Result<()> {
    let peer = rustix::net::sockopt::socket_peercred(s.as_fd())?;
    let me = rustix::process::geteuid();
    if peer.uid != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the peer on the handover socket runs as uid {}, not as this process (uid {})",
                peer.uid.as_raw(),
                me.as_raw()
            ),
        ));
    }
    Ok(())
}

/// Asks the data plane offering at `path` for its sockets. `Ok(None)` when none offers there
/// (no socket, or nobody listening: a stale file is removed). Blocking.
pub fn take_over(path: &Path) -> io::Result<Option<Inherited>> {
    let mut conn = match UnixStream::connect(path) {
        Ok(c) => c,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            let _ = std::fs::remove_file(path);
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    check_peer(&conn)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut len = [0u8; 4];
    // A predecessor that is stopping (its listeners already closed) hangs up: nothing to take.
    match conn
        .write_all(b"TAKE\n")
        .and_then(|()| conn.read_exact(&mut len))
    {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_HEADER {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "handover header too large",
        ));
    }
    let mut header = vec![0u8; len];
    conn.read_exact(&mut header)?;
    let header: Header = serde_json::from_slice(&header)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("handover header: {e}")))?;
    let want = header.listeners.len() + header.extra.len();
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(want);
    while fds.len() < want {
        let got = recv_fds(&conn, (want - fds.len()).min(BATCH))?;
        if got.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the predecessor closed the handover before sending every socket",
            ));
        }
        fds.extend(got);
    }
    let mut fds = fds.into_iter().map(std::net::TcpListener::from);
    let mut listeners: HashMap<ListenerKey, Vec<std::net::TcpListener>> = HashMap::new();
    for (key, fd) in header.listeners.into_iter().zip(fds.by_ref()) {
        listeners
            .entry(ListenerKey::from(key))
            .or_default()
            .push(fd);
    }
    let extra = header.extra.into_iter().zip(fds).collect();
    Ok(Some(Inherited {
        snapshot: header.snapshot,
        listeners,
        extra,
        conn,
    }))
}

fn recv_fds(conn: &UnixStream, max: usize) -> io::Result<Vec<OwnedFd>> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(BATCH))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let r = recvmsg(
        conn,
        &mut [IoSliceMut::new(&mut byte)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut out = Vec::new();
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = m {
            out.extend(fds);
        }
    }
    if r.bytes == 0 && out.is_empty() {
        return Ok(out);
    }
    if out.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "more sockets than announced",
        ));
    }
    Ok(out)
}

fn send_offer(conn: &mut UnixStream, offer: &Offer) -> io::Result<()> {
    let header = Header {
        snapshot: offer.snapshot.clone(),
        listeners: offer
            .listeners
            .iter()
            .map(|(k, _)| WireKey::from(k))
            .collect(),
        extra: offer.extra.iter().map(|(n, _)| n.clone()).collect(),
    };
    let json = serde_json::to_vec(&header).map_err(io::Error::other)?;
    conn.write_all(
        &u32::try_from(json.len())
            .map_err(io::Error::other)?
            .to_be_bytes(),
    )?;
    conn.write_all(&json)?;
    let fds: Vec<BorrowedFd<'_>> = offer
        .listeners
        .iter()
        .map(|(_, fd)| fd.as_fd())
        .chain(offer.extra.iter().map(|(_, fd)| fd.as_fd()))
        .collect();
    for batch in fds.chunks(BATCH) {
        let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(BATCH))];
        let mut cmsg = SendAncillaryBuffer::new(&mut space);
        if !cmsg.push(SendAncillaryMessage::ScmRights(batch)) {
            return Err(io::Error::other(
                "cannot fit the descriptors in one message",
            ));
        }
        sendmsg(&*conn, &[IoSlice::new(b"F")], &mut cmsg, SendFlags::empty())?;
    }
    Ok(())
}

/// A bound handover socket: removes its file when dropped, unless another process has bound
/// the path since (a successor that took over).
#[derive(Debug)]
pub struct HandoverSocket {
    listener: tokio::net::UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file this process bound.
    identity: (u64, u64),
}

impl Drop for HandoverSocket {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.identity {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Binds the handover socket at `path` (its directory made `0700` when missing; a stale socket
/// file replaced).
pub fn bind(path: &Path) -> io::Result<HandoverSocket> {
    use std::os::unix::fs::MetadataExt;
    let listener = bind_listener(path)?;
    let m = std::fs::symlink_metadata(path)?;
    Ok(HandoverSocket {
        listener,
        path: path.to_path_buf(),
        identity: (m.dev(), m.ino()),
    })
}

fn bind_listener(path: &Path) -> io::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
    }
    let _ = std::fs::remove_file(path);
    let l = StdUnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    tokio::net::UnixListener::from_std(l)
}

/// Serves successors on `socket` until one has taken the sockets over (then answers `Ok`).
/// `offer` gives the sockets at the moment a successor asks. A successor that fails half-way
/// changes nothing: the next one is served.
pub async fn offer<F, Fut>(socket: &HandoverSocket, offer: F) -> io::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<Offer>>,
{
    loop {
        let (conn, _) = socket.listener.accept().await?;
        let mut conn = conn.into_std()?;
        conn.set_nonblocking(false)?;
        if let Err(e) = check_peer(&conn) {
            tracing::warn!("handover refused: {e}");
            continue;
        }
        let Some(current) = offer().await else {
            continue;
        };
        let done = tokio::task::spawn_blocking(move || -> io::Result<bool> {
            conn.set_read_timeout(Some(IO_TIMEOUT))?;
            conn.set_write_timeout(Some(IO_TIMEOUT))?;
            let mut ask = [0u8; 5];
            conn.read_exact(&mut ask)?;
            if &ask != b"TAKE\n" {
                return Ok(false);
            }
            send_offer(&mut conn, &current)?;
            // The successor serves the sockets once it has applied the snapshot: wait for that
            // (longer than the I/O timeout: applying many listeners takes a moment).
            conn.set_read_timeout(Some(IO_TIMEOUT * 6))?;
            let mut answer = [0u8; 5];
            conn.read_exact(&mut answer)?;
            Ok(&answer == b"DONE\n")
        })
        .await
        .map_err(io::Error::other)?;
        match done {
            Ok(true) => return Ok(()),
            Ok(false) => tracing::warn!("handover: a successor did not finish; still serving"),
            Err(e) => tracing::warn!("handover failed: {e}; still serving"),
        }
    }
}
