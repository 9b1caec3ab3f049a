//! Moving bytes between the client and backend sockets, both ways, with half-close: when one
//! side sends FIN, the other side's write half is shut down and the opposite direction goes on.
//! An error in either direction ends both.
//!
//! Two interchangeable paths ([`CopyMode`]):
//! - **splice**: `splice(2)` socket → pipe → socket. Payload pages move by reference inside the
//!   kernel; user space only issues two syscalls per chunk. The pipe is created on the first
//!   readable event, so idle connections hold no pipe. `nix::fcntl::splice` is a safe wrapper,
//!   so the crate keeps `unsafe_code = "forbid"`.
//! - **userspace**: `read`/`write` through a buffer allocated on the first readable event.
//!
//! Both are written on `&TcpStream` with tokio's readiness API (`try_io`, `try_read`,
//! `try_write`), which lets the two directions run concurrently on one pair of sockets without
//! splitting them, and count bytes per chunk so the metrics move while a transfer runs.

use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::config::CopyMode;
use crate::metrics::{Direction, EndpointMetrics};

/// Copy settings taken from [`crate::ProxyOptions`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct CopySettings {
    pub mode: CopyMode,
    pub pipe_bytes: Option<usize>,
    pub buffer_bytes: usize,
}

/// Copies both ways until both sides have sent FIN, or until an error.
pub(crate) async fn bidirectional(
    client: &TcpStream,
    backend: &TcpStream,
    s: CopySettings,
    m: &EndpointMetrics,
) -> io::Result<()> {
    let c2b = one_way(client, backend, s, m, Direction::ClientToBackend);
    let b2c = one_way(backend, client, s, m, Direction::BackendToClient);
    tokio::try_join!(c2b, b2c).map(|_| ())
}

async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    s: CopySettings,
    m: &EndpointMetrics,
    dir: Direction,
) -> io::Result<()> {
    match s.mode {
        CopyMode::Splice => splice_one_way(src, dst, s.pipe_bytes, m, dir).await?,
        CopyMode::Userspace => buffer_one_way(src, dst, s.buffer_bytes, m, dir).await?,
    }
    shutdown_write(dst)
}

/// Propagates EOF. A peer that is already gone is not an error here: the other direction
/// will notice.
fn shutdown_write(dst: &TcpStream) -> io::Result<()> {
    match socket2::SockRef::from(dst).shutdown(Shutdown::Write) {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        r => r,
    }
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    fn new(size: Option<usize>) -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let mut capacity = 64 * 1024;
        if let Some(want) = size {
            // F_SETPIPE_SZ can be refused (fs.pipe-max-size, per-user quota): keep the default.
            if let Ok(got) = fcntl(
                &write,
                FcntlArg::F_SETPIPE_SZ(i32::try_from(want).unwrap_or(i32::MAX)),
            ) {
                capacity = usize::try_from(got).unwrap_or(capacity);
            }
        }
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }
}

const SPLICE_FLAGS: SpliceFFlags =
    SpliceFFlags::SPLICE_F_NONBLOCK.union(SpliceFFlags::SPLICE_F_MOVE);

async fn splice_one_way(
    src: &TcpStream,
    dst: &TcpStream,
    pipe_bytes: Option<usize>,
    m: &EndpointMetrics,
    dir: Direction,
) -> io::Result<()> {
    src.readable().await?;
    let pipe = Pipe::new(pipe_bytes)?;
    loop {
        // The pipe is empty here, so EAGAIN can only mean "socket has no data".
        let n = loop {
            match src.try_io(Interest::READABLE, || {
                splice(src, None, &pipe.write, None, pipe.capacity, SPLICE_FLAGS)
                    .map_err(io::Error::from)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => src.readable().await?,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            match dst.try_io(Interest::WRITABLE, || {
                splice(&pipe.read, None, dst, None, left, SPLICE_FLAGS).map_err(io::Error::from)
            }) {
                Ok(w) => left -= w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
                Err(e) => return Err(e),
            }
        }
        m.bytes(dir, n as u64);
    }
}

async fn buffer_one_way(
    src: &TcpStream,
    dst: &TcpStream,
    buffer_bytes: usize,
    m: &EndpointMetrics,
    dir: Direction,
) -> io::Result<()> {
    src.readable().await?;
    let mut buf = vec![0u8; buffer_bytes.max(1)];
    loop {
        let n = match src.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                src.readable().await?;
                continue;
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        let mut off = 0;
        while off < n {
            match dst.try_write(&buf[off..n]) {
                Ok(w) => off += w,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
                Err(e) => return Err(e),
            }
        }
        m.bytes(dir, n as u64);
    }
}
