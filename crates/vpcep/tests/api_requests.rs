//! Request handling before any rule of a resource: malformed and mistyped JSON, unknown enum
//! values, the body size limit, unknown routes and methods. Every refusal has the API's error
//! shape, and none creates anything.

use reqwest::Method;
use serde_json::json;
use vpcep_testkit::app::*;

api_tests!(
    malformed_json_is_invalid_request,
    wrong_json_types_are_refused_naming_the_field_path,
    unknown_enum_values_are_refused_naming_the_field,
    body_over_one_mebibyte_is_refused_with_413,
    chunked_body_over_one_mebibyte_is_refused_with_413,
    body_just_under_the_limit_is_read,
    unknown_route_is_a_json_404,
    service_id_that_is_not_utf8_is_not_found,
    nul_in_description_is_stored_or_refused_never_a_500,
    nul_in_a_body_field_is_refused_naming_the_field,
    nul_in_filters_matches_nothing_and_never_fails,
    wrong_method_is_a_json_405,
);

/// Asserts the owner's project still holds no services.
async fn nothing_created(app: &TestApp) {
    assert_eq!(app.owner().list_ids("").await, (vec![], 0));
}

async fn malformed_json_is_invalid_request(app: &mut TestApp) {
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
    let id = id_of(&owner.create_ok(&owner.service().await).await);
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
}

async fn wrong_json_types_are_refused_naming_the_field_path(app: &mut TestApp) {
    let owner = app.owner();
    let base = owner.service().await;
    let cases = [
        (
            with(base.clone(), "approval_enabled", json!("yes")),
            "approval_enabled",
        ),
        (
            with(
                base.clone(),
                "ports",
                json!([{"client_port": "80", "server_port": 80}]),
            ),
            "ports[0].client_port",
        ),
        (
            with(
                base.clone(),
                "ports",
                json!([port(1, 1), {"client_port": 2, "server_port": 2.5}]),
            ),
            "ports[1].server_port",
        ),
        (
            with(base.clone(), "ports", json!({"client_port": 80})),
            "ports",
        ),
        (with(base.clone(), "port_id", json!(42)), "port_id"),
        (
            with(base.clone(), "tags", json!([{"key": 1}])),
            "tags[0].key",
        ),
        (
            with(base.clone(), "description", json!(["d"])),
            "description",
        ),
    ];
    for (body, field) in cases {
        owner
            .create(&body)
            .await
            .err_naming(400, "EndPoint.0002", field);
    }
    // A body that is JSON but not an object.
    owner
        .create(&json!([base.clone()]))
        .await
        .err(400, "EndPoint.0002");
    nothing_created(app).await;
}

async fn unknown_enum_values_are_refused_naming_the_field(app: &mut TestApp) {
    let owner = app.owner();
    let base = owner.service().await;
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
            .create(&with(base.clone(), key, value))
            .await
            .err_naming(400, code, field);
    }
    nothing_created(app).await;
}

async fn body_over_one_mebibyte_is_refused_with_413(app: &mut TestApp) {
    let mut body = app.owner().service().await;
    let filler = "x".repeat(1024 * 1024);
    body["description"] = json!(filler);
    let r = app.owner().create(&body).await;
    r.err(413, "APIG.0201");
    nothing_created(app).await;
}

/// Without a `Content-Length` the limit applies while reading: a chunked body that grows past
/// 1 MiB is refused the same way. Sent over a raw socket, since the HTTP client here only sends
/// bodies of known length; its headers are signed (over an empty body), since a request whose
/// headers fail authentication is answered 401 before its body is read.
async fn chunked_body_over_one_mebibyte_is_refused_with_413(app: &mut TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base_url.strip_prefix("http://").expect("http");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let path = format!("/v1/{}/vpc-endpoint-services", OWNER.projects[0]);
    let date = vpcep_sign::format_sdk_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
    );
    let parts = vpcep_sign::RequestParts {
        method: "POST",
        raw_path: &path,
        raw_query: "",
        body: b"",
    };
    let auth = vpcep_sign::sign(
        OWNER.access_key,
        OWNER.secret_key,
        &parts,
        &[("Host", addr), ("X-Sdk-Date", date.as_str())],
    );
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nX-Sdk-Date: {date}\r\nAuthorization: {auth}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let exchange = async {
        stream.write_all(head.as_bytes()).await.expect("write head");
        let chunk = vec![b'x'; 64 * 1024];
        // 17 chunks of 64 KiB: one more than the limit. The server may answer and stop reading
        // before all of it is written, so write errors are expected and ignored.
        for _ in 0..17 {
            let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
            framed.extend_from_slice(&chunk);
            framed.extend_from_slice(b"\r\n");
            if stream.write_all(&framed).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        answer
    };
    let answer = tokio::time::timeout(std::time::Duration::from_secs(30), exchange)
        .await
        .expect("the server answers and closes within 30 s");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("x-request-id:"),
        "{text}"
    );
    assert!(text.contains("\"error_code\":\"APIG.0201\""), "{text}");
    nothing_created(app).await;
}

