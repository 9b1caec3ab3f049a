//! Fakes for the data-plane tests: echo backends on loopback, snapshot builders, polling.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vpcep_proxy::{EndpointSpec, PortPair, ProxyOptions, Snapshot};

pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// Prints logs when `TEST_LOG=1`.
pub fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_test_writer()
            .try_init();
    }
}

#[allow(unused_imports)]
pub use vpcep_testkit::wait::free_port_on as free_port;

/// Where test backends listen: a loopback address the data plane may connect to (the host's
/// own `127.0.0.1` it may not).
pub const BACKEND_IP: &str = "127.0.0.2";

/// Options for tests: short drain and retry, all of loopback granted.
pub fn opts() -> ProxyOptions {
    ProxyOptions {
        agent_id: "test-agent".into(),
        drain_timeout: Duration::from_secs(2),
        retry_interval: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(2),
        dataplane_cidrs: vec!["127.0.0.0/8".parse().unwrap()],
        ..ProxyOptions::default()
    }
}

pub fn spec(endpoint_id: &str, ip: &str, port: u16, backend: SocketAddr) -> EndpointSpec {
    EndpointSpec {
        endpoint_id: endpoint_id.into(),
        marker_id: 201515772,
        service_id: "svc-1".into(),
        ip: ip.into(),
        listen_netns: None,
        backend_ip: backend.ip().to_string(),
        backend_netns: None,
        ports: vec![PortPair {
            client_port: port,
            server_port: backend.port(),
        }],
        tcp_proxy: "close".into(),
        vni: 0,
        whitelist_enabled: false,
        whitelist: vec![],
        refused: None,
    }
}

pub fn snapshot(version: u64, endpoints: Vec<EndpointSpec>) -> Snapshot {
    Snapshot {
        version,
        endpoints,
        report_every_ms: None,
    }
}

/// What an echo backend does with a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Echo everything, then FIN after the client's FIN.
    Echo,
    /// Read a PROXY header (v1 or v2) first and record it, then echo.
    ProxyThenEcho,
}

/// An echo server on loopback that records what it saw.
#[derive(Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    pub headers: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Backend {
    pub async fn start(ip: &str, mode: Mode) -> Backend {
        let l = TcpListener::bind((ip, 0)).await.expect("bind backend");
        Self::serve(l, mode)
    }

    pub fn serve(l: TcpListener, mode: Mode) -> Backend {
        let b = Backend {
            addr: l.local_addr().unwrap(),
            accepted: Arc::new(AtomicUsize::new(0)),
            headers: Arc::new(Mutex::new(Vec::new())),
        };
        let b2 = b.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                b2.accepted.fetch_add(1, Ordering::SeqCst);
                let headers = b2.headers.clone();
                tokio::spawn(async move {
                    if mode == Mode::ProxyThenEcho {
                        match read_proxy_header(&mut s).await {
                            Ok(h) => headers.lock().unwrap().push(h),
                            Err(_) => return,
                        }
                    }
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                    let _ = w.shutdown().await;
                });
            }
        });
        b
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// Reads one PROXY header (v2 by its signature, else a v1 line) and returns its bytes.
pub async fn read_proxy_header(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut h = vec![0u8; 12];
    s.read_exact(&mut h).await?;
    if h == V2_SIGNATURE {
        let mut fixed = [0u8; 4];
        s.read_exact(&mut fixed).await?;
        h.extend_from_slice(&fixed);
        let len = u16::from_be_bytes([fixed[2], fixed[3]]) as usize;
        let mut rest = vec![0u8; len];
        s.read_exact(&mut rest).await?;
        h.extend_from_slice(&rest);
    } else {
        while !h.ends_with(b"\r\n") {
            if h.len() > 107 {
                return Err(std::io::Error::other("v1 header too long"));
            }
            h.push(s.read_u8().await?);
        }
    }
    Ok(h)
}

#[allow(unused_imports)]
pub use vpcep_testkit::net::{connect_from, roundtrip};

/// True when the peer closed the connection without sending anything (EOF or reset).
pub async fn is_closed_by_peer(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// Polls until the condition is true or the timeout passes; answers whether it held.
#[allow(unused_imports)]
pub use vpcep_testkit::wait::holds_within as eventually;

/// The report of `version` (or a later one), which must come within 10 s.
pub async fn applied(dp: &vpcep_proxy::DataPlane, version: u64) -> Arc<vpcep_proxy::AgentReport> {
    tokio::time::timeout(Duration::from_secs(10), dp.applied(version))
        .await
        .unwrap_or_else(|_| panic!("snapshot {version} not applied within 10 s"))
        .expect("the data plane is running")
}

/// [`opts`] with `threads` accept threads.
pub fn with_threads(threads: usize) -> ProxyOptions {
    ProxyOptions { threads, ..opts() }
}

/// The sockets of this network namespace listening on `addr` (`/proc/net/tcp`, state `0A`).
pub fn listening_sockets(addr: SocketAddr) -> usize {
    let std::net::IpAddr::V4(ip) = addr.ip() else {
        panic!("IPv4 only")
    };
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(ip.octets()),
        addr.port()
    );
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&local.as_str()) && f.get(3) == Some(&"0A")
        })
        .count()
}

/// Every one of `n` fresh connections (each from its own source port, so the kernel spreads
/// them over the listening sockets) carries an echo.
pub async fn all_served(dst: SocketAddr, n: usize) {
    for i in 0..n {
        let mut s = connect_from("127.0.0.9", dst)
            .await
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        let echo = roundtrip(&mut s, b"ping")
            .await
            .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        assert_eq!(echo, b"ping");
    }
}

/// The open-file limit that leaves exactly `free` descriptor numbers unused.
pub fn limit_leaving(free: u64) -> u64 {
    // Not the listing's own descriptor (of the directory `/proc/<pid>/fd`), closed again after.
    let used: Vec<u64> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let target = std::fs::read_link(e.path()).ok()?;
            if target.ends_with("fd") && target.starts_with("/proc") {
                return None;
            }
            e.file_name().to_str()?.parse().ok()
        })
        .collect();
    (1..)
        .find(|&limit| limit - used.iter().filter(|&&fd| fd < limit).count() as u64 == free)
        .unwrap()
}
