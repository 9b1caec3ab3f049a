//! Tags of endpoint services and endpoints: the tag action
//! (`batch_add_or_remove_resource_instance`), the project's tags
//! (`list_query_project_resource_tags`) and the resource query by tags (`list_resource_instances`).

use serde_json::{json, Value};
use std::collections::HashSet;
use vpcep_testkit::app::*;

api_tests!(
    tag_action_adds_replaces_and_removes_service_tags,
    tag_action_works_on_endpoints_too,
    tag_action_keeps_at_most_ten_tags_and_changes_nothing_when_refused,
    tag_action_refuses_bad_input_with_its_codes,
    tags_of_other_projects_resources_cannot_be_changed,
    project_tags_list_every_key_with_its_distinct_values,
    resource_query_filters_by_tags_and_name,
    resource_query_pages_and_counts_with_string_numbers,
    resource_query_refuses_bad_input_with_its_codes,
);

const SERVICE: &str = "endpoint_service";
const ENDPOINT: &str = "endpoint";

fn tag(key: &str, value: &str) -> Value {
    json!({"key": key, "value": value})
}

fn tags_body(action: &str, tags: &[Value]) -> Value {
    json!({"action": action, "tags": tags})
}

/// The tags of a resource JSON as (key, value) pairs, in the order shown.
fn pairs(v: &Value) -> Vec<(String, String)> {
    v["tags"]
        .as_array()
        .unwrap_or_else(|| panic!("no tags: {v}"))
        .iter()
        .map(|t| {
            (
                t["key"].as_str().expect("key").to_string(),
                t["value"].as_str().expect("value").to_string(),
            )
        })
        .collect()
}

fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Sends a tag action and asserts 204 with no body.
async fn tag_ok(t: &Tenant, kind: &str, id: &str, body: &Value) {
    let r = t.tag_action(kind, id, body).await;
    r.ok(204);
    assert!(r.body.is_empty(), "204 with a body: {}", r.text());
}

async fn tag_action_adds_replaces_and_removes_service_tags(app: &mut TestApp) {
    let owner = app.owner();
    let id = id_of(
        &owner
            .create_ok(&with(
                owner.service().await,
                "tags",
                json!([tag("team", "web")]),
            ))
            .await,
    );
    let shown = || {
        let owner = owner.clone();
        let id = id.clone();
        async move { pairs(&owner.show(&id).await.ok(200)) }
    };
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("create", &[tag("env", "dev"), json!({"key": "empty"})]),
    )
    .await;
    assert_eq!(
        shown().await,
        kv(&[("empty", ""), ("env", "dev"), ("team", "web")])
    );
    // Create with an existing key replaces its value.
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("create", &[tag("env", "prod")]),
    )
    .await;
    assert_eq!(
        shown().await,
        kv(&[("empty", ""), ("env", "prod"), ("team", "web")])
    );
    // Delete by key and value only when the value matches; by key alone always.
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("delete", &[tag("env", "dev")]),
    )
    .await;
    assert_eq!(shown().await.len(), 3);
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("delete", &[tag("env", "prod")]),
    )
    .await;
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body(
            "delete",
            &[json!({"key": "team"}), json!({"key": "absent"})],
        ),
    )
    .await;
    assert_eq!(shown().await, kv(&[("empty", "")]));
    // An empty list changes nothing; so does a missing one.
    tag_ok(&owner, SERVICE, &id, &tags_body("create", &[])).await;
    tag_ok(&owner, SERVICE, &id, &json!({"action": "delete"})).await;
    assert_eq!(shown().await, kv(&[("empty", "")]));
    // Lists show the same tags.
    let listed = owner.list(&format!("id={id}")).await.ok(200);
    assert_eq!(pairs(&listed["endpoint_services"][0]), kv(&[("empty", "")]));
}

