//! VPC endpoints and connections (`create_endpoint`, `list_endpoint_info_details`,
//! `list_endpoints`, `delete_endpoint`, `list_service_connections`, `accept_or_reject_endpoint`,
//! `update_endpoint_connections_desc`): the endpoint status machine driven by the reconciler and
//! the owner's decisions, who may connect, addresses, and what the owner sees.

use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use vpcep_testkit::app::*;

api_tests!(
    create_answers_creating_with_the_documented_fields,
    endpoint_waits_for_acceptance_when_the_service_requires_approval,
    endpoint_is_accepted_at_once_when_the_service_needs_no_approval,
    create_refuses_bad_references_and_fields_creating_nothing,
    endpoint_to_a_service_that_is_not_available_is_refused = |b| b.provisioning_delay(FOREVER),
    port_ip_must_be_a_free_address_inside_the_subnet,
    endpoint_subnet_must_not_overlap_the_reserved_range,
    another_account_needs_permission_to_connect,
    permission_for_its_account_lets_another_account_connect,
    wildcard_permission_lets_every_account_connect,
    owner_accepts_rejects_and_accepts_again,
    connection_action_reports_per_endpoint_errors_in_its_entries,
    connection_action_takes_exactly_one_endpoint,
    connections_filter_by_id_status_and_marker_id_and_page,
    connection_count_counts_creating_pending_and_accepted_connections,
    service_with_endpoints_cannot_be_deleted,
    a_service_being_deleted_accepts_no_connection,
    deleted_endpoint_goes_away_and_frees_its_address,
    deleting_endpoint_refuses_changes_until_it_is_gone,
    creating_endpoint_cannot_be_accepted_or_rejected_yet,
    endpoint_list_filters_sorts_and_pages,
    endpoint_shows_the_current_name_of_its_service,
    other_projects_cannot_see_or_touch_an_endpoint,
    owner_describes_connections,
);

/// Keys of the endpoint object (`create_endpoint`, `list_endpoint_info_details`, `list_endpoints`).
const ENDPOINT_KEYS: &[&str] = &[
    "id",
    "service_type",
    "status",
    "active_status",
    "enable_status",
    "specification_name",
    "endpoint_service_name",
    "marker_id",
    "endpoint_service_id",
    "enable_dns",
    "dns_names",
    "vpc_id",
    "subnet_id",
    "created_at",
    "updated_at",
    "project_id",
    "tags",
    "error",
    "whitelist",
    "enable_whitelist",
    "routetables",
    "description",
    "policy_statement",
    "policy_document",
    "public_border_group",
    "ip_version",
];

/// Keys of a connection (`accept_or_reject_endpoint`, `list_service_connections`,
/// `update_endpoint_connections_desc`).
const CONNECTION_KEYS: &[&str] = &[
    "id",
    "marker_id",
    "created_at",
    "updated_at",
    "domain_id",
    "error",
    "status",
    "description",
];

/// Long enough that no transition completes during a test.
const FOREVER: Duration = Duration::from_secs(3600);

/// An available service of `t` with `approval_enabled` set; answers its id.
async fn service_of(t: &Tenant, approval: bool) -> String {
    let body = with(t.service().await, "approval_enabled", json!(approval));
    id_of(&t.available_service(&body).await)
}

/// An endpoint of `t` to `service_id` in `net`; answers its id.
async fn endpoint_of(t: &Tenant, service_id: &str, net: &Network) -> String {
    id_of(&t.endpoint_ok(&endpoint_to(service_id, net)).await)
}

fn connection_ids(v: &Value) -> Vec<String> {
    ids_in(&v["connections"])
}

fn is_inside(ip: &str, cidr: &str) -> bool {
    let (net, prefix) = cidr.split_once('/').expect("CIDR");
    let net: std::net::Ipv4Addr = net.parse().expect("network");
    let ip: std::net::Ipv4Addr = ip.parse().expect("address");
    let bits: u32 = prefix.parse().expect("prefix");
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(ip) & mask == u32::from(net)
}

async fn create_answers_creating_with_the_documented_fields(app: &mut TestApp) {
    let owner = app.owner();
    let service = owner
        .available_service(&with(
            with(owner.service().await, "approval_enabled", json!(false)),
            "service_name",
            json!("shop"),
        ))
        .await;
    let sid = id_of(&service);
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let body = with(
        with(endpoint_to(&sid, &net), "description", json!("mine")),
        "tags",
        json!([{"key": "env", "value": "dev"}]),
    );
    let e = peer.endpoint_ok(&body).await;
    for key in ENDPOINT_KEYS {
        assert!(e.get(key).is_some(), "create answer lacks {key}: {e}");
    }
    let id = id_of(&e);
    assert!(uuid::Uuid::try_parse(&id).is_ok() && id.len() == 36, "{id}");
    assert_eq!(e["status"], "creating");
    assert_eq!(e["service_type"], "interface");
    assert_eq!(e["endpoint_service_id"], sid);
    assert_eq!(e["endpoint_service_name"], service["service_name"]);
    assert_eq!(e["vpc_id"], net.vpc_id);
    assert_eq!(e["subnet_id"], net.subnet_id);
    assert_eq!(e["project_id"], OWNER.projects[1]);
    assert_eq!(e["description"], "mine");
    assert_eq!(e["tags"], json!([{"key": "env", "value": "dev"}]));
    assert_eq!(e["enable_dns"], false);
    assert_eq!(e["dns_names"], json!([]));
    assert_eq!(e["whitelist"], json!([]));
    assert_eq!(e["enable_whitelist"], false);
    assert_eq!(e["routetables"], json!([]));
    assert_eq!(e["error"], json!([]));
    assert_eq!(e["ip_version"], "ipv4");
    assert!(e["marker_id"].as_u64().is_some_and(|m| m > 0), "{e}");
    // The address is shown once the endpoint is accepted, from its subnet.
    assert!(e.get("ip").is_none_or(Value::is_null), "{e}");
    let accepted = peer.wait_endpoint_status(&id, "accepted").await;
    let ip = accepted["ip"].as_str().expect("ip").to_string();
    assert!(is_inside(&ip, &net.cidr), "{ip} not in {}", net.cidr);
    assert_eq!(peer.allocated(&net.subnet_id).await, vec![ip.clone()]);
    for key in [
        "id",
        "marker_id",
        "created_at",
        "endpoint_service_name",
        "tags",
    ] {
        assert_eq!(accepted[key], e[key], "{key}");
    }
    let shown = peer.show_endpoint(&id).await.ok(200);
    assert_eq!(shown, accepted);
    // With DNS it gets a name; marker ids are unique.
    let dns = peer
        .endpoint_ok(&with(endpoint_to(&sid, &net), "enable_dns", json!(true)))
        .await;
    assert_eq!(dns["enable_dns"], true);
    let names = dns["dns_names"].as_array().expect("dns_names");
    assert!(
        names.len() == 1 && names[0].as_str().is_some_and(|n| n.contains(&id_of(&dns))),
        "{dns}"
    );
    assert_ne!(dns["marker_id"], e["marker_id"]);
}

