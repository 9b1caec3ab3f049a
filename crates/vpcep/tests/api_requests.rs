//! Request handling before any rule of a resource: malformed and mistyped JSON, unknown enum
//! values, the body size limit, unknown routes and methods. Every refusal has the API's error
//! shape, and none creates anything.

#[macro_use]
mod common;

use common::*;
use reqwest::Method;
use serde_json::json;

api_tests!(
    malformed_json_is_invalid_request,
    wrong_json_types_are_refused_naming_the_field_path,
    unknown_enum_values_are_refused_naming_the_field,
    body_over_one_mebibyte_is_refused_with_413,
    body_just_under_the_limit_is_read,
    unknown_route_is_a_json_404,
    wrong_method_is_a_json_405,
);

/// Asserts the owner's project still holds no services.
async fn nothing_created(app: &TestApp) {
    assert_eq!(app.owner().list_ids("").await, (vec![], 0));
}

async fn malformed_json_is_invalid_request(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let owner = app.owner();
    for body in [
        &b"{"[..],
        b"{\"port_id\": }",
        b"not json",
        b"{\"port_id\": \"x\",}",
        b"",
        b"   ",
    ] {
        owner
            .create_raw(body.to_vec())
            .await
            .err(400, "EndPoint.1004");
    }
    // The same on update and rename of an existing service.
    let id = id_of(&owner.create_ok(&service()).await);
    owner
        .send(
            Method::PUT,
            &format!("/v1/{{project_id}}/vpc-endpoint-services/{id}"),
            Some(b"{\"description\": ".to_vec()),
        )
        .await
        .err(400, "EndPoint.1004");
    owner
        .send(
            Method::PUT,
            &format!("/v1/{{project_id}}/vpc-endpoint-services/{id}/name"),
            Some(b"[".to_vec()),
        )
        .await
        .err(400, "EndPoint.1004");
    app.shutdown().await;
}

async fn wrong_json_types_are_refused_naming_the_field_path(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let owner = app.owner();
    let cases = [
        (
            with(service(), "approval_enabled", json!("yes")),
            "approval_enabled",
        ),
        (
            with(
                service(),
                "ports",
                json!([{"client_port": "80", "server_port": 80}]),
            ),
            "ports[0].client_port",
        ),
        (
            with(
                service(),
                "ports",
                json!([port(1, 1), {"client_port": 2, "server_port": 2.5}]),
            ),
            "ports[1].server_port",
        ),
        (
            with(service(), "ports", json!({"client_port": 80})),
            "ports",
        ),
        (with(service(), "port_id", json!(42)), "port_id"),
        (with(service(), "tags", json!([{"key": 1}])), "tags[0].key"),
        (with(service(), "description", json!(["d"])), "description"),
    ];
    for (body, field) in cases {
        owner
            .create(&body)
            .await
            .err_naming(400, "EndPoint.0002", field);
    }
    // A body that is JSON but not an object.
    owner
        .create(&json!([service()]))
        .await
        .err(400, "EndPoint.0002");
    nothing_created(&app).await;
    app.shutdown().await;
}

async fn unknown_enum_values_are_refused_naming_the_field(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let owner = app.owner();
    let cases = [
        ("server_type", json!("BMS"), "EndPoint.3021", "server_type"),
        ("server_type", json!("vm"), "EndPoint.3021", "server_type"),
        (
            "service_type",
            json!("lan"),
            "EndPoint.0002",
            "service_type",
        ),
        ("tcp_proxy", json!("on"), "EndPoint.0002", "tcp_proxy"),
        ("ip_version", json!("ipv5"), "EndPoint.0002", "ip_version"),
        (
            "ports",
            json!([{"client_port": 80, "server_port": 80, "protocol": "UDP"}]),
            "EndPoint.3075",
            "ports[0].protocol",
        ),
    ];
    for (key, value, code, field) in cases {
        owner
            .create(&with(service(), key, value))
            .await
            .err_naming(400, code, field);
    }
    nothing_created(&app).await;
    app.shutdown().await;
}

async fn body_over_one_mebibyte_is_refused_with_413(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut body = service();
    let filler = "x".repeat(1024 * 1024);
    body["description"] = json!(filler);
    let r = app.owner().create(&body).await;
    r.err(413, "APIG.0201");
    nothing_created(&app).await;
    app.shutdown().await;
}

/// A large body that fits is read whole and reaches validation (here: the description rule).
async fn body_just_under_the_limit_is_read(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut body = service();
    body["description"] = json!("");
    let room = 1024 * 1024 - body.to_string().len();
    body["description"] = json!("d".repeat(room));
    assert_eq!(body.to_string().len(), 1024 * 1024);
    app.owner()
        .create(&body)
        .await
        .err_naming(400, "EndPoint.0002", "description");
    nothing_created(&app).await;
    app.shutdown().await;
}

async fn unknown_route_is_a_json_404(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let owner = app.owner();
    owner
        .send(Method::GET, "/v1/{project_id}/no-such-resource", None)
        .await
        .err(404, "APIG.0101");
    owner
        .send(
            Method::GET,
            &format!(
                "/v1/{{project_id}}/vpc-endpoint-services/{}/nothing",
                uuid()
            ),
            None,
        )
        .await
        .err(404, "APIG.0101");
    app.get_unsigned("/no/such/path")
        .await
        .err(404, "APIG.0101");
    app.shutdown().await;
}

async fn wrong_method_is_a_json_405(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let owner = app.owner();
    owner
        .send(
            Method::PATCH,
            "/v1/{project_id}/vpc-endpoint-services",
            Some(b"{}".to_vec()),
        )
        .await
        .err(405, "APIG.0101");
    app.shutdown().await;
}
