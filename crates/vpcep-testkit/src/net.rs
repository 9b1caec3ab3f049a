//! The network side of the data-plane tests: echo [`Backend`]s that record PROXY headers,
//! clients from a chosen source address, and network namespaces.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// The PROXY protocol v2 signature.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// What the echo backend writes after the client's FIN, before its own.
pub const TRAILER: &[u8] = b"<eof>";

/// One connection a [`Backend`] accepted.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Who connected (the agent's side).
    pub peer: SocketAddr,
    /// The PROXY header that preceded the payload (v1 or v2), if any.
    pub header: Option<Vec<u8>>,
}

/// An echo server: records a leading PROXY header, echoes the payload, and after the client's
/// FIN writes [`TRAILER`] and closes.
#[derive(Clone)]
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

enum Leading {
    NeedMore,
    Header(usize),
    Payload,
}

fn leading(buf: &[u8]) -> Leading {
    let n = buf.len();
    let v2 = if n <= 12 {
        V2_SIGNATURE.starts_with(buf)
    } else {
        buf.starts_with(&V2_SIGNATURE)
    };
    if v2 {
        if n >= 16 {
            let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
            if n >= len {
                return Leading::Header(len);
            }
        }
        return Leading::NeedMore;
    }
    let v1 = if n <= 6 {
        b"PROXY ".starts_with(buf)
    } else {
        buf.starts_with(b"PROXY ")
    };
    if v1 {
        if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
            return Leading::Header(p + 2);
        }
        return if n > 107 {
            Leading::Payload
        } else {
            Leading::NeedMore
        };
    }
    Leading::Payload
}

impl Backend {
    /// Listens on `addr` (port 0: any).
    pub async fn start(addr: &str) -> Backend {
        let l = TcpListener::bind(addr).await.expect("bind the backend");
        Self::serve(l)
    }

    /// Serves on a bound listener (e.g. one made in another namespace).
    pub fn serve(l: TcpListener) -> Backend {
        let b = Backend {
            addr: l.local_addr().expect("backend address"),
            seen: Arc::default(),
        };
        let seen = b.seen.clone();
        tokio::spawn(async move {
            while let Ok((s, peer)) = l.accept().await {
                tokio::spawn(echo(s, peer, seen.clone()));
            }
        });
        b
    }

    /// Connections accepted so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The last connection accepted.
    pub fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the backend saw a connection")
    }
}

async fn echo(mut s: TcpStream, peer: SocketAddr, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::with_capacity(256);
    let header = loop {
        match leading(&buf) {
            Leading::Header(n) => break Some(buf.drain(..n).collect::<Vec<u8>>()),
            Leading::Payload => break None,
            Leading::NeedMore => match s.read_buf(&mut buf).await {
                Ok(0) => break None,
                Ok(_) => {}
                Err(_) => return,
            },
        }
    };
    seen.lock().unwrap().push(Seen { peer, header });
    let (mut r, mut w) = s.split();
    if w.write_all(&buf).await.is_err() {
        return;
    }
    if tokio::io::copy(&mut r, &mut w).await.is_ok() {
        let _ = w.write_all(TRAILER).await;
    }
    let _ = w.shutdown().await;
}

/// Connects to `dst` from `src` (port chosen by the kernel).
pub async fn connect_from(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(
        src.parse::<IpAddr>().expect("source ip"),
        0,
    ))?;
    tokio::time::timeout(Duration::from_secs(5), s.connect(dst))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// Writes `msg` and reads the same number of bytes back.
pub async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg).await?;
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
        .await
        .map_err(|_| std::io::Error::other("no echo within 5 s"))??;
    Ok(got)
}

/// Whether a fresh connection from `src` to `dst` carries an echo of one message.
pub async fn echoes(src: &str, dst: SocketAddr) -> Result<(), String> {
    let mut s = connect_from(src, dst)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    match roundtrip(&mut s, b"hello").await {
        Ok(v) if v == b"hello" => Ok(()),
        Ok(v) => Err(format!("echo {v:?}")),
        Err(e) => Err(format!("roundtrip: {e}")),
    }
}

/// Whether a connection to `dst` is refused (nothing listens).
pub async fn refused(src: &str, dst: SocketAddr) -> Result<(), String> {
    match connect_from(src, dst).await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(format!("connect failed otherwise: {e}")),
        Ok(_) => Err("connected".into()),
    }
}

/// Whether a connection from `src` to `dst` is accepted and then closed with no echo (what the
/// whitelist does).
pub async fn cut_off(src: &str, dst: SocketAddr) -> Result<(), String> {
    let mut s = connect_from(src, dst)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.write_all(b"hello").await;
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Ok(()),
        Ok(Ok(n)) => Err(format!("got {:?}", &buf[..n])),
        Err(_) => Err("neither data nor close within 5 s".into()),
    }
}

/// `Ok` when the peer closes `s` (EOF or reset) within `t`, sending nothing more.
pub async fn closed_within(s: &mut TcpStream, t: Duration) -> Result<(), String> {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(t, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Ok(()),
        Ok(Ok(n)) => Err(format!("got {:?}", &buf[..n])),
        Err(_) => Err(format!("still open after {t:?}")),
    }
}

/// `ip:port` as a socket address.
pub fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("ip"), port)
}

/// Deletes the namespaces it holds (with their interfaces) when dropped, also on panic.
pub struct Namespaces(pub Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", n])
                .output();
        }
    }
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    run("ip", args)
}

/// Runs `program` with `args`; its stderr is the error when it fails.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Adds namespace `ns` (held by `guard`) with loopback up carrying `addrs` (host addresses,
/// /32: only they are local), so that sockets in it can bind and reach those addresses.
pub fn namespace(guard: &mut Namespaces, ns: &str, addrs: &[&str]) -> Result<(), String> {
    ip(&["netns", "add", ns])?;
    guard.0.push(ns.to_string());
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    for a in addrs {
        ip(&["-n", ns, "addr", "add", &format!("{a}/32"), "dev", "lo"])?;
    }
    Ok(())
}
