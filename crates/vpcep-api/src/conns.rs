//! The connection table behind [`crate::serve`]: what each open connection is doing and since
//! when, so that its watchdog ([`Conn::watch`]) can close it when it sent no complete request
//! head in time or sat idle too long, and the accept loop can shed idle connections (those that
//! never sent a request first, oldest first) when the table is full.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Connected, no complete request head yet (TLS handshake and HTTP/2 preface included).
const AWAITING_FIRST: u8 = 0;
/// Idle after a request, then bytes of the next head arrived (HTTP/1 only).
const READING_HEAD: u8 = 1;
/// At least one request is being handled or answered.
const BUSY: u8 = 2;
/// Between requests.
const IDLE: u8 = 3;

/// Why the server closed a connection (the `reason` label of
/// `vpcep_http_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// No complete request head within the header timeout.
    HeaderTimeout,
    /// Idle longer than the idle timeout.
    IdleTimeout,
    /// A request or its answer took longer than the busy timeout (e.g. a client that never
    /// reads the response).
    BusyTimeout,
    /// Shed to make room for a new connection, or because file descriptors ran out.
    Shed,
}

impl CloseReason {
    fn label(self) -> &'static str {
        match self {
            CloseReason::HeaderTimeout => "header_timeout",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::BusyTimeout => "busy_timeout",
            CloseReason::Shed => "shed",
        }
    }
}

/// One open connection's state, shared by its task, its I/O, its requests and the table.
#[derive(Debug)]
pub(crate) struct Conn {
    phase: AtomicU8,
    /// Milliseconds since the table's epoch at which `phase` was last entered or refreshed.
    since: AtomicU64,
    in_flight: AtomicU32,
    /// The client spoke HTTP/2 (frames between requests are not the start of a head).
    h2: AtomicBool,
    /// The first bytes have been seen (the protocol is decided).
    sniffed: AtomicBool,
    /// The connection's task has run: whatever the client had sent by then was read. Until
    /// then a connection without a request is not known to have sent nothing (see
    /// [`Table::shed`]).
    polled: AtomicBool,
    /// Close now (drop the connection).
    pub(crate) kill: CancellationToken,
    /// `kill` was cancelled (an atomic: the sweeper reads it for every connection, often).
    doomed: AtomicBool,
    /// `drain` was cancelled.
    draining: AtomicBool,
    /// A request was answered without its body being read (see [`Watched`]).
    linger: AtomicBool,
    /// Stop after the requests in progress (hyper's graceful shutdown).
    pub(crate) drain: CancellationToken,
    /// The server is stopping (shared by every connection of the table): HTTP/1 answers say
    /// `Connection: close`.
    stopping: Arc<AtomicBool>,
    /// Wakes the watchdog when a deadline moved earlier (a head started after an idle time).
    rearm: Notify,
    /// Milliseconds taken off the header timeout of this connection (up to a fifth of it), so
    /// a flood opened at once is not closed at once, and so does not come back at once either:
    /// the waves flatten over a few timeouts instead of recurring.
    header_jitter: u64,
    deadlines: Deadlines,
    epoch: Instant,
}

impl Conn {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn is_doomed(&self) -> bool {
        self.doomed.load(Ordering::Relaxed)
    }

    /// The connection's task runs (called at its start, before the first read).
    pub(crate) fn mark_polled(&self) {
        self.polled.store(true, Ordering::Relaxed);
    }

    /// Closes the connection now.
    pub(crate) fn close(&self) {
        if !self.doomed.swap(true, Ordering::Relaxed) {
            self.kill.cancel();
        }
    }

    /// The server is stopping: an HTTP/1 answer should close its connection once written, so
    /// that a keep-alive client learns of the stop from an answer, not from a close that can
    /// cross its next request on the wire.
    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// A request was answered with its body (perhaps) unread: linger before closing.
    pub(crate) fn set_linger(&self) {
        self.linger.store(true, Ordering::Relaxed);
    }

    /// Finishes the requests in progress, then closes (graceful).
    pub(crate) fn start_drain(&self) {
        if !self.draining.swap(true, Ordering::Relaxed) {
            self.drain.cancel();
        }
    }

