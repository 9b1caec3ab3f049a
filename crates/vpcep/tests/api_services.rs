//! Endpoint services (`create_endpoint_service`, `list_endpoint_service`, `list_service_details`,
//! `update_endpoint_service`, `update_endpoint_service_name`, `delete_endpoint_service`,
//! `list_service_describe_details`, `list_service_public_details`): field rules and defaults, port
//! claims across services sharing a `port_id` (also under concurrent requests), lists, tenancy and
//! quotas.

use serde_json::{json, Value};
use std::collections::HashSet;
use vpcep_testkit::app::*;

api_tests!(
    create_answers_the_service_with_documented_defaults,
    create_requires_each_mandatory_field,
    create_requires_uuid_port_and_vpc_ids,
    create_accepts_each_server_type_and_refuses_others,
    create_enforces_port_mapping_rules,
    protocol_defaults_to_tcp_and_is_returned_upper_case,
    service_name_becomes_region_name_id,
    service_name_rules_are_enforced,
    gateway_services_are_only_for_operators,
    tcp_proxy_accepts_the_documented_values_and_defaults_to_close,
    tags_within_limits_are_stored,
    tag_rules_are_enforced,
    description_rules_are_enforced,
    refused_creates_leave_nothing_behind,
    ports_are_claimed_across_services_sharing_a_port_id,
    concurrent_creates_of_the_same_ports_admit_exactly_one,
    update_replacing_ports_rechecks_and_frees_claims,
    concurrent_updates_to_the_same_port_admit_exactly_one,
    update_changes_only_the_given_fields,
    update_refuses_invalid_fields,
    rename_answers_the_full_name,
    list_filters_by_name_id_and_status =
        |b| b.provisioning_delay(std::time::Duration::from_secs(3600)),
    list_pages_and_sorts,
    list_refuses_out_of_range_parameters_with_their_codes,
    page_past_the_end_is_empty_with_the_true_total,
    other_tenants_get_404_and_never_the_data,
    quota_refuses_services_past_the_limit,
    describe_shows_a_summary_to_any_account,
    public_list_shows_only_operator_services,
);

/// Keys of the full service object (`create_endpoint_service`, `list_endpoint_service`,
/// `list_service_details`, `update_endpoint_service`).
const SERVICE_KEYS: &[&str] = &[
    "id",
    "port_id",
    "service_name",
    "server_type",
    "vpc_id",
    "approval_enabled",
    "status",
    "service_type",
    "created_at",
    "updated_at",
    "project_id",
    "domain_id",
    "ports",
    "tcp_proxy",
    "tags",
    "error",
    "connection_count",
    "description",
    "enable_policy",
];

fn assert_timestamp(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let b = s.as_bytes();
    assert!(
        s.len() == 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && b[19] == b'Z',
        "not YYYY-MM-DDTHH:MM:SSZ: {s}"
    );
}

fn ports_of(v: &Value) -> Vec<(u64, u64, String)> {
    v["ports"]
        .as_array()
        .unwrap_or_else(|| panic!("no ports in {v}"))
        .iter()
        .map(|p| {
            (
                p["client_port"].as_u64().expect("client_port"),
                p["server_port"].as_u64().expect("server_port"),
                p["protocol"].as_str().expect("protocol").to_string(),
            )
        })
        .collect()
}

fn tcp(pairs: &[(u64, u64)]) -> Vec<(u64, u64, String)> {
    pairs.iter().map(|&(c, s)| (c, s, "TCP".into())).collect()
}

async fn create_answers_the_service_with_documented_defaults(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.fresh_port().await;
    let body = service_on(&backing, &[(8080, 90), (8081, 80), (22, 2222)]);
    let s = owner.create_ok(&body).await;
    for key in SERVICE_KEYS {
        assert!(s.get(key).is_some(), "create answer lacks {key}: {s}");
    }
    let id = id_of(&s);
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "id {id}");
    assert_eq!(id.len(), 36);
    assert_eq!(s["port_id"], backing.port_id);
    assert_eq!(s["vpc_id"], backing.vpc_id);
    assert_eq!(s["server_type"], "VM");
    assert_eq!(s["status"], "creating");
    assert_eq!(s["approval_enabled"], true);
    assert_eq!(s["service_type"], "interface");
    assert_eq!(s["tcp_proxy"], "close");
    assert_eq!(s["tags"], json!([]));
    assert_eq!(s["error"], json!([]));
    assert_eq!(s["description"], "");
    assert_eq!(s["enable_policy"], false);
    assert_eq!(s["connection_count"], 0);
    assert_eq!(s["project_id"], OWNER.projects[0]);
    assert_eq!(s["domain_id"], OWNER.domain_id);
    assert_eq!(s["service_name"], format!("{REGION}.{id}"));
    // Mappings come back in the order they were sent.
    assert_eq!(ports_of(&s), tcp(&[(8080, 90), (8081, 80), (22, 2222)]));
    assert_timestamp(&s["created_at"]);
    assert_timestamp(&s["updated_at"]);
    // The stored service says the same.
    let shown = owner.show(&id).await.ok(200);
    for key in [
        "port_id",
        "vpc_id",
        "service_name",
        "ports",
        "tags",
        "created_at",
    ] {
        assert_eq!(shown[key], s[key], "{key}");
    }
    // With no provisioning delay and no data plane there is nothing to wait for: the service
    // was stored available, so the first read shows it (no reconciler pass in between).
    assert_eq!(shown["status"], "available", "{shown}");
    // Optional extras: `ip` is echoed, `vip_port_id` and unknown fields are ignored.
    let mut extras = with(owner.service().await, "ip", json!("10.0.0.7"));
    extras["vip_port_id"] = json!(uuid());
    extras["some_future_field"] = json!({"x": 1});
    let s = owner.create_ok(&extras).await;
    assert_eq!(s["ip"], "10.0.0.7");
    owner
        .create(&with(owner.service().await, "ip", json!("300.1.1.1")))
        .await
        .err_naming(400, "EndPoint.3010", "ip");
    owner
        .create(&with(owner.service().await, "ip_version", json!("ipv6")))
        .await
        .err_naming(400, "EndPoint.0002", "snat_network_id");
    // Explicit values are kept.
    let s = owner
        .create_ok(&with(
            with(owner.service().await, "approval_enabled", json!(false)),
            "service_type",
            json!("interface"),
        ))
        .await;
    assert_eq!(s["approval_enabled"], false);
    assert_eq!(s["service_type"], "interface");
}

