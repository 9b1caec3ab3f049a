//! SIGTERM is a graceful stop: the server stops accepting, finishes the requests in flight
//! (each answered one is durable), exits 0, and after a restart the reconciler finishes what
//! was left `creating`. The real binary, on SQLite.

use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use vpcep_client::{Client, ClientError};
use vpcep_testkit::accounts::{write_accounts, AccountSpec, Quotas, ACME};
use vpcep_testkit::process::{healthy, Child};
use vpcep_testkit::wait::free_port;

const PROJECT: &str = "6e9dfd51d1124e8d8498dce894923a0d";
/// [`ACME`] with a quota large enough never to matter.
const BIG_ACME: AccountSpec = AccountSpec {
    quotas: Quotas {
        endpoint_service: Some(100_000),
        ..Quotas::DEFAULT
    },
    ..ACME
};

/// `vpcep serve` on the SQLite file and accounts file of `dir` with `--provisioning-delay
/// delay`, once healthy; answers it and its URL.
async fn serve(dir: &std::path::Path, delay: &str) -> (Child, String) {
    let listen = format!("127.0.0.1:{}", free_port());
    let database = format!("sqlite://{}", dir.join("vpcep.db").display());
    let accounts = dir.join("accounts.toml").display().to_string();
    let args = [
        "serve",
        "--listen",
        &listen,
        "--database",
        &database,
        "--accounts",
        &accounts,
        "--provisioning-delay",
        delay,
    ];
    let url = format!("http://{listen}");
    (
        healthy(Child::vpcep("vpcep serve", dir, &args), &url).await,
        url,
    )
}

async fn post(c: &Client, path: &str, body: Value) -> Value {
    c.call(Method::POST, path, Some(&body))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_in_flight_requests_and_the_reconciler_resumes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    write_accounts(dir.path(), &[BIG_ACME]);
    let (mut child, url) = serve(dir.path(), "1h").await;
    let c = vpcep_testkit::client(&url, "AKACME", "acme-sk", PROJECT);
    let vpc = post(
        &c,
        "/v1/{project_id}/vpcs",
        json!({"vpc": {"cidr": "10.0.0.0/16"}}),
    )
    .await["vpc"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let subnet = post(&c, "/v1/{project_id}/subnets", json!({"subnet": {"name": "s", "cidr": "10.0.1.0/24", "gateway_ip": "10.0.1.1", "vpc_id": vpc}})).await["subnet"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let port_id = post(
        &c,
        "/v1/{project_id}/ports",
        json!({"port": {"network_id": subnet, "device_owner": "compute:az1"}}),
    )
    .await["port"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Creates keep coming while SIGTERM arrives.
    let mut tasks = Vec::new();
    for i in 0..200u16 {
        let c = c.clone();
        let body = json!({"port_id": port_id, "vpc_id": vpc, "server_type": "VM",
                          "ports": [{"client_port": 1000 + i, "server_port": 1000 + i}]});
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(u64::from(i) * 2)).await;
            c.call::<_, Value>(
                Method::POST,
                "/v1/{project_id}/vpc-endpoint-services",
                Some(&body),
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    child.terminate();
    let mut created = Vec::new();
    let mut unanswered = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(v) => created.push(v["id"].as_str().unwrap().to_string()),
            // No answer at all: sent after the listener closed, or on a keep-alive connection
            // the server closed while idle. Whether it exists is checked below either way.
            Err(ClientError::Http(_)) => unanswered += 1,
            // Every answer the server gave during the stop is a success, never a 5xx.
            Err(e) => panic!("a request answered during the stop failed: {e}"),
        }
    }
    let status = child
        .exited_within(Duration::from_secs(30))
        .await
        .expect("the server did not exit after SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(
        !created.is_empty(),
        "some creates should have been answered before the stop ({unanswered} unanswered)"
    );

    // Restart without the delay: every answered create is there and the reconciler finishes it.
    let (child2, url2) = serve(dir.path(), "0s").await;
    let c2 = c.clone_to(&url2);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: Value = c2
            .call::<(), _>(
                Method::GET,
                "/v1/{project_id}/vpc-endpoint-services?limit=1000",
                None,
            )
            .await
            .unwrap();
        let items = list["endpoint_services"].as_array().unwrap();
        assert_eq!(list["total_count"].as_u64().unwrap() as usize, items.len());
        for id in &created {
            assert!(
                items.iter().any(|s| s["id"] == id.as_str()),
                "answered create {id} is missing after restart"
            );
        }
        if items.iter().all(|s| s["status"] == "available") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reconciler did not finish after restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child2.kill().await;
}
