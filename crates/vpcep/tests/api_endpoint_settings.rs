//! What a consumer sets on its endpoints after creating them: the client whitelist
//! (`update_endpoint_white`), the endpoint policy (`update_endpoint_policy`,
//! `delete_endpoint_policy`), gateway route tables (`update_endpoint_routetable`) and the v2
//! upgrade (`upgrade_endpoint`); and the endpoint quota (also under concurrent creates).

use serde_json::{json, Value};
use vpcep_testkit::app::*;

api_tests!(
    whitelist_update_replaces_clears_and_toggles,
    null_whitelist_clears_it_as_terraform_sends_it,
    whitelist_update_refuses_bad_entries_and_changes_nothing,
    endpoint_quota_refuses_creates_past_the_limit_even_when_concurrent,
    interface_endpoint_policy_is_a_document_and_only_where_the_service_allows_it,
    gateway_endpoint_takes_a_policy_statement,
    gateway_endpoint_route_tables_are_replaced_and_checked,
    route_table_update_refuses_a_table_another_endpoint_of_the_service_uses,
    endpoint_upgrade_needs_a_service_that_supports_professional_endpoints,
    endpoint_of_an_upgraded_service_is_upgraded_with_202,
);

/// An available service of `t` (approval off) from `body`; answers its id.
async fn available(t: &Tenant, body: Value) -> String {
    id_of(
        &t.available_service(&with(body, "approval_enabled", json!(false)))
            .await,
    )
}

/// An accepted interface endpoint of the owner's second project to an owner service made with
/// `extra` fields; answers (service id, endpoint id).
async fn accepted_interface_endpoint(app: &TestApp, extra: &[(&str, Value)]) -> (String, String) {
    let owner = app.owner();
    let mut body = owner.service().await;
    for (k, v) in extra {
        body[*k] = v.clone();
    }
    let sid = available(&owner, body).await;
    let peer = app.owner_other_project();
    let net = peer.default_network().await;
    let id = id_of(&peer.endpoint_ok(&endpoint_to(&sid, &net)).await);
    peer.wait_endpoint_status(&id, "accepted").await;
    (sid, id)
}

/// An available gateway service of the operator with `enable_policy`; answers its id.
async fn gateway_service(app: &TestApp, enable_policy: bool) -> String {
    let operator = app.operator();
    let body = with(
        with(operator.service().await, "service_type", json!("gateway")),
        "enable_policy",
        json!(enable_policy),
    );
    available(&operator, body).await
}

fn statement(effect: &str) -> Value {
    json!({"Effect": effect, "Action": ["obs:object:GetObject"], "Resource": ["obs:*:*:object:bucket/*"]})
}

async fn whitelist_update_replaces_clears_and_toggles(app: &mut TestApp) {
    let (sid, id) = accepted_interface_endpoint(app, &[]).await;
    let peer = app.owner_other_project();
    // Turned on with entries: shown as given.
    let v = peer
        .update_whitelist(
            &id,
            &json!({"whitelist": ["10.0.0.1", "192.168.0.0/24"], "enable_whitelist": true}),
        )
        .await
        .ok(200);
    assert_eq!(v["id"], id);
    assert_eq!(v["whitelist"], json!(["10.0.0.1", "192.168.0.0/24"]));
    assert_eq!(v["enable_whitelist"], true);
    assert_eq!(v["status"], "accepted");
    assert_eq!(
        peer.show_endpoint(&id).await.ok(200)["whitelist"],
        v["whitelist"]
    );
    // Turned off: answers an empty list, but keeps the entries.
    let off = peer
        .update_whitelist(&id, &json!({"enable_whitelist": false}))
        .await
        .ok(200);
    assert_eq!(off["whitelist"], json!([]));
    assert_eq!(off["enable_whitelist"], false);
    let on = peer
        .update_whitelist(&id, &json!({"enable_whitelist": true}))
        .await
        .ok(200);
    assert_eq!(on["whitelist"], json!(["10.0.0.1", "192.168.0.0/24"]));
    // A new list replaces the old one; leaving it out keeps it.
    let replaced = peer
        .update_whitelist(&id, &json!({"whitelist": ["172.16.0.0/12"]}))
        .await
        .ok(200);
    assert_eq!(replaced["whitelist"], json!(["172.16.0.0/12"]));
    assert_eq!(replaced["enable_whitelist"], true);
    let same = peer.update_whitelist(&id, &json!({})).await.ok(200);
    assert_eq!(same["whitelist"], json!(["172.16.0.0/12"]));
    // Exactly 20 entries fit; an empty list clears.
    let twenty: Vec<String> = (1..=20).map(|i| format!("10.1.0.{i}")).collect();
    let full = peer
        .update_whitelist(&id, &json!({ "whitelist": twenty }))
        .await
        .ok(200);
    assert_eq!(full["whitelist"], json!(twenty));
    let cleared = peer
        .update_whitelist(&id, &json!({"whitelist": []}))
        .await
        .ok(200);
    assert_eq!(cleared["whitelist"], json!([]));
    assert_eq!(cleared["enable_whitelist"], true);
    // On create, too: the list is shown only while enabled.
    let net = peer.default_network().await;
    let hidden = peer
        .endpoint_ok(&with(
            endpoint_to(&sid, &net),
            "whitelist",
            json!(["10.0.0.9"]),
        ))
        .await;
    assert_eq!(hidden["whitelist"], json!([]));
    assert_eq!(hidden["enable_whitelist"], false);
    let shown = peer
        .update_whitelist(&id_of(&hidden), &json!({"enable_whitelist": true}))
        .await
        .ok(200);
    assert_eq!(shown["whitelist"], json!(["10.0.0.9"]));
}