async fn create_requires_each_mandatory_field(app: &mut TestApp) {
    let owner = app.owner();
    for field in ["port_id", "vpc_id", "server_type", "ports"] {
        owner
            .create(&without(owner.service().await, field))
            .await
            .err_naming(400, "EndPoint.0002", field);
        // An explicit null is the same as leaving it out.
        owner
            .create(&with(owner.service().await, field, Value::Null))
            .await
            .err_naming(400, "EndPoint.0002", field);
    }
    owner.create(&json!({})).await.err(400, "EndPoint.0002");
}

async fn create_requires_uuid_port_and_vpc_ids(app: &mut TestApp) {
    let owner = app.owner();
    let not_uuids = [
        "",
        "port-1",
        "4189d3c288824871a3c2d380272eed88",
        "4189d3c2-8882-4871-a3c2-d380272eed8",
        "{4189d3c2-8882-4871-a3c2-d380272eed88}",
        "4189d3c2-8882-4871-a3c2-d380272eedzz",
    ];
    for bad in not_uuids {
        owner
            .create(&with(owner.service().await, "port_id", json!(bad)))
            .await
            .err_naming(400, "EndPoint.3003", "port_id");
        owner
            .create(&with(owner.service().await, "vpc_id", json!(bad)))
            .await
            .err_naming(400, "EndPoint.0020", "vpc_id");
    }
}

async fn create_accepts_each_server_type_and_refuses_others(app: &mut TestApp) {
    let owner = app.owner();
    // Each on a port of the matching kind.
    for t in ["VM", "VIP", "LB"] {
        let body = service_on(&owner.fresh_port_of(t).await, DEFAULT_PORTS);
        let s = owner.create_ok(&with(body, "server_type", json!(t))).await;
        assert_eq!(s["server_type"], t);
    }
    for bad in ["BMS", "lb", "", "ELB"] {
        owner
            .create(&with(owner.service().await, "server_type", json!(bad)))
            .await
            .err_naming(400, "EndPoint.3021", "server_type");
    }
}

async fn create_enforces_port_mapping_rules(app: &mut TestApp) {
    let owner = app.owner();
    let base = owner.service().await;
    let bad = |ports: Value| with(base.clone(), "ports", ports);
    // 1..200 mappings.
    owner
        .create(&bad(json!([])))
        .await
        .err_naming(400, "EndPoint.3043", "ports");
    let many: Vec<Value> = (1..=201).map(|p| port(p, p)).collect();
    owner
        .create(&bad(json!(many)))
        .await
        .err(400, "EndPoint.3074");
    let most: Vec<Value> = (1..=200).map(|p| port(p, p + 1000)).collect();
    let s = owner
        .create_ok(&with(owner.service().await, "ports", json!(most)))
        .await;
    assert_eq!(s["ports"].as_array().map(Vec::len), Some(200));
    // Ports 1..65535 on both sides, both mandatory.
    for (c, s, field) in [
        (json!(0), json!(80), "ports[0].client_port"),
        (json!(65536), json!(80), "ports[0].client_port"),
        (json!(-1), json!(80), "ports[0].client_port"),
        (json!(80), json!(0), "ports[0].server_port"),
        (json!(80), json!(65536), "ports[0].server_port"),
        (Value::Null, json!(80), "ports[0].client_port"),
        (json!(80), Value::Null, "ports[0].server_port"),
    ] {
        owner
            .create(&bad(json!([{"client_port": c, "server_port": s}])))
            .await
            .err_naming(400, "EndPoint.3043", field);
    }
    let edges = owner
        .create_ok(&with(
            owner.service().await,
            "ports",
            json!([port(1, 65535), port(65535, 1)]),
        ))
        .await;
    assert_eq!(ports_of(&edges), tcp(&[(1, 65535), (65535, 1)]));
    // The same mapping twice, or one client port mapped to two backend ports.
    owner
        .create(&bad(json!([port(80, 8080), port(81, 81), port(80, 8080)])))
        .await
        .err_naming(400, "EndPoint.3043", "ports[2]");
    owner
        .create(&bad(json!([port(80, 8080), port(80, 8081)])))
        .await
        .err_naming(400, "EndPoint.3043", "ports[1]");
    // Two client ports may share a backend port within one service.
    let shared = owner
        .create_ok(&with(
            owner.service().await,
            "ports",
            json!([port(80, 8080), port(81, 8080)]),
        ))
        .await;
    assert_eq!(ports_of(&shared), tcp(&[(80, 8080), (81, 8080)]));
}