async fn endpoint_waits_for_acceptance_when_the_service_requires_approval(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let e = peer.endpoint_ok(&endpoint_to(&sid, &net)).await;
    assert_eq!(e["status"], "creating");
    let pending = peer
        .wait_endpoint_status(&id_of(&e), "pendingAcceptance")
        .await;
    assert!(pending.get("ip").is_none_or(Value::is_null), "{pending}");
    // The address is reserved all the same.
    assert_eq!(peer.allocated(&net.subnet_id).await.len(), 1);
    let c = owner.connections(&sid, "").await.ok(200);
    assert_eq!(connection_ids(&c), vec![id_of(&e)]);
    assert_eq!(c["connections"][0]["status"], "pendingAcceptance");
    // It stays pending: nothing but the owner moves it on.
    for _ in 0..5 {
        next_millisecond().await;
        let shown = peer.show_endpoint(&id_of(&e)).await.ok(200);
        assert_eq!(shown["status"], "pendingAcceptance");
    }
}

async fn endpoint_is_accepted_at_once_when_the_service_needs_no_approval(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, false).await;
    // The owner may connect to its own service, from any of its projects.
    for t in [owner.clone(), app.owner_other_project()] {
        let net = t.network().await;
        let id = endpoint_of(&t, &sid, &net).await;
        let e = t.wait_endpoint_status(&id, "accepted").await;
        assert!(e["ip"].as_str().is_some(), "{e}");
    }
    let c = owner.connections(&sid, "").await.ok(200);
    assert_eq!(c["total_count"], 2);
    for conn in c["connections"].as_array().expect("connections") {
        assert_eq!(conn["status"], "accepted");
        assert_eq!(conn["domain_id"], OWNER.domain_id);
    }
}

async fn create_refuses_bad_references_and_fields_creating_nothing(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, false).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let elsewhere = peer.network_with("10.7.0.0/16", "10.7.0.0/24").await;
    let theirs = app.consumer().network().await;
    let base = endpoint_to(&sid, &net);
    let cases: Vec<(Value, &str)> = vec![
        (
            without(base.clone(), "endpoint_service_id"),
            "EndPoint.0002",
        ),
        (
            with(base.clone(), "endpoint_service_id", json!("svc")),
            "EndPoint.2003",
        ),
        (
            with(base.clone(), "endpoint_service_id", json!(uuid())),
            "EndPoint.2003",
        ),
        (without(base.clone(), "vpc_id"), "EndPoint.2011"),
        (with(base.clone(), "vpc_id", json!("")), "EndPoint.2011"),
        (
            with(base.clone(), "vpc_id", json!("vpc-1")),
            "EndPoint.0020",
        ),
        (with(base.clone(), "vpc_id", json!(uuid())), "EndPoint.2001"),
        (
            with(base.clone(), "vpc_id", json!(theirs.vpc_id)),
            "EndPoint.2001",
        ),
        (without(base.clone(), "subnet_id"), "EndPoint.2010"),
        (
            with(base.clone(), "subnet_id", json!("subnet-1")),
            "EndPoint.0023",
        ),
        (
            with(base.clone(), "subnet_id", json!(uuid())),
            "EndPoint.0023",
        ),
        (
            with(base.clone(), "subnet_id", json!(theirs.subnet_id)),
            "EndPoint.0023",
        ),
        (
            with(base.clone(), "subnet_id", json!(elsewhere.subnet_id)),
            "EndPoint.2037",
        ),
        (
            with(base.clone(), "port_ip", json!("10.0.0")),
            "EndPoint.2041",
        ),
        (
            with(base.clone(), "whitelist", json!(["10.0.0.1/24"])),
            "EndPoint.2044",
        ),
        (
            with(base.clone(), "whitelist", json!(["nope"])),
            "EndPoint.2044",
        ),
        (
            with(
                base.clone(),
                "whitelist",
                json!((0..21).map(|i| format!("10.0.0.{i}")).collect::<Vec<_>>()),
            ),
            "EndPoint.2045",
        ),
        (
            with(base.clone(), "description", json!("<b>")),
            "EndPoint.0002",
        ),
        (
            with(base.clone(), "description", json!("d".repeat(129))),
            "EndPoint.0002",
        ),
        (
            with(base.clone(), "tags", json!([{"key": "a=b", "value": "v"}])),
            "EndPoint.3068",
        ),
        (
            with(
                base.clone(),
                "policy_document",
                json!({"Version": "5.0", "Statement": []}),
            ),
            "EndPoint.2048",
        ),
        (
            with(base.clone(), "ip_version", json!("ipv6")),
            "EndPoint.0002",
        ),
    ];
    for (body, code) in cases {
        let r = peer.create_endpoint(&body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        r.err(400, code);
    }
    assert_eq!(peer.list_endpoint_ids("").await, (vec![], 0));
    assert_eq!(peer.allocated(&net.subnet_id).await, Vec::<String>::new());
    assert_eq!(owner.connections(&sid, "").await.ok(200)["total_count"], 0);
    peer.endpoint_ok(&base).await;
}