async fn null_whitelist_clears_it_as_terraform_sends_it(app: &mut TestApp) {
    let (_, id) = accepted_interface_endpoint(app, &[]).await;
    let peer = app.owner_other_project();
    peer.update_whitelist(
        &id,
        &json!({"whitelist": ["10.0.0.1"], "enable_whitelist": true}),
    )
    .await
    .ok(200);
    let v = peer
        .update_whitelist(&id, &json!({"whitelist": null, "enable_whitelist": true}))
        .await
        .ok(200);
    assert_eq!(v["whitelist"], json!([]));
    assert_eq!(
        peer.show_endpoint(&id).await.ok(200)["whitelist"],
        json!([])
    );
}

async fn whitelist_update_refuses_bad_entries_and_changes_nothing(app: &mut TestApp) {
    let (_, id) = accepted_interface_endpoint(app, &[]).await;
    let peer = app.owner_other_project();
    peer.update_whitelist(
        &id,
        &json!({"whitelist": ["10.0.0.1"], "enable_whitelist": true}),
    )
    .await
    .ok(200);
    let twenty_one: Vec<String> = (0..21).map(|i| format!("10.1.0.{i}")).collect();
    for (body, code) in [
        (json!({ "whitelist": twenty_one }), "EndPoint.2045"),
        (json!({"whitelist": ["10.0.0.1/24"]}), "EndPoint.2044"),
        (json!({"whitelist": ["10.0.0.0/33"]}), "EndPoint.2044"),
        (json!({"whitelist": ["10.0.0.256"]}), "EndPoint.2044"),
        (json!({"whitelist": ["fe80::1"]}), "EndPoint.2044"),
        (json!({"whitelist": [""]}), "EndPoint.2044"),
        (
            json!({"whitelist": ["10.0.0.2"], "enable_whitelist": "yes"}),
            "EndPoint.0002",
        ),
        (json!({"whitelist": "10.0.0.2"}), "EndPoint.0002"),
    ] {
        peer.update_whitelist(&id, &body).await.err(400, code);
    }
    let shown = peer.show_endpoint(&id).await.ok(200);
    assert_eq!(shown["whitelist"], json!(["10.0.0.1"]));
    assert_eq!(shown["enable_whitelist"], true);
    // A gateway endpoint has no whitelist.
    let gw = gateway_service(app, false).await;
    let consumer = app.consumer();
    let net = consumer.network().await;
    let e = consumer
        .endpoint_ok(&json!({"endpoint_service_id": gw, "vpc_id": net.vpc_id}))
        .await;
    consumer
        .update_whitelist(&id_of(&e), &json!({"whitelist": ["10.0.0.1"]}))
        .await
        .err_naming(400, "EndPoint.0002", "whitelist");
}