async fn protocol_defaults_to_tcp_and_is_returned_upper_case(app: &mut TestApp) {
    let owner = app.owner();
    let s = owner
        .create_ok(&with(
            owner.service().await,
            "ports",
            json!([
                {"client_port": 80, "server_port": 8080},
                {"client_port": 81, "server_port": 8081, "protocol": "tcp"},
                {"client_port": 82, "server_port": 8082, "protocol": null},
            ]),
        ))
        .await;
    assert_eq!(ports_of(&s), tcp(&[(80, 8080), (81, 8081), (82, 8082)]));
    let shown = owner.show(&id_of(&s)).await.ok(200);
    assert_eq!(ports_of(&shown), tcp(&[(80, 8080), (81, 8081), (82, 8082)]));
}

async fn service_name_becomes_region_name_id(app: &mut TestApp) {
    let owner = app.owner();
    for name in ["a", "obs_test", "My-svc_1", "abcdefghij012345"] {
        let s = owner
            .create_ok(&with(owner.service().await, "service_name", json!(name)))
            .await;
        let id = id_of(&s);
        assert_eq!(s["service_name"], format!("{REGION}.{name}.{id}"));
        assert_eq!(
            owner.show(&id).await.ok(200)["service_name"],
            format!("{REGION}.{name}.{id}")
        );
    }
    // No name, or an empty one: region.id.
    for body in [
        owner.service().await,
        with(owner.service().await, "service_name", json!("")),
    ] {
        let s = owner.create_ok(&body).await;
        assert_eq!(s["service_name"], format!("{REGION}.{}", id_of(&s)));
    }
}

async fn service_name_rules_are_enforced(app: &mut TestApp) {
    let owner = app.owner();
    for bad in [
        "abcdefghij0123456",
        "a.b",
        "a b",
        "name!",
        "名字",
        "a/b",
        "é",
    ] {
        owner
            .create(&with(owner.service().await, "service_name", json!(bad)))
            .await
            .err_naming(400, "EndPoint.1003", "service_name");
    }
}

async fn gateway_services_are_only_for_operators(app: &mut TestApp) {
    let owner = app.owner();
    let gateway = with(owner.service().await, "service_type", json!("gateway"));
    owner.create(&gateway).await.err(403, "EndPoint.0004");
    assert_eq!(owner.list_ids("").await, (vec![], 0));
    let operator = app.operator();
    let gateway = with(operator.service().await, "service_type", json!("gateway"));
    let s = operator.create_ok(&gateway).await;
    assert_eq!(s["service_type"], "gateway");
}

async fn tcp_proxy_accepts_the_documented_values_and_defaults_to_close(app: &mut TestApp) {
    let owner = app.owner();
    for mode in ["close", "toa_open", "proxy_open", "open", "proxy_vni"] {
        let s = owner
            .create_ok(&with(owner.service().await, "tcp_proxy", json!(mode)))
            .await;
        assert_eq!(s["tcp_proxy"], mode);
        assert_eq!(owner.show(&id_of(&s)).await.ok(200)["tcp_proxy"], mode);
    }
    assert_eq!(
        owner.create_ok(&owner.service().await).await["tcp_proxy"],
        "close"
    );
    for bad in ["CLOSE", "proxy", ""] {
        owner
            .create(&with(owner.service().await, "tcp_proxy", json!(bad)))
            .await
            .err_naming(400, "EndPoint.0002", "tcp_proxy");
    }
}

fn tag(key: &str, value: &str) -> Value {
    json!({"key": key, "value": value})
}

async fn tags_within_limits_are_stored(app: &mut TestApp) {
    let owner = app.owner();
    let key36 = "k".repeat(36);
    let value43 = "é".repeat(43);
    let tags = json!([
        tag(&key36, &value43),
        tag("环境", ""),
        tag("a b", "x y"),
        {"key": "novalue"},
        tag("k4", "v"),
        tag("k5", "v"),
        tag("k6", "v"),
        tag("k7", "v"),
        tag("k8", "v"),
        tag(&"长".repeat(36), "v"),
    ]);
    let s = owner
        .create_ok(&with(owner.service().await, "tags", tags))
        .await;
    let shown = owner.show(&id_of(&s)).await.ok(200);
    for v in [&s, &shown] {
        let got: HashSet<(String, String)> = v["tags"]
            .as_array()
            .expect("tags")
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().expect("key").to_string(),
                    t["value"].as_str().expect("value").to_string(),
                )
            })
            .collect();
        assert_eq!(got.len(), 10, "{v}");
        assert!(got.contains(&(key36.clone(), value43.clone())));
        assert!(got.contains(&("环境".into(), String::new())));
        assert!(got.contains(&("novalue".into(), String::new())));
        assert!(got.contains(&("a b".into(), "x y".into())));
        assert!(got.contains(&("长".repeat(36), "v".into())));
    }
}

async fn tag_rules_are_enforced(app: &mut TestApp) {
    let owner = app.owner();
    let refused = |tags: Value, code: &'static str| {
        let owner = owner.clone();
        async move {
            owner
                .create(&with(owner.service().await, "tags", tags.clone()))
                .await
                .err(400, code);
        }
    };
    let eleven: Vec<Value> = (0..11).map(|i| tag(&format!("k{i}"), "v")).collect();
    refused(json!(eleven), "EndPoint.3069").await;
    refused(json!([tag(&"k".repeat(37), "v")]), "EndPoint.3072").await;
    refused(json!([tag(&"长".repeat(37), "v")]), "EndPoint.3072").await;
    refused(json!([tag("k", &"v".repeat(44))]), "EndPoint.3073").await;
    refused(json!([tag("k", &"é".repeat(44))]), "EndPoint.3073").await;
    refused(json!([tag("", "v")]), "EndPoint.3066").await;
    refused(json!([{"value": "v"}]), "EndPoint.3066").await;
    for c in ["=", "*", "<", ">", "\\", ",", "|", "/"] {
        refused(json!([tag(&format!("a{c}b"), "v")]), "EndPoint.3068").await;
        refused(json!([tag("k", &format!("a{c}b"))]), "EndPoint.3068").await;
    }
    for spaced in [" k", "k ", " "] {
        refused(json!([tag(spaced, "v")]), "EndPoint.3068").await;
    }
    for spaced in [" v", "v "] {
        refused(json!([tag("k", spaced)]), "EndPoint.3068").await;
    }
    refused(json!([tag("k", "1"), tag("k", "2")]), "EndPoint.3067").await;
    assert_eq!(owner.list_ids("").await, (vec![], 0));
}

