//! What one tenant can create is bounded: quotas on VPCs, subnets and ports (exact under
//! concurrent creates, shown by the quota API, given back by deletes), and a cap on every list
//! inside a request body, answered with the operation's own error before any item is parsed.
//! Each test runs on SQLite and PostgreSQL.

use reqwest::Method;
use serde_json::{json, Value};
use tokio::task::JoinSet;
use vpcep_testkit::app::*;

api_tests!(
    network_quotas_hold_under_concurrent_creates_and_deletes_give_them_back,
    network_quotas_show_in_the_quota_api_only_when_asked,
    every_list_in_a_request_body_is_capped,
);

/// Sends `n` concurrent `POST path` with `body(i)` as `tenant`; answers how many succeeded and
/// asserts that every refusal is 409 VPC.0114 naming `resource`.
async fn concurrent_creates(
    tenant: &Tenant,
    path: &'static str,
    n: usize,
    body: impl Fn(usize) -> Value,
    resource: &str,
) -> usize {
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let t = tenant.clone();
        let b = body(i).to_string().into_bytes();
        tasks.spawn(async move { t.send(Method::POST, path, Some(b)).await });
    }
    let mut ok = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        if r.status == 200 {
            ok += 1;
        } else {
            r.err_naming(409, "VPC.0114", &format!("['{resource}']"));
        }
    }
    ok
}

