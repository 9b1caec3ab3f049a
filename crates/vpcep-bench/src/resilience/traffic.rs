//! Traffic through an endpoint, as its clients see it: an echo backend, a probe that opens a
//! new connection at a fixed pace, long-lived connections that exchange a message at a fixed
//! pace, and the wait for a new endpoint's first echo.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long one connect or one echo may take before it counts as failed.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// An echo server on a provider address (the service's backend); stops when dropped.
pub struct Echo {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Echo {
    /// Listens on `ip`, any port.
    pub async fn start(ip: IpAddr) -> anyhow::Result<Echo> {
        let l = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let addr = l.local_addr()?;
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        Ok(Echo { addr, task })
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a connection attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing listened (`ECONNREFUSED`).
    Refused,
    /// Anything else: a reset, a timeout, a wrong or missing echo.
    Other(String),
}

/// Connects to `dst` from `src` (the kernel picks the port).
async fn connect_from(src: IpAddr, dst: SocketAddr) -> Result<TcpStream, Failure> {
    let sock = TcpSocket::new_v4().map_err(|e| Failure::Other(e.to_string()))?;
    sock.bind(SocketAddr::new(src, 0))
        .map_err(|e| Failure::Other(format!("bind {src}: {e}")))?;
    match tokio::time::timeout(IO_TIMEOUT, sock.connect(dst)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(Failure::Refused),
        Ok(Err(e)) => Err(Failure::Other(format!("connect: {e}"))),
        Err(_) => Err(Failure::Other("connect timed out".into())),
    }
}

/// Writes `msg` and reads it back.
async fn exchange(s: &mut TcpStream, msg: &[u8]) -> Result<(), Failure> {
    let io = async {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        s.read_exact(&mut got).await?;
        Ok::<_, std::io::Error>(got)
    };
    match tokio::time::timeout(IO_TIMEOUT, io).await {
        Ok(Ok(got)) if got == msg => Ok(()),
        Ok(Ok(got)) => Err(Failure::Other(format!("echo {got:?}"))),
        Ok(Err(e)) => Err(Failure::Other(format!("exchange: {e}"))),
        Err(_) => Err(Failure::Other("no echo in time".into())),
    }
}

/// One new connection from `src` to `dst` that carries one echo.
pub async fn echoes(src: IpAddr, dst: SocketAddr) -> Result<(), Failure> {
    let mut s = connect_from(src, dst).await?;
    exchange(&mut s, b"probe").await
}

/// Polls [`echoes`] every 20 ms until it succeeds or `deadline` passes: the instant of the
/// first echo.
pub async fn first_echo(src: IpAddr, dst: SocketAddr, deadline: Instant) -> Option<Instant> {
    loop {
        if echoes(src, dst).await.is_ok() {
            return Some(Instant::now());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a [`Probe`] saw.
#[derive(Debug, Clone, Default)]
pub struct ProbeFigures {
    /// New connections tried.
    pub tried: usize,
    /// Of those, refused (nothing listened).
    pub refused: usize,
    /// Of those, failed in any way (refused included).
    pub failed: usize,
    /// The longest time from a failed attempt to the next successful one (to the end of the
    /// probe when none succeeded after it).
    pub longest_gap: Duration,
}

/// Starts a new connection through an endpoint every `every`, each in its own task (a slow
/// attempt does not delay the next), and records the outcomes.
pub struct Probe {
    stop: CancellationToken,
    task: JoinHandle<Vec<(Instant, Result<(), Failure>)>>,
}

impl Probe {
    /// Starts probing `dst` from `src`.
    pub fn start(src: IpAddr, dst: SocketAddr, every: Duration) -> Probe {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut attempts = tokio::task::JoinSet::new();
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.cancelled() => break,
                    _ = tick.tick() => {
                        let at = Instant::now();
                        attempts.spawn(async move { (at, echoes(src, dst).await) });
                    }
                }
            }
            let mut outcomes = attempts.join_all().await;
            outcomes.sort_by_key(|(at, _)| *at);
            outcomes
        });
        Probe { stop, task }
    }

    /// Stops (waiting for the attempts under way) and answers the figures.
    pub async fn finish(self) -> anyhow::Result<ProbeFigures> {
        let end = Instant::now();
        self.stop.cancel();
        let outcomes = self.task.await?;
        let mut f = ProbeFigures {
            tried: outcomes.len(),
            ..ProbeFigures::default()
        };
        let mut first_failed: Option<Instant> = None;
        for (at, outcome) in &outcomes {
            match outcome {
                Ok(()) => {
                    if let Some(since) = first_failed.take() {
                        f.longest_gap = f.longest_gap.max(*at - since);
                    }
                }
                Err(e) => {
                    f.failed += 1;
                    f.refused += usize::from(*e == Failure::Refused);
                    first_failed.get_or_insert(*at);
                }
            }
        }
        if let Some(since) = first_failed {
            f.longest_gap = f.longest_gap.max(end.saturating_duration_since(since));
        }
        Ok(f)
    }
}

/// Connections held open through an endpoint, each exchanging a message every `every` until
/// closed by [`LongLived::close`]; a connection that fails before is counted as dropped.
pub struct LongLived {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<Option<String>>>,
}

impl LongLived {
    /// Opens `n` connections from `src` to `dst` (failing if one cannot open).
    pub async fn open(
        n: usize,
        src: IpAddr,
        dst: SocketAddr,
        every: Duration,
    ) -> anyhow::Result<LongLived> {
        let stop = CancellationToken::new();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let mut s = connect_from(src, dst)
                .await
                .map_err(|e| anyhow::anyhow!("opening long-lived connection {i}: {e:?}"))?;
            let stopped = stop.clone();
            tasks.push(tokio::spawn(async move {
                let msg = format!("long-lived {i:>4}");
                let mut tick = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = stopped.cancelled() => {
                            let _ = s.shutdown().await;
                            return None;
                        }
                        _ = tick.tick() => {
                            if let Err(e) = exchange(&mut s, msg.as_bytes()).await {
                                return Some(format!("{e:?}"));
                            }
                        }
                    }
                }
            }));
        }
        Ok(LongLived { stop, tasks })
    }

    /// Closes the connections still open (client side, gracefully); answers how many had been
    /// dropped before, with the first reason.
    pub async fn close(self) -> anyhow::Result<(usize, Option<String>)> {
        self.stop.cancel();
        let mut dropped = 0;
        let mut first = None;
        for t in self.tasks {
            if let Some(why) = t.await? {
                dropped += 1;
                first.get_or_insert(why);
            }
        }
        Ok((dropped, first))
    }
}
