//! HTTP behaviour of permissions (`add_or_remove_service_permissions`,
//! `batch_add_endpoint_service_permissions`, `batch_remove_endpoint_service_permissions`,
//! `list_service_permissions_details`, `update_endpoint_service_permission_desc`), quotas
//! (`list_quota_details`) and the v2 service operations (`add_endpoint_service_server_resource`,
//! `upgrade_endpoint_service`) against a real server on an ephemeral port, on SQLite and
//! PostgreSQL: routes, status codes and exact body shapes.

use reqwest::Method;
use serde_json::{json, Value};
use std::path::PathBuf;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vpcep::server::{ControlPlane, ServeConfig};
use vpcep_client::Client;
use vpcep_store::conformance::{make_backend, Backend, TestDb};

const PROJECT: &str = "6e9dfd51d1124e8d8498dce894923a0d";
const OTHER_PROJECT: &str = "7e9dfd51d1124e8d8498dce894923a0d";
const ACCOUNTS: &str = r#"
[[account]]
domain_id   = "0f8a1c2e3d4b5a69788796a5b4c3d2e1"
domain_name = "acme"
projects    = ["6e9dfd51d1124e8d8498dce894923a0d"]
[account.quotas]
endpoint_service = 5
endpoint = 6
[[account.credential]]
access_key = "AKACME"
secret_key = "acme-sk"

[[account]]
domain_id   = "1f8a1c2e3d4b5a69788796a5b4c3d2e1"
domain_name = "other"
projects    = ["7e9dfd51d1124e8d8498dce894923a0d"]
[[account.credential]]
access_key = "AKOTHER"
secret_key = "other-sk"
"#;

struct Server {
    acme: Client,
    other: Client,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    service: String,
    /// The service's backend port (acme's).
    port: String,
    /// A port of the other account's project.
    foreign_port: String,
    accounts: PathBuf,
}

async fn start(db: &TestDb) -> Server {
    let accounts = std::env::temp_dir().join(format!("vpcep-perms-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&accounts, ACCOUNTS).unwrap();
    let cfg = ServeConfig {
        database: db.url.clone(),
        accounts: Some(accounts.clone()),
        ..ServeConfig::default()
    };
    let plane = ControlPlane::open(&cfg).await.unwrap();
    let backend = make_backend(&plane.ctx.store, PROJECT).await;
    let foreign = make_backend(&plane.ctx.store, OTHER_PROJECT).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(plane.serve(listener, async move { stopped.cancelled().await }));
    let acme = Client::new(&base, "AKACME", "acme-sk", PROJECT).unwrap();
    let other = Client::new(&base, "AKOTHER", "other-sk", OTHER_PROJECT).unwrap();
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
    Server {
        acme,
        other,
        stop,
        task,
        service: created["id"].as_str().unwrap().to_string(),
        port: backend.port_id.to_string(),
        foreign_port: foreign.port_id.to_string(),
        accounts,
    }
}

impl Server {
    async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        let _ = std::fs::remove_file(&self.accounts);
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

async fn permissions_over_http(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let s = start(&db).await;
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

    s.stop().await;
    db.cleanup().await;
}

async fn quotas_and_v2_over_http(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let s = start(&db).await;
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

    s.stop().await;
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_over_http_sqlite() {
    permissions_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_over_http_postgres() {
    permissions_over_http(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_and_v2_over_http_sqlite() {
    quotas_and_v2_over_http(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_and_v2_over_http_postgres() {
    quotas_and_v2_over_http(Backend::Postgres).await;
}