async fn endpoint_quota_refuses_creates_past_the_limit_even_when_concurrent(app: &mut TestApp) {
    let small = app.small();
    let sid = available(&small, small.service().await).await;
    let net = small.network().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let small = small.clone();
        let body = endpoint_to(&sid, &net);
        tasks.spawn(async move { small.create_endpoint(&body).await });
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
    assert_eq!(ids.len() as u64, SMALL_ENDPOINT_QUOTA);
    // The refused creates left nothing: no endpoint, no address, no connection.
    let (listed, total) = small.list_endpoint_ids("").await;
    assert_eq!(total, SMALL_ENDPOINT_QUOTA);
    assert_eq!(listed.len() as u64, SMALL_ENDPOINT_QUOTA);
    assert_eq!(
        small.allocated(&net.subnet_id).await.len() as u64,
        SMALL_ENDPOINT_QUOTA
    );
    assert_eq!(
        small.connections(&sid, "").await.ok(200)["total_count"],
        SMALL_ENDPOINT_QUOTA
    );
    small
        .create_endpoint(&endpoint_to(&sid, &net))
        .await
        .err(400, "Endpoint.1018");
    let quotas = small.quotas("type=endpoint").await;
    assert_eq!(
        quotas.get("endpoint"),
        Some(&(SMALL_ENDPOINT_QUOTA, SMALL_ENDPOINT_QUOTA)),
        "{quotas:?}"
    );
    // Other projects are not limited by this one's quota.
    let owner = app.owner();
    let own = available(&owner, owner.service().await).await;
    let owner_net = owner.network().await;
    for _ in 0..=SMALL_ENDPOINT_QUOTA {
        owner.endpoint_ok(&endpoint_to(&own, &owner_net)).await;
    }
    // A deleted endpoint frees its unit once it is gone.
    small.delete_endpoint(&ids[0]).await.ok(204);
    small.wait_endpoint_gone(&ids[0]).await;
    small.endpoint_ok(&endpoint_to(&sid, &net)).await;
    small
        .create_endpoint(&endpoint_to(&sid, &net))
        .await
        .err(400, "Endpoint.1018");
    assert_eq!(small.list_endpoint_ids("").await.1, SMALL_ENDPOINT_QUOTA);
    let quotas = small.quotas("").await;
    assert_eq!(
        quotas.get("endpoint"),
        Some(&(SMALL_ENDPOINT_QUOTA, SMALL_ENDPOINT_QUOTA))
    );
    assert_eq!(quotas.get("endpoint_service"), Some(&(1, SMALL_QUOTA)));
}

async fn interface_endpoint_policy_is_a_document_and_only_where_the_service_allows_it(
    app: &mut TestApp,
) {
    let peer = app.owner_other_project();
    let document = json!({"Version": "5.0", "Statement": [{"Effect": "Allow", "Action": ["*"], "Resource": ["*"], "Principal": "*"}]});
    // Service without enable_policy: no policy of either kind.
    let (_, plain) = accepted_interface_endpoint(app, &[]).await;
    for body in [
        json!({ "policy_document": document }),
        json!({"policy_statement": [statement("Allow")]}),
    ] {
        let msg = peer
            .update_policy(&plain, &body)
            .await
            .err(400, "EndPoint.2048");
        assert!(msg.contains("enable_policy"), "{msg}");
    }
    peer.delete_policy(&plain).await.err(400, "EndPoint.2049");
    // Service with enable_policy: a document, set on create or later, and removed.
    let (sid, id) = accepted_interface_endpoint(app, &[("enable_policy", json!(true))]).await;
    let set = peer
        .update_policy(&id, &json!({ "policy_document": document }))
        .await
        .ok(200);
    assert_eq!(set["id"], id);
    assert_eq!(set["policy_document"], document);
    assert_eq!(
        peer.show_endpoint(&id).await.ok(200)["policy_document"],
        document
    );
    for (body, why) in [
        (
            json!({"policy_statement": [statement("Allow")]}),
            "a statement",
        ),
        (json!({"policy_document": [1]}), "not an object"),
        (json!({"policy_document": "x"}), "not an object"),
        (json!({}), "nothing"),
    ] {
        let r = peer.update_policy(&id, &body).await;
        assert_eq!(r.status, 400, "{why}: {}", r.text());
        r.err(400, "EndPoint.2048");
    }
    assert_eq!(
        peer.show_endpoint(&id).await.ok(200)["policy_document"],
        document
    );
    let removed = peer.delete_policy(&id).await.ok(200);
    assert_eq!(removed["id"], id);
    assert!(removed["policy_document"].is_null(), "{removed}");
    assert!(peer.show_endpoint(&id).await.ok(200)["policy_document"].is_null());
    peer.delete_policy(&id).await.err(400, "EndPoint.2049");
    let net = peer.default_network().await;
    let with_doc = peer
        .endpoint_ok(&with(
            endpoint_to(&sid, &net),
            "policy_document",
            document.clone(),
        ))
        .await;
    assert_eq!(with_doc["policy_document"], document);
    peer.create_endpoint(&with(
        endpoint_to(&sid, &net),
        "policy_statement",
        json!([statement("Allow")]),
    ))
    .await
    .err(400, "EndPoint.2048");
}

