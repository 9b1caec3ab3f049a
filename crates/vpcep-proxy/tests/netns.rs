//! Two network namespaces with the SAME subnet (10.0.0.0/24): a consumer VPC and a provider
//! VPC. The agent, in the host namespace, listens on the endpoint address inside the consumer
//! namespace and connects to the backend from inside the provider namespace. In the consumer
//! namespace, 10.0.0.2 is a different host (a decoy), so routing alone could never reach the
//! provider's 10.0.0.2; through the endpoint the client does.
//!
//! Needs root (`ip netns add`); prints SKIPPED and passes otherwise. All traffic stays inside
//! the namespaces this test creates, which are deleted even when it fails.

mod support;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use ppp::v2;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vpcep_proxy::netns::NetnsPool;
use vpcep_proxy::{DataPlane, PortPair};

/// Deletes the namespaces (and with them their veth ends) when dropped.
struct Namespaces {
    names: Vec<String>,
    host_links: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for l in &self.host_links {
            let _ = Command::new("ip").args(["link", "del", l]).output();
        }
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).output();
        }
    }
}

use vpcep_testkit::net::ip;

/// Adds namespace `ns` with a veth pair to the host (host end up, unaddressed) and `addrs`
/// on the namespace end.
fn vpc(guard: &mut Namespaces, ns: &str, link: &str, addrs: &[&str]) -> Result<(), String> {
    ip(&["netns", "add", ns])?;
    guard.names.push(ns.to_string());
    let host_end = format!("{link}h");
    ip(&[
        "link", "add", link, "type", "veth", "peer", "name", &host_end,
    ])?;
    guard.host_links.push(host_end.clone());
    ip(&["link", "set", link, "netns", ns])?;
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    for a in addrs {
        ip(&["-n", ns, "addr", "add", a, "dev", link])?;
    }
    ip(&["-n", ns, "link", "set", link, "up"])?;
    ip(&["link", "set", &host_end, "up"])?;
    Ok(())
}

