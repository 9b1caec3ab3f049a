//! Forwarding through real sockets: bytes both ways, half-close, PROXY headers, whitelist.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use ppp::v2;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use vpcep_proxy::proxy_protocol::{
    PP2_SUBTYPE_AWS_VPCE_ID, PP2_TYPE_AWS, PP2_TYPE_MARKER_ID, PP2_TYPE_VNI,
};
use vpcep_proxy::{CopyMode, DataPlane, ProxyOptions, ProxyVersion};

const ENDPOINT_IP: &str = "127.0.0.2";

async fn start_endpoint(
    opts: ProxyOptions,
    tcp_proxy: &str,
    backend: &Backend,
) -> (DataPlane, SocketAddr) {
    init_tracing();
    let port = free_port(ENDPOINT_IP);
    let dp = DataPlane::start(opts);
    let mut e = spec("ep-1", ENDPOINT_IP, port, backend.addr);
    e.tcp_proxy = tcp_proxy.into();
    e.vni = 0x00AB_CDEF;
    dp.push(snapshot(1, vec![e]));
    let report = applied(&dp, 1).await;
    assert!(report.endpoints[0].ok, "{report:?}");
    (dp, format!("{ENDPOINT_IP}:{port}").parse().unwrap())
}

async fn large_transfer_and_half_close(mode: CopyMode) {
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let (dp, ep) = start_endpoint(
        ProxyOptions {
            copy_mode: mode,
            ..opts()
        },
        "close",
        &backend,
    )
    .await;

    let mut c = TcpStream::connect(ep).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"hello").await.unwrap(), b"hello");

    // 64 MiB out while reading the echo back; then FIN from the client must come back as FIN.
    let data: Vec<u8> = (0..64 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let (mut r, mut w) = c.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
        w
    });
    let mut back = Vec::with_capacity(data.len());
    tokio::time::timeout(Duration::from_secs(60), r.read_to_end(&mut back))
        .await
        .expect("echo ends with EOF after the client's FIN")
        .unwrap();
    writer.await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "payload corrupted");

    let stats = dp.stats().get("ep-1").unwrap();
    assert_eq!(stats.bytes_client_to_backend, 5 + data.len() as u64);
    assert_eq!(stats.bytes_backend_to_client, 5 + data.len() as u64);
    assert_eq!(stats.connections_total, 1);
    assert!(
        eventually(Duration::from_secs(5), || async {
            dp.stats().get("ep-1").unwrap().connections_active == 0
        })
        .await
    );
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splice_forwards_a_large_transfer_both_ways_and_propagates_fin() {
    large_transfer_and_half_close(CopyMode::Splice).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userspace_copy_forwards_a_large_transfer_both_ways_and_propagates_fin() {
    large_transfer_and_half_close(CopyMode::Userspace).await;
}

/// The backend speaks first and closes its side; the client still sends afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fin_from_the_backend_keeps_the_client_direction_open() {
    for mode in [CopyMode::Splice, CopyMode::Userspace] {
        let l = TcpListener::bind((BACKEND_IP, 0)).await.unwrap();
        let backend_addr = l.local_addr().unwrap();
        let (got_tx, got_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"greeting").await.unwrap();
            s.shutdown().await.unwrap();
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).await.unwrap();
            let _ = got_tx.send(rest);
        });
        let fake = Backend {
            addr: backend_addr,
            accepted: Default::default(),
            headers: Default::default(),
        };
        let (dp, ep) = start_endpoint(
            ProxyOptions {
                copy_mode: mode,
                ..opts()
            },
            "close",
            &fake,
        )
        .await;
        let mut c = TcpStream::connect(ep).await.unwrap();
        let mut greeting = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut greeting))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(greeting, b"greeting");
        c.write_all(b"still talking").await.unwrap();
        c.shutdown().await.unwrap();
        let rest = tokio::time::timeout(Duration::from_secs(5), got_rx)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rest, b"still talking");
        dp.shutdown().await;
    }
}

fn tlvs(h: &v2::Header<'_>) -> Vec<(u8, Vec<u8>)> {
    h.tlvs()
        .map(|t| t.unwrap())
        .map(|t| (t.kind, t.value.to_vec()))
        .collect()
}