async fn endpoint_to_a_service_that_is_not_available_is_refused(app: &mut TestApp) {
    let owner = app.owner();
    let creating = id_of(&owner.create_ok(&owner.service().await).await);
    let deleting = id_of(&owner.create_ok(&owner.service().await).await);
    owner.delete(&deleting).await.ok(204);
    let peer = app.owner_other_project();
    let net = peer.network().await;
    for sid in [&creating, &deleting] {
        peer.create_endpoint(&endpoint_to(sid, &net))
            .await
            .err(400, "EndPoint.2004");
    }
    assert_eq!(peer.list_endpoint_ids("").await, (vec![], 0));
    assert_eq!(peer.allocated(&net.subnet_id).await, Vec::<String>::new());
}

async fn port_ip_must_be_a_free_address_inside_the_subnet(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, false).await;
    let peer = app.owner_other_project();
    let net = peer.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    let at = |ip: &str| with(endpoint_to(&sid, &net), "port_ip", json!(ip));
    for outside in [
        "10.0.2.5",
        "10.0.1.0",
        "10.0.1.1",
        "10.0.1.255",
        "192.168.0.5",
    ] {
        peer.create_endpoint(&at(outside))
            .await
            .err(400, "EndPoint.2043");
    }
    for bad in ["10.0.1", "10.0.1.300", "x"] {
        peer.create_endpoint(&at(bad))
            .await
            .err_naming(400, "EndPoint.2041", "port_ip");
    }
    // Taken by a port, or by another endpoint.
    let port = peer
        .create_port(
            &json!({"network_id": net.subnet_id, "fixed_ips": [{"ip_address": "10.0.1.20"}]}),
        )
        .await
        .ok(200);
    assert_eq!(port["port"]["fixed_ips"][0]["ip_address"], "10.0.1.20");
    peer.create_endpoint(&at("10.0.1.20"))
        .await
        .err(400, "EndPoint.2042");
    let first = id_of(&peer.endpoint_ok(&at("10.0.1.30")).await);
    peer.create_endpoint(&at("10.0.1.30"))
        .await
        .err(400, "EndPoint.2042");
    let e = peer.wait_endpoint_status(&first, "accepted").await;
    assert_eq!(e["ip"], "10.0.1.30");
    let v = peer.private_ips(&net.subnet_id, "").await.ok(200);
    let endpoint_entry = v["privateips"]
        .as_array()
        .expect("privateips")
        .iter()
        .find(|p| p["ip_address"] == "10.0.1.30")
        .unwrap_or_else(|| panic!("no entry for the endpoint: {v}"))
        .clone();
    assert_eq!(endpoint_entry["device_owner"], "network:vpcep_endpoint");
    assert_eq!(
        peer.allocated(&net.subnet_id).await,
        vec!["10.0.1.20", "10.0.1.30"]
    );
    // Without port_ip the lowest free address is taken.
    let auto = id_of(&peer.endpoint_ok(&endpoint_to(&sid, &net)).await);
    let e = peer.wait_endpoint_status(&auto, "accepted").await;
    assert_eq!(e["ip"], "10.0.1.2");
}

/// vpcep-api-spec.md §3.19: for the endpoint's `subnet_id`, "the same 198.19.128.0/17 rule
/// applies" as for a service's VPC (EndPoint.3009, or 0002).
async fn endpoint_subnet_must_not_overlap_the_reserved_range(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, false).await;
    let peer = app.owner_other_project();
    let net = peer.network_with("198.19.0.0/16", "198.19.128.0/24").await;
    let r = peer.create_endpoint(&endpoint_to(&sid, &net)).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let code = r.json()["error_code"].clone();
    assert!(
        code == "EndPoint.3009" || code == "EndPoint.0002",
        "{}",
        r.text()
    );
    assert_eq!(peer.list_endpoint_ids("").await, (vec![], 0));
    assert_eq!(peer.allocated(&net.subnet_id).await, Vec::<String>::new());
}

async fn another_account_needs_permission_to_connect(app: &mut TestApp) {
    let owner = app.owner();
    let private = service_of(&owner, true).await;
    let consumer = app.consumer();
    let net = consumer.network().await;
    let msg = consumer
        .create_endpoint(&endpoint_to(&private, &net))
        .await
        .err(400, "EndPoint.2012");
    assert!(msg.contains("permission"), "{msg}");
    assert_eq!(consumer.list_endpoint_ids("").await, (vec![], 0));
    assert_eq!(
        consumer.allocated(&net.subnet_id).await,
        Vec::<String>::new()
    );
    assert_eq!(
        owner.connections(&private, "").await.ok(200)["total_count"],
        0
    );
    // An operator's services are public: anyone may connect, and its owner decides.
    let operator = app.operator();
    let public = service_of(&operator, true).await;
    let id = endpoint_of(&consumer, &public, &net).await;
    consumer
        .wait_endpoint_status(&id, "pendingAcceptance")
        .await;
    let c = operator.connections(&public, "").await.ok(200);
    assert_eq!(connection_ids(&c), vec![id.clone()]);
    assert_eq!(c["connections"][0]["domain_id"], CONSUMER.domain_id);
    let r = operator
        .connection_action(&public, "receive", &[&id])
        .await
        .ok(200);
    assert_eq!(r["connections"][0]["status"], "accepted");
    let e = consumer.wait_endpoint_status(&id, "accepted").await;
    assert!(e["ip"].as_str().is_some(), "{e}");
}

