//! The HTTP server loop: hyper (HTTP/1.1 and HTTP/2, over TCP or TLS) with limits that keep
//! slow or hostile clients from holding resources, and a graceful stop (no new connections,
//! in-flight requests finish, then a deadline).
//!
//! Every connection is in a table (`crate::conns`) and has a watchdog (a timer of its own,
//! so a flood that expires at once is closed as it arrived, with no periodic scan):
//! - a connection that has not sent a complete request head within
//!   [`HttpLimits::header_timeout`] of connecting is closed (before its first byte, during a
//!   TLS handshake, after an HTTP/2 preface alike), and so is an HTTP/1 connection whose next
//!   head, once started, takes that long;
//! - a connection idle between requests for [`HttpLimits::idle_timeout`] is closed gracefully;
//! - a request whose answer is not written within [`HttpLimits::busy_timeout`] (a client that
//!   never reads) loses its connection.
//!
//! At most [`HttpLimits::max_connections`] are open: when the table is full, the accept loop
//! first closes connections that never sent a request (oldest first; those whose request may
//! be waiting unread, their task not run yet, after those seen silent), then the longest idle
//! ones, so a client that sends a request is served; when every connection is busy it waits for
//! one to finish. Accept errors (out of file descriptors) shed idle connections and back off
//! (10 ms doubling to 1 s) instead of spinning, and are logged at most once per 10 s.

use crate::conns::{Conn, Deadlines, Registration, Stream, Table, Watched};
use crate::tls::TlsFiles;
use axum::body::Body;
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// Default [`HttpLimits::max_connections`] when the open-file limit is unknown.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Pending connections the kernel may hold for `accept` (capped by `net.core.somaxconn`).
/// tokio's default (128 here) overflows under a burst of connects, and an overflowing queue
/// drops SYNs, which costs the client a one-second retransmission: a flood would delay honest
/// clients' connects.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` (`IP:PORT` or `HOST:PORT`, the first address it resolves to) for [`serve`],
/// with [`LISTEN_BACKLOG`].
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a) {
            Ok(()) => return socket.listen(LISTEN_BACKLOG),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr} resolves to no address"),
        )
    }))
}

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A connection must deliver a complete request head within this time of connecting (TLS
    /// handshake included), and an HTTP/1 head within this time of its first byte.
    pub header_timeout: Duration,
    /// A connection with no request in progress for this long is closed.
    pub idle_timeout: Duration,
    /// A request whose response has not been written this long after it arrived loses its
    /// connection (longer than the request timeout, which answers 504 first).
    pub busy_timeout: Duration,
    /// Most connections open at once; beyond it idle connections are shed.
    pub max_connections: usize,
    /// Hard cap on the header bytes hyper buffers (the API answers 431 earlier, see
    /// [`crate::MAX_HEADER_BYTES`]).
    pub max_buf_size: usize,
    /// Most concurrent streams an HTTP/2 client may open on one connection.
    pub max_h2_streams: u32,
    /// How long a graceful stop waits for in-flight requests.
    pub drain_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            busy_timeout: crate::REQUEST_TIMEOUT + Duration::from_secs(30),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_buf_size: 256 * 1024,
            max_h2_streams: 64,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

impl HttpLimits {
    fn deadlines(&self) -> Deadlines {
        Deadlines {
            header: self.header_timeout,
            idle: self.idle_timeout,
            busy: self.busy_timeout,
        }
    }
}

fn builder(limits: &HttpLimits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    // Header and idle deadlines are the watchdogs' (hyper's own header timer would also close
    // idle keep-alive connections, and knows nothing of HTTP/2 or of the version sniffing).
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(limits.max_buf_size)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_h2_streams)
        .max_header_list_size((crate::MAX_HEADER_BYTES + 1024) as u32)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(limits.header_timeout);
    b
}

/// Accept errors: backoff and a log line at most every 10 s.
struct AcceptErrors {
    backoff: Duration,
    suppressed: u64,
    last_log: Option<Instant>,
    last_error: Option<Instant>,
}

impl AcceptErrors {
    fn new() -> Self {
        AcceptErrors {
            backoff: Duration::ZERO,
            suppressed: 0,
            last_log: None,
            last_error: None,
        }
    }

