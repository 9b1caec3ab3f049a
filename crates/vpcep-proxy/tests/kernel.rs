//! The kernel fast path on real sockets: `tcp_proxy = close` endpoints forwarded by nftables
//! NAT, with the whitelist as a set, per-endpoint counters, cuts on change, one table per data
//! plane.
//!
//! Needs root and the `nft` tool; prints SKIPPED and passes otherwise. Every address is on
//! loopback (127.0.0.0/8); each test uses its own endpoint address.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vpcep_proxy::{KernelPathMode, ProxyOptions, Supervisor};

/// Why the kernel path cannot be tested here, if it cannot.
fn unavailable() -> Option<String> {
    match Command::new("nft").args(["list", "tables"]).output() {
        Err(e) => Some(format!("no nft tool ({e})")),
        Ok(o) if !o.status.success() => Some(format!(
            "nft not permitted: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Ok(_) => None,
    }
}

macro_rules! require_nft {
    () => {
        if let Some(why) = unavailable() {
            // Past the harness's capture, for test.sh's list of skipped tests.
            let test = std::thread::current()
                .name()
                .unwrap_or("kernel")
                .to_string();
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("SKIPPED {test}: {why}\n").as_bytes(),
            );
            return;
        }
    };
}

fn kopts() -> ProxyOptions {
    ProxyOptions {
        kernel_path: KernelPathMode::Auto,
        drain_timeout: Duration::from_millis(300),
        ..opts()
    }
}

fn nft_table(name: &str) -> Option<String> {
    let o = Command::new("nft")
        .args(["list", "table", "inet", name])
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// An echo backend that records the address each connection came from.
struct PeerBackend {
    addr: SocketAddr,
    peers: Arc<Mutex<Vec<SocketAddr>>>,
}

async fn peer_backend() -> PeerBackend {
    let l = TcpListener::bind((BACKEND_IP, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let peers = Arc::new(Mutex::new(Vec::new()));
    let p = peers.clone();
    tokio::spawn(async move {
        while let Ok((mut s, peer)) = l.accept().await {
            p.lock().unwrap().push(peer);
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    PeerBackend { addr, peers }
}

fn ep_addr(ip: &str, port: u16) -> SocketAddr {
    format!("{ip}:{port}").parse().unwrap()
}

/// Whether the connection ends (EOF or reset) within `t` without our sending anything.
async fn ends_within(s: &mut tokio::net::TcpStream, t: Duration) -> bool {
    let mut buf = [0u8; 16];
    matches!(
        tokio::time::timeout(t, s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A kernel-path endpoint and a connection through it.
struct Served {
    sup: Supervisor,
    backend: PeerBackend,
    /// The endpoint's address and client port.
    addr: SocketAddr,
    /// From 127.0.0.50; it has made one round trip.
    conn: tokio::net::TcpStream,
}

/// A supervisor serving endpoint `id` on `ip` (a free client port) in front of a fresh echo
/// backend, admitting only `whitelist` when it is not empty, and a connection through it.
async fn serve_and_connect(id: &str, ip: &str, whitelist: &[&str]) -> Served {
    init_tracing();
    let backend = peer_backend().await;
    let addr = ep_addr(ip, free_port(ip));
    let mut s = spec(id, ip, addr.port(), backend.addr);
    s.whitelist_enabled = !whitelist.is_empty();
    s.whitelist = whitelist.iter().map(|w| w.to_string()).collect();
    let mut sup = Supervisor::new(kopts());
    let report = sup.apply(&snapshot(1, vec![s])).await;
    assert!(report.endpoints[0].ok, "{report:?}");
    let mut conn = connect_from("127.0.0.50", addr).await.unwrap();
    assert_eq!(roundtrip(&mut conn, b"one").await.unwrap(), b"one");
    Served {
        sup,
        backend,
        addr,
        conn,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_endpoints_are_forwarded_by_nftables_and_counted() {
    require_nft!();
    init_tracing();
    let ip = "127.31.0.1";
    let backend = peer_backend().await;
    let port = free_port(ip);
    let mut sup = Supervisor::new(kopts());
    let report = sup
        .apply(&snapshot(1, vec![spec("ep-k1", ip, port, backend.addr)]))
        .await;
    assert!(report.endpoints[0].ok, "{report:?}");
    let table = sup.kernel_table().expect("kernel path on").to_string();
    let listed = nft_table(&table).expect("the table exists");
    assert!(
        listed.contains(&format!("ip daddr {ip} tcp dport {port}")) && listed.contains("dnat"),
        "{listed}"
    );

    let mut c = connect_from("127.0.0.50", ep_addr(ip, port)).await.unwrap();
    let payload = vec![7u8; 256 * 1024];
    assert_eq!(roundtrip(&mut c, &payload).await.unwrap(), payload);
    // The backend learns the address the agent connects from, not the client's.
    let peers = backend.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 1);
    assert_ne!(peers[0].ip().to_string(), "127.0.0.50");
    assert_eq!(peers[0].ip().to_string(), "127.0.0.1", "the route's source");

    let stats = sup.stats().get("ep-k1").unwrap();
    assert!(stats.kernel_path);
    assert_eq!(stats.connections_total, 1, "{stats:?}");
    assert_eq!(
        stats.connections_active, 0,
        "the user-space proxy did not carry it"
    );
    assert!(
        stats.bytes_client_to_backend >= payload.len() as u64,
        "{stats:?}"
    );
    assert!(
        stats.bytes_backend_to_client >= payload.len() as u64,
        "{stats:?}"
    );
    let text = sup.stats().render_prometheus();
    assert!(
        text.contains("vpcep_agent_endpoint_path{endpoint_id=\"ep-k1\",path=\"kernel\"} 1"),
        "{text}"
    );
    drop(c);
    sup.shutdown().await;
    assert!(nft_table(&table).is_none(), "the table is removed at stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_outside_the_whitelist_reaches_the_listener_and_is_refused() {
    require_nft!();
    init_tracing();
    let ip = "127.31.0.2";
    let backend = peer_backend().await;
    let port = free_port(ip);
    let mut sup = Supervisor::new(kopts());
    let mut s = spec("ep-k2", ip, port, backend.addr);
    s.whitelist_enabled = true;
    s.whitelist = vec!["127.0.0.50/32".into()];
    assert!(sup.apply(&snapshot(1, vec![s])).await.endpoints[0].ok);

    let mut outsider = connect_from("127.0.0.60", ep_addr(ip, port)).await.unwrap();
    assert!(is_closed_by_peer(&mut outsider).await);
    let mut allowed = connect_from("127.0.0.50", ep_addr(ip, port)).await.unwrap();
    assert_eq!(roundtrip(&mut allowed, b"in").await.unwrap(), b"in");
    assert_eq!(backend.peers.lock().unwrap().len(), 1);
    let stats = sup.stats().get("ep-k2").unwrap();
    assert_eq!((stats.refused_whitelist, stats.connections_total), (1, 1));
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_endpoints_stay_in_user_space() {
    require_nft!();
    init_tracing();
    let ip = "127.31.0.3";
    let backend = Backend::start(BACKEND_IP, Mode::ProxyThenEcho).await;
    let port = free_port(ip);
    let mut sup = Supervisor::new(kopts());
    let mut s = spec("ep-k3", ip, port, backend.addr);
    s.tcp_proxy = "proxy_open".into();
    assert!(sup.apply(&snapshot(1, vec![s])).await.endpoints[0].ok);
    let table = sup.kernel_table().unwrap().to_string();
    assert!(!nft_table(&table).unwrap().contains(ip));
    let mut c = connect_from("127.0.0.50", ep_addr(ip, port)).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"hdr").await.unwrap(), b"hdr");
    assert_eq!(backend.headers.lock().unwrap().len(), 1);
    assert!(!sup.stats().get("ep-k3").unwrap().kernel_path);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_endpoint_cuts_an_idle_kernel_connection_within_a_second() {
    require_nft!();
    let Served {
        mut sup,
        addr,
        conn: mut held,
        ..
    } = serve_and_connect("ep-k4", "127.31.0.4", &[]).await;
    assert!(sup.stats().get("ep-k4").unwrap().kernel_path);

    let started = Instant::now();
    sup.apply(&snapshot(2, vec![])).await;
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(ends_within(&mut held, Duration::from_secs(1)).await);
    let err = tokio::net::TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_change_or_a_narrower_whitelist_cuts_kernel_connections() {
    require_nft!();
    let ip = "127.31.0.5";
    let Served {
        mut sup,
        backend,
        addr,
        conn: mut old,
    } = serve_and_connect("ep-first", ip, &[]).await;
    let port = addr.port();
    sup.apply(&snapshot(
        2,
        vec![spec("ep-second", ip, port, backend.addr)],
    ))
    .await;
    assert!(
        ends_within(&mut old, Duration::from_secs(1)).await,
        "owner change"
    );

    let mut a = connect_from("127.0.0.50", addr).await.unwrap();
    let mut b = connect_from("127.0.0.51", addr).await.unwrap();
    assert_eq!(roundtrip(&mut a, b"a").await.unwrap(), b"a");
    assert_eq!(roundtrip(&mut b, b"b").await.unwrap(), b"b");
    let mut narrower = spec("ep-second", ip, port, backend.addr);
    narrower.whitelist_enabled = true;
    narrower.whitelist = vec!["127.0.0.50".into()];
    sup.apply(&snapshot(3, vec![narrower])).await;
    assert!(
        ends_within(&mut b, Duration::from_secs(1)).await,
        "whitelist"
    );
    assert_eq!(roundtrip(&mut a, b"still").await.unwrap(), b"still");
    sup.shutdown().await;
}

/// Serves endpoint `id` on `ip` (see [`serve_and_connect`]), lets `edit` change its table by
/// hand (a change whose sockets nobody destroys, as for a remote peer, whose socket cannot be
/// destroyed here), and checks that the connection's next packet is answered with a reset: no
/// byte more flows.
async fn reset_after_editing_the_table_by_hand(
    id: &str,
    ip: &str,
    whitelist: &[&str],
    edit: impl FnOnce(&str),
) {
    let Served { sup, mut conn, .. } = serve_and_connect(id, ip, whitelist).await;
    edit(sup.kernel_table().unwrap());
    assert!(
        !ends_within(&mut conn, Duration::from_millis(300)).await,
        "idle: nothing tells the client yet"
    );
    let started = Instant::now();
    let r = roundtrip(&mut conn, b"two").await;
    assert!(r.is_err(), "no byte more flows: {r:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    sup.shutdown().await;
}

fn nft(args: &[&str]) -> String {
    let out = Command::new("nft").args(args).output().unwrap();
    assert!(out.status.success(), "nft {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_endpoint_is_gone_gets_a_reset_on_its_next_packet() {
    require_nft!();
    // Without the marks' lookup, the connection's mark is no live listener's.
    reset_after_editing_the_table_by_hand("ep-k6", "127.31.0.6", &[], |table| {
        for chain in ["f_pre", "f_out"] {
            let text = nft(&["-a", "list", "chain", "inet", table, chain]);
            let handle = text
                .lines()
                .find(|l| l.contains("vmap"))
                .and_then(|l| l.rsplit("# handle ").next())
                .unwrap_or_else(|| panic!("no vmap rule in {text}"))
                .trim()
                .to_string();
            nft(&["delete", "rule", "inet", table, chain, "handle", &handle]);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_the_whitelist_no_longer_admits_gets_a_reset_on_its_next_packet() {
    require_nft!();
    reset_after_editing_the_table_by_hand("ep-k11", "127.31.0.11", &["127.0.0.50"], |table| {
        let text = nft_table(table).unwrap();
        let set = text
            .split_whitespace()
            .find(|w| w.starts_with("wl4_"))
            .unwrap_or_else(|| panic!("no wl4 set in {text}"));
        nft(&["flush", "set", "inet", table, set]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_data_planes_keep_their_own_tables() {
    require_nft!();
    init_tracing();
    let backend = peer_backend().await;
    let (ip1, ip2) = ("127.31.0.7", "127.31.0.8");
    let (p1, p2) = (free_port(ip1), free_port(ip2));
    let mut one = Supervisor::new(kopts());
    let mut two = Supervisor::new(kopts());
    one.apply(&snapshot(1, vec![spec("ep-one", ip1, p1, backend.addr)]))
        .await;
    two.apply(&snapshot(1, vec![spec("ep-two", ip2, p2, backend.addr)]))
        .await;
    let (t1, t2) = (
        one.kernel_table().unwrap().to_string(),
        two.kernel_table().unwrap().to_string(),
    );
    assert_ne!(t1, t2);
    let mut c1 = connect_from("127.0.0.50", ep_addr(ip1, p1)).await.unwrap();
    let mut c2 = connect_from("127.0.0.50", ep_addr(ip2, p2)).await.unwrap();
    assert_eq!(roundtrip(&mut c1, b"1").await.unwrap(), b"1");
    assert_eq!(roundtrip(&mut c2, b"2").await.unwrap(), b"2");
    // A change in one cuts nothing of the other's.
    one.apply(&snapshot(2, vec![])).await;
    assert!(ends_within(&mut c1, Duration::from_secs(1)).await);
    assert_eq!(roundtrip(&mut c2, b"still").await.unwrap(), b"still");
    assert!(nft_table(&t2).unwrap().contains(ip2));
    one.shutdown().await;
    assert!(nft_table(&t1).is_none());
    assert_eq!(roundtrip(&mut c2, b"after").await.unwrap(), b"after");
    assert!(two.stats().get("ep-two").unwrap().connections_total >= 1);
    two.shutdown().await;
    assert!(nft_table(&t2).is_none());
}

/// The conntrack entries (TCP) whose mark carries the tag of `table`.
fn tracked_of(table: &str) -> usize {
    let tag = u32::from_str_radix(table.rsplit('_').next().unwrap(), 16).unwrap();
    let text = std::fs::read_to_string("/proc/net/nf_conntrack").unwrap_or_default();
    vpcep_proxy::kernel::parse_conntrack(&text)
        .iter()
        .filter(|t| t.mark >> 24 == tag)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_to_a_proxy_mode_keeps_established_kernel_connections() {
    require_nft!();
    init_tracing();
    let ip = "127.31.0.9";
    let old = peer_backend().await;
    let new = Backend::start(BACKEND_IP, Mode::ProxyThenEcho).await;
    let port = free_port(ip);
    let mut sup = Supervisor::new(kopts());
    sup.apply(&snapshot(1, vec![spec("ep-k9", ip, port, old.addr)]))
        .await;
    let mut established = connect_from("127.0.0.50", ep_addr(ip, port)).await.unwrap();
    assert_eq!(roundtrip(&mut established, b"one").await.unwrap(), b"one");
    let mut moved = spec("ep-k9", ip, port, new.addr);
    moved.tcp_proxy = "proxy_open".into();
    assert!(sup.apply(&snapshot(2, vec![moved])).await.endpoints[0].ok);
    assert!(!sup.stats().get("ep-k9").unwrap().kernel_path);
    // As on the user-space path: the open connection keeps its config, new ones take the new.
    assert_eq!(roundtrip(&mut established, b"two").await.unwrap(), b"two");
    let mut fresh = connect_from("127.0.0.50", ep_addr(ip, port)).await.unwrap();
    assert_eq!(roundtrip(&mut fresh, b"three").await.unwrap(), b"three");
    assert_eq!(new.headers.lock().unwrap().len(), 1);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_drains_then_cuts_and_forgets_its_connections() {
    require_nft!();
    let Served {
        sup,
        conn: mut held,
        ..
    } = serve_and_connect("ep-k10", "127.31.0.10", &[]).await;
    let table = sup.kernel_table().unwrap().to_string();
    assert!(tracked_of(&table) >= 1);
    let started = Instant::now();
    sup.shutdown().await;
    // The drain (300 ms here) ran out with the connection still open: it is cut.
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(ends_within(&mut held, Duration::from_secs(1)).await);
    assert!(nft_table(&table).is_none());
    assert_eq!(
        tracked_of(&table),
        0,
        "no conntrack entry of the table is left"
    );
}

#[test]
fn ipv6_rules_are_accepted_by_nft() {
    require_nft!();
    use std::io::Write as _;
    let l = vpcep_proxy::kernel::KernelListener {
        endpoint_id: "ep-v6".into(),
        slot: 1,
        mark: 0x0100_0001,
        addr: "[fd00:31::1]:80".parse().unwrap(),
        backend: "[fd00:32::1]:8080".parse().unwrap(),
        snat: Some("fd00:32::2".parse().unwrap()),
        whitelist: vpcep_proxy::config::Whitelist::parse(
            true,
            &["fd00:33::/64".into(), "10.0.0.0/8".into()],
        )
        .unwrap(),
        translate: true,
    };
    let doc = vpcep_proxy::kernel::ruleset("vpcep_check_01", 0x0100_0000, &[l], true);
    let mut child = Command::new("nft")
        .args(["--check", "-j", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&doc).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_plane_dropped_without_a_stop_leaves_no_rules() {
    require_nft!();
    let backend = peer_backend().await;
    let ip = "127.31.0.11";
    let port = free_port(ip);
    let mut sup = Supervisor::new(kopts());
    sup.apply(&snapshot(1, vec![spec("ep-k11", ip, port, backend.addr)]))
        .await;
    let table = sup.kernel_table().unwrap().to_string();
    assert!(nft_table(&table).is_some());
    drop(sup);
    assert!(nft_table(&table).is_none());
}