async fn network_quotas_hold_under_concurrent_creates_and_deletes_give_them_back(
    app: &mut TestApp,
) {
    let t = app.net_small();
    let [vpcs, subnets, ports] = NET_SMALL_QUOTAS.map(|q| q as usize);

    let made = concurrent_creates(
        &t,
        "/v1/{project_id}/vpcs",
        vpcs + 6,
        |i| json!({"vpc": {"cidr": format!("10.{i}.0.0/16")}}),
        "vpc",
    )
    .await;
    assert_eq!(made, vpcs);
    let listed = t.list_vpcs("").await.ok(200)["vpcs"].clone();
    assert_eq!(
        listed.as_array().unwrap().len(),
        vpcs,
        "refused VPCs leave nothing"
    );
    let vpc = listed[0]["id"].as_str().unwrap().to_string();
    let vpc_cidr = listed[0]["cidr"].as_str().unwrap().to_string();
    let base = vpc_cidr.rsplitn(3, '.').last().unwrap().to_string();

    let made = concurrent_creates(
        &t,
        "/v1/{project_id}/subnets",
        subnets + 6,
        |i| {
            json!({"subnet": {"name": "s", "cidr": format!("{base}.{i}.0/24"),
                              "gateway_ip": format!("{base}.{i}.1"), "vpc_id": vpc}})
        },
        "subnet",
    )
    .await;
    assert_eq!(made, subnets);
    let subnet_list = t.list_subnets("").await.ok(200)["subnets"].clone();
    let subnet = subnet_list[0]["id"].as_str().unwrap().to_string();

    let made = concurrent_creates(
        &t,
        "/v1/{project_id}/ports",
        ports + 6,
        |_| json!({"port": {"network_id": subnet, "device_owner": "compute:az1"}}),
        "port",
    )
    .await;
    assert_eq!(made, ports);
    assert_eq!(
        t.allocated(&subnet).await.len(),
        ports,
        "refused ports hold no address"
    );
    for (kind, quota) in [("vpc", vpcs), ("subnet", subnets), ("port", ports)] {
        assert_eq!(
            t.quotas(&format!("type={kind}")).await[kind],
            (quota as u64, quota as u64),
            "{kind}"
        );
    }

    // A delete gives one unit back; the next create takes it.
    let port = t.list_ports("").await.ok(200)["ports"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.delete_port(&port).await.ok(204);
    assert_eq!(t.quotas("type=port").await["port"].0, ports as u64 - 1);
    t.port_ok(&subnet, "compute:az1").await;
    t.create_port(&json!({"network_id": subnet}))
        .await
        .err(409, "VPC.0114");
    let spare_subnet = subnet_list[1]["id"].as_str().unwrap();
    t.delete_subnet(&vpc, spare_subnet).await.ok(204);
    t.subnet_ok(&vpc, &format!("{base}.200.0/24")).await;
    let spare_vpc = t.list_vpcs("").await.ok(200)["vpcs"][1]["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.delete_vpc(&spare_vpc).await.ok(204);
    t.vpc_ok("10.99.0.0/16").await;
    let msg = t
        .create_vpc(&json!({"cidr": "10.98.0.0/16"}))
        .await
        .err(409, "VPC.0114");
    assert!(msg.contains(&format!("quota of {vpcs}")), "{msg}");

    // Another tenant's quota is its own.
    app.owner().vpc_ok("10.0.0.0/16").await;
}

async fn network_quotas_show_in_the_quota_api_only_when_asked(app: &mut TestApp) {
    let t = app.net_small();
    let net = t.network().await;
    t.port_ok(&net.subnet_id, "compute:az1").await;
    let all = t.quotas("").await;
    let mut kinds: Vec<&str> = all.keys().map(String::as_str).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["endpoint", "endpoint_service"],
        "the VPCEP listing is unchanged"
    );
    let [vpcs, subnets, ports] = NET_SMALL_QUOTAS;
    assert_eq!(t.quotas("type=vpc").await["vpc"], (1, vpcs));
    assert_eq!(t.quotas("type=subnet").await["subnet"], (1, subnets));
    assert_eq!(t.quotas("type=port").await["port"], (1, ports));
    t.send(Method::GET, "/v1/{project_id}/quotas?type=router", None)
        .await
        .err(400, "EndPoint.0002");
}

/// `n` copies of `v`.
fn many(v: Value, n: usize) -> Value {
    Value::Array(vec![v; n])
}

async fn every_list_in_a_request_body_is_capped(app: &mut TestApp) {
    let t = app.owner();
    let net = t.network().await;
    let backing = t.backing_in(&net, "compute:az1").await;
    let svc = t
        .available_service(&service_on(&backing, DEFAULT_PORTS))
        .await;
    let svc_id = svc["id"].as_str().unwrap().to_string();
    let ep = t.endpoint_ok(&endpoint_to(&svc_id, &net)).await;
    let ep_id = ep["id"].as_str().unwrap().to_string();

    // The network inventory: documented limits (README, "Accounts file").
    let route = json!({"destination": "10.9.0.0/16", "nexthop": "10.0.0.10"});
    t.update_vpc(&net.vpc_id, &json!({"routes": many(route.clone(), 101)}))
        .await
        .err_naming(400, "VPC.0101", "vpc.routes");
    t.update_vpc(&net.vpc_id, &json!({"routes": many(route, 100)}))
        .await
        .ok(200);
    t.create_vpc(&json!({"tags": many(json!("k*v"), 11)}))
        .await
        .err_naming(400, "VPC.0101", "vpc.tags");
    // The subnet with 50,000 dnsList entries.
    let subnet = json!({"name": "d", "cidr": "10.0.128.0/24", "gateway_ip": "10.0.128.1",
                        "vpc_id": net.vpc_id, "dnsList": many(json!("100.125.1.250"), 50_000)});
    t.create_subnet(&subnet)
        .await
        .err_naming(400, "VPC.0201", "subnet.dnsList");
    t.update_subnet(
        &net.vpc_id,
        &net.subnet_id,
        &json!({"name": "n", "dnsList": many(json!("100.125.1.250"), 6)}),
    )
    .await
    .err_naming(400, "VPC.0201", "subnet.dnsList");
    let dhcp = json!({"opt_name": "ntp", "opt_value": "10.0.0.1"});
    t.update_subnet(
        &net.vpc_id,
        &net.subnet_id,
        &json!({"name": "n", "extra_dhcp_opts": many(dhcp.clone(), 21)}),
    )
    .await
    .err_naming(400, "VPC.0201", "extra_dhcp_opts");
    let pair = json!({"ip_address": "10.0.1.0/28"});
    let sg = "0b7f8e4c-1c9e-4a4e-9a39-3b8c4f0e2a11";
    for (body, field) in [
        (
            json!({"network_id": net.subnet_id, "allowed_address_pairs": many(pair.clone(), 11)}),
            "port.allowed_address_pairs",
        ),
        (
            json!({"network_id": net.subnet_id, "security_groups": many(json!(sg), 6)}),
            "port.security_groups",
        ),
        (
            json!({"network_id": net.subnet_id, "extra_dhcp_opts": many(dhcp, 21)}),
            "port.extra_dhcp_opts",
        ),
        (
            json!({"network_id": net.subnet_id,
                   "fixed_ips": many(json!({"ip_address": "10.0.0.50"}), 2)}),
            "port.fixed_ips",
        ),
    ] {
        t.create_port(&body)
            .await
            .err_naming(400, "VPC.0701", field);
    }
    t.update_port(
        &backing.port_id,
        &json!({"allowed_address_pairs": many(pair, 11)}),
    )
    .await
    .err_naming(400, "VPC.0701", "port.allowed_address_pairs");

    // The VPCEP API: its documented limits and codes.
    let ports: Vec<Value> = (1..=201)
        .map(|p| json!({"client_port": p, "server_port": p}))
        .collect();
    t.create(&with(
        service_on(&backing, DEFAULT_PORTS),
        "ports",
        json!(ports),
    ))
    .await
    .err(400, "EndPoint.3074");
    let tag = |i: usize| json!({"key": format!("k{i}"), "value": "v"});
    let tags: Vec<Value> = (0..11).map(tag).collect();
    t.create(&with(
        service_on(&backing, DEFAULT_PORTS),
        "tags",
        json!(tags),
    ))
    .await
    .err(400, "EndPoint.3069");
    t.create_endpoint(&with(
        endpoint_to(&svc_id, &net),
        "whitelist",
        many(json!("10.0.0.1"), 21),
    ))
    .await
    .err(400, "EndPoint.2045");
    let entries: Vec<String> = (0..501).map(|i| format!("iam:domain::{i:032x}")).collect();
    let entries: Vec<&str> = entries.iter().map(String::as_str).collect();
    t.permission_action(&svc_id, "add", &entries)
        .await
        .err(400, "EndPoint.0016");
    t.update_routetables(
        &ep_id,
        &json!({"routetables": many(json!("0b7f8e4c-1c9e-4a4e-9a39-3b8c4f0e2a11"), 21)}),
    )
    .await
    .err(400, "EndPoint.0016");
    let described = json!({"connections": many(json!({"id": ep_id, "description": "d"}), 501)});
    t.connection_descriptions(&svc_id, &described)
        .await
        .err(400, "EndPoint.0016");

    // A tag action of about 1 MiB (one key repeated) is refused by its count, not by the
    // duplicate a set of its keys would find.
    let huge: Vec<Value> = (0..38_000)
        .map(|_| json!({"key": "same", "value": "v"}))
        .collect();
    let body = json!({"action": "create", "tags": huge});
    assert!(body.to_string().len() > 1_000_000);
    t.tag_action("endpoint_service", &svc_id, &body)
        .await
        .err(400, "EndPoint.3069");
}