async fn permission_for_its_account_lets_another_account_connect(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let consumer = app.consumer();
    let net = consumer.network().await;
    let refused = || {
        let consumer = consumer.clone();
        let body = endpoint_to(&sid, &net);
        async move {
            consumer
                .create_endpoint(&body)
                .await
                .err(400, "EndPoint.2012");
        }
    };
    refused().await;
    // Entries for other accounts, or an organization path, do not name this account.
    let other_domain = format!("iam:domain::{}", "9f".repeat(16));
    owner
        .permission_action(&sid, "add", &[&other_domain])
        .await
        .ok(200);
    owner
        .batch_add_permissions(
            &sid,
            &json!({"permission_type": "orgPath", "permissions": [
                {"permission": "organizations:orgPath::o-abc/r-def/*", "description": "org"},
            ]}),
        )
        .await
        .ok(200);
    refused().await;
    // Its own account's entry lets it in; the owner still decides on the connection.
    let entry = format!("iam:domain::{}", CONSUMER.domain_id);
    let v = owner
        .permission_action(&sid, "add", &[&entry])
        .await
        .ok(200);
    assert_eq!(v["permissions"], json!([entry]));
    let id = endpoint_of(&consumer, &sid, &net).await;
    consumer
        .wait_endpoint_status(&id, "pendingAcceptance")
        .await;
    let c = owner.connections(&sid, &format!("id={id}")).await.ok(200);
    assert_eq!(c["connections"][0]["domain_id"], CONSUMER.domain_id);
    owner
        .connection_action(&sid, "receive", &[&id])
        .await
        .ok(200);
    let e = consumer.wait_endpoint_status(&id, "accepted").await;
    assert!(e["ip"].as_str().is_some(), "{e}");
    // Without the entry, new endpoints are refused again; the existing one stays.
    owner
        .permission_action(&sid, "remove", &[&entry])
        .await
        .ok(200);
    refused().await;
    consumer.show_endpoint(&id).await.ok(200);
    assert_eq!(consumer.list_endpoint_ids("").await, (vec![id.clone()], 1));
    // Another account is still refused throughout.
    let small = app.small();
    let small_net = small.network().await;
    small
        .create_endpoint(&endpoint_to(&sid, &small_net))
        .await
        .err(400, "EndPoint.2012");
}

