//! Waiting and small shared helpers: [`eventually`] (poll until a condition holds, no blind
//! sleeps) and [`holds_within`], [`free_port`], clock helpers.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long background transitions may take in tests before they count as stuck.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Longest a test's HTTP client waits for one answer: past the server's own 504 (30 s) and an
/// agent's long poll, so only a server that never answers hits it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` every 20 ms until it answers `Ok`, and returns that value. Panics after
/// `timeout` with the last `Err` (the state observed), so a failure says what was seen; a
/// check still running at the deadline (a server that never answers) panics then too.
pub async fn eventually<T, E, F, Fut>(timeout: Duration, mut check: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match within(deadline, check()).await {
            Some(Ok(v)) => return v,
            Some(Err(last)) if Instant::now() >= deadline => {
                panic!("condition not met within {timeout:?}; last observed: {last:?}")
            }
            Some(Err(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
            None => panic!("condition not met within {timeout:?}: the check did not answer"),
        }
    }
}

/// `f`'s output, or `None` when `deadline` (at least a second from now) passes first.
async fn within<T>(deadline: Instant, f: impl Future<Output = T>) -> Option<T> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    tokio::time::timeout(left, f).await.ok()
}

/// A port that was free on `127.0.0.1` a moment ago.
pub fn free_port() -> u16 {
    free_port_on("127.0.0.1")
}

/// A port that was free on `ip` a moment ago.
pub fn free_port_on(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Waits until the wall clock has moved past the current millisecond, so that the next change
/// on the server gets a strictly later timestamp than everything answered so far.
pub async fn next_millisecond() {
    let millis = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis()
    };
    let start = millis();
    while millis() <= start {
        tokio::task::yield_now().await;
    }
}

/// Polls `check` every 20 ms until it answers `true` or `timeout` passes (a check still running
/// then counts as `false`); answers whether it held (for tests that assert it themselves, or
/// that expect it not to happen).
pub async fn holds_within<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if within(deadline, check()).await == Some(true) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
