//! Authentication and tenancy at the edge: SDK-HMAC-SHA256 signatures, project ownership,
//! project id syntax, the open routes, and the request id on every answer.

use reqwest::Method;
use vpcep_testkit::app::*;

api_tests!(
    signed_request_is_accepted,
    hand_signed_request_is_accepted_as_a_baseline,
    unknown_access_key_is_rejected,
    wrong_secret_key_is_rejected,
    altered_body_is_rejected_and_creates_nothing,
    altered_query_is_rejected,
    content_sha256_header_counts_only_when_signed,
    date_more_than_fifteen_minutes_off_is_rejected,
    missing_authorization_is_rejected,
    host_and_date_must_be_signed,
    queries_with_encoded_characters_verify,
    project_of_another_account_is_forbidden,
    malformed_project_id_is_rejected,
    open_routes_need_no_signature,
    version_routes_accept_sdk_signed_requests,
    version_self_links_resolve,
    every_answer_carries_a_distinct_request_id,
);

const LIST: &str = "/v1/{project_id}/vpc-endpoint-services";

async fn signed_request_is_accepted(app: &mut TestApp) {
    let v = app.owner().list("").await.ok(200);
    assert_eq!(v["total_count"], 0);
    assert_eq!(v["endpoint_services"], serde_json::json!([]));
}

/// The hand-signing helper the negative tests tamper with is itself accepted when untouched,
/// so each rejection below is caused by the one thing the test changes.
async fn hand_signed_request_is_accepted_as_a_baseline(app: &mut TestApp) {
    app.hand_signed(OWNER, "GET", LIST)
        .query("limit=5&offset=0")
        .send()
        .await
        .ok(200);
    let body = app.owner().service().await.to_string();
    app.hand_signed(OWNER, "POST", LIST)
        .body(body.as_bytes())
        .send()
        .await
        .ok(200);
    // Dates within the 15-minute window on either side are fine.
    for offset in [-14 * 60, 14 * 60] {
        app.hand_signed(OWNER, "GET", LIST)
            .date_offset(offset)
            .send()
            .await
            .ok(200);
    }
}

async fn unknown_access_key_is_rejected(app: &mut TestApp) {
    app.hand_signed(OWNER, "GET", LIST)
        .keys("AKNOBODY000000000000", OWNER.secret_key)
        .send()
        .await
        .err(401, "EndPoint.0003");
}

async fn wrong_secret_key_is_rejected(app: &mut TestApp) {
    app.hand_signed(OWNER, "GET", LIST)
        .keys(OWNER.access_key, "not-the-owner-secret")
        .send()
        .await
        .err(401, "EndPoint.0003");
    // Another account's valid SK does not work with this AK either.
    app.hand_signed(OWNER, "GET", LIST)
        .keys(OWNER.access_key, CONSUMER.secret_key)
        .send()
        .await
        .err(401, "EndPoint.0003");
}

async fn altered_body_is_rejected_and_creates_nothing(app: &mut TestApp) {
    let body = app.owner().service().await;
    let signed = body.to_string();
    let sent = with(body, "approval_enabled", false.into()).to_string();
    app.hand_signed(OWNER, "POST", LIST)
        .body(signed.as_bytes())
        .send_body(sent.as_bytes())
        .send()
        .await
        .err(401, "EndPoint.0003");
    assert_eq!(app.owner().list_ids("").await, (vec![], 0));
}

async fn altered_query_is_rejected(app: &mut TestApp) {
    app.hand_signed(OWNER, "GET", LIST)
        .query("limit=5")
        .send_query("limit=6")
        .send()
        .await
        .err(401, "EndPoint.0003");
    app.hand_signed(OWNER, "GET", LIST)
        .query("limit=5")
        .send_query("limit=5&offset=1")
        .send()
        .await
        .err(401, "EndPoint.0003");
}

