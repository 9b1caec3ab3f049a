//! Tenants against each other and against the host, through the data plane, on real sockets.
//!
//! Each test is an attack: one tenant trying to take over another's listener (also racing
//! through two control-plane nodes), any tenant trying to make the agent listen on or connect to
//! the host's own or link-local addresses, a consumer keeping a connection after the owner
//! rejected it, and anyone reading other tenants' endpoints off `/metrics`. Each test owns its
//! address ranges (127.7x–127.9x), so they run in parallel with the other data-plane tests.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use vpcep_testkit::dp::*;

fn with_agent() -> PlaneOptions {
    PlaneOptions {
        with_agent: true,
        ..PlaneOptions::default()
    }
}

/// Creates an endpoint (`port_ip` when given, else the store's choice); answers the status and
/// the body.
async fn try_endpoint(
    api: &Api,
    svc: &str,
    (vpc, subnet): &(String, String),
    port_ip: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({"endpoint_service_id": svc, "vpc_id": vpc, "subnet_id": subnet});
    if let Some(ip) = port_ip {
        body["port_ip"] = json!(ip);
    }
    api.send(Method::POST, "/v1/{project_id}/vpc-endpoints", Some(body))
        .await
}

fn error_code(v: &Value) -> &str {
    v["error_code"].as_str().unwrap_or_default()
}

/// The finding: tenant C parks a pending endpoint on the address tenant B uses in B's own VPC of
/// the same CIDR, then accepts it. Here the store gives each address one owner: the victim is
/// told the address is taken (or gets a free one), the attacker cannot name the victim's
/// address, and every byte for the victim's endpoint reaches the victim's backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_take_over_another_tenants_listener() {
    init_tracing();
    let plane = Plane::start(with_agent()).await;
    let victim = Api::of(&plane.base_url, VICTIM);
    let attacker = Api::of(&plane.base_url, ATTACKER);
    let (v_svc, v_backend) = victim.published("127.70", false).await;
    let (a_svc, a_backend) = attacker.published("127.72", true).await;
    // Both consume in a VPC of the same CIDR, in the host's address space.
    let v_net = victim
        .vpc_with_subnet("consumer", "127.71.0.0/16", "127.71.0.0/24")
        .await;
    let a_net = attacker
        .vpc_with_subnet("consumer", "127.71.0.0/16", "127.71.0.0/24")
        .await;

    // The attacker parks a pending endpoint on the address the victim is about to use.
    let (st, parked) = try_endpoint(&attacker, &a_svc, &a_net, Some("127.71.0.20")).await;
    assert_eq!(st, 200, "{parked}");
    let parked = id_of(&parked);
    attacker.wait_endpoint(&parked, "pendingAcceptance").await;

    // The victim naming that address is told, in the API's shape, that it is taken...
    let (st, body) = try_endpoint(&victim, &v_svc, &v_net, Some("127.71.0.20")).await;
    assert_eq!((st, error_code(&body)), (400, "EndPoint.2042"), "{body}");
    // ...and an address the store chooses is one no other VPC holds.
    let (st, body) = try_endpoint(&victim, &v_svc, &v_net, None).await;
    assert_eq!(st, 200, "{body}");
    let v_ep = id_of(&body);
    let shown = victim.wait_endpoint(&v_ep, "accepted").await;
    let v_ip = shown["ip"].as_str().expect("ip").to_string();
    assert_ne!(v_ip, "127.71.0.20");

    // The attacker accepts its own endpoint: its address serves the attacker, the victim's the
    // victim.
    attacker.connection(&a_svc, &parked, "receive").await;
    attacker.wait_endpoint(&parked, "accepted").await;
    echoes("127.71.0.99", sa(&v_ip, 80)).await.unwrap();
    echoes("127.71.0.99", sa("127.71.0.20", 80)).await.unwrap();
    assert_eq!((v_backend.seen().len(), a_backend.seen().len()), (1, 1));

    // The other order: the victim holds an address; the attacker cannot name it, pending or not.
    let (st, body) = try_endpoint(&attacker, &a_svc, &a_net, Some(&v_ip)).await;
    assert_eq!((st, error_code(&body)), (400, "EndPoint.2042"), "{body}");
    echoes("127.71.0.99", sa(&v_ip, 80)).await.unwrap();
    assert_eq!((v_backend.seen().len(), a_backend.seen().len()), (2, 1));
    let shown = victim.wait_endpoint(&v_ep, "accepted").await;
    assert!(
        shown["error"].as_array().is_none_or(Vec::is_empty),
        "{shown}"
    );
    plane.shutdown().await;
}