async fn wildcard_permission_lets_every_account_connect(app: &mut TestApp) {
    let owner = app.owner();
    for wildcard in ["*", "iam:domain::*"] {
        let sid = service_of(&owner, false).await;
        owner
            .permission_action(&sid, "add", &[wildcard])
            .await
            .ok(200);
        for t in [app.consumer(), app.small(), app.operator()] {
            let net = t.default_network().await;
            let id = endpoint_of(&t, &sid, &net).await;
            t.wait_endpoint_status(&id, "accepted").await;
        }
        let c = owner.connections(&sid, "").await.ok(200);
        let domains: HashSet<String> = c["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .map(|c| c["domain_id"].as_str().expect("domain_id").to_string())
            .collect();
        assert_eq!(
            domains,
            HashSet::from([
                CONSUMER.domain_id.to_string(),
                SMALL.domain_id.to_string(),
                OPERATOR.domain_id.to_string()
            ]),
            "{wildcard}"
        );
    }
}

async fn owner_accepts_rejects_and_accepts_again(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let id = endpoint_of(&peer, &sid, &net).await;
    peer.wait_endpoint_status(&id, "pendingAcceptance").await;
    let act = |action: &'static str| {
        let owner = owner.clone();
        let (sid, id) = (sid.clone(), id.clone());
        async move {
            let v = owner.connection_action(&sid, action, &[&id]).await.ok(200);
            let list = v["connections"].as_array().expect("connections").clone();
            assert_eq!(list.len(), 1, "{v}");
            for key in CONNECTION_KEYS {
                assert!(list[0].get(key).is_some(), "lacks {key}: {v}");
            }
            assert_eq!(list[0]["id"], id);
            list[0].clone()
        }
    };
    // Accept: the endpoint shows its address.
    let c = act("receive").await;
    assert_eq!(c["status"], "accepted");
    assert_eq!(c["error"], json!([]));
    assert_eq!(c["domain_id"], OWNER.domain_id);
    let accepted = peer.wait_endpoint_status(&id, "accepted").await;
    let ip = accepted["ip"].as_str().expect("ip").to_string();
    // Accepting again is refused in the entry; nothing changes.
    let again = act("receive").await;
    assert_eq!(again["error"][0]["error_code"], "EndPoint.2014");
    assert!(
        again["error"][0]["error_message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{again}"
    );
    assert_eq!(peer.show_endpoint(&id).await.ok(200)["status"], "accepted");
    // Reject after accept: rejected, and the address is still shown.
    let c = act("reject").await;
    assert_eq!(c["status"], "rejected");
    let rejected = peer.wait_endpoint_status(&id, "rejected").await;
    assert_eq!(rejected["ip"], ip);
    let listed = owner.connections(&sid, "").await.ok(200);
    assert_eq!(listed["connections"][0]["status"], "rejected");
    // Rejecting twice is refused in the entry.
    let twice = act("reject").await;
    assert_eq!(twice["error"][0]["error_code"], "EndPoint.0002");
    // Re-accept.
    let c = act("receive").await;
    assert_eq!(c["status"], "accepted");
    let back = peer.wait_endpoint_status(&id, "accepted").await;
    assert_eq!(back["ip"], ip);

    // A second endpoint rejected straight from pendingAcceptance never shows an address.
    let other = endpoint_of(&peer, &sid, &net).await;
    peer.wait_endpoint_status(&other, "pendingAcceptance").await;
    let v = owner
        .connection_action(&sid, "reject", &[&other])
        .await
        .ok(200);
    assert_eq!(v["connections"][0]["status"], "rejected");
    let e = peer.wait_endpoint_status(&other, "rejected").await;
    assert!(e.get("ip").is_none_or(Value::is_null), "{e}");
}

async fn connection_action_reports_per_endpoint_errors_in_its_entries(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let other_sid = service_of(&owner, true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let theirs = endpoint_of(&peer, &other_sid, &net).await;
    peer.wait_endpoint_status(&theirs, "pendingAcceptance")
        .await;
    let unknown = uuid();
    for (endpoint, code) in [
        (unknown.as_str(), "EndPoint.2006"),
        ("not-an-endpoint", "EndPoint.2006"),
        (theirs.as_str(), "EndPoint.2013"),
    ] {
        for action in ["receive", "reject"] {
            let v = owner
                .connection_action(&sid, action, &[endpoint])
                .await
                .ok(200);
            let entry = &v["connections"][0];
            assert_eq!(entry["id"], endpoint, "{v}");
            assert_eq!(entry["error"][0]["error_code"], code, "{v}");
        }
    }
    // The other service's endpoint was not touched.
    assert_eq!(
        peer.show_endpoint(&theirs).await.ok(200)["status"],
        "pendingAcceptance"
    );
    // Refusals of the request itself.
    owner
        .connection_action(&sid, "accept", &[&theirs])
        .await
        .err_naming(400, "EndPoint.0007", "action");
    owner
        .connection_action(&uuid(), "receive", &[&theirs])
        .await
        .err(404, "EndPoint.0005");
    // Only the owner decides: the endpoint's creator, or any other account, gets 404.
    for other in [peer.clone(), app.consumer()] {
        other
            .connection_action(&other_sid, "receive", &[&theirs])
            .await
            .err(404, "EndPoint.0005");
        other
            .connections(&other_sid, "")
            .await
            .err(404, "EndPoint.0005");
    }
    assert_eq!(
        peer.show_endpoint(&theirs).await.ok(200)["status"],
        "pendingAcceptance"
    );
}

async fn connection_action_takes_exactly_one_endpoint(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let a = endpoint_of(&peer, &sid, &net).await;
    let b = endpoint_of(&peer, &sid, &net).await;
    peer.wait_endpoint_status(&a, "pendingAcceptance").await;
    peer.wait_endpoint_status(&b, "pendingAcceptance").await;
    owner
        .connection_action(&sid, "receive", &[&a, &b])
        .await
        .err(400, "EndPoint.2031");
    owner
        .connection_action(&sid, "reject", &[&a, &a])
        .await
        .err(400, "EndPoint.2031");
    owner
        .connection_action(&sid, "receive", &[])
        .await
        .err_naming(400, "EndPoint.0002", "endpoints");
    for id in [&a, &b] {
        assert_eq!(
            peer.show_endpoint(id).await.ok(200)["status"],
            "pendingAcceptance"
        );
    }
}

async fn connections_filter_by_id_status_and_marker_id_and_page(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        let id = endpoint_of(&peer, &sid, &net).await;
        peer.wait_endpoint_status(&id, "pendingAcceptance").await;
        ids.push(id);
    }
    owner
        .connection_action(&sid, "receive", &[&ids[1]])
        .await
        .ok(200);
    owner
        .connection_action(&sid, "reject", &[&ids[2]])
        .await
        .ok(200);
    let all = owner.connections(&sid, "").await.ok(200);
    assert_eq!(all["total_count"], 4);
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(connection_ids(&all), newest_first);
    // `id` answers exactly that one.
    for id in &ids {
        let one = owner.connections(&sid, &format!("id={id}")).await.ok(200);
        assert_eq!(connection_ids(&one), vec![id.clone()]);
        assert_eq!(one["total_count"], 1);
    }
    assert_eq!(
        owner
            .connections(&sid, &format!("id={}", uuid()))
            .await
            .ok(200),
        json!({"connections": [], "total_count": 0})
    );
    // `marker_id` too.
    let shown = peer.show_endpoint(&ids[3]).await.ok(200);
    let marker = shown["marker_id"].as_u64().expect("marker_id");
    let by_marker = owner
        .connections(&sid, &format!("marker_id={marker}"))
        .await
        .ok(200);
    assert_eq!(connection_ids(&by_marker), vec![ids[3].clone()]);
    assert_eq!(by_marker["connections"][0]["marker_id"], marker);
    // Status.
    for (status, expected) in [
        ("pendingAcceptance", vec![ids[3].clone(), ids[0].clone()]),
        ("accepted", vec![ids[1].clone()]),
        ("rejected", vec![ids[2].clone()]),
        ("failed", vec![]),
    ] {
        let v = owner
            .connections(&sid, &format!("status={status}"))
            .await
            .ok(200);
        assert_eq!(connection_ids(&v), expected, "{status}");
        assert_eq!(v["total_count"], expected.len(), "{status}");
    }
    // Pages and order.
    let page = owner.connections(&sid, "limit=2&offset=1").await.ok(200);
    assert_eq!(connection_ids(&page), newest_first[1..3].to_vec());
    assert_eq!(page["total_count"], 4);
    let asc = owner
        .connections(&sid, "sort_key=create_at&sort_dir=asc&limit=1000")
        .await
        .ok(200);
    assert_eq!(connection_ids(&asc), ids);
    let past = owner.connections(&sid, "offset=10").await.ok(200);
    assert_eq!(past, json!({"connections": [], "total_count": 4}));
    for (query, code) in [
        ("status=gone", "EndPoint.0019"),
        ("marker_id=x", "EndPoint.0021"),
        ("limit=0", "EndPoint.0006"),
        ("offset=-1", "EndPoint.0010"),
        ("sort_dir=up", "EndPoint.0018"),
    ] {
        let field = query.split('=').next().expect("field");
        owner
            .connections(&sid, query)
            .await
            .err_naming(400, code, field);
    }
    owner
        .connections(&uuid(), "")
        .await
        .err(404, "EndPoint.0005");
}

async fn connection_count_counts_creating_pending_and_accepted_connections(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let count = || {
        let owner = owner.clone();
        let sid = sid.clone();
        async move {
            let shown = owner.show(&sid).await.ok(200)["connection_count"].clone();
            let listed = owner.list(&format!("id={sid}")).await.ok(200)["endpoint_services"][0]
                ["connection_count"]
                .clone();
            assert_eq!(shown, listed);
            shown.as_u64().expect("connection_count")
        }
    };
    assert_eq!(count().await, 0);
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(endpoint_of(&peer, &sid, &net).await);
    }
    // Creating or pending: counted.
    assert_eq!(count().await, 3);
    for id in &ids {
        peer.wait_endpoint_status(id, "pendingAcceptance").await;
    }
    assert_eq!(count().await, 3);
    owner
        .connection_action(&sid, "receive", &[&ids[0]])
        .await
        .ok(200);
    assert_eq!(count().await, 3);
    // Rejected: not counted.
    owner
        .connection_action(&sid, "reject", &[&ids[1]])
        .await
        .ok(200);
    assert_eq!(count().await, 2);
    // Deleted: not counted.
    peer.delete_endpoint(&ids[2]).await.ok(204);
    assert_eq!(count().await, 1);
    peer.wait_endpoint_gone(&ids[2]).await;
    assert_eq!(count().await, 1);
}

