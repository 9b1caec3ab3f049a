//! Waiting and small shared helpers: [`eventually`] (poll until a condition holds, no blind
//! sleeps) and [`holds_within`], [`free_port`], clock helpers.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long background transitions may take in tests before they count as stuck.
pub const SETTLE: Duration = Duration::from_secs(10);

/// Polls `check` every 20 ms until it answers `Ok`, and returns that value. Panics after
/// `timeout` with the last `Err` (the state observed), so a failure says what was seen.
pub async fn eventually<T, E, F, Fut>(timeout: Duration, mut check: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("condition not met within {timeout:?}; last observed: {last:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
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

/// Polls `check` every 20 ms until it answers `true` or `timeout` passes; answers whether it
/// held (for tests that assert it themselves, or that expect it not to happen).
pub async fn holds_within<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
