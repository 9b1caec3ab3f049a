//! Applying new snapshots: listeners close, configs swap without dropping open connections,
//! bind failures are reported, shutdown drains.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use vpcep_proxy::{DataPlane, ProxyOptions, Supervisor};

const ENDPOINT_IP: &str = "127.0.0.2";

fn endpoint_addr(port: u16) -> SocketAddr {
    format!("{ENDPOINT_IP}:{port}").parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_endpoint_closes_the_listener() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port(ENDPOINT_IP);
    let mut sup = Supervisor::new(opts());
    let report = sup
        .apply(&snapshot(
            1,
            vec![spec("ep-1", ENDPOINT_IP, port, backend.addr)],
        ))
        .await;
    assert!(report.endpoints[0].ok);
    let mut c = TcpStream::connect(endpoint_addr(port)).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"hi").await.unwrap(), b"hi");

    let started = Instant::now();
    let report = sup.apply(&snapshot(2, vec![])).await;
    assert!(report.endpoints.is_empty());
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "applied in {:?}",
        started.elapsed()
    );
    let err = TcpStream::connect(endpoint_addr(port)).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(sup.listening().is_empty());
    // The established connection is cut too: after a reject or delete no byte more flows.
    let mut buf = [0u8; 8];
    let cut = tokio::time::timeout(Duration::from_secs(1), c.read(&mut buf)).await;
    assert!(
        matches!(cut, Ok(Ok(0)) | Ok(Err(_))),
        "the open connection ends within a second: {cut:?}"
    );
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_changes_owner_is_reopened_and_cuts_the_old_owners_connections() {
    init_tracing();
    let first = Backend::start(BACKEND_IP, Mode::Echo).await;
    let second = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port(ENDPOINT_IP);
    let mut sup = Supervisor::new(opts());
    sup.apply(&snapshot(
        1,
        vec![spec("ep-first", ENDPOINT_IP, port, first.addr)],
    ))
    .await;
    let mut old = TcpStream::connect(endpoint_addr(port)).await.unwrap();
    assert_eq!(roundtrip(&mut old, b"one").await.unwrap(), b"one");
    let report = sup
        .apply(&snapshot(
            2,
            vec![spec("ep-second", ENDPOINT_IP, port, second.addr)],
        ))
        .await;
    assert!(report.endpoints[0].ok, "{report:?}");
    // The first endpoint's connection does not continue under the second's config.
    assert!(is_closed_by_peer(&mut old).await);
    let mut new = TcpStream::connect(endpoint_addr(port)).await.unwrap();
    assert_eq!(roundtrip(&mut new, b"two").await.unwrap(), b"two");
    assert_eq!((first.accepted(), second.accepted()), (1, 1));
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_whitelist_keeps_established_connections_and_applies_to_new_ones() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port(ENDPOINT_IP);
    let dp = DataPlane::start(opts());
    let open = spec("ep-1", ENDPOINT_IP, port, backend.addr);
    dp.push(snapshot(1, vec![open.clone()]));
    assert!(applied(&dp, 1).await.endpoints[0].ok);
    let mut established = connect_from("127.0.0.1", endpoint_addr(port))
        .await
        .unwrap();
    assert_eq!(
        roundtrip(&mut established, b"before").await.unwrap(),
        b"before"
    );

    let mut closed = open.clone();
    closed.whitelist_enabled = true;
    closed.whitelist = vec!["127.0.0.50/32".into()];
    dp.push(snapshot(2, vec![closed]));
    assert!(applied(&dp, 2).await.endpoints[0].ok);

    assert_eq!(
        roundtrip(&mut established, b"after").await.unwrap(),
        b"after",
        "established connection survives"
    );
    let mut newcomer = connect_from("127.0.0.1", endpoint_addr(port))
        .await
        .unwrap();
    assert!(
        is_closed_by_peer(&mut newcomer).await,
        "new connection follows the new whitelist"
    );
    let mut allowed = connect_from("127.0.0.50", endpoint_addr(port))
        .await
        .unwrap();
    assert_eq!(roundtrip(&mut allowed, b"in").await.unwrap(), b"in");
    assert_eq!(dp.stats().get("ep-1").unwrap().refused_whitelist, 1);
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_backend_keeps_established_connections_and_routes_new_ones() {
    init_tracing();
    let old = Backend::start(BACKEND_IP, Mode::Echo).await;
    let new = Backend::start(BACKEND_IP, Mode::ProxyThenEcho).await;
    let port = free_port(ENDPOINT_IP);
    let dp = DataPlane::start(opts());
    dp.push(snapshot(1, vec![spec("ep-1", ENDPOINT_IP, port, old.addr)]));
    assert!(applied(&dp, 1).await.endpoints[0].ok);
    let mut established = TcpStream::connect(endpoint_addr(port)).await.unwrap();
    assert_eq!(roundtrip(&mut established, b"one").await.unwrap(), b"one");

    // New backend, and tcp_proxy switches on: both only for new connections.
    let mut moved = spec("ep-1", ENDPOINT_IP, port, new.addr);
    moved.tcp_proxy = "proxy_open".into();
    dp.push(snapshot(2, vec![moved]));
    assert!(applied(&dp, 2).await.endpoints[0].ok);

    assert_eq!(roundtrip(&mut established, b"two").await.unwrap(), b"two");
    let mut fresh = TcpStream::connect(endpoint_addr(port)).await.unwrap();
    assert_eq!(roundtrip(&mut fresh, b"three").await.unwrap(), b"three");
    assert_eq!(old.accepted(), 1);
    assert_eq!(new.accepted(), 1);
    assert_eq!(
        new.headers.lock().unwrap().len(),
        1,
        "the new connection got a PROXY header"
    );
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_listeners_are_not_rebound_when_other_endpoints_change() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let (p1, p2) = (free_port(ENDPOINT_IP), free_port("127.0.0.3"));
    let dp = DataPlane::start(opts());
    let a = spec("ep-a", ENDPOINT_IP, p1, backend.addr);
    dp.push(snapshot(1, vec![a.clone()]));
    applied(&dp, 1).await;
    let mut c = TcpStream::connect(endpoint_addr(p1)).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"a").await.unwrap(), b"a");
    dp.push(snapshot(
        2,
        vec![a.clone(), spec("ep-b", "127.0.0.3", p2, backend.addr)],
    ));
    let r = applied(&dp, 2).await;
    assert!(r.endpoints.iter().all(|e| e.ok), "{r:?}");
    assert_eq!(roundtrip(&mut c, b"still").await.unwrap(), b"still");
    let mut b = TcpStream::connect(("127.0.0.3", p2)).await.unwrap();
    assert_eq!(roundtrip(&mut b, b"b").await.unwrap(), b"b");
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_failure_is_reported_with_its_reason() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let good_port = free_port(ENDPOINT_IP);
    let mut o = opts();
    o.dataplane_cidrs.push("10.9.9.0/24".parse().unwrap());
    let dp = DataPlane::start(o);
    dp.push(snapshot(
        7,
        vec![
            spec("ep-bad", "10.9.9.9", 80, backend.addr),
            spec("ep-good", ENDPOINT_IP, good_port, backend.addr),
        ],
    ));
    let r = applied(&dp, 7).await;
    assert_eq!(r.version, 7);
    assert_eq!(r.agent_id, "test-agent");
    assert_eq!(r.endpoints[0].endpoint_id, "ep-bad");
    assert!(!r.endpoints[0].ok);
    assert_eq!(
        r.endpoints[0].error.as_deref(),
        Some("cannot listen on 10.9.9.9:80: Cannot assign requested address")
    );
    assert!(r.endpoints[1].ok && r.endpoints[1].error.is_none());
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_taken_by_another_process_is_reported_and_retried() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let squatter = std::net::TcpListener::bind((ENDPOINT_IP, 0)).unwrap();
    let port = squatter.local_addr().unwrap().port();
    let dp = DataPlane::start(opts());
    dp.push(snapshot(
        1,
        vec![spec("ep-1", ENDPOINT_IP, port, backend.addr)],
    ));
    let r = applied(&dp, 1).await;
    assert_eq!(
        r.endpoints[0].error.as_deref(),
        Some(format!("cannot listen on {ENDPOINT_IP}:{port}: Address already in use").as_str())
    );
    drop(squatter);
    let mut reports = dp.reports();
    let recovered = tokio::time::timeout(
        Duration::from_secs(5),
        reports.wait_for(|r| r.as_ref().is_some_and(|r| r.endpoints[0].ok)),
    )
    .await;
    assert!(recovered.is_ok(), "the failed listener is retried");
    let mut c = TcpStream::connect(endpoint_addr(port)).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"up").await.unwrap(), b"up");
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_a_busy_connection_to_finish() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port(ENDPOINT_IP);
    let dp = DataPlane::start(opts());
    dp.push(snapshot(
        1,
        vec![spec("ep-1", ENDPOINT_IP, port, backend.addr)],
    ));
    applied(&dp, 1).await;
    let mut c = TcpStream::connect(endpoint_addr(port)).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"start").await.unwrap(), b"start");

    let shutdown = tokio::spawn(dp.shutdown());
    // New connections are refused once the listener is closed...
    assert!(
        eventually(Duration::from_secs(2), || async {
            TcpStream::connect(endpoint_addr(port)).await.is_err()
        })
        .await
    );
    // ...while the busy one completes its exchange.
    assert_eq!(
        roundtrip(&mut c, b"mid-shutdown").await.unwrap(),
        b"mid-shutdown"
    );
    assert!(!shutdown.is_finished());
    c.shutdown().await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest))
        .await
        .expect("the proxy closes the drained connection")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_aborts_idle_connections_at_the_drain_deadline() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port(ENDPOINT_IP);
    let dp = DataPlane::start(ProxyOptions {
        drain_timeout: Duration::from_millis(300),
        ..opts()
    });
    dp.push(snapshot(
        1,
        vec![spec("ep-1", ENDPOINT_IP, port, backend.addr)],
    ));
    applied(&dp, 1).await;
    let mut c = TcpStream::connect(endpoint_addr(port)).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"idle").await.unwrap(), b"idle");
    let started = Instant::now();
    dp.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(is_closed_by_peer(&mut c).await);
    let _ = c.write_all(b"x").await;
}
