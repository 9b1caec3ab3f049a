//! Requests that race across resources: whatever order the server serializes them in, no
//! reference dangles (a service on a deleted port, an endpoint on a deleted service or subnet)
//! and no address is handed out twice.

use serde_json::json;
use std::collections::HashSet;
use vpcep_testkit::app::*;

api_tests!(
    port_delete_racing_a_service_create_never_leaves_a_service_without_its_port,
    service_delete_racing_endpoint_creates_never_leaves_an_endpoint_without_its_service,
    subnet_delete_racing_an_endpoint_create_never_leaves_an_endpoint_without_its_subnet,
    concurrent_endpoints_asking_for_the_same_port_ip_admit_exactly_one,
    endpoints_and_ports_created_together_never_share_an_address,
    connection_updates_in_any_order_racing_the_reconciler_all_succeed,
);

async fn port_delete_racing_a_service_create_never_leaves_a_service_without_its_port(
    app: &mut TestApp,
) {
    let owner = app.owner();
    for _ in 0..4 {
        let backing = owner.fresh_port().await;
        let (a, b) = (owner.clone(), owner.clone());
        let body = service_on(&backing, DEFAULT_PORTS);
        let port_id = backing.port_id.clone();
        let (created, deleted) = tokio::join!(
            tokio::spawn(async move { a.create(&body).await }),
            tokio::spawn(async move { b.delete_port(&port_id).await }),
        );
        let (created, deleted) = (created.expect("task"), deleted.expect("task"));
        match (created.status, deleted.status) {
            (200, _) => {
                deleted.err(409, "VPC.0710");
                owner.show_port(&backing.port_id).await.ok(200);
                let id = id_of(&created.json());
                assert_eq!(owner.show(&id).await.ok(200)["port_id"], backing.port_id);
            }
            (_, 204) => {
                created.err(400, "EndPoint.3008");
                owner.show_port(&backing.port_id).await.err(404, "VPC.0702");
            }
            _ => panic!(
                "create {} {} / delete {} {}",
                created.status,
                created.text(),
                deleted.status,
                deleted.text()
            ),
        }
    }
    // Every service listed still has its port.
    let v = owner.list("limit=100").await.ok(200);
    for s in v["endpoint_services"].as_array().expect("list") {
        owner
            .show_port(s["port_id"].as_str().expect("port_id"))
            .await
            .ok(200);
    }
}

async fn service_delete_racing_endpoint_creates_never_leaves_an_endpoint_without_its_service(
    app: &mut TestApp,
) {
    let owner = app.owner();
    let peer = app.owner_other_project();
    let net = peer.network().await;
    for _ in 0..3 {
        let body = with(owner.service().await, "approval_enabled", json!(false));
        let sid = id_of(&owner.available_service(&body).await);
        let mut creates = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let peer = peer.clone();
            let body = endpoint_to(&sid, &net);
            creates.spawn(async move { peer.create_endpoint(&body).await });
        }
        let deleted = owner.delete(&sid).await;
        let mut made = Vec::new();
        while let Some(r) = creates.join_next().await {
            let r = r.expect("task");
            match r.status {
                200 => made.push(id_of(&r.json())),
                _ => {
                    let code = r.json()["error_code"].clone();
                    assert!(
                        code == "EndPoint.2004" || code == "EndPoint.2003",
                        "{}",
                        r.text()
                    );
                }
            }
        }
        if deleted.status == 204 {
            // The delete won: no endpoint may have been made after it.
            assert_eq!(made, Vec::<String>::new());
            owner.wait_gone(&sid).await;
        } else {
            deleted.err(400, "EndPoint.3006");
            assert!(!made.is_empty());
            assert_eq!(owner.show(&sid).await.ok(200)["status"], "available");
            for id in &made {
                peer.delete_endpoint(id).await.ok(204);
            }
            for id in &made {
                peer.wait_endpoint_gone(id).await;
            }
            owner.delete(&sid).await.ok(204);
        }
    }
    assert_eq!(peer.list_endpoint_ids("").await, (vec![], 0));
    assert_eq!(peer.allocated(&net.subnet_id).await, Vec::<String>::new());
}

async fn subnet_delete_racing_an_endpoint_create_never_leaves_an_endpoint_without_its_subnet(
    app: &mut TestApp,
) {
    let owner = app.owner();
    let sid = id_of(
        &owner
            .available_service(&with(
                owner.service().await,
                "approval_enabled",
                json!(false),
            ))
            .await,
    );
    let peer = app.owner_other_project();
    let vpc = peer.vpc_ok("10.0.0.0/16").await;
    for i in 0..4 {
        let cidr = format!("10.0.{i}.0/24");
        let subnet = peer.subnet_ok(&vpc, &cidr).await;
        let net = Network {
            vpc_id: vpc.clone(),
            subnet_id: subnet.clone(),
            cidr,
        };
        let (a, b) = (peer.clone(), peer.clone());
        let body = endpoint_to(&sid, &net);
        let (vpc2, subnet2) = (vpc.clone(), subnet.clone());
        let (created, deleted) = tokio::join!(
            tokio::spawn(async move { a.create_endpoint(&body).await }),
            tokio::spawn(async move { b.delete_subnet(&vpc2, &subnet2).await }),
        );
        let (created, deleted) = (created.expect("task"), deleted.expect("task"));
        match (created.status, deleted.status) {
            (200, _) => {
                deleted.err(409, "VPC.0211");
                let e = peer
                    .wait_endpoint_status(&id_of(&created.json()), "accepted")
                    .await;
                assert_eq!(
                    peer.allocated(&subnet).await,
                    vec![e["ip"].as_str().expect("ip").to_string()]
                );
            }
            (_, 204) => {
                created.err(400, "EndPoint.0023");
                peer.show_subnet(&subnet).await.err(404, "VPC.0202");
            }
            _ => panic!(
                "create {} {} / delete {} {}",
                created.status,
                created.text(),
                deleted.status,
                deleted.text()
            ),
        }
    }
    let v = peer.list_endpoints("limit=100").await.ok(200);
    for e in v["endpoints"].as_array().expect("endpoints") {
        peer.show_subnet(e["subnet_id"].as_str().expect("subnet_id"))
            .await
            .ok(200);
    }
}