async fn service_with_endpoints_cannot_be_deleted(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let id = endpoint_of(&peer, &sid, &net).await;
    peer.wait_endpoint_status(&id, "pendingAcceptance").await;
    let msg = owner.delete(&sid).await.err(400, "EndPoint.3006");
    assert!(msg.contains("pending or accepted"), "{msg}");
    assert_eq!(owner.show(&sid).await.ok(200)["status"], "available");
    // A rejected connection does not hold the service: it goes, and the rejected endpoint stays
    // its owner's, who can still see and delete it (the provider cannot).
    owner
        .connection_action(&sid, "reject", &[&id])
        .await
        .ok(200);
    owner.delete(&sid).await.ok(204);
    owner.wait_gone(&sid).await;
    assert_eq!(peer.show_endpoint(&id).await.ok(200)["status"], "rejected");
    owner.delete_endpoint(&id).await.err(404, "EndPoint.2006");
    peer.delete_endpoint(&id).await.ok(204);
    peer.wait_endpoint_gone(&id).await;
}

async fn deleted_endpoint_goes_away_and_frees_its_address(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, false).await;
    let peer = app.owner_other_project();
    let net = peer.network_with("10.0.0.0/16", "10.0.1.0/24").await;
    let keep = endpoint_of(&peer, &sid, &net).await;
    let id = endpoint_of(&peer, &sid, &net).await;
    let e = peer.wait_endpoint_status(&id, "accepted").await;
    let ip = e["ip"].as_str().expect("ip").to_string();
    let r = peer.delete_endpoint(&id).await;
    r.ok(204);
    assert!(r.body.is_empty(), "204 with a body: {}", r.text());
    let r = peer.show_endpoint(&id).await;
    match r.status {
        200 => assert_eq!(r.json()["status"], "deleting"),
        _ => {
            r.err(404, "EndPoint.2006");
        }
    }
    peer.wait_endpoint_gone(&id).await;
    peer.delete_endpoint(&id).await.err(404, "EndPoint.2006");
    peer.update_whitelist(&id, &json!({"enable_whitelist": true}))
        .await
        .err(404, "EndPoint.2006");
    assert_eq!(peer.list_endpoint_ids("").await, (vec![keep.clone()], 1));
    assert_eq!(
        connection_ids(&owner.connections(&sid, "").await.ok(200)),
        vec![keep.clone()]
    );
    // The address is free: it is no longer listed and a port may take it.
    assert!(!peer.allocated(&net.subnet_id).await.contains(&ip));
    let port = peer
        .create_port(&json!({"network_id": net.subnet_id, "fixed_ips": [{"ip_address": ip}]}))
        .await
        .ok(200);
    assert_eq!(port["port"]["fixed_ips"][0]["ip_address"], ip);
    peer.show_endpoint("not-a-uuid")
        .await
        .err(404, "EndPoint.2006");
    peer.delete_endpoint(&uuid())
        .await
        .err(404, "EndPoint.2006");
}

async fn deleting_endpoint_refuses_changes_until_it_is_gone(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let id = endpoint_of(&peer, &sid, &net).await;
    peer.wait_endpoint_status(&id, "pendingAcceptance").await;
    // From here on no transition completes until the next restart.
    app.restart(FOREVER).await;
    let (owner, peer) = (app.owner(), app.owner_other_project());
    peer.delete_endpoint(&id).await.ok(204);
    assert_eq!(peer.show_endpoint(&id).await.ok(200)["status"], "deleting");
    peer.delete_endpoint(&id).await.err(400, "EndPoint.2018");
    peer.update_whitelist(&id, &json!({"whitelist": ["10.0.0.1"]}))
        .await
        .err(400, "EndPoint.2018");
    let v = owner
        .connection_action(&sid, "receive", &[&id])
        .await
        .ok(200);
    assert_eq!(
        v["connections"][0]["error"][0]["error_code"],
        "EndPoint.2018"
    );
    let c = owner.connections(&sid, "").await.ok(200);
    assert_eq!(c["connections"][0]["status"], "deleting");
    assert_eq!(owner.show(&sid).await.ok(200)["connection_count"], 0);
    // An endpoint on its way out does not hold the service either.
    owner.delete(&sid).await.ok(204);
    assert_eq!(peer.allocated(&net.subnet_id).await.len(), 1);
    app.restart(Duration::ZERO).await;
    let (owner, peer) = (app.owner(), app.owner_other_project());
    peer.wait_endpoint_gone(&id).await;
    assert_eq!(peer.allocated(&net.subnet_id).await, Vec::<String>::new());
    owner.wait_gone(&sid).await;
}