async fn description_rules_are_enforced(app: &mut TestApp) {
    let owner = app.owner();
    let d128 = "描".repeat(128);
    let s = owner
        .create_ok(&with(owner.service().await, "description", json!(d128)))
        .await;
    assert_eq!(s["description"], d128);
    assert_eq!(owner.show(&id_of(&s)).await.ok(200)["description"], d128);
    for bad in [
        "d".repeat(129),
        "a<b".into(),
        "a>b".into(),
        "<script>".into(),
    ] {
        owner
            .create(&with(owner.service().await, "description", json!(bad)))
            .await
            .err_naming(400, "EndPoint.0002", "description");
    }
}

async fn refused_creates_leave_nothing_behind(app: &mut TestApp) {
    let owner = app.owner();
    let backing = owner.fresh_port().await;
    // Each refusal would otherwise have claimed 80 and 8080 on the port.
    for body in [
        with(
            service_on(&backing, &[(80, 8080)]),
            "server_type",
            json!("X"),
        ),
        with(
            service_on(&backing, &[(80, 8080)]),
            "tags",
            json!([tag("", "")]),
        ),
        with(
            service_on(&backing, &[(80, 8080)]),
            "service_type",
            json!("gateway"),
        ),
    ] {
        assert!(owner.create(&body).await.status >= 400);
    }
    assert_eq!(owner.list_ids("").await, (vec![], 0));
    owner.create_ok(&service_on(&backing, &[(80, 8080)])).await;
}

async fn ports_are_claimed_across_services_sharing_a_port_id(app: &mut TestApp) {
    let owner = app.owner();
    let shared = owner.fresh_port().await;
    owner
        .create_ok(&service_on(&shared, &[(80, 8080), (443, 8443)]))
        .await;
    // The same client port, or the same server port, on the same port_id: refused.
    let msg = owner
        .create(&service_on(&shared, &[(80, 9090)]))
        .await
        .err(400, "EndPoint.3044");
    assert!(msg.contains("80"), "{msg}");
    let msg = owner
        .create(&service_on(&shared, &[(81, 8443)]))
        .await
        .err(400, "EndPoint.3044");
    assert!(msg.contains("8443"), "{msg}");
    owner
        .create(&service_on(&shared, &[(90, 9000), (80, 8080)]))
        .await
        .err(400, "EndPoint.3044");
    // Another project, even of the same account, cannot use the port at all.
    app.owner_other_project()
        .create(&service_on(&shared, &[(80, 7070)]))
        .await
        .err(400, "EndPoint.3008");
    app.consumer()
        .create(&service_on(&shared, &[(7443, 7444)]))
        .await
        .err(400, "EndPoint.3008");
    // Other ports on the same port_id, or the same ports on another port_id: fine.
    owner.create_ok(&service_on(&shared, &[(81, 8081)])).await;
    owner
        .create_ok(&service_on(
            &owner.fresh_port().await,
            &[(80, 8080), (443, 8443)],
        ))
        .await;
    // A client port of one service may equal a server port of another.
    owner.create_ok(&service_on(&shared, &[(8080, 80)])).await;
    let (_, total) = owner.list_ids("").await;
    assert_eq!(total, 4);
}

async fn concurrent_creates_of_the_same_ports_admit_exactly_one(app: &mut TestApp) {
    let owner = app.owner();
    let shared = owner.fresh_port().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20u16 {
        let owner = owner.clone();
        // Half collide on the client port, half on the server port.
        let body = if i % 2 == 0 {
            service_on(&shared, &[(443, 10_000 + i)])
        } else {
            service_on(&shared, &[(20_000 + i, 8443), (443, 8443)])
        };
        tasks.spawn(async move { owner.create(&body).await });
    }
    let mut created = Vec::new();
    let mut refused = 0;
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        if r.status == 200 {
            created.push(id_of(&r.json()));
        } else {
            r.err(400, "EndPoint.3044");
            refused += 1;
        }
    }
    // Every even body claims client 443; every odd one claims client 443 and server 8443.
    // So all conflict pairwise and exactly one may win.
    assert_eq!(created.len(), 1, "created {created:?}");
    assert_eq!(refused, 19);
    let (ids, total) = owner.list_ids("limit=100").await;
    assert_eq!((ids, total), (created, 1));
}

