//! The control plane and the data plane together, over real sockets on 127.0.0.0/8.
//!
//! Most tests run `vpcep serve --with-agent` in this process (the in-process agent fed straight
//! from the control plane); `separate_agent_process_*` runs `vpcep serve --require-agent` and
//! `vpcep agent` as child processes talking HTTP. Resources are made through the VPC and VPCEP
//! APIs (or `--inventory`); clients connect from chosen source addresses to the endpoint's
//! `ip`:`client_port`.
//!
//! Each test owns its address ranges (provider 127.2x.0.0/16, consumer 127.3x.0.0/16), so the
//! tests run in parallel without sharing a listener.

use std::time::{Duration, Instant};

use ppp::v2;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vpcep_testkit::dp::*;

fn with_agent() -> PlaneOptions {
    PlaneOptions {
        with_agent: true,
        ..PlaneOptions::default()
    }
}

/// The TLVs of a v2 header, as (type, value).
fn tlvs(h: &v2::Header<'_>) -> Vec<(u8, Vec<u8>)> {
    h.tlvs()
        .map(|t| {
            let t = t.expect("a valid TLV");
            (t.kind, t.value.to_vec())
        })
        .collect()
}

fn tlv(tlvs: &[(u8, Vec<u8>)], kind: u8) -> Option<Vec<u8>> {
    tlvs.iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, v)| v.clone())
}