/// A rejected endpoint does not hold its service; so the owner must not accept it again once the
/// service is being deleted (it would be served by a service that is gone).
async fn a_service_being_deleted_accepts_no_connection(app: &mut TestApp) {
    let sid = service_of(&app.owner(), true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let id = endpoint_of(&peer, &sid, &net).await;
    peer.wait_endpoint_status(&id, "pendingAcceptance").await;
    let owner = app.owner();
    owner
        .connection_action(&sid, "reject", &[&id])
        .await
        .ok(200);
    // From here on the delete stays `deleting` until the next restart.
    app.restart(FOREVER).await;
    let (owner, peer) = (app.owner(), app.owner_other_project());
    owner.delete(&sid).await.ok(204);
    assert_eq!(owner.show(&sid).await.ok(200)["status"], "deleting");
    let v = owner
        .connection_action(&sid, "receive", &[&id])
        .await
        .ok(200);
    assert_eq!(
        v["connections"][0]["error"][0]["error_code"], "EndPoint.3045",
        "{v}"
    );
    assert_eq!(peer.show_endpoint(&id).await.ok(200)["status"], "rejected");
    app.restart(Duration::ZERO).await;
    app.owner().wait_gone(&sid).await;
}

async fn creating_endpoint_cannot_be_accepted_or_rejected_yet(app: &mut TestApp) {
    let sid = service_of(&app.owner(), true).await;
    // From here on the endpoint stays `creating` until the next restart.
    app.restart(FOREVER).await;
    let (owner, peer) = (app.owner(), app.owner_other_project());
    let net = peer.network().await;
    let id = endpoint_of(&peer, &sid, &net).await;
    for action in ["receive", "reject"] {
        let v = owner.connection_action(&sid, action, &[&id]).await.ok(200);
        assert_eq!(
            v["connections"][0]["error"][0]["error_code"],
            "EndPoint.2019"
        );
    }
    assert_eq!(peer.show_endpoint(&id).await.ok(200)["status"], "creating");
    let c = owner.connections(&sid, "status=creating").await;
    // `creating` is not a documented filter value of `list_service_connections`; either way the
    // endpoint is listed.
    if c.status == 200 {
        assert_eq!(connection_ids(&c.json()), vec![id.clone()]);
    }
    assert_eq!(owner.show(&sid).await.ok(200)["connection_count"], 1);
    app.restart(Duration::ZERO).await;
    let (owner, peer) = (app.owner(), app.owner_other_project());
    peer.wait_endpoint_status(&id, "pendingAcceptance").await;
    owner
        .connection_action(&sid, "receive", &[&id])
        .await
        .ok(200);
    peer.wait_endpoint_status(&id, "accepted").await;
}

async fn endpoint_list_filters_sorts_and_pages(app: &mut TestApp) {
    let owner = app.owner();
    let named = |name: &'static str| {
        let owner = owner.clone();
        async move {
            let body = with(
                with(owner.service().await, "service_name", json!(name)),
                "approval_enabled",
                json!(false),
            );
            id_of(&owner.available_service(&body).await)
        }
    };
    let alpha = named("Alpha").await;
    let beta = named("beta").await;
    let peer = app.owner_other_project();
    let one = peer.network().await;
    let two = peer.network_with("10.1.0.0/16", "10.1.0.0/24").await;
    let mut created = Vec::new();
    for (sid, net) in [
        (&alpha, &one),
        (&beta, &one),
        (&alpha, &two),
        (&beta, &two),
        (&alpha, &one),
    ] {
        created.push(endpoint_of(&peer, sid, net).await);
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    let (ids, total) = peer.list_endpoint_ids("").await;
    assert_eq!((ids, total), (newest_first.clone(), 5));
    let v = peer.list_endpoints("limit=1").await.ok(200);
    for key in ENDPOINT_KEYS {
        assert!(
            v["endpoints"][0].get(key).is_some(),
            "list entry lacks {key}"
        );
    }
    let set = |ids: Vec<String>| ids.into_iter().collect::<HashSet<_>>();
    let pick = |idx: &[usize]| {
        idx.iter()
            .map(|&i| created[i].clone())
            .collect::<HashSet<_>>()
    };
    // Service name: case-insensitive substring of the full name.
    let (ids, total) = peer.list_endpoint_ids("endpoint_service_name=ALPHA").await;
    assert_eq!((set(ids), total), (pick(&[0, 2, 4]), 3));
    let (ids, total) = peer
        .list_endpoint_ids(&format!(
            "endpoint_service_name={}",
            &beta[beta.len() - 12..]
        ))
        .await;
    assert_eq!((set(ids), total), (pick(&[1, 3]), 2));
    assert_eq!(
        peer.list_endpoint_ids("endpoint_service_name=gamma").await,
        (vec![], 0)
    );
    assert_eq!(
        peer.list_endpoint_ids("endpoint_service_name=%25").await,
        (vec![], 0)
    );
    // VPC and id, also combined.
    let (ids, total) = peer
        .list_endpoint_ids(&format!("vpc_id={}", two.vpc_id))
        .await;
    assert_eq!((set(ids), total), (pick(&[2, 3]), 2));
    let (ids, total) = peer.list_endpoint_ids(&format!("id={}", created[1])).await;
    assert_eq!((ids, total), (vec![created[1].clone()], 1));
    let (ids, total) = peer
        .list_endpoint_ids(&format!(
            "vpc_id={}&endpoint_service_name=alpha",
            one.vpc_id
        ))
        .await;
    assert_eq!((set(ids), total), (pick(&[0, 4]), 2));
    assert_eq!(
        peer.list_endpoint_ids(&format!("id={}", uuid())).await,
        (vec![], 0)
    );
    // Pages and order.
    let mut paged = Vec::new();
    for offset in [0, 2, 4] {
        let (ids, total) = peer
            .list_endpoint_ids(&format!("limit=2&offset={offset}"))
            .await;
        assert_eq!(total, 5);
        paged.extend(ids);
    }
    assert_eq!(paged, newest_first);
    for key in ["created_at", "create_at"] {
        let (ids, _) = peer
            .list_endpoint_ids(&format!("sort_key={key}&sort_dir=asc&limit=1000"))
            .await;
        assert_eq!(ids, created);
    }
    let v = peer.list_endpoints("offset=7").await.ok(200);
    assert_eq!(v, json!({"endpoints": [], "total_count": 5}));
    for (query, code) in [
        ("limit=0", "EndPoint.0006"),
        ("limit=1001", "EndPoint.0006"),
        ("offset=x", "EndPoint.0010"),
        ("sort_key=name", "EndPoint.0017"),
        ("sort_dir=ASC", "EndPoint.0018"),
    ] {
        let field = query.split('=').next().expect("field");
        peer.list_endpoints(query)
            .await
            .err_naming(400, code, field);
    }
    // The owner's own project holds none of them.
    assert_eq!(owner.list_endpoint_ids("").await, (vec![], 0));
}

async fn endpoint_shows_the_current_name_of_its_service(app: &mut TestApp) {
    let owner = app.owner();
    let body = with(
        with(owner.service().await, "service_name", json!("before")),
        "approval_enabled",
        json!(false),
    );
    let sid = id_of(&owner.available_service(&body).await);
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let id = endpoint_of(&peer, &sid, &net).await;
    let renamed = owner.rename(&sid, "after").await.ok(200)["endpoint_service_name"].clone();
    assert_eq!(renamed, format!("{REGION}.after.{sid}"));
    let e = peer.show_endpoint(&id).await.ok(200);
    assert_eq!(e["endpoint_service_name"], renamed);
    let (ids, _) = peer.list_endpoint_ids("endpoint_service_name=after").await;
    assert_eq!(ids, vec![id.clone()]);
    assert_eq!(
        peer.list_endpoint_ids("endpoint_service_name=before").await,
        (vec![], 0)
    );
}

async fn other_projects_cannot_see_or_touch_an_endpoint(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, false).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let created = peer
        .endpoint_ok(&with(
            endpoint_to(&sid, &net),
            "description",
            json!("peer-only text"),
        ))
        .await;
    let id = id_of(&created);
    peer.wait_endpoint_status(&id, "accepted").await;
    // The service owner sees the connection, never the endpoint itself; others see nothing.
    for other in [owner.clone(), app.consumer(), app.operator()] {
        let answers = [
            other.show_endpoint(&id).await,
            other
                .update_whitelist(
                    &id,
                    &json!({"whitelist": ["10.0.0.1"], "enable_whitelist": true}),
                )
                .await,
            other.delete_endpoint(&id).await,
        ];
        for r in answers {
            r.err(404, "EndPoint.2006");
            assert!(!r.text().contains("peer-only text"), "{}", r.text());
        }
        other
            .update_policy(&id, &json!({"policy_document": {}}))
            .await
            .err(404, "EndPoint.2006");
        other.delete_policy(&id).await.err(404, "EndPoint.2006");
        assert_eq!(other.list_endpoint_ids("").await, (vec![], 0));
        assert_eq!(
            other.list_endpoint_ids(&format!("id={id}")).await,
            (vec![], 0)
        );
    }
    let shown = peer.show_endpoint(&id).await.ok(200);
    assert_eq!(shown["status"], "accepted");
    assert_eq!(shown["whitelist"], json!([]));
    assert_eq!(shown["description"], "peer-only text");
}