/// The same attack raced through two control-plane nodes on PostgreSQL: both tenants create an
/// endpoint on one address at the same moment (each through another node) and then accept at
/// the same moment. Exactly one create succeeds, and the address carries only its owner's
/// traffic, whoever wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_through_two_nodes_leave_one_owner_on_postgres() {
    init_tracing();
    let Some(plane) = Plane::try_start(PlaneOptions {
        db: Db::Postgres,
        ..with_agent()
    })
    .await
    else {
        return;
    };
    let node_b = plane.second_node().await;
    let victim = Api::of(&plane.base_url, VICTIM);
    let attacker = Api::of(&node_b.url, ATTACKER);
    let (v_svc, v_backend) = victim.published("127.74", true).await;
    let (a_svc, a_backend) = attacker.published("127.76", true).await;
    let v_net = victim
        .vpc_with_subnet("consumer", "127.75.0.0/16", "127.75.0.0/24")
        .await;
    let a_net = attacker
        .vpc_with_subnet("consumer", "127.75.0.0/16", "127.75.0.0/24")
        .await;

    for (i, ip) in ["127.75.0.30", "127.75.0.31", "127.75.0.32"]
        .into_iter()
        .enumerate()
    {
        let ((vs, vb), (as_, ab)) = tokio::join!(
            try_endpoint(&victim, &v_svc, &v_net, Some(ip)),
            try_endpoint(&attacker, &a_svc, &a_net, Some(ip)),
        );
        let (winner, owner, svc, backend, other_backend) = match (vs, as_) {
            (200, 400) => (id_of(&vb), &victim, &v_svc, &v_backend, &a_backend),
            (400, 200) => (id_of(&ab), &attacker, &a_svc, &a_backend, &v_backend),
            other => panic!("exactly one create may succeed: {other:?} {vb} {ab}"),
        };
        let loser = if vs == 400 { &vb } else { &ab };
        assert_eq!(error_code(loser), "EndPoint.2042", "{loser}");
        owner.wait_endpoint(&winner, "pendingAcceptance").await;
        // The owner accepts through both nodes at once.
        let other_node = if std::ptr::eq(owner, &victim) {
            victim.at(&node_b.url)
        } else {
            attacker.at(&plane.base_url)
        };
        let accept = |api: Api| {
            let path = format!("/v1/{{project_id}}/vpc-endpoint-services/{svc}/connections/action");
            let body = json!({"action": "receive", "endpoints": [winner]});
            async move { api.send(Method::POST, &path, Some(body)).await }
        };
        let (a, b) = tokio::join!(accept(owner.clone()), accept(other_node));
        assert_eq!((a.0, b.0), (200, 200), "{} {}", a.1, b.1);
        owner.wait_endpoint(&winner, "accepted").await;
        let before = (backend.seen().len(), other_backend.seen().len());
        eventually(SETTLE, || echoes("127.75.0.99", sa(ip, 80))).await;
        assert_eq!(
            (backend.seen().len(), other_backend.seen().len()),
            (before.0 + 1, before.1),
            "round {i}: the address carries its owner's traffic only"
        );
    }
    node_b.stop().await;
    plane.shutdown().await;
}

/// A non-loopback IPv4 address of this host's interfaces, if it has one.
fn host_interface_ipv4() -> Option<std::net::Ipv4Addr> {
    vpcep_proxy::host_addresses()
        .into_iter()
        .find_map(|a| match a {
            std::net::IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() => Some(v4),
            _ => None,
        })
}