async fn gateway_endpoint_takes_a_policy_statement(app: &mut TestApp) {
    let sid = gateway_service(app, true).await;
    let consumer = app.consumer();
    let net = consumer.network().await;
    let e = consumer
        .endpoint_ok(&json!({"endpoint_service_id": sid, "vpc_id": net.vpc_id}))
        .await;
    let id = id_of(&e);
    assert_eq!(e["service_type"], "gateway");
    let e = consumer.wait_endpoint_status(&id, "accepted").await;
    assert!(e.get("ip").is_none_or(Value::is_null), "{e}");
    assert!(e.get("subnet_id").is_none_or(Value::is_null), "{e}");
    assert_eq!(
        consumer.allocated(&net.subnet_id).await,
        Vec::<String>::new()
    );
    let policy = json!([
        statement("Allow"),
        {"Effect": "Deny", "Action": ["obs:object:DeleteObject"], "Resource": ["*"], "Condition": {"StringEquals": {"k": ["v"]}}, "Sid": "no-delete"},
    ]);
    let set = consumer
        .update_policy(&id, &json!({ "policy_statement": policy }))
        .await
        .ok(200);
    assert_eq!(set["policy_statement"], policy);
    assert_eq!(
        consumer.show_endpoint(&id).await.ok(200)["policy_statement"],
        policy
    );
    let eleven: Vec<Value> = (0..11).map(|_| statement("Allow")).collect();
    for body in [
        json!({"policy_statement": [statement("Maybe")]}),
        json!({"policy_statement": [{"Effect": "Allow", "Action": [], "Resource": ["*"]}]}),
        json!({"policy_statement": [{"Effect": "Allow", "Action": ["*"]}]}),
        json!({"policy_statement": [{"Effect": "Allow", "Action": ["*"], "Resource": ["*"], "Condition": "x"}]}),
        json!({"policy_statement": {"Effect": "Allow"}}),
        json!({ "policy_statement": eleven }),
        json!({"policy_document": {"Statement": []}}),
    ] {
        let r = consumer.update_policy(&id, &body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
        r.err(400, "EndPoint.2048");
    }
    assert_eq!(
        consumer.show_endpoint(&id).await.ok(200)["policy_statement"],
        policy
    );
    let removed = consumer.delete_policy(&id).await.ok(200);
    assert!(removed["policy_statement"].is_null(), "{removed}");
    consumer.delete_policy(&id).await.err(400, "EndPoint.2049");
    // On create: a statement, never a document.
    let other = consumer.network_with("10.3.0.0/16", "10.3.0.0/24").await;
    let created = consumer
        .endpoint_ok(&json!({"endpoint_service_id": sid, "vpc_id": other.vpc_id, "policy_statement": policy}))
        .await;
    assert_eq!(created["policy_statement"], policy);
    consumer
        .create_endpoint(&json!({"endpoint_service_id": sid, "vpc_id": other.vpc_id, "routetables": [uuid()], "policy_document": {"Statement": []}}))
        .await
        .err(400, "EndPoint.2048");
}

async fn gateway_endpoint_route_tables_are_replaced_and_checked(app: &mut TestApp) {
    let sid = gateway_service(app, false).await;
    let consumer = app.consumer();
    let net = consumer.network().await;
    let e = consumer
        .endpoint_ok(&json!({"endpoint_service_id": sid, "vpc_id": net.vpc_id}))
        .await;
    let id = id_of(&e);
    // Without route tables the VPC's default one is bound.
    assert_eq!(e["routetables"], json!([net.vpc_id]));
    // A second endpoint of the service in the same VPC may not take the same table.
    consumer
        .create_endpoint(&json!({"endpoint_service_id": sid, "vpc_id": net.vpc_id}))
        .await
        .err(400, "EndPoint.2039");
    let (rt1, rt2) = (uuid(), uuid());
    let v = consumer
        .update_routetables(&id, &json!({"routetables": [rt1, rt2, rt1]}))
        .await
        .ok(200);
    assert_eq!(v, json!({"routetables": [rt1, rt2]}));
    assert_eq!(
        consumer.show_endpoint(&id).await.ok(200)["routetables"],
        json!([rt1, rt2])
    );
    // Now the default table is free again, and rt1 is taken.
    let second = consumer
        .endpoint_ok(&json!({"endpoint_service_id": sid, "vpc_id": net.vpc_id}))
        .await;
    assert_eq!(second["routetables"], json!([net.vpc_id]));
    consumer
        .create_endpoint(
            &json!({"endpoint_service_id": sid, "vpc_id": net.vpc_id, "routetables": [rt1]}),
        )
        .await
        .err(400, "EndPoint.2039");
    for (body, code) in [
        (json!({"routetables": ["rtb-1"]}), "EndPoint.1019"),
        (json!({}), "EndPoint.0002"),
    ] {
        consumer.update_routetables(&id, &body).await.err(400, code);
    }
    consumer
        .create_endpoint(
            &json!({"endpoint_service_id": sid, "vpc_id": net.vpc_id, "routetables": ["rtb-1"]}),
        )
        .await
        .err(400, "EndPoint.1019");
    assert_eq!(
        consumer.show_endpoint(&id).await.ok(200)["routetables"],
        json!([rt1, rt2])
    );
    // Interface endpoints have no route tables.
    let (_, interface) = accepted_interface_endpoint(app, &[]).await;
    app.owner_other_project()
        .update_routetables(&interface, &json!({ "routetables": [uuid()] }))
        .await
        .err(400, "EndPoint.2040");
    consumer
        .update_routetables(&uuid(), &json!({ "routetables": [uuid()] }))
        .await
        .err(404, "EndPoint.2006");
}

async fn route_table_update_refuses_a_table_another_endpoint_of_the_service_uses(
    app: &mut TestApp,
) {
    let sid = gateway_service(app, false).await;
    let consumer = app.consumer();
    let net = consumer.network().await;
    let (rt1, rt2) = (uuid(), uuid());
    let a = consumer
        .endpoint_ok(
            &json!({"endpoint_service_id": sid, "vpc_id": net.vpc_id, "routetables": [rt1]}),
        )
        .await;
    let b = consumer
        .endpoint_ok(
            &json!({"endpoint_service_id": sid, "vpc_id": net.vpc_id, "routetables": [rt2]}),
        )
        .await;
    consumer
        .update_routetables(&id_of(&b), &json!({"routetables": [rt2, rt1]}))
        .await
        .err(400, "EndPoint.2039");
    assert_eq!(
        consumer.show_endpoint(&id_of(&b)).await.ok(200)["routetables"],
        json!([rt2])
    );
    assert_eq!(
        consumer.show_endpoint(&id_of(&a)).await.ok(200)["routetables"],
        json!([rt1])
    );
}

async fn endpoint_upgrade_needs_a_service_that_supports_professional_endpoints(app: &mut TestApp) {
    let (_, id) = accepted_interface_endpoint(app, &[]).await;
    let peer = app.owner_other_project();
    for body in [
        json!({}),
        json!({"action": "stop"}),
        json!({"action": "START"}),
    ] {
        peer.upgrade_endpoint(&id, &body)
            .await
            .err_naming(400, "EndPoint.0007", "action");
    }
    let msg = peer
        .upgrade_endpoint(&id, &json!({"action": "start"}))
        .await
        .err(400, "EndPoint.0002");
    assert!(msg.contains("profession"), "{msg}");
    assert_eq!(
        peer.show_endpoint(&id).await.ok(200)["specification_name"],
        "default"
    );
    peer.upgrade_endpoint(&uuid(), &json!({"action": "start"}))
        .await
        .err(404, "EndPoint.2006");
    app.owner()
        .upgrade_endpoint(&id, &json!({"action": "start"}))
        .await
        .err(404, "EndPoint.2006");
}

async fn endpoint_of_an_upgraded_service_is_upgraded_with_202(app: &mut TestApp) {
    let (sid, id) = accepted_interface_endpoint(app, &[]).await;
    let owner = app.owner();
    let peer = app.owner_other_project();
    // The SDK's upgrade has no body.
    let r = owner.upgrade_service(&sid, None).await;
    r.ok(204);
    assert_eq!(
        owner.show(&sid).await.ok(200)["supported_editions"],
        json!(["basic", "profession"])
    );
    let r = peer
        .upgrade_endpoint(&id, &json!({"action": "start"}))
        .await;
    r.ok(202);
    assert!(r.body.is_empty(), "202 with a body: {}", r.text());
    let e = peer.show_endpoint(&id).await.ok(200);
    assert_eq!(e["specification_name"], "profession");
    assert_eq!(e["status"], "accepted");
    // After a rollback, other endpoints of the service can no longer be upgraded.
    owner
        .upgrade_service(&sid, Some(&json!({"action": "rollback"})))
        .await
        .ok(204);
    let net = peer.default_network().await;
    let other = id_of(&peer.endpoint_ok(&endpoint_to(&sid, &net)).await);
    peer.wait_endpoint_status(&other, "accepted").await;
    peer.upgrade_endpoint(&other, &json!({"action": "start"}))
        .await
        .err(400, "EndPoint.0002");
    assert_eq!(
        peer.show_endpoint(&other).await.ok(200)["specification_name"],
        "default"
    );
}