    fn enter(&self, phase: u8) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    /// Bytes arrived from the client.
    fn on_read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.sniffed.swap(true, Ordering::Relaxed) && bytes.starts_with(b"PRI") {
            self.h2.store(true, Ordering::Relaxed);
        }
        if !self.h2.load(Ordering::Relaxed)
            && self
                .phase
                .compare_exchange(IDLE, READING_HEAD, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.since.store(self.now(), Ordering::Relaxed);
            self.rearm.notify_one();
        }
    }

    /// What the deadlines say now: close (why), drain, or look again at a later time (ms since
    /// the epoch).
    fn verdict(&self) -> Verdict {
        let ms = |t: Duration| t.as_millis() as u64;
        let d = self.deadlines;
        let since = self.since.load(Ordering::Relaxed);
        let (limit, expired) = match self.phase.load(Ordering::Acquire) {
            AWAITING_FIRST | READING_HEAD => (
                ms(d.header).saturating_sub(self.header_jitter),
                Verdict::Close(CloseReason::HeaderTimeout),
            ),
            BUSY => (ms(d.busy), Verdict::Close(CloseReason::BusyTimeout)),
            _ if self.draining.load(Ordering::Relaxed) => (
                ms(d.idle) + ms(d.header),
                Verdict::Close(CloseReason::IdleTimeout),
            ),
            _ => (ms(d.idle), Verdict::Drain),
        };
        let deadline = since + limit + 1;
        if self.now() >= deadline {
            expired
        } else {
            Verdict::Until(deadline)
        }
    }

    /// Runs until the connection must be closed (then returns, and the caller drops it),
    /// draining it first when it idled too long.
    pub(crate) async fn watch(&self) {
        loop {
            match self.verdict() {
                Verdict::Close(reason) => {
                    metrics::counter!("vpcep_http_connections_closed_total", "reason" => reason.label())
                        .increment(1);
                    self.doomed.store(true, Ordering::Relaxed);
                    return;
                }
                Verdict::Drain => {
                    metrics::counter!("vpcep_http_connections_closed_total", "reason" => CloseReason::IdleTimeout.label())
                        .increment(1);
                    self.start_drain();
                }
                Verdict::Until(at) => {
                    let wait = Duration::from_millis(at.saturating_sub(self.now()));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = self.rearm.notified() => {}
                    }
                }
            }
        }
    }

    /// A request head arrived: the connection is busy until the returned guard is dropped
    /// (when its response has been written or abandoned).
    pub(crate) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.enter(BUSY);
        RequestGuard(self.clone())
    }
}

/// What a connection's deadlines call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Close(CloseReason),
    Drain,
    /// Nothing before this time (ms since the table's epoch).
    Until(u64),
}

/// Keeps a connection busy while a request and its response are alive.
#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Conn>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.enter(IDLE);
        } else {
            self.0.since.store(self.0.now(), Ordering::Relaxed);
        }
    }
}

/// Timeouts each connection's watchdog enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadlines {
    pub(crate) header: Duration,
    pub(crate) idle: Duration,
    pub(crate) busy: Duration,
}

/// Every open connection of one server.
#[derive(Debug)]
pub(crate) struct Table {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// Signalled whenever a connection leaves the table.
    pub(crate) freed: Notify,
    deadlines: Deadlines,
    epoch: Instant,
    /// See [`Conn::stopping`].
    stopping: Arc<AtomicBool>,
}

/// Removes its connection from the table when the connection's task ends.
#[derive(Debug)]
pub(crate) struct Registration {
    table: Arc<Table>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table.lock().remove(&self.id);
        metrics::gauge!("vpcep_http_connections").decrement(1.0);
        self.table.freed.notify_one();
    }
}

