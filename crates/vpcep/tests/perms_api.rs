//! HTTP behaviour of permissions (`add_or_remove_service_permissions`,
//! `batch_add_endpoint_service_permissions`, `batch_remove_endpoint_service_permissions`,
//! `list_service_permissions_details`, `update_endpoint_service_permission_desc`), quotas
//! (`list_quota_details`) and the v2 service operations (`add_endpoint_service_server_resource`,
//! `upgrade_endpoint_service`) against a real server on an ephemeral port, on SQLite and
//! PostgreSQL: routes, status codes and exact body shapes.

use reqwest::Method;
use serde_json::{json, Value};
use vpcep_client::Client;
use vpcep_store::conformance::make_backend;
use vpcep_testkit::accounts::ACME;
use vpcep_testkit::app::*;

api_tests!(
    permissions_over_http = perms_server,
    quotas_and_v2_over_http = perms_server,
);

/// The server of these tests: their two accounts, in the default region.
fn perms_server(b: TestAppBuilder) -> TestAppBuilder {
    b.accounts(&[SMALL_ACME, OTHER])
        .region(vpcep::server::DEFAULT_REGION)
}

const PROJECT: &str = "6e9dfd51d1124e8d8498dce894923a0d";
const OTHER_PROJECT: &str = "7e9dfd51d1124e8d8498dce894923a0d";
/// [`ACME`] with small quotas.
const SMALL_ACME: AccountSpec = AccountSpec {
    quotas: Quotas {
        endpoint_service: Some(5),
        endpoint: Some(6),
        ..Quotas::DEFAULT
    },
    ..ACME
};
const OTHER: AccountSpec = AccountSpec {
    domain_id: "1f8a1c2e3d4b5a69788796a5b4c3d2e1",
    domain_name: "other",
    operator: false,
    projects: &[OTHER_PROJECT],
    quotas: Quotas::DEFAULT,
    access_key: "AKOTHER",
    secret_key: "other-sk",
};

/// What every test starts from: a client of each account, and a service of acme's.
struct Seeded {
    acme: Client,
    other: Client,
    service: String,
    /// The service's backend port (acme's).
    port: String,
    /// A port of the other account's project.
    foreign_port: String,
}

/// Seeds a backend port of each project (through the store) and acme's service.
async fn seed(app: &TestApp) -> Seeded {
    let backend = make_backend(&app.ctx().store, PROJECT).await;
    let foreign = make_backend(&app.ctx().store, OTHER_PROJECT).await;
    let base = app.base_url.clone();
    let acme = vpcep_testkit::client(&base, "AKACME", "acme-sk", PROJECT);
    let other = vpcep_testkit::client(&base, "AKOTHER", "other-sk", OTHER_PROJECT);
    let created: Value = acme
        .call(
            Method::POST,
            "/v1/{project_id}/vpc-endpoint-services",
            Some(&json!({
                "port_id": backend.port_id.to_string(),
                "vpc_id": backend.vpc_id.to_string(),
                "server_type": "VM",
                "ports": [{"client_port": 80, "server_port": 8080, "protocol": "TCP"}],
            })),
        )
        .await
        .unwrap();
    Seeded {
        acme,
        other,
        service: created["id"].as_str().unwrap().to_string(),
        port: backend.port_id.to_string(),
        foreign_port: foreign.port_id.to_string(),
    }
}

async fn send(c: &Client, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let r = c
        .send_raw(method, path, body.map(|b| serde_json::to_vec(&b).unwrap()))
        .await
        .unwrap();
    (r.status, r.json())
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort();
    k
}

async fn permissions_over_http(app: &mut TestApp) {
    let s = seed(app).await;
    let base = format!(
        "/v1/{{project_id}}/vpc-endpoint-services/{}/permissions",
        s.service
    );
    let dom = "iam:domain::1f8a1c2e3d4b5a69788796a5b4c3d2e1";

    let (st, body) = send(
        &s.acme,
        Method::POST,
        &format!("{base}/action"),
        Some(json!({"permissions": [dom, "*"], "action": "add"})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        body,
        json!({"permissions": [dom, "*"], "permission_type": "domainId"})
    );

    let (st, body) = send(&s.acme, Method::GET, &format!("{base}?sort_dir=asc"), None).await;
    assert_eq!(st, 200);
    assert_eq!(keys(&body), vec!["permissions", "total_count"]);
    assert_eq!(body["total_count"], 2);
    let first = &body["permissions"][0];
    assert_eq!(
        keys(first),
        vec![
            "created_at",
            "description",
            "id",
            "permission",
            "permission_type"
        ]
    );
    assert_eq!(
        (
            first["permission"].as_str(),
            first["permission_type"].as_str()
        ),
        (Some(dom), Some("domainId"))
    );
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));
    let (st, body) = send(
        &s.acme,
        Method::GET,
        &format!("{base}?offset=5&limit=500"),
        None,
    )
    .await;
    assert_eq!(
        (st, body),
        (200, json!({"permissions": [], "total_count": 2}))
    );
    let (st, body) = send(&s.acme, Method::GET, &format!("{base}?limit=501"), None).await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (400, Some("EndPoint.0006"))
    );

    let (st, body) = send(
        &s.acme,
        Method::POST,
        &format!("{base}/batch-create"),
        Some(json!({"permissions": [{"permission": "organizations:orgPath::o-1/*", "description": "org"}], "permission_type": "orgPath"})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(keys(&body), vec!["permissions"]);
    let org = body["permissions"][0].clone();
    assert_eq!(
        (org["permission_type"].as_str(), org["description"].as_str()),
        (Some("orgPath"), Some("org"))
    );
    let org_id = org["id"].as_str().unwrap().to_string();

    let (st, body) = send(
        &s.acme,
        Method::PUT,
        &format!("{base}/{org_id}"),
        Some(json!({"permission": {"description": "changed"}})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["permissions"][0]["description"], "changed");
    assert_eq!(body["permissions"].as_array().unwrap().len(), 1);

    let (st, body) = send(
        &s.acme,
        Method::POST,
        &format!("{base}/batch-delete"),
        Some(json!({"permissions": [{"id": org_id}]})),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["permissions"][0]["id"].as_str(), Some(org_id.as_str()));

    // Malformed and mistyped bodies, another tenant's service.
    let r = s
        .acme
        .send_raw(Method::POST, &format!("{base}/action"), Some(b"{".to_vec()))
        .await
        .unwrap();
    assert_eq!((r.status, r.error_code().as_str()), (400, "EndPoint.1004"));
    let (st, body) = send(
        &s.acme,
        Method::POST,
        &format!("{base}/action"),
        Some(json!({"permissions": "*", "action": "add"})),
    )
    .await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (400, Some("EndPoint.0002"))
    );
    let (st, body) = send(
        &s.acme,
        Method::POST,
        &format!("{base}/action"),
        Some(json!({"permissions": ["*"], "action": "grant"})),
    )
    .await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (400, Some("EndPoint.3035"))
    );
    let foreign = base.replace("{project_id}", OTHER_PROJECT);
    let (st, body) = send(&s.other, Method::GET, &foreign, None).await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (404, Some("EndPoint.0005"))
    );
}