    /// Records an error; returns how long to wait before accepting again.
    fn record(&mut self, e: &std::io::Error) -> Duration {
        metrics::counter!("vpcep_http_accept_errors_total").increment(1);
        if self
            .last_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
        {
            tracing::warn!(error = %e, suppressed = self.suppressed, "accept failed; shedding idle connections and backing off");
            self.last_log = Some(Instant::now());
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        // Errors a second apart or less are one episode: the wait keeps doubling, even when a
        // few accepts succeed in between (after shedding), so a persistent shortage costs about
        // one accept cycle a second.
        if self
            .last_error
            .is_none_or(|t| t.elapsed() > Duration::from_secs(1) + self.backoff)
        {
            self.backoff = Duration::ZERO;
        }
        self.last_error = Some(Instant::now());
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
        self.backoff
    }
}

/// How long a stopping server goes on serving HTTP/1 connections, each answer closing its
/// connection, before it closes the ones still idle (or the table empties first):
/// - a connection accepted a moment ago has usually sent its request already, unread yet, which
///   hyper's graceful close would drop as idle;
/// - closing an idle keep-alive connection can cross the client's next request on the wire (the
///   client then sees a reset, not an answer). A client that sends a request within the grace
///   gets its answer with `Connection: close` instead, and takes its next request to a new
///   connection (the successor's, after a handover).
///
/// Short, because a successor that took this server's sockets over waits for this server to
/// release a SQLite database before it serves the API (new connections wait in the backlog).
const STOP_GRACE: Duration = Duration::from_millis(250);

/// Serves `app` on `listener` (HTTPS when `tls` is given) until `shutdown` resolves, then
/// drains.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()>,
    limits: HttpLimits,
    tls: Option<Arc<TlsFiles>>,
) {
    let builder = Arc::new(builder(&limits));
    let table = Table::new(limits.deadlines());
    let max = limits.max_connections.max(1);
    // Shed in batches so a flood of new connections does not rescan the table each time.
    let batch = (max / 64).max(1);
    let mut errors = AcceptErrors::new();
    tokio::pin!(shutdown);
    'accept: loop {
        while table.len() >= max {
            if table.shed(max, batch) == 0 {
                tracing::debug!("every connection is busy; waiting for one to finish");
            }
            tokio::select! {
                _ = table.freed.notified() => {}
                _ = &mut shutdown => break 'accept,
            }
        }
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => s,
                Err(e) => {
                    let wait = errors.record(&e);
                    table.shed(table.len().saturating_sub(batch), 0);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = &mut shutdown => break,
                    }
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (conn, registration) = table.register();
        let tls = tls.as_ref().map(|t| t.acceptor());
        let (builder, app) = (builder.clone(), app.clone());
        tokio::spawn(async move {
            conn.mark_polled();
            let kill = conn.kill.clone();
            tokio::select! {
                _ = kill.cancelled() => {}
                _ = conn.watch() => {}
                _ = serve_connection(stream, tls, conn.clone(), registration, &builder, app) => {}
            }
        });
    }
    drop(listener);
    table.stop();
    let emptied = || async {
        while table.len() > 0 {
            table.freed.notified().await;
        }
    };
    tokio::select! {
        _ = emptied() => {}
        _ = tokio::time::sleep(STOP_GRACE) => {}
    }
    table.drain_all();
    tokio::select! {
        _ = emptied() => tracing::info!("all connections finished"),
        _ = tokio::time::sleep(limits.drain_timeout) => tracing::warn!("drain deadline passed; closing the remaining connections"),
    }
    table.kill_all();
}

/// One connection: the TLS handshake if any, then HTTP until it ends or is told to drain.
/// (`registration` keeps the connection's place in the table until its stream is closed.)
async fn serve_connection(
    stream: TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    conn: Arc<Conn>,
    registration: Registration,
    builder: &auto::Builder<TokioExecutor>,
    app: Router,
) {
    match tls {
        None => {
            let io = Watched::new(stream, conn.clone(), registration);
            serve_http(io, conn, builder, app).await
        }
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(s) => {
                let io = Watched::new(s, conn.clone(), registration);
                serve_http(io, conn, builder, app).await
            }
            Err(e) => tracing::debug!(error = %e, "TLS handshake failed"),
        },
    }
}

async fn serve_http<S: Stream>(
    io: Watched<S>,
    conn: Arc<Conn>,
    builder: &auto::Builder<TokioExecutor>,
    app: Router,
) {
    let drain = conn.drain.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = conn.begin();
        let app = app.clone();
        let conn = conn.clone();
        let h1 = req.version() < http::Version::HTTP_2;
        // An HTTP/1 error answer may leave the body unread (401 before the body, 413).
        let body_may_be_unread = h1
            && (req.headers().contains_key(http::header::TRANSFER_ENCODING)
                || req
                    .headers()
                    .get(http::header::CONTENT_LENGTH)
                    .is_some_and(|v| v.as_bytes() != b"0"));
        async move {
            let mut resp = app
                .oneshot(req.map(Body::new))
                .await
                .unwrap_or_else(|never: Infallible| match never {});
            if body_may_be_unread && resp.status().as_u16() >= 400 {
                conn.set_linger();
            }
            if h1 && conn.stopping() {
                // hyper closes the connection once this answer is written.
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            // The connection stays busy until the response body is written (or dropped).
            Ok::<_, Infallible>(resp.map(|b| {
                Body::new(b.map_err(move |e| {
                    let _ = &guard;
                    e
                }))
            }))
        }
    });
    let http = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(http);
    tokio::select! {
        res = http.as_mut() => {
            if let Err(e) = res {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = drain.cancelled() => http.as_mut().graceful_shutdown(),
    }
    if let Err(e) = http.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