async fn tag_action_works_on_endpoints_too(app: &mut TestApp) {
    let owner = app.owner();
    let sid = id_of(&owner.available_service(&owner.service().await).await);
    let net = owner.network().await;
    let id = id_of(
        &owner
            .endpoint_ok(&with(
                endpoint_to(&sid, &net),
                "tags",
                json!([tag("a", "1")]),
            ))
            .await,
    );
    tag_ok(
        &owner,
        ENDPOINT,
        &id,
        &tags_body("create", &[tag("b", "2"), tag("a", "9")]),
    )
    .await;
    let e = owner.show_endpoint(&id).await.ok(200);
    assert_eq!(pairs(&e), kv(&[("a", "9"), ("b", "2")]));
    let listed = owner.list_endpoints(&format!("id={id}")).await.ok(200);
    assert_eq!(
        pairs(&listed["endpoints"][0]),
        kv(&[("a", "9"), ("b", "2")])
    );
    tag_ok(
        &owner,
        ENDPOINT,
        &id,
        &tags_body("delete", &[json!({"key": "a"})]),
    )
    .await;
    assert_eq!(
        pairs(&owner.show_endpoint(&id).await.ok(200)),
        kv(&[("b", "2")])
    );
    // The service's tags are a different set.
    assert_eq!(pairs(&owner.show(&sid).await.ok(200)), vec![]);
    // A service id is not an endpoint id, nor the other way round.
    owner
        .tag_action(ENDPOINT, &sid, &tags_body("create", &[tag("x", "y")]))
        .await
        .err(404, "EndPoint.0005");
    owner
        .tag_action(SERVICE, &id, &tags_body("create", &[tag("x", "y")]))
        .await
        .err(404, "EndPoint.0005");
}

async fn tag_action_keeps_at_most_ten_tags_and_changes_nothing_when_refused(app: &mut TestApp) {
    let owner = app.owner();
    let nine: Vec<Value> = (0..9).map(|i| tag(&format!("k{i}"), "v")).collect();
    let id = id_of(
        &owner
            .create_ok(&with(owner.service().await, "tags", json!(nine)))
            .await,
    );
    let msg = owner
        .tag_action(
            SERVICE,
            &id,
            &tags_body("create", &[tag("x1", "v"), tag("x2", "v")]),
        )
        .await
        .err(400, "EndPoint.3069");
    assert!(msg.contains("10"), "{msg}");
    assert_eq!(pairs(&owner.show(&id).await.ok(200)).len(), 9);
    // Replacing values never counts twice; the tenth fits.
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("create", &[tag("k0", "new"), tag("x1", "v")]),
    )
    .await;
    let now = pairs(&owner.show(&id).await.ok(200));
    assert_eq!(now.len(), 10);
    assert!(now.contains(&("k0".into(), "new".into())));
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("create", &[tag("k1", "new")]),
    )
    .await;
    owner
        .tag_action(SERVICE, &id, &tags_body("create", &[tag("x2", "v")]))
        .await
        .err(400, "EndPoint.3069");
    // A delete and an add in separate calls make room.
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("delete", &[json!({"key": "k2"})]),
    )
    .await;
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("create", &[tag("x2", "v")]),
    )
    .await;
    let keys: HashSet<String> = pairs(&owner.show(&id).await.ok(200))
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys.len(), 10);
    assert!(keys.contains("x2") && !keys.contains("k2"), "{keys:?}");
}