async fn owner_describes_connections(app: &mut TestApp) {
    let owner = app.owner();
    let sid = service_of(&owner, true).await;
    let peer = app.owner_other_project();
    let net = peer.network().await;
    let a = endpoint_of(&peer, &sid, &net).await;
    let b = endpoint_of(&peer, &sid, &net).await;
    let body = json!({"connections": [
        {"id": a, "description": "first client"},
        {"id": b, "description": "描述"},
    ]});
    let v = owner.connection_descriptions(&sid, &body).await.ok(200);
    let entries = v["connections"].as_array().expect("connections");
    assert_eq!(entries.len(), 2, "{v}");
    let by_id = |id: &str| {
        entries
            .iter()
            .find(|e| e["id"] == id)
            .unwrap_or_else(|| panic!("no entry for {id}: {v}"))
            .clone()
    };
    assert_eq!(by_id(&a)["description"], "first client");
    assert_eq!(by_id(&b)["description"], "描述");
    let listed = owner.connections(&sid, &format!("id={a}")).await.ok(200);
    assert_eq!(listed["connections"][0]["description"], "first client");
    // The consumer's own description is another field.
    assert_eq!(peer.show_endpoint(&a).await.ok(200)["description"], "");
    // Per-endpoint errors in the entries; refusals of the body as 400.
    let v = owner
        .connection_descriptions(
            &sid,
            &json!({"connections": [{"id": uuid(), "description": "x"}]}),
        )
        .await
        .ok(200);
    assert_eq!(
        v["connections"][0]["error"][0]["error_code"],
        "EndPoint.2006"
    );
    for (bad, field) in [
        (json!({"connections": []}), "connections"),
        (json!({"connections": [{"id": a}]}), "description"),
        (json!({"connections": [{"description": "x"}]}), "id"),
        (
            json!({"connections": [{"id": a, "description": "<x>"}]}),
            "description",
        ),
    ] {
        owner
            .connection_descriptions(&sid, &bad)
            .await
            .err_naming(400, "EndPoint.0002", field);
    }
    app.consumer()
        .connection_descriptions(&sid, &body)
        .await
        .err(404, "EndPoint.0005");
}