async fn concurrent_endpoints_asking_for_the_same_port_ip_admit_exactly_one(app: &mut TestApp) {
    let owner = app.owner();
    let sid = id_of(&owner.available_service(&owner.service().await).await);
    let net = owner.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let owner = owner.clone();
        let body = with(endpoint_to(&sid, &net), "port_ip", json!("10.0.1.50"));
        tasks.spawn(async move { owner.create_endpoint(&body).await });
    }
    let mut made = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        if r.status == 200 {
            made.push(id_of(&r.json()));
        } else {
            r.err(400, "EndPoint.2042");
        }
    }
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(owner.list_endpoint_ids("").await, (made, 1));
    assert_eq!(owner.allocated(&net.subnet_id).await, vec!["10.0.1.50"]);
}

async fn endpoints_and_ports_created_together_never_share_an_address(app: &mut TestApp) {
    let owner = app.owner();
    let sid = id_of(
        &owner
            .available_service(&with(
                owner.service().await,
                "approval_enabled",
                json!(false),
            ))
            .await,
    );
    // 13 assignable addresses (a /28 without .0, the gateway .1 and .15) for 8 + 8 requests.
    let net = owner.network_with("10.0.0.0/16", "10.0.0.0/28").await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let owner = owner.clone();
        let (sid, net) = (sid.clone(), net.clone());
        tasks.spawn(async move {
            if i % 2 == 0 {
                let r = owner
                    .create_port(&json!({"network_id": net.subnet_id, "device_owner": VM_OWNER}))
                    .await;
                ("port", r)
            } else {
                (
                    "endpoint",
                    owner.create_endpoint(&endpoint_to(&sid, &net)).await,
                )
            }
        });
    }
    let mut ips = Vec::new();
    let mut endpoints = Vec::new();
    let mut refused = 0;
    while let Some(r) = tasks.join_next().await {
        let (kind, r) = r.expect("task");
        match (kind, r.status) {
            ("port", 200) => ips.push(
                r.json()["port"]["fixed_ips"][0]["ip_address"]
                    .as_str()
                    .expect("ip")
                    .to_string(),
            ),
            ("port", _) => {
                r.err(409, "VPC.0703");
                refused += 1;
            }
            (_, 200) => endpoints.push(id_of(&r.json())),
            _ => {
                r.err(400, "EndPoint.2042");
                refused += 1;
            }
        }
    }
    assert_eq!(ips.len() + endpoints.len(), 13, "{ips:?} {endpoints:?}");
    assert_eq!(refused, 3);
    for id in &endpoints {
        let e = owner.wait_endpoint_status(id, "accepted").await;
        ips.push(e["ip"].as_str().expect("ip").to_string());
    }
    let distinct: HashSet<&String> = ips.iter().collect();
    assert_eq!(
        distinct.len(),
        13,
        "an address was handed out twice: {ips:?}"
    );
    let expected: HashSet<String> = (2..=14).map(|i| format!("10.0.0.{i}")).collect();
    assert_eq!(ips.into_iter().collect::<HashSet<_>>(), expected);
    assert_eq!(owner.allocated(&net.subnet_id).await.len(), 13);
}

/// Owners describing the same fresh connections in opposite orders, while the reconciler
/// settles them (`creating` → `pendingAcceptance`), are all answered 200: no transaction waits
/// for a row while holding one another needs (a deadlock answered 503 on PostgreSQL before).
async fn connection_updates_in_any_order_racing_the_reconciler_all_succeed(app: &mut TestApp) {
    let owner = app.owner();
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let body = with(owner.service().await, "approval_enabled", json!(true));
    let sid = id_of(&owner.available_service(&body).await);
    for round in 0..5 {
        let mut ids = Vec::new();
        for _ in 0..4 {
            ids.push(id_of(&peer.endpoint_ok(&endpoint_to(&sid, &net)).await));
        }
        let mut calls = tokio::task::JoinSet::new();
        for (k, order) in [ids.clone(), ids.iter().rev().cloned().collect()]
            .into_iter()
            .enumerate()
        {
            for _ in 0..2 {
                let owner = owner.clone();
                let sid = sid.clone();
                let connections: Vec<_> = order
                    .iter()
                    .map(|id| json!({"id": id, "description": format!("round {round} call {k}")}))
                    .collect();
                calls.spawn(async move {
                    owner
                        .connection_descriptions(&sid, &json!({ "connections": connections }))
                        .await
                });
            }
        }
        while let Some(r) = calls.join_next().await {
            let v = r.expect("task").ok(200);
            assert_eq!(v["connections"].as_array().map(Vec::len), Some(4), "{v}");
        }
    }
}
