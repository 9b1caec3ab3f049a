//! Overlapping networks through the whole product: two network namespaces with the SAME CIDR
//! 10.0.0.0/24 stand for a provider VPC and a consumer VPC. The control plane learns them from
//! `--inventory` (`netns = "<name>"` on each VPC); `serve --with-agent` listens on the
//! endpoint's address inside the consumer namespace and connects to the backend from inside the
//! provider namespace.
//!
//! Inside the consumer namespace 10.0.0.10 is a different host (a decoy), so plain routing
//! could never reach the provider's 10.0.0.10; through the endpoint the client does, and the
//! backend sees the client's own address in the PROXY header.
//!
//! Needs root (`ip netns add`): prints SKIPPED and passes otherwise. The namespaces are deleted
//! even when the test fails.

use std::net::SocketAddr;
use std::time::Duration;

use ppp::v2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use vpcep_proxy::netns::NetnsPool;
use vpcep_testkit::dp::*;

/// Connects from `src` inside namespace `ns` to `dst`.
async fn connect_in(
    pool: &NetnsPool,
    ns: &str,
    src: &str,
    dst: SocketAddr,
) -> std::io::Result<TcpStream> {
    let socket: TcpSocket = pool.run_in(ns, TcpSocket::new_v4).await?;
    socket.bind(sa(src, 0))?;
    tokio::time::timeout(Duration::from_secs(5), socket.connect(dst))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_joins_two_vpcs_with_the_same_cidr() {
    init_tracing();
    let pid = std::process::id();
    let (provider, consumer) = (format!("vpcep-e2e-p{pid}"), format!("vpcep-e2e-c{pid}"));
    let mut guard = Namespaces(Vec::new());
    if let Err(e) = ip(&["netns", "add", &provider]) {
        notice(&format!(
            "SKIPPED endpoint_joins_two_vpcs_with_the_same_cidr: cannot create network namespaces ({e})"
        ));
        return;
    }
    let _ = ip(&["netns", "del", &provider]);
    // Provider VPC: the backend at 10.0.0.10. Consumer VPC: the endpoint address 10.0.0.5, a
    // client at 10.0.0.20 and another host at 10.0.0.10.
    namespace(&mut guard, &provider, &["10.0.0.10"]).unwrap();
    namespace(
        &mut guard,
        &consumer,
        &["10.0.0.5", "10.0.0.20", "10.0.0.10"],
    )
    .unwrap();

    let pool = NetnsPool::new();
    let backend_addr = sa("10.0.0.10", 8080);
    let backend = Backend::serve(pool.bind(Some(&provider), backend_addr, 64).await.unwrap());
    let decoy = pool.bind(Some(&consumer), backend_addr, 64).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = decoy.accept().await {
            let _ = s.write_all(b"decoy").await;
        }
    });

    let (pvpc, psub, pport) = (uuid(), uuid(), uuid());
    let (cvpc, csub) = (uuid(), uuid());
    let inventory = format!(
        r#"
[[vpc]]
project_id = "{PROJECT}"
id = "{pvpc}"
name = "provider"
cidr = "10.0.0.0/24"
netns = "{provider}"
[[vpc.subnet]]
id = "{psub}"
name = "provider-subnet"
cidr = "10.0.0.0/24"
gateway_ip = "10.0.0.1"
[[vpc.subnet.port]]
id = "{pport}"
name = "backend"
ip_address = "10.0.0.10"
device_owner = "compute:az1"

[[vpc]]
project_id = "{PROJECT}"
id = "{cvpc}"
name = "consumer"
cidr = "10.0.0.0/24"
netns = "{consumer}"
[[vpc.subnet]]
id = "{csub}"
name = "consumer-subnet"
cidr = "10.0.0.0/24"
gateway_ip = "10.0.0.1"
"#
    );
    let plane = Plane::start(PlaneOptions {
        with_agent: true,
        inventory: Some(inventory),
        ..PlaneOptions::default()
    })
    .await;
    let api = &plane.api;
    let svc = api
        .service(&pport, &pvpc, &[(80, 8080)], "proxy_open", false)
        .await;
    api.wait_service(&svc, "available").await;
    let ep = id_of(&api.endpoint(&svc, &cvpc, &csub, "10.0.0.5", None).await);
    let shown = api.wait_endpoint(&ep, "accepted").await;
    assert_eq!(shown["ip"], "10.0.0.5", "{shown}");

    // Plain routing inside the consumer VPC reaches the other 10.0.0.10.
    let mut direct = connect_in(&pool, &consumer, "10.0.0.20", backend_addr)
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), direct.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"decoy");
    assert!(
        backend.seen().is_empty(),
        "routing alone never reaches the provider"
    );

    // Through the endpoint the client reaches the provider's backend, which sees the client.
    let endpoint = sa("10.0.0.5", 80);
    let mut c = connect_in(&pool, &consumer, "10.0.0.20", endpoint)
        .await
        .unwrap();
    let me = c.local_addr().unwrap();
    assert_eq!(
        roundtrip(&mut c, b"across VPCs").await.unwrap(),
        b"across VPCs"
    );
    let seen = backend.last();
    assert_eq!(
        seen.peer.ip().to_string(),
        "10.0.0.10",
        "the agent connects from inside the provider VPC"
    );
    let raw = seen.header.expect("a PROXY header");
    match v2::Header::try_from(&raw[..]).unwrap().addresses {
        v2::Addresses::IPv4(a) => {
            assert_eq!(SocketAddr::from((a.source_address, a.source_port)), me);
            assert_eq!(
                SocketAddr::from((a.destination_address, a.destination_port)),
                endpoint
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    drop(c);

    // Deleting the endpoint closes the listener inside the consumer namespace.
    api.delete_endpoint(&ep).await;
    eventually(PROMPT, || async {
        match connect_in(&pool, &consumer, "10.0.0.20", endpoint).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    plane.shutdown().await;
    drop(guard);
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}