async fn tag_action_refuses_bad_input_with_its_codes(app: &mut TestApp) {
    let owner = app.owner();
    let id = id_of(
        &owner
            .create_ok(&with(
                owner.service().await,
                "tags",
                json!([tag("keep", "me")]),
            ))
            .await,
    );
    for (body, code) in [
        (tags_body("update", &[tag("k", "v")]), "EndPoint.0007"),
        (json!({"tags": [tag("k", "v")]}), "EndPoint.0007"),
        (tags_body("create", &[tag("", "v")]), "EndPoint.3066"),
        (
            tags_body("create", &[json!({"value": "v"})]),
            "EndPoint.3066",
        ),
        (
            tags_body("create", &[tag(&"k".repeat(37), "v")]),
            "EndPoint.3072",
        ),
        (
            tags_body("create", &[tag("k", &"v".repeat(44))]),
            "EndPoint.3073",
        ),
        (tags_body("create", &[tag("a=b", "v")]), "EndPoint.3068"),
        (tags_body("create", &[tag("k", "a|b")]), "EndPoint.3068"),
        (tags_body("create", &[tag(" k", "v")]), "EndPoint.3068"),
        (tags_body("delete", &[tag("a/b", "v")]), "EndPoint.3068"),
        (
            tags_body("create", &[tag("k", "1"), tag("k", "2")]),
            "EndPoint.3067",
        ),
        (json!({"action": "create", "tags": "k=v"}), "EndPoint.0002"),
    ] {
        let r = owner.tag_action(SERVICE, &id, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        r.err(400, code);
    }
    for kind in ["vpc", "endpoint_services", "ENDPOINT"] {
        owner
            .tag_action(kind, &id, &tags_body("create", &[tag("k", "v")]))
            .await
            .err(400, "EndPoint.3070");
        owner.project_tags(kind).await.err(400, "EndPoint.3070");
        owner
            .query_resources(kind, &json!({"action": "count"}))
            .await
            .err(400, "EndPoint.3070");
    }
    for unknown in [uuid(), "not-a-uuid".to_string()] {
        owner
            .tag_action(SERVICE, &unknown, &tags_body("create", &[tag("k", "v")]))
            .await
            .err(404, "EndPoint.0005");
    }
    assert_eq!(pairs(&owner.show(&id).await.ok(200)), kv(&[("keep", "me")]));
    // Unicode within the limits is fine.
    tag_ok(
        &owner,
        SERVICE,
        &id,
        &tags_body("create", &[tag(&"键".repeat(36), &"值".repeat(43))]),
    )
    .await;
}

async fn tags_of_other_projects_resources_cannot_be_changed(app: &mut TestApp) {
    let owner = app.owner();
    let sid = id_of(
        &owner
            .available_service(&with(
                with(owner.service().await, "tags", json!([tag("k", "v")])),
                "approval_enabled",
                json!(false),
            ))
            .await,
    );
    let net = owner.network().await;
    let eid = id_of(&owner.endpoint_ok(&endpoint_to(&sid, &net)).await);
    for other in [app.owner_other_project(), app.consumer()] {
        for (kind, id) in [(SERVICE, &sid), (ENDPOINT, &eid)] {
            other
                .tag_action(kind, id, &tags_body("create", &[tag("mine", "now")]))
                .await
                .err(404, "EndPoint.0005");
            other
                .tag_action(kind, id, &tags_body("delete", &[json!({"key": "k"})]))
                .await
                .err(404, "EndPoint.0005");
            assert_eq!(other.project_tags(kind).await.ok(200), json!({"tags": []}));
            let v = other
                .query_resources(kind, &json!({"action": "filter"}))
                .await
                .ok(200);
            assert_eq!(v, json!({"resources": [], "total_count": 0}));
        }
    }
    assert_eq!(pairs(&owner.show(&sid).await.ok(200)), kv(&[("k", "v")]));
    assert_eq!(pairs(&owner.show_endpoint(&eid).await.ok(200)), vec![]);
}

async fn project_tags_list_every_key_with_its_distinct_values(app: &mut TestApp) {
    let owner = app.owner();
    assert_eq!(
        owner.project_tags(SERVICE).await.ok(200),
        json!({"tags": []})
    );
    let mut services = Vec::new();
    for tags in [
        json!([tag("env", "prod"), tag("team", "web")]),
        json!([tag("env", "dev")]),
        json!([tag("env", "dev"), tag("cost", "")]),
    ] {
        let body = with(
            with(owner.service().await, "tags", tags),
            "approval_enabled",
            json!(false),
        );
        services.push(id_of(&owner.available_service(&body).await));
    }
    let v = owner.project_tags(SERVICE).await.ok(200);
    assert_eq!(
        v,
        json!({"tags": [
            {"key": "cost", "values": [""]},
            {"key": "env", "values": ["dev", "prod"]},
            {"key": "team", "values": ["web"]},
        ]})
    );
    // Endpoints have their own set.
    let net = owner.network().await;
    owner
        .endpoint_ok(&with(
            endpoint_to(&services[0], &net),
            "tags",
            json!([tag("tier", "gold")]),
        ))
        .await;
    assert_eq!(
        owner.project_tags(ENDPOINT).await.ok(200),
        json!({"tags": [{"key": "tier", "values": ["gold"]}]})
    );
    // Tag changes and deletions show at once.
    tag_ok(
        &owner,
        SERVICE,
        &services[0],
        &tags_body("delete", &[json!({"key": "team"})]),
    )
    .await;
    owner.delete(&services[1]).await.ok(204);
    owner.wait_gone(&services[1]).await;
    let v = owner.project_tags(SERVICE).await.ok(200);
    assert_eq!(
        v,
        json!({"tags": [
            {"key": "cost", "values": [""]},
            {"key": "env", "values": ["dev", "prod"]},
        ]})
    );
    // Another project of the same account has its own tags.
    assert_eq!(
        app.owner_other_project()
            .project_tags(SERVICE)
            .await
            .ok(200),
        json!({"tags": []})
    );
}

/// Creates services with these tags and names (approval off); answers their ids and full names.
async fn tagged_services(owner: &Tenant, specs: &[(&str, Value)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, tags) in specs {
        let mut body = with(owner.service().await, "tags", tags.clone());
        if !name.is_empty() {
            body["service_name"] = json!(name);
        }
        let s = owner.create_ok(&body).await;
        out.push((
            id_of(&s),
            s["service_name"].as_str().expect("name").to_string(),
        ));
    }
    out
}

fn resource_ids(v: &Value) -> HashSet<String> {
    v["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("no resources: {v}"))
        .iter()
        .map(|r| r["resource_id"].as_str().expect("resource_id").to_string())
        .collect()
}

async fn resource_query_filters_by_tags_and_name(app: &mut TestApp) {
    let owner = app.owner();
    let s = tagged_services(
        &owner,
        &[
            ("webProd", json!([tag("env", "prod"), tag("team", "web")])),
            ("webDev", json!([tag("env", "dev"), tag("team", "web")])),
            ("db", json!([tag("env", "prod"), tag("team", "db")])),
            ("bare", json!([])),
        ],
    )
    .await;
    let id = |i: usize| s[i].0.clone();
    let query = |body: Value| {
        let owner = owner.clone();
        async move {
            let v = owner.query_resources(SERVICE, &body).await.ok(200);
            let ids = resource_ids(&v);
            assert_eq!(v["total_count"], ids.len(), "{v}");
            ids
        }
    };
    let set = |idx: &[usize]| idx.iter().map(|&i| id(i)).collect::<HashSet<_>>();
    let tv = |k: &str, vs: &[&str]| json!({"key": k, "values": vs});
    for (body, expected) in [
        (json!({"action": "filter"}), set(&[0, 1, 2, 3])),
        // tags: every key, any listed value (no values: any value).
        (
            json!({"action": "filter", "tags": [tv("env", &["prod"])]}),
            set(&[0, 2]),
        ),
        (
            json!({"action": "filter", "tags": [tv("env", &["prod", "dev"]), tv("team", &["web"])]}),
            set(&[0, 1]),
        ),
        (
            json!({"action": "filter", "tags": [tv("team", &[])]}),
            set(&[0, 1, 2]),
        ),
        (
            json!({"action": "filter", "tags": [tv("env", &["qa"])]}),
            set(&[]),
        ),
        // tags_any: any of the keys.
        (
            json!({"action": "filter", "tags_any": [tv("env", &["dev"]), tv("team", &["db"])]}),
            set(&[1, 2]),
        ),
        // not_tags: drop those carrying all; not_tags_any: drop those carrying any.
        (
            json!({"action": "filter", "not_tags": [tv("env", &["prod"]), tv("team", &["web"])]}),
            set(&[1, 2, 3]),
        ),
        (
            json!({"action": "filter", "not_tags_any": [tv("env", &["prod"]), tv("team", &["web"])]}),
            set(&[3]),
        ),
        // Values and keys are trimmed.
        (
            json!({"action": "filter", "tags": [tv(" env ", &[" dev "])]}),
            set(&[1]),
        ),
        // Name: case-insensitive substring of the full name.
        (
            json!({"action": "filter", "matches": [{"key": "resource_name", "value": "WEB"}]}),
            set(&[0, 1]),
        ),
        (
            json!({"action": "filter", "matches": [{"key": "resource_name", "value": "web"}], "tags": [tv("env", &["prod"])]}),
            set(&[0]),
        ),
        (
            json!({"action": "filter", "matches": [{"key": "resource_name", "value": ""}]}),
            set(&[]),
        ),
        // Without any tag (the tag filters are then ignored).
        (
            json!({"action": "filter", "without_any_tag": true, "tags": [tv("env", &[])]}),
            set(&[3]),
        ),
    ] {
        assert_eq!(query(body.clone()).await, expected, "{body}");
    }
    // Entries carry the id, the full name and the tags.
    let v = owner
        .query_resources(
            SERVICE,
            &json!({"action": "filter", "tags": [tv("team", &["db"])]}),
        )
        .await
        .ok(200);
    assert_eq!(
        v,
        json!({"resources": [{
            "resource_id": id(2),
            "resource_name": s[2].1,
            "tags": [tag("env", "prod"), tag("team", "db")],
        }], "total_count": 1})
    );
    // Endpoints are named by their id.
    let sid = id_of(&owner.available_service(&owner.service().await).await);
    let net = owner.network().await;
    let eid = id_of(
        &owner
            .endpoint_ok(&with(
                endpoint_to(&sid, &net),
                "tags",
                json!([tag("tier", "gold")]),
            ))
            .await,
    );
    owner.endpoint_ok(&endpoint_to(&sid, &net)).await;
    let v = owner
        .query_resources(
            ENDPOINT,
            &json!({"action": "filter", "tags": [tv("tier", &[])]}),
        )
        .await
        .ok(200);
    assert_eq!(
        v,
        json!({"resources": [{"resource_id": eid, "resource_name": eid, "tags": [tag("tier", "gold")]}], "total_count": 1})
    );
    let v = owner
        .query_resources(
            ENDPOINT,
            &json!({"action": "filter", "matches": [{"key": "resource_name", "value": &eid[eid.len() - 12..]}]}),
        )
        .await
        .ok(200);
    assert_eq!(resource_ids(&v), HashSet::from([eid.clone()]));
}

async fn resource_query_pages_and_counts_with_string_numbers(app: &mut TestApp) {
    let owner = app.owner();
    let specs: Vec<(&str, Value)> = (0..5)
        .map(|i| ("", json!([tag("n", &i.to_string()), tag("all", "yes")])))
        .collect();
    let s = tagged_services(&owner, &specs).await;
    let all: HashSet<String> = s.iter().map(|(id, _)| id.clone()).collect();
    // `count` answers only the total.
    for body in [
        json!({"action": "count"}),
        json!({"action": "count", "tags": [{"key": "all", "values": ["yes"]}]}),
        json!({"action": "count", "limit": "1", "offset": "1"}),
    ] {
        let v = owner.query_resources(SERVICE, &body).await.ok(200);
        assert_eq!(v, json!({"total_count": 5}), "{body}");
    }
    let v = owner
        .query_resources(
            SERVICE,
            &json!({"action": "count", "tags": [{"key": "n", "values": ["1", "3"]}]}),
        )
        .await
        .ok(200);
    assert_eq!(v, json!({"total_count": 2}));
    // Pages with numbers sent as strings (as the SDK does) or as numbers.
    let mut seen = HashSet::new();
    for (limit, offset) in [
        (json!("2"), json!("0")),
        (json!(2), json!(2)),
        (json!("2"), json!("4")),
    ] {
        let body = json!({"action": "filter", "limit": limit, "offset": offset});
        let v = owner.query_resources(SERVICE, &body).await.ok(200);
        assert_eq!(v["total_count"], 5, "{body}");
        let page = resource_ids(&v);
        assert!(page.len() <= 2 && !page.is_empty(), "{v}");
        assert!(page.is_disjoint(&seen), "pages overlap: {v}");
        seen.extend(page);
    }
    assert_eq!(seen, all);
    let v = owner
        .query_resources(
            SERVICE,
            &json!({"action": "filter", "limit": "1000", "offset": "10"}),
        )
        .await
        .ok(200);
    assert_eq!(v, json!({"resources": [], "total_count": 5}));
}

async fn resource_query_refuses_bad_input_with_its_codes(app: &mut TestApp) {
    let owner = app.owner();
    let tv = |k: &str, vs: &[&str]| json!({"key": k, "values": vs});
    let eleven_keys: Vec<Value> = (0..11).map(|i| tv(&format!("k{i}"), &[])).collect();
    let eleven_values: Vec<String> = (0..11).map(|i| i.to_string()).collect();
    let eleven_refs: Vec<&str> = eleven_values.iter().map(String::as_str).collect();
    for (body, code) in [
        (json!({"action": "list"}), "EndPoint.0007"),
        (json!({}), "EndPoint.0007"),
        (json!({"action": "filter", "limit": "0"}), "EndPoint.0006"),
        (
            json!({"action": "filter", "limit": "1001"}),
            "EndPoint.0006",
        ),
        (json!({"action": "filter", "limit": "ten"}), "EndPoint.0006"),
        (json!({"action": "filter", "limit": 0}), "EndPoint.0006"),
        (json!({"action": "filter", "offset": "-1"}), "EndPoint.0010"),
        (json!({"action": "filter", "offset": "x"}), "EndPoint.0010"),
        (
            json!({"action": "filter", "tags": [tv("a", &[]), tv("a", &["1"])]}),
            "EndPoint.3067",
        ),
        (
            json!({"action": "filter", "tags": [tv("", &[])]}),
            "EndPoint.3072",
        ),
        (
            json!({"action": "filter", "tags": [tv("  ", &[])]}),
            "EndPoint.3072",
        ),
        (
            json!({"action": "filter", "tags": [tv(&"k".repeat(129), &[])]}),
            "EndPoint.3072",
        ),
        (
            json!({"action": "filter", "tags_any": [tv("k", &eleven_refs)]}),
            "EndPoint.3073",
        ),
        (
            json!({"action": "filter", "not_tags": [tv("k", &[&"v".repeat(256)])]}),
            "EndPoint.3073",
        ),
        (
            json!({"action": "filter", "tags": eleven_keys}),
            "EndPoint.0002",
        ),
        (
            json!({"action": "filter", "matches": [{"key": "name", "value": "x"}]}),
            "EndPoint.0002",
        ),
        (
            json!({"action": "filter", "matches": [{"key": "resource_name", "value": "v".repeat(256)}]}),
            "EndPoint.0002",
        ),
        (json!({"action": "filter", "tags": "env"}), "EndPoint.0002"),
        (
            json!({"action": "filter", "without_any_tag": "yes"}),
            "EndPoint.0002",
        ),
    ] {
        let r = owner.query_resources(SERVICE, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        r.err(400, code);
    }
    // Edges that are allowed.
    let ten_keys: Vec<Value> = (0..10).map(|i| tv(&format!("k{i}"), &[])).collect();
    for body in [
        json!({"action": "filter", "limit": "1", "offset": "0"}),
        json!({"action": "filter", "limit": 1000}),
        json!({ "action": "filter", "tags": ten_keys }),
        json!({"action": "filter", "tags": [tv(&"k".repeat(128), &[&"v".repeat(255)])]}),
        json!({"action": "filter", "sys_tags": [tv("_sys_enterprise_project_id", &["0"])]}),
    ] {
        owner.query_resources(SERVICE, &body).await.ok(200);
    }
}