async fn update_replacing_ports_rechecks_and_frees_claims(app: &mut TestApp) {
    let owner = app.owner();
    let shared = owner.fresh_port().await;
    let a = id_of(&owner.create_ok(&service_on(&shared, &[(80, 8080)])).await);
    let b = id_of(&owner.create_ok(&service_on(&shared, &[(81, 8081)])).await);
    // B may not take A's ports.
    owner
        .update(&b, &json!({"ports": [port(80, 9000)]}))
        .await
        .err(400, "EndPoint.3044");
    owner
        .update(&b, &json!({"ports": [port(82, 8080)]}))
        .await
        .err(400, "EndPoint.3044");
    // The refused update changed nothing, and B still holds its own ports.
    assert_eq!(ports_of(&owner.show(&b).await.ok(200)), tcp(&[(81, 8081)]));
    owner
        .create(&service_on(&shared, &[(81, 9999)]))
        .await
        .err(400, "EndPoint.3044");
    // A service may re-send its own ports with additions.
    let updated = owner
        .update(&b, &json!({"ports": [port(81, 8081), port(83, 8083)]}))
        .await
        .ok(200);
    assert_eq!(ports_of(&updated), tcp(&[(81, 8081), (83, 8083)]));
    // A moves away: its old ports are free for others.
    owner
        .update(&a, &json!({"ports": [port(90, 9090)]}))
        .await
        .ok(200);
    owner
        .update(&b, &json!({"ports": [port(80, 8080)]}))
        .await
        .ok(200);
    // B's dropped ports are free again too.
    owner
        .create_ok(&service_on(&shared, &[(81, 8081), (83, 8083)]))
        .await;
    // Moving to another port_id re-checks claims there.
    let other = owner.fresh_port().await;
    owner.create_ok(&service_on(&other, &[(90, 1)])).await;
    owner
        .update(&a, &json!({"port_id": other.port_id}))
        .await
        .err(400, "EndPoint.3044");
    let moved = owner
        .update(&b, &json!({"port_id": other.port_id}))
        .await
        .ok(200);
    assert_eq!(moved["port_id"], other.port_id);
    // ...and frees the claims on the old one.
    owner.create_ok(&service_on(&shared, &[(80, 8080)])).await;
}

