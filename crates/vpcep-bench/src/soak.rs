//! `--soak`: what anonymous clients cost signed ones. Three floods run at once against one
//! server, each client reopening its connection whenever the server closes it:
//! - `idle`: connections that never send a byte;
//! - `slow`: connections that send a request head one byte per second and never finish it;
//! - `bodies`: unsigned `POST`s declaring a 1 MiB − 1 body and sending it, a new one every
//!   second per client.
//!
//! The caller measures show-service before and during the floods; this module runs them (in a
//! child process of their own, see [`start`]), counts what happened, and samples the server's
//! resident memory.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// How many clients of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Floods {
    pub idle: usize,
    pub slow: usize,
    pub bodies: usize,
}

/// What the floods did.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections of the idle and slow floods open now.
    pub open: AtomicU64,
    /// Connections the server closed on the idle and slow floods.
    pub closed_by_server: AtomicU64,
    /// Unsigned bodies answered (any status) / answered 401.
    pub bodies_answered: AtomicU64,
    pub bodies_401: AtomicU64,
    /// Connects that failed.
    pub connect_errors: AtomicU64,
}

impl Counters {
    /// The counters as one JSON line.
    fn to_json(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        serde_json::json!({
            "open": g(&self.open),
            "closed_by_server": g(&self.closed_by_server),
            "bodies_answered": g(&self.bodies_answered),
            "bodies_401": g(&self.bodies_401),
            "connect_errors": g(&self.connect_errors),
        })
        .to_string()
    }
}

/// The floods in a child process (this executable with `--soak-flood`), run at the lowest CPU
/// priority (`SCHED_IDLE` through `chrt --idle 0`; at `nice 19` a running flood task keeps its
/// core for the rest of its slice when the server wakes): the attacker's own CPU is not the
/// server's to spend, as it would not be on separate machines, while the work the floods cause
/// in the server competes with the signed client as it would in production.
pub struct Running {
    child: tokio::process::Child,
    latest: Arc<std::sync::Mutex<serde_json::Value>>,
}

impl Running {
    /// The flood process's last report (counters, see [`Counters`]).
    pub fn counters(&self) -> serde_json::Value {
        self.latest.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stops the floods (closing their input ends the process); answers the final counters.
    pub async fn stop(mut self) -> serde_json::Value {
        drop(self.child.stdin.take());
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let _ = self.child.kill().await;
        // Let the reader take the final line.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.counters()
    }
}

/// Starts the flood process against `addr`.
pub fn start(addr: SocketAddr, floods: Floods) -> anyhow::Result<Running> {
    use tokio::io::AsyncBufReadExt;
    let me = std::env::current_exe()?;
    let mut child = tokio::process::Command::new("chrt")
        .args(["--idle", "0"])
        .arg(me)
        .arg("--soak-flood")
        .arg(addr.to_string())
        .args(["--soak-idle", &floods.idle.to_string()])
        .args(["--soak-slow", &floods.slow.to_string()])
        .args(["--soak-bodies", &floods.bodies.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let latest = Arc::new(std::sync::Mutex::new(serde_json::Value::Null));
    let stdout = child.stdout.take().expect("piped stdout");
    tokio::spawn({
        let latest = latest.clone();
        async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let (Ok(v), Ok(mut l)) = (serde_json::from_str(&line), latest.lock()) {
                    *l = v;
                }
            }
        }
    });
    Ok(Running { child, latest })
}

/// `--soak-flood ADDR`: runs the floods until standard input closes, printing the counters as
/// a JSON line every second and once more at the end.
pub async fn flood_main(addr: SocketAddr, floods: Floods) {
    let stop = CancellationToken::new();
    let counters = Arc::new(Counters::default());
    let floods_task = tokio::spawn(run_floods(addr, floods, stop.clone(), counters.clone()));
    let eof = tokio::spawn(async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    });
    tokio::pin!(eof);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut eof => break,
            _ = tick.tick() => println!("{}", counters.to_json()),
        }
    }
    println!("{}", counters.to_json());
    stop.cancel();
    let _ = floods_task.await;
}

