//! Moving bytes between the client and backend sockets, both ways, with half-close: when one
//! side sends FIN, the other side's write half is shut down and the opposite direction goes on.
//! An error in either direction ends both.
//!
//! Two interchangeable paths ([`CopyMode`]):
//! - **splice**: `splice(2)` socket → pipe → socket. Payload pages move by reference inside the
//!   kernel; user space only issues two syscalls per chunk. A direction starts with plain
//!   reads into a 16 KiB stack buffer and switches to splice for good at the first read that
//!   fills it: short request/response connections never pay for creating pipes, idle ones hold
//!   neither pipe nor buffer, bulk transfers run through a pipe of
//!   [`ProxyOptions::pipe_bytes`](crate::ProxyOptions::pipe_bytes). `nix::fcntl::splice` is a
//!   safe wrapper, so the crate keeps `unsafe_code = "forbid"`.
//! - **userspace**: `read`/`write` through a buffer reserved on the first readable event.
//!
//! Both are written on `&TcpStream` with tokio's readiness API (`try_io`, `try_read`,
//! `try_write`), which lets the two directions run concurrently on one pair of sockets without
//! splitting them, and count bytes per chunk so the metrics move while a transfer runs.

use std::io::{self, Read};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

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
    let finished = AtomicBool::new(false);
    let c2b = one_way(client, backend, s, m, Direction::ClientToBackend, &finished);
    let b2c = one_way(backend, client, s, m, Direction::BackendToClient, &finished);
    tokio::try_join!(c2b, b2c).map(|_| ())
}

/// Copies one direction, then passes the FIN on, unless the other direction has already
/// finished: then both sockets are about to be closed, which sends the FIN anyway (one
/// syscall less per short connection).
async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    s: CopySettings,
    m: &EndpointMetrics,
    dir: Direction,
    other_finished: &AtomicBool,
) -> io::Result<()> {
    match s.mode {
        CopyMode::Splice => splice_one_way(src, dst, s.pipe_bytes, m, dir).await?,
        CopyMode::Userspace => buffer_one_way(src, dst, s.buffer_bytes, m, dir).await?,
    }
    if other_finished.swap(true, Ordering::AcqRel) {
        return Ok(());
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

/// Reads at or above this size switch a direction from the stack buffer to splice.
const SMALL_READ_BYTES: usize = 16 * 1024;

enum Pumped {
    /// The source sent FIN; its last `n` bytes came with it and are written.
    Eof(usize),
    /// Nothing to read (readiness is cleared).
    Empty,
    /// `n` bytes read; `rest` (the unwritten tail) must still be written.
    Read { n: usize, rest: Option<Vec<u8>> },
}

thread_local! {
    /// The small-read buffer of the connections this thread runs (a read and its write happen
    /// without an await between them, so one per thread serves them all, and nothing is
    /// zeroed per read).
    static SMALL_BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; SMALL_READ_BYTES]);
}

/// One non-blocking read: `None` when there is nothing to read. A short read (fewer bytes
/// than `buf` holds: the socket is drained) clears the socket's readiness, as tokio's own
/// `poll_read` does, so the next wait is for new data instead of a read that finds none.
pub(crate) fn read_some(src: &TcpStream, buf: &mut [u8]) -> io::Result<Option<usize>> {
    let mut short = 0;
    let r = src.try_io(Interest::READABLE, || {
        let n = (&*socket2::SockRef::from(src)).read(buf)?;
        if n > 0 && n < buf.len() {
            short = n;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match r {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok((short > 0).then_some(short)),
        Err(e) => Err(e),
    }
}

/// Appends what `src` has to `out` (at most `max` bytes, without waiting): how many.
pub(crate) fn read_append(src: &TcpStream, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    SMALL_BUF.with_borrow_mut(|buf| {
        let max = max.min(buf.len());
        let n = read_some(src, &mut buf[..max])?.unwrap_or(0);
        out.extend_from_slice(&buf[..n]);
        Ok(n)
    })
}

/// One non-blocking read into the thread's buffer and one write attempt. `fin_seen`: the
/// source's FIN has arrived (its readiness says read-closed), so a short read has everything
/// before it: the bytes are then written with `MSG_MORE`, and the FIN that follows at once
/// (shutdown or close) leaves in the same segment instead of one of its own.
fn pump_small(src: &TcpStream, dst: &TcpStream, fin_seen: bool) -> io::Result<Pumped> {
    SMALL_BUF.with_borrow_mut(|buf| {
        let n = match read_some(src, buf)? {
            None => return Ok(Pumped::Empty),
            Some(0) => return Ok(Pumped::Eof(0)),
            Some(n) => n,
        };
        let last = fin_seen && n < buf.len();
        let flags = if last { nix::libc::MSG_MORE } else { 0 };
        let written = match dst.try_io(Interest::WRITABLE, || {
            socket2::SockRef::from(dst).send_with_flags(&buf[..n], flags)
        }) {
            Ok(w) => w,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        if last && written == n {
            return Ok(Pumped::Eof(n));
        }
        let rest = (written < n).then(|| buf[written..n].to_vec());
        Ok(Pumped::Read { n, rest })
    })
}

async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match dst.try_write(data) {
            Ok(w) => data = &data[w..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn splice_one_way(
    src: &TcpStream,
    dst: &TcpStream,
    pipe_bytes: Option<usize>,
    m: &EndpointMetrics,
    dir: Direction,
) -> io::Result<()> {
    loop {
        let ready = src.ready(Interest::READABLE).await?;
        match pump_small(src, dst, ready.is_read_closed())? {
            Pumped::Eof(n) => {
                m.bytes(dir, n as u64);
                return Ok(());
            }
            Pumped::Empty => {}
            Pumped::Read { n, rest } => {
                if let Some(rest) = rest {
                    write_all(dst, &rest).await?;
                }
                m.bytes(dir, n as u64);
                if n == SMALL_READ_BYTES {
                    break;
                }
            }
        }
    }
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
        // `try_io` does not count against tokio's budget: a connection whose peers keep up
        // would never yield, and its accept thread (a single-threaded runtime) would serve
        // nothing else. Every chunk counts, so it yields now and then.
        tokio::task::consume_budget().await;
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
    // Reserved, not zeroed: `try_read_buf` fills spare capacity.
    let mut buf = Vec::with_capacity(buffer_bytes.max(1));
    loop {
        buf.clear();
        let n = match src.try_read_buf(&mut buf) {
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
        write_all(dst, &buf).await?;
        m.bytes(dir, n as u64);
        // As in `splice_one_way`: yield now and then to the thread's other tasks.
        tokio::task::consume_budget().await;
    }
}