/// The `error` entries of an endpoint as (code, message).
fn errors(ep: &Value) -> Vec<(String, String)> {
    ep["error"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["error_code"].as_str().unwrap_or_default().to_string(),
                        e["error_message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Sends `len` bytes, half-closes, and expects them back followed by the backend's trailer
/// (which it writes only after it saw the client's FIN) and its FIN.
async fn large_transfer_with_half_close(src: &str, dst: std::net::SocketAddr, len: usize) {
    let s = connect_from(src, dst).await.expect("connect");
    let (mut r, mut w) = s.into_split();
    let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.expect("write");
        w.shutdown().await.expect("half-close");
        w
    });
    let mut got = Vec::with_capacity(len + TRAILER.len());
    tokio::time::timeout(Duration::from_secs(30), r.read_to_end(&mut got))
        .await
        .expect("the transfer finished within 30 s")
        .expect("read");
    let _w = writer.await.expect("writer");
    assert_eq!(got.len(), len + TRAILER.len(), "bytes back");
    assert!(got[..len] == data[..], "payload corrupted");
    assert_eq!(&got[len..], TRAILER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_proxy_modes_carry_traffic_with_the_right_proxy_header() {
    init_tracing();
    let plane = Plane::start(with_agent()).await;
    let api = &plane.api;
    let (pvpc, psub) = api
        .vpc_with_subnet("provider", "127.20.0.0/16", "127.20.0.0/24")
        .await;
    let (cvpc, csub) = api
        .vpc_with_subnet("consumer", "127.30.0.0/16", "127.30.0.0/24")
        .await;
    let client = "127.30.0.50";

    struct Case {
        mode: &'static str,
        backend: Backend,
        ip: String,
        endpoint: String,
    }
    let mut cases = Vec::new();
    for (i, mode) in ["close", "proxy_open", "proxy_vni", "toa_open", "open"]
        .into_iter()
        .enumerate()
    {
        let backend_ip = format!("127.20.0.{}", 10 + i);
        let backend = Backend::start(&format!("{backend_ip}:0")).await;
        let port_id = api.port(&psub, &backend_ip).await;
        let svc = api
            .service(&port_id, &pvpc, &[(80, backend.addr.port())], mode, false)
            .await;
        api.wait_service(&svc, "available").await;
        let ip = format!("127.30.0.{}", 10 + i);
        let ep = api.endpoint(&svc, &cvpc, &csub, &ip, None).await;
        cases.push(Case {
            mode,
            backend,
            ip,
            endpoint: id_of(&ep),
        });
    }

    for c in &cases {
        let ep = api.wait_endpoint(&c.endpoint, "accepted").await;
        assert_eq!(ep["ip"], c.ip.as_str(), "{ep}");
        let marker = u32::try_from(ep["marker_id"].as_u64().expect("marker_id")).unwrap();
        let dst = sa(&c.ip, 80);
        let mut s = connect_from(client, dst)
            .await
            .unwrap_or_else(|e| panic!("{}: connect: {e}", c.mode));
        let me = s.local_addr().unwrap();
        assert_eq!(
            roundtrip(&mut s, b"hello through the endpoint")
                .await
                .unwrap(),
            b"hello through the endpoint",
            "{}",
            c.mode
        );
        let seen = c.backend.last();
        match c.mode {
            "close" | "toa_open" => {
                assert!(
                    seen.header.is_none(),
                    "{}: the backend got a header {:?}",
                    c.mode,
                    seen.header
                );
            }
            _ => {
                let raw = seen.header.clone().expect("a PROXY header");
                let h = v2::Header::try_from(&raw[..]).expect("a v2 header");
                assert_eq!(h.command, v2::Command::Proxy);
                match h.addresses {
                    v2::Addresses::IPv4(a) => {
                        assert_eq!(
                            std::net::SocketAddr::from((a.source_address, a.source_port)),
                            me,
                            "the client's real address"
                        );
                        assert_eq!(
                            std::net::SocketAddr::from((a.destination_address, a.destination_port)),
                            dst
                        );
                    }
                    other => panic!("{}: unexpected addresses {other:?}", c.mode),
                }
                let t = tlvs(&h);
                let mut want_id = vec![0x01];
                want_id.extend_from_slice(c.endpoint.as_bytes());
                assert_eq!(tlv(&t, 0xEA), Some(want_id), "0xEA endpoint id");
                assert_eq!(
                    tlv(&t, 0xE5),
                    Some(marker.to_be_bytes().to_vec()),
                    "0xE5 marker id"
                );
                if c.mode == "proxy_vni" {
                    let vni = tlv(&t, 0xE6).expect("0xE6 with proxy_vni");
                    let vni = u32::from_be_bytes(vni.try_into().expect("4 bytes"));
                    assert!((1..=0xFF_FFFF).contains(&vni), "vni {vni}");
                } else {
                    assert_eq!(tlv(&t, 0xE6), None, "no VNI with {}", c.mode);
                }
            }
        }
        let errs = errors(&ep);
        if c.mode == "toa_open" || c.mode == "open" {
            assert!(
                errs.iter().any(|(_, m)| m.contains("TOA")),
                "{} shows the TOA note: {ep}",
                c.mode
            );
        } else {
            assert!(errs.is_empty(), "{}: unexpected error {ep}", c.mode);
        }
    }

    // Plain bytes and headed bytes both survive a large transfer ending in a half-close.
    let close = &cases[0];
    large_transfer_with_half_close(client, sa(&close.ip, 80), 8 << 20).await;
    let proxied = &cases[1];
    large_transfer_with_half_close(client, sa(&proxied.ip, 80), 8 << 20).await;
    assert!(proxied.backend.last().header.is_some());

    // A short half-close: the backend's answer still arrives after the client's FIN.
    let mut s = connect_from(client, sa(&close.ip, 80)).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, [&b"ping"[..], TRAILER].concat());

    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_lifecycle_drives_the_listener() {
    approval_lifecycle(Db::Sqlite, "127.21", "127.31").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_lifecycle_drives_the_listener_on_postgres() {
    approval_lifecycle(Db::Postgres, "127.41", "127.51").await;
}

/// Approval on: pending → accept → reject → accept → delete, each step seen on the socket.
/// `p` and `c` are the first two octets of the provider's and the consumer's /16.
async fn approval_lifecycle(db: Db, p: &str, c: &str) {
    init_tracing();
    let Some(plane) = Plane::try_start(PlaneOptions { db, ..with_agent() }).await else {
        return;
    };
    let api = &plane.api;
    let (svc, _backend) = api.published(p, true).await;
    let (cvpc, csub) = api
        .vpc_with_subnet("consumer", &format!("{c}.0.0/16"), &format!("{c}.0.0/24"))
        .await;
    let ep = id_of(
        &api.endpoint(&svc, &cvpc, &csub, &format!("{c}.0.10"), None)
            .await,
    );
    let client = &format!("{c}.0.50");
    let dst = sa(&format!("{c}.0.10"), 80);

    // Pending: nothing listens.
    api.wait_endpoint(&ep, "pendingAcceptance").await;
    refused(client, dst)
        .await
        .expect("no listener while pending");

    // Accept: traffic within a second; `accepted` is shown only once the listener is up.
    let t0 = Instant::now();
    let entry = api.connection(&svc, &ep, "receive").await;
    assert_eq!(entry["status"], "creating", "{entry}");
    eventually(PROMPT, || echoes(client, dst)).await;
    assert!(t0.elapsed() <= PROMPT + Duration::from_millis(100));
    eventually(SETTLE, || async {
        let (_, v) = api.show_endpoint(&ep).await;
        match v["status"].as_str() {
            Some("accepted") => Ok(()),
            Some("creating") => Err(v),
            _ => panic!("unexpected status after accept: {v}"),
        }
    })
    .await;
    echoes(client, dst).await.expect("accepted means realized");

    // Reject: the listener closes within a second, and so does an open connection: the owner
    // revoked the consumer's access.
    let mut held = connect_from(client, dst).await.unwrap();
    assert_eq!(roundtrip(&mut held, b"before").await.unwrap(), b"before");
    let entry = api.connection(&svc, &ep, "reject").await;
    assert_eq!(entry["status"], "rejected", "{entry}");
    eventually(PROMPT, || refused(client, dst)).await;
    closed_within(&mut held, PROMPT).await.unwrap();

    // Re-accept.
    api.connection(&svc, &ep, "receive").await;
    eventually(PROMPT, || echoes(client, dst)).await;
    api.wait_endpoint(&ep, "accepted").await;

    // Delete: the listener closes and the endpoint goes.
    api.delete_endpoint(&ep).await;
    eventually(PROMPT, || refused(client, dst)).await;
    eventually(SETTLE, || async {
        match api.show_endpoint(&ep).await {
            (404, _) => Ok(()),
            other => Err(other),
        }
    })
    .await;

    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whitelist_change_refuses_new_connections_and_keeps_established_ones() {
    init_tracing();
    let plane = Plane::start(with_agent()).await;
    let api = &plane.api;
    let (svc, _backend) = api.published("127.22", false).await;
    let (cvpc, csub) = api
        .vpc_with_subnet("consumer", "127.32.0.0/16", "127.32.0.0/24")
        .await;
    let (a, b) = ("127.32.0.50", "127.32.0.60");
    let ep = id_of(
        &api.endpoint(&svc, &cvpc, &csub, "127.32.0.10", Some(&[a]))
            .await,
    );
    api.wait_endpoint(&ep, "accepted").await;
    let dst = sa("127.32.0.10", 80);
    echoes(a, dst).await.expect("a is whitelisted");
    cut_off(b, dst).await.expect("b is not whitelisted");

    let refused_now = |text: String| {
        metric(
            &text,
            "vpcep_agent_connections_refused_total",
            &[("endpoint_id", ep.as_str()), ("reason", "whitelist")],
        )
    };
    let before = refused_now(plane.dataplane_metrics().await);
    assert!(before >= 1.0, "the refusal of b is counted");

    let mut established = connect_from(a, dst).await.unwrap();
    assert_eq!(
        roundtrip(&mut established, b"before").await.unwrap(),
        b"before"
    );

    // Only b from now on.
    let updated = api.set_whitelist(&ep, &[b], true).await;
    assert_eq!(updated["whitelist"], serde_json::json!([b]), "{updated}");
    eventually(PROMPT, || cut_off(a, dst)).await;
    echoes(b, dst).await.expect("b is whitelisted now");
    assert_eq!(
        roundtrip(&mut established, b"after").await.unwrap(),
        b"after",
        "an established connection keeps working"
    );
    let after = refused_now(plane.dataplane_metrics().await);
    assert!(after > before, "refusals counted: {before} -> {after}");

    // A CIDR admits both; turning the whitelist off admits everyone.
    api.set_whitelist(&ep, &["127.32.0.0/24"], true).await;
    eventually(PROMPT, || echoes(a, dst)).await;
    echoes(b, dst).await.unwrap();
    api.set_whitelist(&ep, &[], false).await;
    eventually(PROMPT, || echoes("127.32.1.70", dst)).await;
    drop(established);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_port_update_moves_the_listener() {
    init_tracing();
    let plane = Plane::start(with_agent()).await;
    let api = &plane.api;
    let (pvpc, psub) = api
        .vpc_with_subnet("provider", "127.23.0.0/16", "127.23.0.0/24")
        .await;
    let (cvpc, csub) = api
        .vpc_with_subnet("consumer", "127.33.0.0/16", "127.33.0.0/24")
        .await;
    let first = Backend::start("127.23.0.10:0").await;
    let second = Backend::start("127.23.0.10:0").await;
    let port_id = api.port(&psub, "127.23.0.10").await;
    let svc = api
        .service(&port_id, &pvpc, &[(80, first.addr.port())], "close", false)
        .await;
    api.wait_service(&svc, "available").await;
    let ep = id_of(&api.endpoint(&svc, &cvpc, &csub, "127.33.0.10", None).await);
    api.wait_endpoint(&ep, "accepted").await;
    let client = "127.33.0.50";
    let (old, new) = (sa("127.33.0.10", 80), sa("127.33.0.10", 8081));
    echoes(client, old).await.unwrap();
    assert_eq!(first.seen().len(), 1);

    api.set_service_ports(&svc, &[(8081, second.addr.port())])
        .await;
    eventually(PROMPT, || async {
        echoes(client, new).await?;
        refused(client, old).await
    })
    .await;
    let (on_first, on_second) = (first.seen().len(), second.seen().len());
    assert!(on_second >= 1, "the new server_port is used");
    echoes(client, new).await.unwrap();
    assert_eq!(
        first.seen().len(),
        on_first,
        "the old server_port is not used"
    );
    assert_eq!(second.seen().len(), on_second + 1);
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_outside_the_grant_makes_the_endpoint_failed() {
    outside_the_grant(Db::Sqlite, "127.24", "127.34", "10.254").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_outside_the_grant_makes_the_endpoint_failed_on_postgres() {
    outside_the_grant(Db::Postgres, "127.44", "127.54", "10.253").await;
}

/// An endpoint in `far` (first two octets of a /16 outside `--dataplane-cidrs`) becomes `failed`
/// with the reason and its address shown; another endpoint of the same service (in `c`) works.
async fn outside_the_grant(db: Db, p: &str, c: &str, far: &str) {
    init_tracing();
    let ip = &format!("{far}.0.10");
    let Some(plane) = Plane::try_start(PlaneOptions { db, ..with_agent() }).await else {
        return;
    };
    let api = &plane.api;
    let (pvpc, psub) = api
        .vpc_with_subnet("provider", &format!("{p}.0.0/16"), &format!("{p}.0.0/24"))
        .await;
    let (far_vpc, far_sub) = api
        .vpc_with_subnet("far", &format!("{far}.0.0/16"), &format!("{far}.0.0/24"))
        .await;
    let (cvpc, csub) = api
        .vpc_with_subnet("consumer", &format!("{c}.0.0/16"), &format!("{c}.0.0/24"))
        .await;
    let backend = Backend::start(&format!("{p}.0.10:0")).await;
    let port_id = api.port(&psub, &format!("{p}.0.10")).await;
    let svc = api
        .service(
            &port_id,
            &pvpc,
            &[(80, backend.addr.port())],
            "close",
            false,
        )
        .await;
    api.wait_service(&svc, "available").await;

    let bad = id_of(&api.endpoint(&svc, &far_vpc, &far_sub, ip, None).await);
    let good = id_of(
        &api.endpoint(&svc, &cvpc, &csub, &format!("{c}.0.10"), None)
            .await,
    );
    let failed = api.wait_endpoint(&bad, "failed").await;
    let errs = errors(&failed);
    assert!(
        errs.iter().any(|(code, m)| code == "EndPoint.2022"
            && m.contains(&format!("{ip} is outside the host address ranges"))
            && m.contains("--dataplane-cidrs 127.0.0.0/8")),
        "the reason is shown: {failed}"
    );
    assert_eq!(
        failed["ip"],
        ip.as_str(),
        "a failed endpoint shows its address"
    );
    // The other endpoint of the same service is not affected.
    api.wait_endpoint(&good, "accepted").await;
    echoes(&format!("{c}.0.50"), sa(&format!("{c}.0.10"), 80))
        .await
        .unwrap();
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_data_plane_comes_back_after_a_restart() {
    init_tracing();
    let mut plane = Plane::start(with_agent()).await;
    let (pvpc, psub) = plane
        .api
        .vpc_with_subnet("provider", "127.26.0.0/16", "127.26.0.0/24")
        .await;
    let (cvpc, csub) = plane
        .api
        .vpc_with_subnet("consumer", "127.36.0.0/16", "127.36.0.0/24")
        .await;
    let backend = Backend::start("127.26.0.10:0").await;
    let port_id = plane.api.port(&psub, "127.26.0.10").await;
    let svc = plane
        .api
        .service(
            &port_id,
            &pvpc,
            &[(80, backend.addr.port())],
            "close",
            false,
        )
        .await;
    plane.api.wait_service(&svc, "available").await;
    let ep = id_of(
        &plane
            .api
            .endpoint(&svc, &cvpc, &csub, "127.36.0.10", None)
            .await,
    );
    plane.api.wait_endpoint(&ep, "accepted").await;
    let (client, dst) = ("127.36.0.50", sa("127.36.0.10", 80));
    echoes(client, dst).await.unwrap();

    plane.restart().await;
    eventually(SETTLE, || echoes(client, dst)).await;
    let shown = plane.api.wait_endpoint(&ep, "accepted").await;
    assert!(errors(&shown).is_empty(), "{shown}");
    plane.api.delete_endpoint(&ep).await;
    eventually(PROMPT, || refused(client, dst)).await;
    plane.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_agent_process_gates_services_and_serves_endpoints() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let accounts = vpcep_testkit::accounts::write_accounts(dir.path(), ACCOUNTS);
    let (pvpc, psub, pport) = (uuid(), uuid(), uuid());
    let (cvpc, csub) = (uuid(), uuid());
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(
        &inventory,
        format!(
            r#"
[[vpc]]
project_id = "{PROJECT}"
id = "{pvpc}"
name = "provider"
cidr = "127.25.0.0/16"
[[vpc.subnet]]
id = "{psub}"
name = "provider-subnet"
cidr = "127.25.0.0/24"
gateway_ip = "127.25.0.1"
[[vpc.subnet.port]]
id = "{pport}"
name = "backend"
ip_address = "127.25.0.10"
device_owner = "compute:az1"

[[vpc]]
project_id = "{PROJECT}"
id = "{cvpc}"
name = "consumer"
cidr = "127.35.0.0/16"
[[vpc.subnet]]
id = "{csub}"
name = "consumer-subnet"
cidr = "127.35.0.0/24"
gateway_ip = "127.35.0.1"
"#
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port("127.0.0.1"));
    let base = format!("http://{listen}");
    let database = format!("sqlite://{}", dir.path().join("vpcep.db").display());
    let serve_args = [
        "serve",
        "--listen",
        &listen,
        "--database",
        &database,
        "--accounts",
        accounts.to_str().unwrap(),
        "--inventory",
        inventory.to_str().unwrap(),
        "--require-agent",
        "--dataplane-cidrs",
        DATAPLANE_CIDRS,
    ];
    let serve = Child::vpcep("vpcep serve", dir.path(), &serve_args);
    let serve = healthy(serve, &base).await;
    let api = Api::tenant(&base);

    let backend = Backend::start("127.25.0.10:0").await;
    let svc = api
        .service(
            &pport,
            &pvpc,
            &[(80, backend.addr.port())],
            "proxy_open",
            false,
        )
        .await;
    // No agent: the service cannot carry traffic, so it stays `creating` (watched for 1.5 s,
    // several reconciler passes).
    let watch_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < watch_until {
        let (code, v) = api.show_service(&svc).await;
        assert_eq!(code, 200);
        assert_eq!(v["status"], "creating", "no agent yet: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let handover = dir.path().join("agent.sock");
    let agent_args = [
        "agent",
        "--control-plane",
        &base,
        "--access-key",
        OPERATOR_AK,
        "--secret-key",
        OPERATOR_SK,
        "--agent-id",
        "e2e-agent",
        "--proxy-protocol-version",
        "1",
        "--dataplane-cidrs",
        DATAPLANE_CIDRS,
        "--handover-socket",
        handover.to_str().unwrap(),
    ];
    let mut agent = Child::vpcep("vpcep agent", dir.path(), &agent_args);
    api.wait_service(&svc, "available").await;
    agent.assert_running();

    let ep = id_of(&api.endpoint(&svc, &cvpc, &csub, "127.35.0.10", None).await);
    api.wait_endpoint(&ep, "accepted").await;
    let dst = sa("127.35.0.10", 80);
    let mut s = connect_from("127.35.0.50", dst).await.expect("connect");
    let me = s.local_addr().unwrap();
    assert_eq!(roundtrip(&mut s, b"over http").await.unwrap(), b"over http");
    let header = backend.last().header.expect("a PROXY header");
    assert_eq!(
        String::from_utf8_lossy(&header),
        format!("PROXY TCP4 127.35.0.50 127.35.0.10 {} 80\r\n", me.port()),
        "a v1 header (--proxy-protocol-version 1)"
    );

    // The control plane goes away: the agent keeps serving, old and new connections alike.
    serve.kill().await;
    assert_eq!(
        roundtrip(&mut s, b"still here").await.unwrap(),
        b"still here"
    );
    drop(s);
    echoes("127.35.0.50", dst)
        .await
        .expect("new connections while the control plane is down");

    // It comes back on the same database; the agent restarts and serves the endpoint again.
    let mut serve = healthy(
        Child::vpcep("vpcep serve (restarted)", dir.path(), &serve_args),
        &base,
    )
    .await;
    // A new client: the old one's pooled keep-alive connections went to the killed process, and
    // a request sent on one before the client noticed is reset (seen: 1 run in 8).
    let api = Api::tenant(&base);
    agent.kill().await;
    eventually(PROMPT, || refused("127.35.0.50", dst)).await;
    let mut agent = Child::vpcep("vpcep agent (restarted)", dir.path(), &agent_args);
    eventually(SETTLE, || echoes("127.35.0.50", dst)).await;
    api.wait_endpoint(&ep, "accepted").await;

    // Delete through the API: the separate agent closes the listener.
    api.delete_endpoint(&ep).await;
    eventually(PROMPT, || refused("127.35.0.50", dst)).await;

    serve.assert_running();
    agent.assert_running();
    agent.kill().await;
    serve.kill().await;
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A realization failure that happens after the endpoint is `accepted` (here: PUT
/// `update_endpoint_service` moves the listener to a port something else holds) turns the endpoint
/// `failed` with the reason and its address shown; once the port is free again it is `accepted`
/// again and carries traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_that_fails_after_acceptance_turns_the_endpoint_failed_until_it_recovers() {
    init_tracing();
    let plane = Plane::start(with_agent()).await;
    let api = &plane.api;
    let (pvpc, psub) = api
        .vpc_with_subnet("provider", "127.27.0.0/16", "127.27.0.0/24")
        .await;
    let (cvpc, csub) = api
        .vpc_with_subnet("consumer", "127.37.0.0/16", "127.37.0.0/24")
        .await;
    let backend = Backend::start("127.27.0.10:0").await;
    let port_id = api.port(&psub, "127.27.0.10").await;
    let svc = api
        .service(
            &port_id,
            &pvpc,
            &[(80, backend.addr.port())],
            "close",
            false,
        )
        .await;
    api.wait_service(&svc, "available").await;
    let ep = id_of(&api.endpoint(&svc, &cvpc, &csub, "127.37.0.10", None).await);
    api.wait_endpoint(&ep, "accepted").await;

    // Something else holds the port the service moves to.
    let squatter = std::net::TcpListener::bind("127.37.0.10:8082").unwrap();
    api.set_service_ports(&svc, &[(8082, backend.addr.port())])
        .await;
    eventually(PROMPT, || refused("127.37.0.50", sa("127.37.0.10", 80))).await;
    let shown = api.wait_endpoint(&ep, "failed").await;
    assert!(
        errors(&shown)
            .iter()
            .any(|(_, m)| m.contains("cannot listen on 127.37.0.10:8082")),
        "{shown}"
    );
    assert_eq!(shown["ip"], "127.37.0.10", "{shown}");

    drop(squatter);
    let back = api.wait_endpoint(&ep, "accepted").await;
    assert!(errors(&back).is_empty(), "{back}");
    echoes("127.37.0.50", sa("127.37.0.10", 8082))
        .await
        .unwrap();
    plane.shutdown().await;
}
