//! Load generator and backend for bench/dataplane/run.sh (not a test).
//!
//! ```text
//! dataplane-loadgen backend ADDR                      # serves until SIGTERM
//! dataplane-loadgen throughput TARGET CONNS BYTES     # CONNS uploads of BYTES each
//! dataplane-loadgen cps TARGET CONCURRENCY SECS       # connect, 64 B request, 64 B answer, close
//! dataplane-loadgen idle TARGET N                     # N idle connections until SIGTERM
//! ```
//! Wire protocol after an optional PROXY header (v1 or v2, detected by the backend): one
//! command byte, `U` (upload: the backend counts bytes until FIN, answers the count as u64 BE)
//! or `R` (63 more request bytes, 64 answer bytes, then the backend closes). Idle connections
//! send nothing. Runs on one thread by default (`LOADGEN_THREADS`), since it shares the cores
//! with the proxy under test.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
const CHUNK: usize = 256 * 1024;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = std::env::var("LOADGEN_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let arg = |i: usize| -> Res<&str> {
        args.get(i)
            .map(String::as_str)
            .ok_or_else(|| "missing argument".into())
    };
    match arg(0)? {
        "backend" => rt.block_on(backend(arg(1)?.parse()?)),
        "throughput" => rt.block_on(throughput(
            arg(1)?.parse()?,
            arg(2)?.parse()?,
            arg(3)?.parse()?,
        )),
        "cps" => rt.block_on(cps(arg(1)?.parse()?, arg(2)?.parse()?, arg(3)?.parse()?)),
        "idle" => rt.block_on(idle(arg(1)?.parse()?, arg(2)?.parse()?)),
        other => Err(format!("unknown command {other}").into()),
    }
}

async fn until_terminated() -> Res<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

async fn backend(addr: SocketAddr) -> Res<()> {
    let sock = tokio::net::TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    let l: TcpListener = sock.listen(4096)?;
    println!("ready");
    let serve = async {
        loop {
            if let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let _ = handle(s).await;
                });
            }
        }
    };
    tokio::select! {
        _ = serve => Ok(()),
        r = until_terminated() => r,
    }
}

/// Length of a PROXY header at the start of `b`: `Some(0)` when there is none, `None` when
/// more bytes are needed to tell.
fn proxy_header_len(b: &[u8]) -> Option<usize> {
    let n = b.len().min(12);
    if b[..n] == V2_SIGNATURE[..n] {
        if b.len() < 16 {
            return None;
        }
        return Some(16 + u16::from_be_bytes([b[14], b[15]]) as usize);
    }
    let n = b.len().min(6);
    if b[..n] == b"PROXY "[..n] {
        return b.windows(2).position(|w| w == b"\r\n").map(|p| p + 2);
    }
    Some(0)
}

async fn handle(mut s: TcpStream) -> io::Result<()> {
    s.set_nodelay(true)?;
    let mut head = [0u8; 1024];
    let mut have = 0;
    let skip = loop {
        let n = s.read(&mut head[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        match proxy_header_len(&head[..have]) {
            Some(len) if have > len => break len,
            _ if have == head.len() => return Err(io::Error::other("header too long")),
            _ => {}
        }
    };
    let rest = have - skip - 1;
    match head[skip] {
        b'R' => {
            let mut req = [0u8; 63];
            let got = rest.min(63);
            req[..got].copy_from_slice(&head[skip + 1..skip + 1 + got]);
            s.read_exact(&mut req[got..]).await?;
            s.write_all(&[b'A'; 64]).await?;
        }
        b'U' => {
            let mut count = rest as u64;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                count += n as u64;
            }
            s.write_all(&count.to_be_bytes()).await?;
            s.shutdown().await?;
        }
        _ => {}
    }
    Ok(())
}

async fn upload(target: SocketAddr, bytes: u64, chunk: Arc<Vec<u8>>) -> Res<()> {
    let mut s = TcpStream::connect(target).await?;
    s.set_nodelay(true)?;
    s.write_all(b"U").await?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        s.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    s.shutdown().await?;
    let got = s.read_u64().await?;
    if got != bytes {
        return Err(format!("backend counted {got} bytes, sent {bytes}").into());
    }
    Ok(())
}

async fn throughput(target: SocketAddr, conns: usize, bytes: u64) -> Res<()> {
    let chunk = Arc::new(vec![0x5Au8; CHUNK]);
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(upload(target, bytes, chunk.clone())))
        .collect();
    for t in tasks {
        t.await??;
    }
    let secs = started.elapsed().as_secs_f64();
    let total = bytes * conns as u64;
    println!(
        "bytes={total} secs={secs:.3} gbytes_per_sec={:.3}",
        total as f64 / secs / 1e9
    );
    Ok(())
}

async fn request(target: SocketAddr) -> Res<()> {
    let mut s = TcpStream::connect(target).await?;
    s.set_nodelay(true)?;
    let mut req = [b'q'; 64];
    req[0] = b'R';
    s.write_all(&req).await?;
    let mut answer = [0u8; 64];
    s.read_exact(&mut answer).await?;
    Ok(())
}

async fn cps(target: SocketAddr, concurrency: usize, secs: f64) -> Res<()> {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (done, errors) = (done.clone(), errors.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    match request(target).await {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            errors.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let n = done.load(Ordering::Relaxed);
    println!(
        "conns={n} errors={} secs={secs:.3} conns_per_sec={:.0}",
        errors.load(Ordering::Relaxed),
        n as f64 / secs
    );
    Ok(())
}

async fn idle(target: SocketAddr, n: usize) -> Res<()> {
    let mut conns = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(200) {
        let opened: Vec<_> = batch
            .iter()
            .map(|_| tokio::spawn(TcpStream::connect(target)))
            .collect();
        for o in opened {
            conns.push(o.await??);
        }
    }
    // Let the proxy finish its backend connections.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("ready {}", conns.len());
    until_terminated().await
}