impl Table {
    pub(crate) fn new(deadlines: Deadlines) -> Arc<Self> {
        Arc::new(Table {
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            freed: Notify::new(),
            deadlines,
            epoch: Instant::now(),
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Open connections (including those told to close that have not finished yet).
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Adds a new connection.
    pub(crate) fn register(self: &Arc<Self>) -> (Arc<Conn>, Registration) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Fibonacci hashing of the id: spread over [0, header/5] without a random source.
        let fifth = self.deadlines.header.as_millis() as u64 / 5;
        let header_jitter = (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % (fifth + 1);
        let conn = Arc::new(Conn {
            phase: AtomicU8::new(AWAITING_FIRST),
            since: AtomicU64::new(self.epoch.elapsed().as_millis() as u64),
            in_flight: AtomicU32::new(0),
            h2: AtomicBool::new(false),
            sniffed: AtomicBool::new(false),
            polled: AtomicBool::new(false),
            kill: CancellationToken::new(),
            doomed: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            linger: AtomicBool::new(false),
            drain: CancellationToken::new(),
            stopping: self.stopping.clone(),
            rearm: Notify::new(),
            header_jitter,
            deadlines: self.deadlines,
            epoch: self.epoch,
        });
        self.lock().insert(id, conn.clone());
        metrics::gauge!("vpcep_http_connections").increment(1.0);
        (
            conn,
            Registration {
                table: self.clone(),
                id,
            },
        )
    }

    /// Tells `conns` to close now, counting them under `reason`.
    fn kill(conns: &[Arc<Conn>], reason: CloseReason) {
        for c in conns {
            c.close();
        }
        if !conns.is_empty() {
            metrics::counter!("vpcep_http_connections_closed_total", "reason" => reason.label())
                .increment(conns.len() as u64);
            tracing::debug!(
                reason = reason.label(),
                count = conns.len(),
                "closing connections"
            );
        }
    }

    /// Makes room for `want` more connections below `max`: closes connections that are not
    /// handling a request, oldest first in each class:
    /// 1. those whose task has run and that have not completed a request head;
    /// 2. those accepted whose task has not run yet: their request may be waiting unread. When
    ///    the accept loop outruns the connections' tasks (a flood on a loaded machine), an
    ///    honest client's new connection would otherwise be shed as "no request" with its
    ///    request in the socket buffer;
    /// 3. the longest idle.
    ///
    /// Returns how many are on their way out (closed now or earlier); 0 means every connection
    /// is busy.
    pub(crate) fn shed(&self, max: usize, want: usize) -> usize {
        let (victims, doomed) = {
            let conns = self.lock();
            let doomed = conns.values().filter(|c| c.is_doomed()).count();
            let needed = (conns.len() + want).saturating_sub(max);
            if needed <= doomed {
                return doomed;
            }
            let mut candidates: Vec<(u8, u64, &Arc<Conn>)> = conns
                .values()
                .filter(|c| !c.is_doomed())
                .filter_map(|c| {
                    let class = match c.phase.load(Ordering::Acquire) {
                        AWAITING_FIRST if !c.polled.load(Ordering::Relaxed) => 1,
                        AWAITING_FIRST | READING_HEAD => 0,
                        IDLE if c.in_flight.load(Ordering::Acquire) == 0 => 2,
                        _ => return None,
                    };
                    Some((class, c.since.load(Ordering::Relaxed), c))
                })
                .collect();
            let n = (needed - doomed).min(candidates.len());
            if n < candidates.len() {
                candidates.select_nth_unstable_by_key(n, |(class, since, _)| (*class, *since));
            }
            let victims: Vec<Arc<Conn>> = candidates[..n]
                .iter()
                .map(|(_, _, c)| (*c).clone())
                .collect();
            (victims, doomed)
        };
        Self::kill(&victims, CloseReason::Shed);
        doomed + victims.len()
    }

    /// The first step of a graceful stop: from now on HTTP/1 answers close their connections
    /// ([`Conn::stopping`]), and HTTP/2 connections drain at once (their GOAWAY tells clients
    /// which requests were taken, so nothing is lost on the wire).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        for c in self.lock().values() {
            if c.h2.load(Ordering::Relaxed) {
                c.start_drain();
            }
        }
    }

    /// Tells every connection to finish its requests and close (a graceful stop).
    pub(crate) fn drain_all(&self) {
        for c in self.lock().values() {
            c.start_drain();
        }
    }

    /// Closes every connection now.
    pub(crate) fn kill_all(&self) {
        for c in self.lock().values() {
            c.close();
        }
    }
}

/// Most bytes of an unread request body read and thrown away after its error answer, so the
/// client gets the answer before the connection closes (see [`Watched`]).
const LINGER_BYTES: usize = 64 * 1024;
/// Longest such lingering.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// Where the client stream goes when the connection ends.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// A client stream that reports the bytes it reads to its [`Conn`] (the start of a request
/// head after an idle period; HTTP/2 by its preface), and holds the connection's place in the
/// table until the stream is closed.
///
/// Closing a socket with unread request bytes makes the kernel send a reset, which can destroy
/// the answer before the client reads it (a 401 or 413 given without reading a large body).
/// When a request was answered that way ([`Conn::set_linger`]), the stream is not dropped at
/// once: it is shut down for writing and read (and discarded) for at most [`LINGER_BYTES`] and
/// [`LINGER_TIME`], still counted in the table and still closable by it.
pub(crate) struct Watched<S: Stream> {
    inner: Option<S>,
    conn: Arc<Conn>,
    registration: Option<Registration>,
}

impl<S: Stream> Watched<S> {
    pub(crate) fn new(inner: S, conn: Arc<Conn>, registration: Registration) -> Self {
        Watched {
            inner: Some(inner),
            conn,
            registration: Some(registration),
        }
    }