async fn run_floods(
    addr: SocketAddr,
    floods: Floods,
    stop: CancellationToken,
    counters: Arc<Counters>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    let total = (floods.idle + floods.slow + floods.bodies).max(1);
    let mut n = 0usize;
    let mut spawn = |kind: u8, tasks: &mut tokio::task::JoinSet<()>| {
        let delay = Duration::from_millis((n * 1000 / total) as u64);
        n += 1;
        let (stop, counters) = (stop.clone(), counters.clone());
        tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = async {
                    tokio::time::sleep(delay).await;
                    match kind {
                        0 => hold(addr, None, &counters).await,
                        1 => hold(addr, Some(Duration::from_secs(1)), &counters).await,
                        _ => unsigned_bodies(addr, &counters).await,
                    }
                } => {}
            }
        });
    };
    for _ in 0..floods.idle {
        spawn(0, &mut tasks);
    }
    for _ in 0..floods.slow {
        spawn(1, &mut tasks);
    }
    for _ in 0..floods.bodies {
        spawn(2, &mut tasks);
    }
    while tasks.join_next().await.is_some() {}
}

async fn connect(addr: SocketAddr, counters: &Counters) -> TcpStream {
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return s,
            Err(_) => {
                counters.connect_errors.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Holds a connection open without finishing a request head (`trickle`: one byte that often),
/// reopening it whenever the server closes it.
async fn hold(addr: SocketAddr, trickle: Option<Duration>, counters: &Counters) {
    const HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: soak\r\nX-Slow: ";
    loop {
        let mut s = connect(addr, counters).await;
        counters.open.fetch_add(1, Ordering::Relaxed);
        let mut buf = [0u8; 256];
        let mut sent = 0usize;
        loop {
            let wait = trickle.unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                r = s.read(&mut buf) => if matches!(r, Ok(0) | Err(_)) { break },
                _ = tokio::time::sleep(wait) => {
                    let byte = HEAD.get(sent).copied().unwrap_or(b'a');
                    sent += 1;
                    if s.write_all(&[byte]).await.is_err() { break }
                }
            }
        }
        counters.open.fetch_sub(1, Ordering::Relaxed);
        counters.closed_by_server.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends an unsigned 1 MiB − 1 body on a new connection every second (or as soon as the last
/// is answered, if that takes longer).
async fn unsigned_bodies(addr: SocketAddr, counters: &Counters) {
    static CHUNK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    const LEN: usize = 1024 * 1024 - 1;
    let head = format!(
        "POST /v1/b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1/vpcs HTTP/1.1\r\nHost: soak\r\n\
         Content-Type: application/json\r\nContent-Length: {LEN}\r\n\r\n"
    );
    loop {
        let s = connect(addr, counters).await;
        let (mut r, mut w) = s.into_split();
        let writer = tokio::spawn({
            let head = head.clone();
            async move {
                if w.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut left = LEN;
                while left > 0 {
                    let k = left.min(CHUNK.len());
                    if w.write_all(&CHUNK[..k]).await.is_err() {
                        return;
                    }
                    left -= k;
                }
            }
        });
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(30), r.read(&mut buf)).await {
            if n > 0 {
                counters.bodies_answered.fetch_add(1, Ordering::Relaxed);
                if buf[..n].starts_with(b"HTTP/1.1 401") {
                    counters.bodies_401.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        writer.abort();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Resident memory of process `pid`, in bytes (Linux).
pub fn rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Samples [`rss`] every 100 ms until cancelled; answers the peak.
pub async fn peak_rss(pid: u32, stop: CancellationToken) -> u64 {
    let mut peak = 0;
    while !stop.is_cancelled() {
        peak = peak.max(rss(pid).unwrap_or(0));
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    peak
}