async fn header_seen(tcp_proxy: &str, version: ProxyVersion) -> (Vec<u8>, SocketAddr, SocketAddr) {
    let backend = Backend::start(BACKEND_IP, Mode::ProxyThenEcho).await;
    let (dp, ep) = start_endpoint(
        ProxyOptions {
            proxy_version: version,
            ..opts()
        },
        tcp_proxy,
        &backend,
    )
    .await;
    let mut c = connect_from("127.0.0.7", ep).await.unwrap();
    assert_eq!(
        roundtrip(&mut c, b"payload after the header")
            .await
            .unwrap(),
        b"payload after the header"
    );
    let client = c.local_addr().unwrap();
    let h = backend.headers.lock().unwrap().clone();
    assert_eq!(h.len(), 1);
    dp.shutdown().await;
    (h[0].clone(), client, ep)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_open_sends_a_v2_header_with_client_address_and_endpoint_tlvs() {
    let (raw, client, ep) = header_seen("proxy_open", ProxyVersion::V2).await;
    let h = v2::Header::try_from(&raw[..]).unwrap();
    assert_eq!(h.command, v2::Command::Proxy);
    assert_eq!(h.protocol, v2::Protocol::Stream);
    match h.addresses {
        v2::Addresses::IPv4(a) => {
            assert_eq!(SocketAddr::from((a.source_address, a.source_port)), client);
            assert_eq!(
                SocketAddr::from((a.destination_address, a.destination_port)),
                ep
            );
        }
        other => panic!("expected IPv4 addresses, got {other:?}"),
    }
    let mut aws = vec![PP2_SUBTYPE_AWS_VPCE_ID];
    aws.extend_from_slice(b"ep-1");
    assert_eq!(
        tlvs(&h),
        vec![
            (PP2_TYPE_AWS, aws),
            (PP2_TYPE_MARKER_ID, 201515772u32.to_be_bytes().to_vec())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_vni_adds_the_vni_tlv() {
    let (raw, _, _) = header_seen("proxy_vni", ProxyVersion::V2).await;
    let h = v2::Header::try_from(&raw[..]).unwrap();
    let t = tlvs(&h);
    assert_eq!(t.len(), 3);
    assert_eq!(t[0].0, PP2_TYPE_AWS);
    assert_eq!(
        t[1],
        (PP2_TYPE_MARKER_ID, 201515772u32.to_be_bytes().to_vec())
    );
    assert_eq!(t[2], (PP2_TYPE_VNI, 0x00AB_CDEFu32.to_be_bytes().to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_option_sends_the_text_header() {
    let (raw, client, ep) = header_seen("proxy_open", ProxyVersion::V1).await;
    let h = ppp::v1::Header::try_from(&raw[..]).unwrap();
    match h.addresses {
        ppp::v1::Addresses::Tcp4(a) => {
            assert_eq!(SocketAddr::from((a.source_address, a.source_port)), client);
            assert_eq!(
                SocketAddr::from((a.destination_address, a.destination_port)),
                ep
            );
        }
        other => panic!("expected TCP4, got {other:?}"),
    }
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        format!(
            "PROXY TCP4 127.0.0.7 {} {} {}\r\n",
            ep.ip(),
            client.port(),
            ep.port()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_sends_the_header_and_warns_about_toa() {
    let backend = Backend::start(BACKEND_IP, Mode::ProxyThenEcho).await;
    let (dp, ep) = start_endpoint(opts(), "open", &backend).await;
    let report = applied(&dp, 1).await;
    assert!(report.endpoints[0].ok);
    assert!(report.endpoints[0]
        .error
        .as_deref()
        .unwrap()
        .starts_with("tcp_proxy open: TOA (TCP option 254)"));
    let mut c = TcpStream::connect(ep).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"x").await.unwrap(), b"x");
    assert!(backend.headers.lock().unwrap()[0].starts_with(&V2_SIGNATURE));
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn toa_open_forwards_plain_and_reports_ok_with_the_toa_note() {
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let (dp, ep) = start_endpoint(opts(), "toa_open", &backend).await;
    let report = applied(&dp, 1).await;
    assert!(report.endpoints[0].ok);
    assert_eq!(
        report.endpoints[0].error.as_deref(),
        Some(
            "tcp_proxy toa_open: TOA (TCP option 254) cannot be set by the user-space data plane; \
             client addresses are not passed"
        )
    );
    let mut c = TcpStream::connect(ep).await.unwrap();
    // A PROXY header would arrive first in the echo; the first bytes back are ours.
    assert_eq!(roundtrip(&mut c, b"PLAIN").await.unwrap(), b"PLAIN");
    dp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelist_refuses_other_sources_and_counts_them() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port(ENDPOINT_IP);
    let ep: SocketAddr = format!("{ENDPOINT_IP}:{port}").parse().unwrap();
    let dp = DataPlane::start(opts());
    let mut e = spec("ep-wl", ENDPOINT_IP, port, backend.addr);
    e.whitelist_enabled = true;
    e.whitelist = vec!["127.0.0.8/30".into(), "127.0.0.20".into()];
    dp.push(snapshot(1, vec![e]));
    assert!(applied(&dp, 1).await.endpoints[0].ok);

    for src in ["127.0.0.9", "127.0.0.20"] {
        let mut c = connect_from(src, ep).await.unwrap();
        assert_eq!(
            roundtrip(&mut c, b"ok").await.unwrap(),
            b"ok",
            "{src} is whitelisted"
        );
    }
    for src in ["127.0.0.1", "127.0.0.12"] {
        let mut c = connect_from(src, ep).await.unwrap();
        let _ = c.write_all(b"let me in").await;
        assert!(is_closed_by_peer(&mut c).await, "{src} must be refused");
    }
    let stats = dp.stats().get("ep-wl").unwrap();
    assert_eq!(stats.refused_whitelist, 2);
    assert_eq!(stats.connections_total, 2);
    assert_eq!(
        backend.accepted(),
        2,
        "refused clients never reach the backend"
    );
    dp.shutdown().await;
}

/// With and without a PROXY header: with one, the refusal shows at the header's first send
/// (made without waiting for the handshake), and counts all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_backend_closes_the_client_and_is_counted() {
    init_tracing();
    let dead = free_port(BACKEND_IP);
    let dp = DataPlane::start(opts());
    let modes = ["close", "proxy_open"];
    let ports: Vec<u16> = modes.iter().map(|_| free_port(ENDPOINT_IP)).collect();
    let specs = modes
        .iter()
        .zip(&ports)
        .map(|(mode, &port)| {
            let mut s = spec(
                &format!("ep-dead-{mode}"),
                ENDPOINT_IP,
                port,
                format!("{BACKEND_IP}:{dead}").parse().unwrap(),
            );
            s.tcp_proxy = (*mode).into();
            s
        })
        .collect();
    dp.push(snapshot(1, specs));
    assert!(applied(&dp, 1).await.endpoints.iter().all(|e| e.ok));
    for (mode, port) in modes.iter().zip(&ports) {
        let mut c = TcpStream::connect((ENDPOINT_IP, *port)).await.unwrap();
        let _ = c.write_all(b"hello").await;
        assert!(is_closed_by_peer(&mut c).await, "{mode}");
        assert!(
            eventually(Duration::from_secs(5), || async {
                dp.stats()
                    .get(&format!("ep-dead-{mode}"))
                    .unwrap()
                    .refused_backend_unreachable
                    == 1
            })
            .await,
            "{mode}"
        );
    }
    dp.shutdown().await;
}

/// A backend that speaks first (SMTP-like) still gets its PROXY header at once: the agent sends
/// the client's first bytes with the header only when they have arrived, never waits for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_speaks_first_gets_the_header_without_waiting_for_the_client() {
    init_tracing();
    let listener = TcpListener::bind((BACKEND_IP, 0)).await.unwrap();
    let backend_addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // v2 header: 12-byte signature, version/command, family, 2-byte length, then the rest.
        let mut fixed = [0u8; 16];
        s.read_exact(&mut fixed).await.unwrap();
        let mut rest = vec![0u8; u16::from_be_bytes([fixed[14], fixed[15]]) as usize];
        s.read_exact(&mut rest).await.unwrap();
        s.write_all(b"220 ready\r\n").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
    });
    let port = free_port(ENDPOINT_IP);
    let dp = DataPlane::start(opts());
    let mut e = spec("ep-1", ENDPOINT_IP, port, backend_addr);
    e.tcp_proxy = "proxy_open".into();
    dp.push(snapshot(1, vec![e]));
    assert!(applied(&dp, 1).await.endpoints[0].ok);
    let mut c = TcpStream::connect((ENDPOINT_IP, port)).await.unwrap();
    let mut greeting = [0u8; 11];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut greeting))
        .await
        .expect("the backend's greeting arrives before the client sends anything")
        .unwrap();
    assert_eq!(&greeting, b"220 ready\r\n");
    assert_eq!(roundtrip(&mut c, b"QUIT").await.unwrap(), b"QUIT");
    server.await.unwrap();
    dp.shutdown().await;
}

/// A backend that answers and closes at once: the answer and its FIN often arrive together,
/// and then leave for the client in one segment. Whichever way they come, the client gets the
/// whole answer, then the end of stream, and every byte is counted; with or without a PROXY
/// header first (the header rides on the handshake's last ACK).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_followed_at_once_by_the_backends_close_arrives_whole_and_counted() {
    const ANSWER: usize = 5000;
    const CONNS: usize = 200;
    let answer: Vec<u8> = (0..ANSWER).map(|i| (i % 251) as u8).collect();
    for tcp_proxy in ["close", "proxy_open"] {
        let l = TcpListener::bind((BACKEND_IP, 0)).await.unwrap();
        let backend_addr = l.local_addr().unwrap();
        let sent = answer.clone();
        let server = tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let sent = sent.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 512];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(&sent).await;
                });
            }
        });
        let fake = Backend {
            addr: backend_addr,
            accepted: Default::default(),
            headers: Default::default(),
        };
        let (dp, ep) = start_endpoint(opts(), tcp_proxy, &fake).await;
        for _ in 0..CONNS {
            let mut c = TcpStream::connect(ep).await.unwrap();
            c.write_all(b"q").await.unwrap();
            let mut got = Vec::new();
            tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut got))
                .await
                .expect("the end of stream arrives")
                .unwrap();
            assert_eq!(got.len(), ANSWER, "{tcp_proxy}");
            assert!(got == answer, "{tcp_proxy}: the answer arrives intact");
        }
        let stats = dp.stats().get("ep-1").unwrap();
        assert_eq!(
            stats.bytes_backend_to_client,
            (ANSWER * CONNS) as u64,
            "{tcp_proxy}"
        );
        dp.shutdown().await;
        server.abort();
    }
}