    fn io(&mut self) -> Pin<&mut S> {
        Pin::new(
            self.inner
                .as_mut()
                .expect("the stream is present until dropped"),
        )
    }
}

impl<S: Stream> Drop for Watched<S> {
    fn drop(&mut self) {
        if !self.conn.linger.load(Ordering::Relaxed) || self.conn.is_doomed() {
            return;
        }
        let (Some(stream), Ok(rt)) = (self.inner.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let registration = self.registration.take();
        let kill = self.conn.kill.clone();
        rt.spawn(async move {
            tokio::select! {
                _ = kill.cancelled() => {}
                _ = tokio::time::sleep(LINGER_TIME) => {}
                _ = discard(stream, LINGER_BYTES) => {}
            }
            drop(registration);
        });
    }
}

/// Shuts `stream` down for writing, then reads and drops up to `limit` bytes (until EOF).
async fn discard<S: Stream>(mut stream: S, limit: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let _ = stream.shutdown().await;
    let mut buf = [0u8; 8192];
    let mut left = limit;
    while left > 0 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

impl<S: Stream> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = self.io().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res {
            self.conn.on_read(&buf.filled()[before..]);
        }
        res
    }
}

impl<S: Stream> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io().poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Deadlines = Deadlines {
        header: Duration::from_millis(50),
        idle: Duration::from_millis(100),
        busy: Duration::from_millis(200),
    };

    fn closes(c: &Conn) -> Option<CloseReason> {
        match c.verdict() {
            Verdict::Close(r) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn sheds_connections_without_a_request_first_then_the_longest_idle_never_busy_ones() {
        let t = Table::new(D);
        let (busy, _r1) = t.register();
        let _g = busy.begin();
        let (idle_old, _r2) = t.register();
        drop(idle_old.begin());
        std::thread::sleep(Duration::from_millis(5));
        let (idle_new, _r3) = t.register();
        drop(idle_new.begin());
        let (unread, _r4) = t.register();
        std::thread::sleep(Duration::from_millis(5));
        let (silent, _r5) = t.register();
        silent.mark_polled();
        assert_eq!(t.shed(5, 1), 1);
        assert!(
            silent.kill.is_cancelled() && !unread.kill.is_cancelled(),
            "one that was read and sent nothing goes before an older one not read yet"
        );
        assert_eq!(t.shed(5, 2), 2, "the doomed one counts; one more goes");
        assert!(unread.kill.is_cancelled());
        assert_eq!(t.shed(5, 3), 3);
        assert!(idle_old.kill.is_cancelled() && !idle_new.kill.is_cancelled());
        assert_eq!(t.shed(2, 3), 4);
        assert!(!busy.kill.is_cancelled(), "a busy connection is never shed");
        assert_eq!(t.shed(1, 5), 4, "nothing left to shed");
    }

    #[test]
    fn deadlines_close_slow_heads_long_idles_and_stuck_requests() {
        let t = Table::new(D);
        let (silent, _r1) = t.register();
        let (idle, _r2) = t.register();
        drop(idle.begin());
        let (busy, _r3) = t.register();
        let g = busy.begin();
        let (trickle, _r4) = t.register();
        drop(trickle.begin());
        std::thread::sleep(Duration::from_millis(60));
        trickle.on_read(b"GE");
        assert_eq!(closes(&silent), Some(CloseReason::HeaderTimeout));
        assert_eq!(closes(&trickle), None, "its head just started");
        assert!(matches!(idle.verdict(), Verdict::Until(_)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(
            closes(&trickle),
            Some(CloseReason::HeaderTimeout),
            "a head started after idling has the header timeout"
        );
        assert_eq!(idle.verdict(), Verdict::Drain);
        idle.start_drain();
        assert_eq!(closes(&idle), None, "draining gets a header timeout more");
        assert_eq!(closes(&busy), None);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(closes(&busy), Some(CloseReason::BusyTimeout));
        assert_eq!(closes(&idle), Some(CloseReason::IdleTimeout));
        drop(g);
    }

    #[tokio::test]
    async fn the_watchdog_returns_at_the_deadline_and_wakes_for_a_head_after_idle() {
        let t = Table::new(Deadlines {
            header: Duration::from_millis(50),
            idle: Duration::from_secs(3600),
            busy: Duration::from_secs(3600),
        });
        let (silent, _r1) = t.register();
        tokio::time::timeout(Duration::from_secs(5), silent.watch())
            .await
            .expect("a silent connection is closed at the header timeout");
        let (c, _r2) = t.register();
        drop(c.begin());
        let watch = c.watch();
        tokio::pin!(watch);
        assert!(
            tokio::time::timeout(Duration::from_millis(100), watch.as_mut())
                .await
                .is_err(),
            "idle connections wait for the idle timeout"
        );
        // A head starts: the header timeout (not the hour of idle time) now applies.
        c.on_read(b"G");
        tokio::time::timeout(Duration::from_secs(5), watch)
            .await
            .expect("the watchdog was woken by the new deadline");
    }

    #[test]
    fn http2_frames_between_requests_do_not_start_a_head() {
        let t = Table::new(D);
        let (c, _r) = t.register();
        c.on_read(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        drop(c.begin());
        c.on_read(b"\x00\x00\x08\x06");
        assert_eq!(c.phase.load(Ordering::Relaxed), IDLE);
    }
}