/// Whether this process may create network namespaces (tried with `probe`); prints SKIPPED for
/// `test` if not.
fn namespaces_allowed(test: &str, probe: &str) -> bool {
    if let Err(e) = ip(&["netns", "add", probe]) {
        println!("SKIPPED {test}: cannot create network namespaces ({e})");
        return false;
    }
    let _ = ip(&["netns", "del", probe]);
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_bridges_two_namespaces_with_the_same_subnet() {
    init_tracing();
    let id = std::process::id();
    let (consumer, provider) = (format!("vpcep-c{id}"), format!("vpcep-p{id}"));
    let mut guard = Namespaces {
        names: vec![],
        host_links: vec![],
    };
    if !namespaces_allowed(
        "endpoint_bridges_two_namespaces_with_the_same_subnet",
        &consumer,
    ) {
        return;
    }
    vpc(
        &mut guard,
        &consumer,
        &format!("vc{id}"),
        &["10.0.0.1/24", "10.0.0.100/24", "10.0.0.2/24"],
    )
    .unwrap();
    vpc(&mut guard, &provider, &format!("vp{id}"), &["10.0.0.2/24"]).unwrap();

    let pool = NetnsPool::new();
    let backend_addr: SocketAddr = "10.0.0.2:8080".parse().unwrap();
    // The provider's backend.
    let backend = Backend::serve(
        pool.bind(Some(&provider), backend_addr, 64).await.unwrap(),
        Mode::ProxyThenEcho,
    );
    // A different 10.0.0.2 inside the consumer VPC.
    let decoy = pool.bind(Some(&consumer), backend_addr, 64).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = decoy.accept().await {
            let _ = s.write_all(b"decoy").await;
        }
    });

    let dp = DataPlane::start(opts());
    let mut e = spec("ep-ns", "10.0.0.100", 80, backend_addr);
    e.listen_netns = Some(consumer.clone());
    e.backend_netns = Some(provider.clone());
    e.tcp_proxy = "proxy_open".into();
    e.ports = vec![PortPair {
        client_port: 80,
        server_port: 8080,
    }];
    dp.push(snapshot(1, vec![e]));
    let report = applied(&dp, 1).await;
    assert!(report.endpoints[0].ok, "{report:?}");

    // Routing inside the consumer VPC reaches the decoy, not the provider.
    let mut direct = pool
        .connect(Some(&consumer), backend_addr, false)
        .await
        .unwrap()
        .established(false)
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), direct.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"decoy");

    // Through the endpoint the client reaches the provider's backend, which sees its address.
    let endpoint: SocketAddr = "10.0.0.100:80".parse().unwrap();
    let mut c = pool
        .connect(Some(&consumer), endpoint, false)
        .await
        .unwrap()
        .established(false)
        .await
        .unwrap();
    assert_eq!(
        roundtrip(&mut c, b"across VPCs").await.unwrap(),
        b"across VPCs"
    );
    let client = c.local_addr().unwrap();
    assert_eq!(client.ip().to_string(), "10.0.0.1");
    let raw = backend.headers.lock().unwrap()[0].clone();
    match v2::Header::try_from(&raw[..]).unwrap().addresses {
        v2::Addresses::IPv4(a) => {
            assert_eq!(SocketAddr::from((a.source_address, a.source_port)), client);
            assert_eq!(
                SocketAddr::from((a.destination_address, a.destination_port)),
                endpoint
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(backend.accepted(), 1);

    // Removing the endpoint closes the listener inside the consumer namespace.
    drop(c);
    dp.push(snapshot(2, vec![]));
    applied(&dp, 2).await;
    let refused = async {
        pool.connect(Some(&consumer), endpoint, false)
            .await?
            .established(false)
            .await
    };
    assert!(refused.await.is_err());
    dp.shutdown().await;
    drop(guard);
}

/// Runs `nft` inside namespace `ns` with `args` (split at spaces).
fn nft_in(ns: &str, args: &str) -> Result<(), String> {
    let mut argv = vec!["netns", "exec", ns, "nft"];
    argv.extend(args.split(' '));
    vpcep_testkit::net::run("ip", &argv)
}

/// A backend whose handshake does not complete within `connect` (its first SYN is dropped, as
/// on a lossy or distant network): the agent's send right after `connect` finds the connection
/// not yet up and waits for it. The backend then gets the PROXY header and, after it, every
/// byte the client sent during the wait. Needs root and `nft`; SKIPPED otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_backend_handshake_still_gets_the_header_and_the_first_bytes() {
    init_tracing();
    let id = std::process::id();
    let ns = format!("vpcep-s{id}");
    if !namespaces_allowed(
        "a_slow_backend_handshake_still_gets_the_header_and_the_first_bytes",
        &ns,
    ) {
        return;
    }
    // The backend in namespace `ns`, linked by a veth pair to the VPC namespace `vpc_ns` the
    // agent connects from (the pair goes with the namespaces).
    let vpc_ns = format!("vpcep-v{id}");
    let mut guard = vpcep_testkit::net::Namespaces(vec![]);
    for n in [&ns, &vpc_ns] {
        vpcep_testkit::net::namespace(&mut guard, n, &[]).unwrap();
    }
    let (a, b) = (format!("vsa{id}"), format!("vsb{id}"));
    ip(&["link", "add", &a, "type", "veth", "peer", "name", &b]).unwrap();
    ip(&["link", "set", &a, "netns", &vpc_ns]).unwrap();
    ip(&["link", "set", &b, "netns", &ns]).unwrap();
    ip(&["-n", &vpc_ns, "addr", "add", "10.77.0.1/24", "dev", &a]).unwrap();
    ip(&["-n", &ns, "addr", "add", "10.77.0.2/24", "dev", &b]).unwrap();
    ip(&["-n", &vpc_ns, "link", "set", &a, "up"]).unwrap();
    ip(&["-n", &ns, "link", "set", &b, "up"]).unwrap();
    if let Err(e) = nft_in(&ns, "add table inet slow") {
        println!("SKIPPED a_slow_backend_handshake_still_gets_the_header_and_the_first_bytes: {e}");
        return;
    }
    let pool = NetnsPool::new();
    let backend_addr: SocketAddr = "10.77.0.2:8080".parse().unwrap();
    let backend = Backend::serve(
        pool.bind(Some(&ns), backend_addr, 64).await.unwrap(),
        Mode::ProxyThenEcho,
    );
    // The endpoint on the host's loopback.
    const ENDPOINT_IP: &str = "127.0.0.2";
    let port = free_port(ENDPOINT_IP);
    let dp = DataPlane::start(opts());
    let mut e = spec("ep-slow", ENDPOINT_IP, port, backend_addr);
    e.backend_netns = Some(vpc_ns.clone());
    e.tcp_proxy = "proxy_open".into();
    dp.push(snapshot(1, vec![e]));
    let report = applied(&dp, 1).await;
    assert!(report.endpoints[0].ok, "{report:?}");

    // Drop SYNs to the backend: the agent's connect stays under way (SYN_SENT).
    nft_in(
        &ns,
        "add chain inet slow in { type filter hook input priority 0 ; }",
    )
    .unwrap();
    nft_in(
        &ns,
        "add rule inet slow in tcp dport 8080 tcp flags syn drop",
    )
    .unwrap();
    let mut c = tokio::net::TcpStream::connect((ENDPOINT_IP, port))
        .await
        .unwrap();
    c.write_all(b"early ").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.write_all(b"bytes").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(backend.accepted(), 0, "the handshake is still held back");
    // The SYN's retransmission (after 1 s) gets through.
    nft_in(&ns, "flush chain inet slow in").unwrap();
    let mut got = vec![0u8; b"early bytes".len()];
    tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"early bytes");
    let raw = backend.headers.lock().unwrap()[0].clone();
    match v2::Header::try_from(&raw[..]).unwrap().addresses {
        v2::Addresses::IPv4(a) => assert_eq!(
            SocketAddr::from((a.source_address, a.source_port)),
            c.local_addr().unwrap()
        ),
        other => panic!("unexpected {other:?}"),
    }
    dp.shutdown().await;
    drop(guard);
}