/// A VPC with `cidr` and one subnet `subnet` whose gateway is `gateway`; answers (vpc, subnet).
async fn network(api: &Api, cidr: &str, subnet: &str, gateway: &str) -> (String, String) {
    let vpc = api
        .ok(
            Method::POST,
            "/v1/{project_id}/vpcs",
            Some(json!({"vpc": {"name": "", "cidr": cidr}})),
        )
        .await;
    let vpc = vpc["vpc"]["id"].as_str().unwrap().to_string();
    let s = api
        .ok(
            Method::POST,
            "/v1/{project_id}/subnets",
            Some(json!({"subnet": {"name": "sub", "cidr": subnet,
                "gateway_ip": gateway, "vpc_id": vpc}})),
        )
        .await;
    (vpc, s["subnet"]["id"].as_str().unwrap().to_string())
}

/// The finding: endpoints on 127.0.0.1 or the host's own interface address, backends on
/// 127.0.0.1, 169.254.169.254 or public addresses let a tenant read the API's `/health` and
/// local databases. Here a service's `ip` outside its VPC is refused at create, and every
/// endpoint or backend on a host or link-local address is `failed` with the reason: the host
/// service below never sees a connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_own_and_link_local_addresses_are_never_reached() {
    init_tracing();
    // Stands for the API, a local database: anything listening on the host's loopback.
    let host_service = Backend::start("127.0.0.1:0").await;
    let host_ip = host_interface_ipv4();
    // The grant covers everything tried below, so that only the host rules refuse.
    let mut grant = format!("{DATAPLANE_CIDRS},169.254.0.0/16");
    if let Some(ip) = host_ip {
        grant.push_str(&format!(",{ip}/32"));
    }
    let plane = Plane::start(PlaneOptions {
        dataplane_cidrs: Some(grant),
        ..with_agent()
    })
    .await;
    let api = &plane.api;
    let (svc, _) = api.published("127.80", false).await;

    // A service's ip lies inside its VPC: not the host's loopback, metadata or public addresses.
    let (pvpc, psub) = api
        .vpc_with_subnet("provider-ip", "127.81.0.0/16", "127.81.0.0/24")
        .await;
    let port = api.port(&psub, "127.81.0.10").await;
    for ip in ["127.0.0.1", "169.254.169.254", "8.8.8.8"] {
        let (st, body) = api
            .send(
                Method::POST,
                "/v1/{project_id}/vpc-endpoint-services",
                Some(json!({"port_id": port, "vpc_id": pvpc, "server_type": "VM", "ip": ip,
                    "ports": [{"client_port": 80, "server_port": host_service.addr.port(), "protocol": "TCP"}]})),
            )
            .await;
        assert_eq!(
            (st, error_code(&body)),
            (400, "EndPoint.3010"),
            "{ip}: {body}"
        );
    }

    // Endpoints on the host's loopback or its interface address: `failed`, with why and the
    // address shown.
    let lo_net = network(api, "127.0.0.0/16", "127.0.0.0/24", "127.0.0.254").await;
    let mut tries = vec![(
        lo_net.clone(),
        "127.0.0.1".to_string(),
        "host's loopback address",
    )];
    if let Some(ip) = host_ip {
        let net = ipnet::Ipv4Net::new(ip, 24).unwrap().trunc();
        let gateway = net.hosts().find(|h| *h != ip).unwrap();
        let n = network(
            api,
            &net.to_string(),
            &net.to_string(),
            &gateway.to_string(),
        )
        .await;
        tries.push((n, ip.to_string(), "address of the data plane's host"));
    } else {
        notice("SKIPPED (part): this host has no non-loopback IPv4 address");
    }
    for (net, ip, why) in tries {
        let (st, body) = try_endpoint(api, &svc, &net, Some(&ip)).await;
        assert_eq!(st, 200, "{body}");
        let failed = api.wait_endpoint(&id_of(&body), "failed").await;
        assert!(failed["error"].to_string().contains(why), "{why}: {failed}");
        assert_eq!(failed["ip"], ip.as_str(), "{failed}");
    }
    // Backends inside their VPC that are the host's loopback or link-local: `failed`, with why.
    // (After the endpoint above: 127.0.0.1 now belongs to that endpoint's VPC, and another VPC
    // cannot hold it — the service would be refused with EndPoint.3046.)
    let (lo_vpc, lo_sub) = (lo_net.0.clone(), lo_net.1.clone());
    let lo_port = api.port(&lo_sub, "127.0.0.2").await;
    let (ll_vpc, ll_sub) =
        network(api, "169.254.0.0/16", "169.254.169.0/24", "169.254.169.1").await;
    let ll_port = api.port(&ll_sub, "169.254.169.10").await;
    let cases = [
        (
            lo_port.as_str(),
            lo_vpc.as_str(),
            Some("127.0.0.1"),
            "host's loopback address",
        ),
        (
            ll_port.as_str(),
            ll_vpc.as_str(),
            Some("169.254.169.254"),
            "link-local",
        ),
    ];
    for (port, vpc, ip, why) in cases {
        let mut body = json!({"port_id": port, "vpc_id": vpc, "server_type": "VM",
            "ports": [{"client_port": 80, "server_port": host_service.addr.port(), "protocol": "TCP"}]});
        if let Some(ip) = ip {
            body["ip"] = json!(ip);
        }
        let created = api
            .ok(
                Method::POST,
                "/v1/{project_id}/vpc-endpoint-services",
                Some(body),
            )
            .await;
        let shown = api.wait_service(&id_of(&created), "failed").await;
        let text = shown["error"].to_string();
        assert!(text.contains(why), "{why}: {shown}");
    }

    assert!(
        host_service.seen().is_empty(),
        "the host's service was reached through the data plane"
    );
    plane.shutdown().await;
}