/// `X-Sdk-Content-Sha256` replaces the body hash only when it is signed: unsigned, it cannot
/// vouch for a tampered body; signed, it must be the body's digest or `UNSIGNED-PAYLOAD`.
async fn content_sha256_header_counts_only_when_signed(app: &mut TestApp) {
    let owner = app.owner();
    let body = owner.service().await;
    let signed = body.to_string();
    let tampered = with(body, "description", "tampered".into()).to_string();
    let digest = vpcep_sign::sha256_hex(signed.as_bytes());
    let header = "X-Sdk-Content-Sha256";
    // Unsigned, claiming the signed body's digest, with another body: refused.
    app.hand_signed(OWNER, "POST", LIST)
        .body(signed.as_bytes())
        .send_body(tampered.as_bytes())
        .header(header, &digest, false)
        .send()
        .await
        .err(401, "EndPoint.0003");
    // Unsigned `UNSIGNED-PAYLOAD` with a signature over that literal: refused.
    app.hand_signed(OWNER, "POST", LIST)
        .body(signed.as_bytes())
        .header(header, vpcep_sign::UNSIGNED_PAYLOAD, false)
        .payload_hash(vpcep_sign::UNSIGNED_PAYLOAD)
        .send()
        .await
        .err(401, "EndPoint.0003");
    // Signed, with a digest that is not the body's: refused.
    app.hand_signed(OWNER, "POST", LIST)
        .body(signed.as_bytes())
        .header(header, &vpcep_sign::sha256_hex(b"other"), true)
        .send()
        .await
        .err(401, "EndPoint.0003");
    assert_eq!(owner.list_ids("").await, (vec![], 0));
    // Signed, with the body's digest: accepted.
    app.hand_signed(OWNER, "POST", LIST)
        .body(signed.as_bytes())
        .header(header, &digest, true)
        .send()
        .await
        .ok(200);
    // Signed `UNSIGNED-PAYLOAD` (what the SDK sends for non-JSON bodies): accepted.
    let other = owner.service().await.to_string();
    app.hand_signed(OWNER, "POST", LIST)
        .body(other.as_bytes())
        .header(header, vpcep_sign::UNSIGNED_PAYLOAD, true)
        .payload_hash(vpcep_sign::UNSIGNED_PAYLOAD)
        .send()
        .await
        .ok(200);
    assert_eq!(owner.list_ids("").await.1, 2);
}

async fn date_more_than_fifteen_minutes_off_is_rejected(app: &mut TestApp) {
    for offset in [-16 * 60, 16 * 60, -24 * 3600] {
        let msg = app
            .hand_signed(OWNER, "GET", LIST)
            .date_offset(offset)
            .send()
            .await
            .err(401, "EndPoint.0003");
        assert!(msg.contains("expired"), "offset {offset}: {msg}");
    }
}

async fn missing_authorization_is_rejected(app: &mut TestApp) {
    app.hand_signed(OWNER, "GET", LIST)
        .without_authorization()
        .send()
        .await
        .err(401, "EndPoint.0003");
    // A bare request with no SDK headers at all.
    app.get_unsigned(&LIST.replace("{project_id}", OWNER.projects[0]))
        .await
        .err(401, "EndPoint.0003");
    let service_path = format!(
        "{}/{}",
        LIST.replace("{project_id}", OWNER.projects[0]),
        uuid()
    );
    app.get_unsigned(&service_path)
        .await
        .err(401, "EndPoint.0003");
}

async fn host_and_date_must_be_signed(app: &mut TestApp) {
    for (header, name) in [("Host", "host"), ("X-Sdk-Date", "x-sdk-date")] {
        let msg = app
            .hand_signed(OWNER, "GET", LIST)
            .without_signed(header)
            .send()
            .await
            .err(401, "EndPoint.0003");
        assert!(msg.contains(name), "{header}: {msg}");
    }
    // Leaving out an optional header is fine.
    app.hand_signed(OWNER, "GET", LIST)
        .without_signed("Content-Type")
        .send()
        .await
        .ok(200);
}

/// The server canonicalises the query as the SDK does (decoded, sorted, re-encoded), so
/// percent-encoded and reordered parameters verify, and the filter sees the decoded value.
async fn queries_with_encoded_characters_verify(app: &mut TestApp) {
    let owner = app.owner();
    let s = owner
        .create_ok(&with(
            owner.service().await,
            "service_name",
            serde_json::json!("a-b_c"),
        ))
        .await;
    let id = id_of(&s);
    for query in [
        "endpoint_service_name=a-b_c&limit=5",
        "limit=5&endpoint_service_name=a-b_c",
        "endpoint_service_name=%61%2Db%5Fc",
        "endpoint_service_name=A-B_C&sort_dir=desc&sort_key=created_at",
    ] {
        let (ids, total) = owner.list_ids(query).await;
        assert_eq!((ids, total), (vec![id.clone()], 1), "{query}");
    }
    for query in [
        "endpoint_service_name=a%20b",
        "endpoint_service_name=a+b",
        "endpoint_service_name=%E5%90%8D%E5%AD%97",
        "endpoint_service_name=%27%22%3B",
        "endpoint_service_name=%5C",
        "endpoint_service_name=~*!()",
    ] {
        assert_eq!(owner.list_ids(query).await, (vec![], 0), "{query}");
    }
    // Hand-signed with an encoded query, too.
    app.hand_signed(OWNER, "GET", LIST)
        .query("endpoint_service_name=%61%2Db&limit=1")
        .send()
        .await
        .ok(200);
}