/// A large body that fits is read whole and reaches validation (here: the description rule).
async fn body_just_under_the_limit_is_read(app: &mut TestApp) {
    let mut body = app.owner().service().await;
    body["description"] = json!("");
    let room = 1024 * 1024 - body.to_string().len();
    body["description"] = json!("d".repeat(room));
    assert_eq!(body.to_string().len(), 1024 * 1024);
    app.owner()
        .create(&body)
        .await
        .err_naming(400, "EndPoint.0002", "description");
    nothing_created(app).await;
}

async fn unknown_route_is_a_json_404(app: &mut TestApp) {
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
}

async fn service_id_that_is_not_utf8_is_not_found(app: &mut TestApp) {
    let owner = app.owner();
    let path = "/v1/{project_id}/vpc-endpoint-services/%FF";
    for (method, path, body) in [
        (Method::GET, path.to_string(), None),
        (Method::PUT, path.to_string(), Some(b"{}".to_vec())),
        (Method::DELETE, path.to_string(), None),
        (
            Method::PUT,
            format!("{path}/name"),
            Some(br#"{"endpoint_service_name": "x"}"#.to_vec()),
        ),
    ] {
        owner
            .send(method, &path, body)
            .await
            .err(404, "EndPoint.0005");
    }
}

/// A NUL character is valid JSON. Whatever the server decides (store it, or refuse it naming
/// the field), it must not fail, and the answer must not depend on the backend.
async fn nul_in_description_is_stored_or_refused_never_a_500(app: &mut TestApp) {
    let owner = app.owner();
    let text = "a\u{0}b";
    let stored_or_refused = |r: Resp| {
        if r.status == 200 {
            assert_eq!(r.json()["description"], text);
        } else {
            r.err(400, "EndPoint.0002");
        }
    };
    stored_or_refused(
        owner
            .create(&with(owner.service().await, "description", json!(text)))
            .await,
    );
    let id = id_of(&owner.create_ok(&owner.service().await).await);
    stored_or_refused(owner.update(&id, &json!({ "description": text })).await);
}

/// Like any other invalid value, a NUL character is refused naming the field it is in.
async fn nul_in_a_body_field_is_refused_naming_the_field(app: &mut TestApp) {
    let owner = app.owner();
    owner
        .create(&with(
            owner.service().await,
            "description",
            json!("a\u{0}b"),
        ))
        .await
        .err_naming(400, "EndPoint.0002", "description");
}

/// No service name or id contains NUL, so a filter with one matches nothing (or is refused
/// naming the parameter); it must not fail, nor match everything.
async fn nul_in_filters_matches_nothing_and_never_fails(app: &mut TestApp) {
    let owner = app.owner();
    owner.create_ok(&owner.service().await).await;
    app.operator()
        .create_ok(&app.operator().service().await)
        .await;
    for (query, field) in [
        ("endpoint_service_name=%00", "endpoint_service_name"),
        ("endpoint_service_name=a%00", "endpoint_service_name"),
        ("id=%00", "id"),
    ] {
        for r in [owner.list(query).await, owner.public(query).await] {
            if r.status == 200 {
                let v = r.json();
                assert_eq!(v["endpoint_services"], json!([]), "{query}: {v}");
                assert_eq!(v["total_count"], 0, "{query}: {v}");
            } else {
                r.err_naming(400, "EndPoint.0002", field);
            }
        }
    }
    let r = owner.describe("endpoint_service_name=%00").await;
    if r.status == 404 {
        r.err(404, "EndPoint.0005");
    } else {
        r.err_naming(400, "EndPoint.0002", "endpoint_service_name");
    }
}

async fn wrong_method_is_a_json_405(app: &mut TestApp) {
    let owner = app.owner();
    owner
        .send(
            Method::PATCH,
            "/v1/{project_id}/vpc-endpoint-services",
            Some(b"{}".to_vec()),
        )
        .await
        .err(405, "APIG.0101");
}