async fn concurrent_updates_to_the_same_port_admit_exactly_one(app: &mut TestApp) {
    let owner = app.owner();
    let shared = owner.fresh_port().await;
    let mut ids = Vec::new();
    for i in 0..10u16 {
        ids.push(id_of(
            &owner
                .create_ok(&service_on(&shared, &[(100 + i, 200 + i)]))
                .await,
        ));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate() {
        let owner = owner.clone();
        let id = id.clone();
        let i = i as u16;
        tasks.spawn(async move {
            let body = json!({"ports": [port(100 + i, 200 + i), port(5000, 6000 + i)]});
            (id.clone(), owner.update(&id, &body).await)
        });
    }
    let mut winners = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let (id, r) = r.expect("task");
        if r.status == 200 {
            winners.push(id);
        } else {
            r.err(400, "EndPoint.3044");
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    // Exactly the winner holds client port 5000; the others kept their old ports.
    for (i, id) in ids.iter().enumerate() {
        let ports = ports_of(&owner.show(id).await.ok(200));
        let i = i as u64;
        if *id == winners[0] {
            assert_eq!(ports, tcp(&[(100 + i, 200 + i), (5000, 6000 + i)]));
        } else {
            assert_eq!(ports, tcp(&[(100 + i, 200 + i)]));
        }
    }
    owner
        .create(&service_on(&shared, &[(5000, 7000)]))
        .await
        .err(400, "EndPoint.3044");
}

async fn update_changes_only_the_given_fields(app: &mut TestApp) {
    let owner = app.owner();
    let created = owner
        .create_ok(&with(
            with(owner.service().await, "service_name", json!("web")),
            "tags",
            json!([tag("env", "test")]),
        ))
        .await;
    let id = id_of(&created);
    next_millisecond().await;
    let updated = owner
        .update(
            &id,
            &json!({
                "approval_enabled": false,
                "description": "new text",
                "tcp_proxy": "proxy_open",
            }),
        )
        .await
        .ok(200);
    assert_eq!(updated["approval_enabled"], false);
    assert_eq!(updated["description"], "new text");
    assert_eq!(updated["tcp_proxy"], "proxy_open");
    for key in [
        "id",
        "port_id",
        "vpc_id",
        "service_name",
        "server_type",
        "service_type",
        "ports",
        "tags",
        "created_at",
        "project_id",
    ] {
        assert_eq!(updated[key], created[key], "{key} changed");
    }
    assert_eq!(owner.show(&id).await.ok(200)["description"], "new text");
    // A new short name rebuilds the full name; an empty one removes it.
    let renamed = owner
        .update(&id, &json!({"service_name": "api"}))
        .await
        .ok(200);
    assert_eq!(renamed["service_name"], format!("{REGION}.api.{id}"));
    let unnamed = owner
        .update(&id, &json!({"service_name": ""}))
        .await
        .ok(200);
    assert_eq!(unnamed["service_name"], format!("{REGION}.{id}"));
    // An empty update answers the service unchanged.
    let same = owner.update(&id, &json!({})).await.ok(200);
    assert_eq!(same["description"], "new text");
}

async fn update_refuses_invalid_fields(app: &mut TestApp) {
    let owner = app.owner();
    let id = id_of(&owner.create_ok(&owner.service().await).await);
    for (body, code, field) in [
        (json!({"ports": []}), "EndPoint.3043", "ports"),
        (
            json!({"ports": [port(0, 1)]}),
            "EndPoint.3043",
            "client_port",
        ),
        (
            json!({"ports": [port(80, 1), port(80, 2)]}),
            "EndPoint.3043",
            "ports[1]",
        ),
        (
            json!({"service_name": "a.b"}),
            "EndPoint.1003",
            "service_name",
        ),
        (json!({"tcp_proxy": "maybe"}), "EndPoint.0002", "tcp_proxy"),
        (json!({"description": "<>"}), "EndPoint.0002", "description"),
        (json!({"port_id": "nope"}), "EndPoint.3003", "port_id"),
        (
            json!({"approval_enabled": 1}),
            "EndPoint.0002",
            "approval_enabled",
        ),
    ] {
        owner.update(&id, &body).await.err_naming(400, code, field);
    }
    let shown = owner.show(&id).await.ok(200);
    assert_eq!(ports_of(&shown), tcp(&[(8080, 90), (8081, 80)]));
    assert_eq!(shown["tcp_proxy"], "close");
    owner
        .update(&uuid(), &json!({"description": "x"}))
        .await
        .err(404, "EndPoint.0005");
}

async fn rename_answers_the_full_name(app: &mut TestApp) {
    let owner = app.owner();
    let id = id_of(&owner.create_ok(&owner.service().await).await);
    let v = owner.rename(&id, "obs_test").await.ok(200);
    assert_eq!(
        v,
        json!({"endpoint_service_name": format!("{REGION}.obs_test.{id}")})
    );
    assert_eq!(
        owner.show(&id).await.ok(200)["service_name"],
        format!("{REGION}.obs_test.{id}")
    );
    let v = owner.rename(&id, "").await.ok(200);
    assert_eq!(v["endpoint_service_name"], format!("{REGION}.{id}"));
    for bad in ["a.b", "abcdefghij0123456", "x y"] {
        owner
            .rename(&id, bad)
            .await
            .err_naming(400, "EndPoint.1003", "endpoint_service_name");
    }
    owner
        .send(
            reqwest::Method::PUT,
            &format!("/v1/{{project_id}}/vpc-endpoint-services/{id}/name"),
            Some(b"{}".to_vec()),
        )
        .await
        .err_naming(400, "EndPoint.0002", "endpoint_service_name");
    owner.rename(&uuid(), "x").await.err(404, "EndPoint.0005");
    assert_eq!(
        owner.show(&id).await.ok(200)["service_name"],
        format!("{REGION}.{id}")
    );
}

async fn list_filters_by_name_id_and_status(app: &mut TestApp) {
    // A long delay keeps every status where the requests put it.
    let owner = app.owner();
    let mut ids = Vec::new();
    for name in ["Alpha-web", "beta_web", "gamma"] {
        let body = with(owner.service().await, "service_name", json!(name));
        ids.push(id_of(&owner.create_ok(&body).await));
    }
    let [alpha, beta, gamma] = <[String; 3]>::try_from(ids).expect("three");
    let plain = id_of(&owner.create_ok(&owner.service().await).await);
    owner.delete(&gamma).await.ok(204);
    let set = |ids: Vec<String>| ids.into_iter().collect::<HashSet<_>>();
    let hs = |ids: &[&String]| ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>();

    // Name: case-insensitive substring of the full name (which contains region and id).
    let (ids, total) = owner.list_ids("endpoint_service_name=WEB").await;
    assert_eq!((set(ids), total), (hs(&[&alpha, &beta]), 2));
    let (ids, total) = owner.list_ids("endpoint_service_name=alpha").await;
    assert_eq!((set(ids), total), (hs(&[&alpha]), 1));
    let (ids, total) = owner
        .list_ids(&format!(
            "endpoint_service_name={}",
            &plain[plain.len() - 12..]
        ))
        .await;
    assert_eq!((set(ids), total), (hs(&[&plain]), 1));
    let (ids, total) = owner
        .list_ids(&format!("endpoint_service_name={REGION}"))
        .await;
    assert_eq!(total, 4);
    assert_eq!(ids.len(), 4);
    // LIKE wildcards are taken literally.
    assert_eq!(
        owner.list_ids("endpoint_service_name=%25").await,
        (vec![], 0)
    );
    assert_eq!(
        owner.list_ids("endpoint_service_name=ha_w").await,
        (vec![], 0)
    );
    let (ids, _) = owner.list_ids("endpoint_service_name=a_web").await;
    assert_eq!(set(ids), hs(&[&beta]));

    // Id: exact.
    let (ids, total) = owner.list_ids(&format!("id={beta}")).await;
    assert_eq!((ids, total), (vec![beta.clone()], 1));
    assert_eq!(owner.list_ids(&format!("id={}", uuid())).await, (vec![], 0));

    // Status.
    let (ids, total) = owner.list_ids("status=creating").await;
    assert_eq!((set(ids), total), (hs(&[&alpha, &beta, &plain]), 3));
    let (ids, total) = owner.list_ids("status=deleting").await;
    assert_eq!((ids, total), (vec![gamma.clone()], 1));
    assert_eq!(owner.list_ids("status=available").await, (vec![], 0));
    assert_eq!(owner.list_ids("status=failed").await, (vec![], 0));
    // The unfiltered total counts every status.
    assert_eq!(owner.list_ids("").await.1, 4);
    for bad in ["AVAILABLE", "gone", "pendingAcceptance"] {
        owner
            .list(&format!("status={bad}"))
            .await
            .err_naming(400, "EndPoint.0019", "status");
    }

    // Combined filters are a conjunction.
    let (ids, total) = owner
        .list_ids(&format!(
            "status=creating&endpoint_service_name=web&id={alpha}"
        ))
        .await;
    assert_eq!((ids, total), (vec![alpha.clone()], 1));
    assert_eq!(
        owner.list_ids(&format!("status=deleting&id={alpha}")).await,
        (vec![], 0)
    );

    // Every resource is in one border group.
    let (_, total) = owner.list_ids("public_border_group=center").await;
    assert_eq!(total, 4);
    assert_eq!(
        owner.list_ids("public_border_group=elsewhere").await,
        (vec![], 0)
    );
    // List entries are full service objects.
    let v = owner.list(&format!("id={alpha}")).await.ok(200);
    for key in SERVICE_KEYS {
        assert!(
            v["endpoint_services"][0].get(key).is_some(),
            "list entry lacks {key}"
        );
    }
}

async fn list_pages_and_sorts(app: &mut TestApp) {
    let owner = app.owner();
    let mut created = Vec::new();
    for _ in 0..12 {
        created.push(id_of(&owner.create_ok(&owner.service().await).await));
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    // Default: 10, newest first, with the total.
    let (ids, total) = owner.list_ids("").await;
    assert_eq!(total, 12);
    assert_eq!(ids, newest_first[..10]);
    // Pages of 5 cover everything once, in order.
    let mut paged = Vec::new();
    for offset in [0, 5, 10] {
        let (ids, total) = owner.list_ids(&format!("limit=5&offset={offset}")).await;
        assert_eq!(total, 12);
        paged.extend(ids);
    }
    assert_eq!(paged, newest_first);
    // Oldest first, with both spellings of the sort key.
    for key in ["created_at", "create_at"] {
        let (ids, _) = owner
            .list_ids(&format!("limit=1000&sort_key={key}&sort_dir=asc"))
            .await;
        assert_eq!(ids, created);
    }
    let (ids, _) = owner.list_ids("limit=3&offset=1&sort_dir=asc").await;
    assert_eq!(ids, created[1..4]);
    // By update time: the one changed last comes first. The reconciler's status changes
    // update the time too, so let them finish first.
    eventually(SETTLE, || async {
        match owner.list_ids("status=available").await {
            (_, 12) => Ok(()),
            (_, n) => Err(n),
        }
    })
    .await;
    next_millisecond().await;
    let touched = created[3].clone();
    owner
        .update(&touched, &json!({"description": "touched"}))
        .await
        .ok(200);
    for key in ["updated_at", "update_at"] {
        let (ids, _) = owner
            .list_ids(&format!("limit=1&sort_key={key}&sort_dir=desc"))
            .await;
        assert_eq!(ids, vec![touched.clone()]);
        let (ids, _) = owner
            .list_ids(&format!("limit=1000&sort_key={key}&sort_dir=asc"))
            .await;
        assert_eq!(ids.last(), Some(&touched));
    }
    // Numbers at the edges of the ranges.
    let (ids, _) = owner.list_ids("limit=1").await;
    assert_eq!(ids.len(), 1);
    let (ids, _) = owner.list_ids("limit=1000&offset=0").await;
    assert_eq!(ids.len(), 12);
}

async fn list_refuses_out_of_range_parameters_with_their_codes(app: &mut TestApp) {
    let owner = app.owner();
    let cases = [
        ("limit=0", "EndPoint.0006"),
        ("limit=1001", "EndPoint.0006"),
        ("limit=-1", "EndPoint.0006"),
        ("limit=ten", "EndPoint.0006"),
        ("limit=1.5", "EndPoint.0006"),
        ("limit=99999999999999999999", "EndPoint.0006"),
        ("offset=-1", "EndPoint.0010"),
        ("offset=x", "EndPoint.0010"),
        ("offset=99999999999999999999", "EndPoint.0010"),
        ("sort_key=name", "EndPoint.0017"),
        ("sort_key=CREATED_AT", "EndPoint.0017"),
        ("sort_dir=up", "EndPoint.0018"),
        ("sort_dir=ASC", "EndPoint.0018"),
        ("status=nope", "EndPoint.0019"),
    ];
    for (query, code) in cases {
        let field = query.split('=').next().expect("field");
        owner.list(query).await.err_naming(400, code, field);
        // The public list applies the same page rules.
        if field != "status" {
            owner.public(query).await.err_naming(400, code, field);
        }
    }
}

async fn page_past_the_end_is_empty_with_the_true_total(app: &mut TestApp) {
    let owner = app.owner();
    for _ in 0..3 {
        owner.create_ok(&owner.service().await).await;
    }
    for query in ["offset=3", "offset=4&limit=2", "offset=1000000"] {
        let v = owner.list(query).await.ok(200);
        assert_eq!(v["endpoint_services"], json!([]), "{query}");
        assert_eq!(v["total_count"], 3, "{query}");
    }
    // With a filter the total is the filtered one.
    let v = owner
        .list(&format!("offset=10&endpoint_service_name={REGION}"))
        .await
        .ok(200);
    assert_eq!(v["endpoint_services"], json!([]));
    assert_eq!(v["total_count"], 3);
    // The last partial page.
    let (ids, total) = owner.list_ids("offset=2&limit=2").await;
    assert_eq!((ids.len(), total), (1, 3));
}

async fn other_tenants_get_404_and_never_the_data(app: &mut TestApp) {
    let owner = app.owner();
    let created = owner
        .create_ok(&with(
            with(owner.service().await, "service_name", json!("secret")),
            "description",
            json!("owner-only text"),
        ))
        .await;
    let id = id_of(&created);
    let port_id = created["port_id"].as_str().expect("port_id").to_string();
    let secrets = [port_id.as_str(), "owner-only text", "secret"];
    for other in [app.owner_other_project(), app.consumer(), app.operator()] {
        let answers = [
            other.show(&id).await,
            other.update(&id, &json!({"description": "mine now"})).await,
            other.rename(&id, "stolen").await,
            other.delete(&id).await,
        ];
        for r in answers {
            r.err(404, "EndPoint.0005");
            let text = r.text();
            for s in secrets {
                assert!(!text.contains(s), "leaked {s:?}: {text}");
            }
        }
        assert_eq!(other.list_ids("").await, (vec![], 0));
        assert_eq!(other.list_ids(&format!("id={id}")).await, (vec![], 0));
    }
    // The owner's service is untouched.
    let shown = owner.show(&id).await.ok(200);
    assert_eq!(shown["description"], "owner-only text");
    assert_eq!(shown["service_name"], created["service_name"]);
    assert_ne!(shown["status"], "deleting");
    // A path id that is not a UUID names nothing.
    owner.show("not-a-uuid").await.err(404, "EndPoint.0005");
    owner.delete("not-a-uuid").await.err(404, "EndPoint.0005");
}

async fn quota_refuses_services_past_the_limit(app: &mut TestApp) {
    let small = app.small();
    // Concurrent creates: exactly the quota is admitted.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let small = small.clone();
        tasks.spawn(async move { small.create(&small.service().await).await });
    }
    let mut ids = Vec::new();
    while let Some(r) = tasks.join_next().await {
        let r = r.expect("task");
        if r.status == 200 {
            ids.push(id_of(&r.json()));
        } else {
            let msg = r.err(400, "Endpoint.1018");
            assert!(msg.to_lowercase().contains("quota"), "{msg}");
        }
    }
    assert_eq!(ids.len() as u64, SMALL_QUOTA);
    let backing = small.fresh_port().await;
    small
        .create(&service_on(&backing, &[(80, 8080)]))
        .await
        .err(400, "Endpoint.1018");
    let (listed, total) = small.list_ids("").await;
    assert_eq!(total, SMALL_QUOTA);
    assert_eq!(listed.len() as u64, SMALL_QUOTA);
    // Other accounts are not limited by this one's quota.
    app.consumer()
        .create_ok(&app.consumer().service().await)
        .await;
    // Deleting one frees one unit once it is gone; the refused create claimed no ports.
    small.delete(&ids[0]).await.ok(204);
    small.wait_gone(&ids[0]).await;
    small.create_ok(&service_on(&backing, &[(80, 8080)])).await;
    small
        .create(&small.service().await)
        .await
        .err(400, "Endpoint.1018");
    assert_eq!(small.list_ids("").await.1, SMALL_QUOTA);
}

async fn describe_shows_a_summary_to_any_account(app: &mut TestApp) {
    let owner = app.owner();
    let created = owner
        .create_ok(&with(owner.service().await, "service_name", json!("shop")))
        .await;
    let id = id_of(&created);
    let full = created["service_name"].as_str().expect("name").to_string();
    let consumer = app.consumer();
    for query in [format!("id={id}"), format!("endpoint_service_name={full}")] {
        let v = consumer.describe(&query).await.ok(200);
        let keys: HashSet<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            HashSet::from([
                "id",
                "service_name",
                "service_type",
                "created_at",
                "is_charge",
                "public_border_group",
                "enable_policy",
            ]),
            "{v}"
        );
        assert_eq!(v["id"], id);
        assert_eq!(v["service_name"], full);
        assert_eq!(v["service_type"], "interface");
        assert_eq!(v["created_at"], created["created_at"]);
        assert_eq!(v["is_charge"], false);
        let text = v.to_string();
        assert!(!text.contains(created["port_id"].as_str().expect("port_id")));
        assert!(!text.contains(OWNER.projects[0]));
    }
    // The owner may describe it too.
    owner.describe(&format!("id={id}")).await.ok(200);
    // The short name alone is not the full name.
    consumer
        .describe("endpoint_service_name=shop")
        .await
        .err(404, "EndPoint.0005");
    consumer
        .describe(&format!("id={}", uuid()))
        .await
        .err(404, "EndPoint.0005");
    consumer
        .describe("id=not-a-uuid")
        .await
        .err(404, "EndPoint.0005");
    consumer.describe("").await.err(400, "EndPoint.0002");
}

async fn public_list_shows_only_operator_services(app: &mut TestApp) {
    let operator = app.operator();
    let obs = operator
        .create_ok(&with(
            with(operator.service().await, "service_type", json!("gateway")),
            "service_name",
            json!("obs"),
        ))
        .await;
    let dns = operator
        .create_ok(&with(
            operator.service().await,
            "service_name",
            json!("dns"),
        ))
        .await;
    app.owner().create_ok(&app.owner().service().await).await;
    app.consumer()
        .create_ok(&app.consumer().service().await)
        .await;
    for viewer in [app.consumer(), app.owner(), app.operator()] {
        let v = viewer.public("").await.ok(200);
        assert_eq!(v["total_count"], 2, "{v}");
        let entries = v["endpoint_services"].as_array().expect("list");
        let ids: HashSet<&str> = entries
            .iter()
            .map(|e| e["id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            ids,
            HashSet::from([
                obs["id"].as_str().expect("id"),
                dns["id"].as_str().expect("id")
            ])
        );
        for e in entries {
            assert_eq!(e["owner"], OPERATOR.domain_id);
            assert_eq!(e["is_charge"], false);
            assert!(e.get("port_id").is_none(), "backend leaked: {e}");
            assert!(e.get("ports").is_none(), "backend leaked: {e}");
        }
    }
    let consumer = app.consumer();
    let v = consumer.public("endpoint_service_name=OBS").await.ok(200);
    assert_eq!(v["total_count"], 1);
    assert_eq!(v["endpoint_services"][0]["service_type"], "gateway");
    assert_eq!(
        v["endpoint_services"][0]["service_name"],
        obs["service_name"]
    );
    let v = consumer
        .public(&format!("id={}", id_of(&dns)))
        .await
        .ok(200);
    assert_eq!(v["total_count"], 1);
    let v = consumer.public("limit=1&sort_dir=asc").await.ok(200);
    assert_eq!(v["total_count"], 2);
    assert_eq!(v["endpoint_services"][0]["id"], obs["id"]);
    let v = consumer.public("offset=5").await.ok(200);
    assert_eq!(v["endpoint_services"], json!([]));
    assert_eq!(v["total_count"], 2);
}