async fn project_of_another_account_is_forbidden(app: &mut TestApp) {
    let owner = app.owner();
    let created = owner.create_ok(&owner.service().await).await;
    let id = id_of(&created);
    // The consumer signs correctly but names the owner's project: 403, and nothing leaks.
    let intruder = app.consumer().in_project(OWNER.projects[0]);
    for r in [
        intruder.list("").await,
        intruder.show(&id).await,
        intruder.create(&owner.service().await).await,
        intruder.delete(&id).await,
    ] {
        r.err(403, "EndPoint.0004");
        assert!(!r.text().contains(&id), "leaked the service: {}", r.text());
    }
    // A well-formed project id that nobody owns is forbidden too.
    app.owner()
        .in_project("ffffffffffffffffffffffffffffffff")
        .list("")
        .await
        .err(403, "EndPoint.0004");
    owner.show(&id).await.ok(200);
}

async fn malformed_project_id_is_rejected(app: &mut TestApp) {
    for bad in [
        "not-a-project",
        "1A1A1A1A1A1A1A1A1A1A1A1A1A1A1A1A",
        "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
        "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
        "1a1a1a1a-1a1a-1a1a-1a1a-1a1a1a1a1a1a",
    ] {
        app.owner()
            .in_project(bad)
            .list("")
            .await
            .err(400, "EndPoint.0014");
    }
}

async fn open_routes_need_no_signature(app: &mut TestApp) {
    let versions = app.get_unsigned("/").await.ok(200);
    let ids: Vec<_> = versions["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| v["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids, ["v1", "v2"]);
    for v in versions["versions"].as_array().expect("versions") {
        assert_eq!(v["status"], "CURRENT");
        assert_eq!(v["links"][0]["rel"], "self");
        let href = v["links"][0]["href"].as_str().expect("href");
        assert!(href.ends_with(&format!("/{}/", v["id"].as_str().expect("id"))));
    }
    let v1 = app.get_unsigned("/v1").await.ok(200);
    assert_eq!(v1["version"]["id"], "v1");
    let v2 = app.get_unsigned("/v2").await.ok(200);
    assert_eq!(v2["version"]["id"], "v2");
    app.get_unsigned("/v9").await.err(404, "EndPoint.0005");
    let health = app.get_unsigned("/health").await;
    assert_eq!(health.status, 200);
    assert!(health.request_id().is_some());
    // Make sure at least one request was counted before reading the metrics.
    app.owner().list("").await.ok(200);
    let metrics = app.get_unsigned("/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert!(metrics.request_id().is_some());
    assert!(
        metrics.text().contains("vpcep_api_requests_total"),
        "{}",
        metrics.text()
    );
}

/// The SDK signs version discovery like any call (with `X-Project-Id`); the server must not
/// care, whatever the signature.
async fn version_routes_accept_sdk_signed_requests(app: &mut TestApp) {
    let v = app.owner().send(Method::GET, "/", None).await.ok(200);
    assert_eq!(v["versions"][0]["id"], "v1");
    let v = app.owner().send(Method::GET, "/v1", None).await.ok(200);
    assert_eq!(v["version"]["id"], "v1");
    app.hand_signed(OWNER, "GET", "/v2")
        .keys("AKNOBODY000000000000", "x")
        .send()
        .await
        .ok(200);
}

/// A client following a version's `self` link gets that version.
async fn version_self_links_resolve(app: &mut TestApp) {
    let versions = app.get_unsigned("/").await.ok(200);
    for v in versions["versions"].as_array().expect("versions") {
        let href = v["links"][0]["href"].as_str().expect("href");
        let path = href
            .strip_prefix(&app.base_url)
            .unwrap_or_else(|| panic!("{href} is not under {}", app.base_url));
        let one = app.get_unsigned(path).await.ok(200);
        assert_eq!(one["version"]["id"], v["id"], "{href}");
    }
}

async fn every_answer_carries_a_distinct_request_id(app: &mut TestApp) {
    let owner = app.owner();
    let answers = vec![
        app.get_unsigned("/").await,
        app.get_unsigned("/health").await,
        owner.list("").await,
        owner.show(&uuid()).await,
        owner.create_raw(b"{".to_vec()).await,
        owner.list("limit=0").await,
        owner
            .send(Method::GET, "/v1/{project_id}/no-such-resource", None)
            .await,
        app.get_unsigned(&LIST.replace("{project_id}", OWNER.projects[0]))
            .await,
    ];
    let mut ids = std::collections::HashSet::new();
    for a in &answers {
        let id = a
            .request_id()
            .unwrap_or_else(|| panic!("no X-Request-Id on {} {}", a.status, a.text()));
        assert!(!id.is_empty());
        assert!(ids.insert(id.to_string()), "request id {id} repeated");
        if a.status >= 400 {
            let v = a.json();
            assert!(v["error_code"].is_string(), "{v}");
            assert!(v["error_msg"].is_string(), "{v}");
        }
    }
}