/// The finding: after reject or delete, established connections kept forwarding for about
/// 30 s. Here both end them within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_cuts_established_connections_within_a_second() {
    init_tracing();
    let plane = Plane::start(with_agent()).await;
    let api = &plane.api;
    let (svc, _) = api.published("127.82", false).await;
    let net = api
        .vpc_with_subnet("consumer", "127.83.0.0/16", "127.83.0.0/24")
        .await;
    let ep = id_of(
        &api.endpoint(&svc, &net.0, &net.1, "127.83.0.10", None)
            .await,
    );
    api.wait_endpoint(&ep, "accepted").await;
    let dst = sa("127.83.0.10", 80);
    let mut held = connect_from("127.83.0.99", dst).await.unwrap();
    assert_eq!(roundtrip(&mut held, b"before").await.unwrap(), b"before");
    api.delete_endpoint(&ep).await;
    closed_within(&mut held, PROMPT).await.unwrap();
    eventually(PROMPT, || refused("127.83.0.99", dst)).await;
    plane.shutdown().await;
}

/// The finding: `/metrics` of `serve --with-agent` listed every tenant's endpoint ids and byte
/// counts to anyone. Here it names none; the per-endpoint counters are for operators only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_metrics_name_no_endpoint_and_operators_read_the_data_planes() {
    init_tracing();
    let plane = Plane::start(with_agent()).await;
    let api = &plane.api;
    let (svc, _) = api.published("127.84", false).await;
    let net = api
        .vpc_with_subnet("consumer", "127.85.0.0/16", "127.85.0.0/24")
        .await;
    let ep = id_of(
        &api.endpoint(&svc, &net.0, &net.1, "127.85.0.10", None)
            .await,
    );
    api.wait_endpoint(&ep, "accepted").await;
    echoes("127.85.0.99", sa("127.85.0.10", 80)).await.unwrap();

    let open = plane.metrics().await;
    assert!(open.contains("vpcep_api_requests_total"), "{open}");
    assert!(!open.contains(&ep), "an endpoint id in the open /metrics");
    assert!(
        !open.contains("vpcep_agent_"),
        "per-endpoint series in the open /metrics"
    );

    let operators = plane.dataplane_metrics().await;
    let total = metric(
        &operators,
        "vpcep_agent_connections_total",
        &[("endpoint_id", ep.as_str())],
    );
    assert_eq!(total, 1.0, "{operators}");

    let (st, body) = api.send(Method::GET, "/agent/v1/metrics", None).await;
    assert_eq!((st, error_code(&body)), (403, "EndPoint.0004"), "{body}");
    let anonymous = vpcep_testkit::http()
        .get(format!("{}/agent/v1/metrics", plane.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    plane.shutdown().await;
}

/// The finding: after a restart with `--with-agent`, an endpoint accepted earlier whose address
/// could not be listened on stayed `accepted` (with `ip: null` once failed). Here it is `failed`
/// with the reason and its address, and `accepted` again once it can listen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_an_endpoint_that_cannot_listen_is_failed_until_it_can() {
    init_tracing();
    let mut plane = Plane::start(with_agent()).await;
    let (svc, _) = plane.api.published("127.86", false).await;
    let net = plane
        .api
        .vpc_with_subnet("consumer", "127.87.0.0/16", "127.87.0.0/24")
        .await;
    let ep = id_of(
        &plane
            .api
            .endpoint(&svc, &net.0, &net.1, "127.87.0.10", None)
            .await,
    );
    plane.api.wait_endpoint(&ep, "accepted").await;

    plane.pause().await;
    let squatter = std::net::TcpListener::bind("127.87.0.10:80").unwrap();
    plane.resume().await;
    let failed = plane.api.wait_endpoint(&ep, "failed").await;
    assert!(
        failed["error"]
            .to_string()
            .contains("cannot listen on 127.87.0.10:80: Address already in use"),
        "{failed}"
    );
    assert_eq!(failed["ip"], "127.87.0.10");

    drop(squatter);
    let back = plane.api.wait_endpoint(&ep, "accepted").await;
    assert!(back["error"].as_array().is_none_or(Vec::is_empty), "{back}");
    echoes("127.87.0.99", sa("127.87.0.10", 80)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    plane.shutdown().await;
}

/// Without a data plane, an endpoint on an address another VPC holds is stored but never
/// served (its snapshot entry says why). Its reconciler looks for such waiters less often when
/// none can move (every create wakes it): the waiter still takes the address over by itself
/// once the owner's endpoint is gone, with no request of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_endpoint_takes_the_address_over_once_its_owner_is_gone() {
    init_tracing();
    let plane = Plane::start(PlaneOptions::default()).await;
    let owner = Api::of(&plane.base_url, VICTIM);
    let waiter = Api::of(&plane.base_url, ATTACKER);
    let (o_svc, _) = owner.published("127.88", false).await;
    let (w_svc, _) = waiter.published("127.89", false).await;
    let (ov, os) = owner
        .vpc_with_subnet("consumer", "127.88.0.0/16", "127.88.1.0/24")
        .await;
    let (wv, ws) = waiter
        .vpc_with_subnet("consumer", "127.88.0.0/16", "127.88.1.0/24")
        .await;
    let first = id_of(&owner.endpoint(&o_svc, &ov, &os, "127.88.1.20", None).await);
    owner.wait_endpoint(&first, "accepted").await;
    let second = id_of(&waiter.endpoint(&w_svc, &wv, &ws, "127.88.1.20", None).await);
    waiter.wait_endpoint(&second, "accepted").await;

    let operator = vpcep_testkit::client(&plane.base_url, OPERATOR_AK, OPERATOR_SK, "");
    let refused = |id: String| {
        let operator = operator.clone();
        async move {
            let r = operator
                .send_raw(Method::GET, "/agent/v1/snapshot", None)
                .await
                .map_err(|e| e.to_string())?;
            let v = r.json();
            let ep = v["endpoints"]
                .as_array()
                .and_then(|eps| eps.iter().find(|e| e["endpoint_id"] == id.as_str()))
                .cloned()
                .ok_or_else(|| format!("{id} is not in the snapshot: {v}"))?;
            Ok::<_, String>(ep["refused"].as_str().map(str::to_string))
        }
    };
    let why = refused(second.clone()).await.unwrap().expect("refused");
    assert!(why.contains("held by another VPC"), "{why}");
    assert_eq!(refused(first.clone()).await.unwrap(), None);

    owner.delete_endpoint(&first).await;
    eventually(SETTLE, || {
        let probe = refused(second.clone());
        async move {
            match probe.await? {
                None => Ok(()),
                Some(why) => Err(why),
            }
        }
    })
    .await;
    plane.shutdown().await;
}