async fn quotas_and_v2_over_http(app: &mut TestApp) {
    let s = seed(app).await;
    let (st, body) = send(&s.acme, Method::GET, "/v1/{project_id}/quotas", None).await;
    assert_eq!(st, 200);
    assert_eq!(
        body,
        json!({"quotas": {"resources": [
            {"type": "endpoint", "used": 0, "quota": 6},
            {"type": "endpoint_service", "used": 1, "quota": 5},
        ]}})
    );
    let (_, body) = send(
        &s.acme,
        Method::GET,
        "/v1/{project_id}/quotas?type=endpoint_service",
        None,
    )
    .await;
    assert_eq!(body["quotas"]["resources"].as_array().unwrap().len(), 1);
    let (st, body) = send(
        &s.acme,
        Method::GET,
        "/v1/{project_id}/quotas?type=router",
        None,
    )
    .await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (400, Some("EndPoint.0002"))
    );

    let v2 = format!("/v2/{{project_id}}/vpc-endpoint-services/{}", s.service);
    let show = format!("/v1/{{project_id}}/vpc-endpoint-services/{}", s.service);
    let add = |id: &str| json!({"server_resources": [{"resource_id": id, "availability_zone_id": "az1"}]});
    let r = s
        .acme
        .send_raw(
            Method::POST,
            &format!("{v2}/add-server-resources"),
            Some(serde_json::to_vec(&add(&s.port)).unwrap()),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.body.len()), (204, 0));
    let (_, svc) = send(&s.acme, Method::GET, &show, None).await;
    assert_eq!(
        svc["server_resources"],
        json!([{"resource_id": s.port, "availability_zone_id": "az1"}])
    );
    // A resource is a port of the caller's project, as `port_id` at create: not another
    // tenant's, not any string.
    for (id, code) in [
        (s.foreign_port.as_str(), "EndPoint.3008"),
        ("elb-1", "EndPoint.3003"),
        ("4189d3c2-8882-4871-a3c2-d380272eed88", "EndPoint.3008"),
    ] {
        let (st, body) = send(
            &s.acme,
            Method::POST,
            &format!("{v2}/add-server-resources"),
            Some(add(id)),
        )
        .await;
        assert_eq!(
            (st, body["error_code"].as_str()),
            (400, Some(code)),
            "{id}: {body}"
        );
    }
    let (_, svc) = send(&s.acme, Method::GET, &show, None).await;
    assert_eq!(
        svc["server_resources"].as_array().unwrap().len(),
        1,
        "nothing was added"
    );

    let r = s
        .acme
        .send_raw(Method::POST, &format!("{v2}/upgrade"), None)
        .await
        .unwrap();
    assert_eq!((r.status, r.body.len()), (204, 0));
    let (_, svc) = send(&s.acme, Method::GET, &show, None).await;
    assert_eq!(svc["supported_editions"], json!(["basic", "profession"]));
    let (st, _) = send(
        &s.acme,
        Method::POST,
        &format!("{v2}/upgrade"),
        Some(json!({"action": "rollback"})),
    )
    .await;
    assert_eq!(st, 204);
    let (_, svc) = send(&s.acme, Method::GET, &show, None).await;
    assert_eq!(svc["supported_editions"], json!(["basic"]));
    let (st, body) = send(
        &s.acme,
        Method::POST,
        &format!("{v2}/upgrade"),
        Some(json!({"action": "start"})),
    )
    .await;
    assert_eq!(
        (st, body["error_code"].as_str()),
        (400, Some("EndPoint.0007"))
    );
    let foreign = v2.replace("{project_id}", OTHER_PROJECT);
    let (st, _) = send(&s.other, Method::POST, &format!("{foreign}/upgrade"), None).await;
    assert_eq!(st, 404);

    let (st, _) = send(&s.acme, Method::DELETE, &show, None).await;
    assert_eq!(st, 204);
    let (st, body) = send(&s.acme, Method::POST, &format!("{v2}/upgrade"), None).await;
    // Gone already (no provisioning delay) or still deleting.
    assert!(
        (st, body["error_code"].as_str()) == (404, Some("EndPoint.0005"))
            || (st, body["error_code"].as_str()) == (400, Some("EndPoint.3045")),
        "{st} {body}"
    );
}
