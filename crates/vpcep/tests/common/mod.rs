//! The API integration test harness: a real control plane on an ephemeral port over a fresh
//! database of either backend, with fixed tenants and signed clients for each of them.
//!
//! - [`TestApp`]: start (`TestApp::start`, `TestApp::builder`), `restart`, `shutdown`.
//! - [`Tenant`]: a signed client for one account and project, with one method per operation
//!   (endpoint services, endpoints, connections, tags, and the VPC API's VPCs, subnets, ports).
//! - Backends: a service needs a real port of its project. [`Tenant::service`] makes a create
//!   body on a fresh VM port of the project's default network; [`Tenant::backend`] and
//!   [`Tenant::network`] make a VPC and subnet (and port) of their own; [`service_on`] and
//!   [`endpoint_to`] build bodies on them.
//! - [`HandSigned`]: a request signed by hand that can break the rules (tampered body or query,
//!   stale date, no `Authorization`), for the authentication tests.
//! - [`eventually`]: polls a condition until a deadline (no blind sleeps).
//! - [`api_tests!`]: runs each `async fn name(backend: Backend)` on SQLite and PostgreSQL.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code)]

use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vpcep::server::{ControlPlane, ServeConfig};
use vpcep_client::{Client, RawResponse};
pub use vpcep_store::conformance::Backend;
use vpcep_store::conformance::TestDb;

/// Runs each listed `async fn name(backend: Backend)` of the file as `sqlite::name` and
/// `postgres::name`. PostgreSQL cases skip (printing why) when the database is unreachable,
/// unless `VPCEP_REQUIRE_PG=1`; that is decided by [`TestApp::start`].
///
/// Attributes for one backend's case go before the name, SQLite's first:
/// `#[sqlite ignore = "..."] #[postgres ignore = "..."] name`.
macro_rules! api_tests {
    ($( $(#[sqlite $sqlite_attr:meta])* $(#[postgres $postgres_attr:meta])* $name:ident ),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$sqlite_attr])*
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$postgres_attr])*
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )+
        }
    };
}

/// The region the test servers run in; service names start with it.
pub const REGION: &str = "test-1";

/// One tenant of the accounts file.
#[derive(Debug, Clone, Copy)]
pub struct AccountSpec {
    /// Account (domain) id.
    pub domain_id: &'static str,
    /// Display name.
    pub domain_name: &'static str,
    /// Whether its services are public and it may create gateway services.
    pub operator: bool,
    /// Projects it owns.
    pub projects: &'static [&'static str],
    /// Endpoint-service quota per project.
    pub service_quota: u64,
    /// Endpoint quota per project.
    pub endpoint_quota: u64,
    /// VPC, subnet and port quotas per project.
    pub network_quotas: [u64; 3],
    /// Access key.
    pub access_key: &'static str,
    /// Secret key.
    pub secret_key: &'static str,
}

/// Owns two projects and a large quota: the usual service owner.
pub const OWNER: AccountSpec = AccountSpec {
    domain_id: "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
    domain_name: "owner",
    operator: false,
    projects: &[
        "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a",
        "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b",
    ],
    service_quota: 1000,
    endpoint_quota: 1000,
    network_quotas: LARGE_NETWORK_QUOTAS,
    access_key: "AKOWNER0000000000001",
    secret_key: "owner-secret-key",
};

/// Another tenant, who consumes services.
pub const CONSUMER: AccountSpec = AccountSpec {
    domain_id: "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
    domain_name: "consumer",
    operator: false,
    projects: &["2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c"],
    service_quota: 1000,
    endpoint_quota: 1000,
    network_quotas: LARGE_NETWORK_QUOTAS,
    access_key: "AKCONSUMER0000000001",
    secret_key: "consumer-secret-key",
};

/// The operator: its services are the public ones.
pub const OPERATOR: AccountSpec = AccountSpec {
    domain_id: "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e",
    domain_name: "operator",
    operator: true,
    projects: &["3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e"],
    service_quota: 1000,
    endpoint_quota: 1000,
    network_quotas: LARGE_NETWORK_QUOTAS,
    access_key: "AKOPERATOR0000000001",
    secret_key: "operator-secret-key",
};

/// A tenant whose projects may hold only [`SMALL_QUOTA`] services.
pub const SMALL: AccountSpec = AccountSpec {
    domain_id: "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d",
    domain_name: "small",
    operator: false,
    projects: &["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"],
    service_quota: SMALL_QUOTA,
    endpoint_quota: SMALL_ENDPOINT_QUOTA,
    network_quotas: LARGE_NETWORK_QUOTAS,
    access_key: "AKSMALL0000000000001",
    secret_key: "small-secret-key",
};

/// The endpoint-service quota of [`SMALL`].
pub const SMALL_QUOTA: u64 = 2;

/// The endpoint quota of [`SMALL`].
pub const SMALL_ENDPOINT_QUOTA: u64 = 3;

/// The network quotas of the usual tenants: large, so that no test but the quota tests meets
/// them.
pub const LARGE_NETWORK_QUOTAS: [u64; 3] = [1_000, 10_000, 100_000];

/// A tenant with small network quotas: [`NET_SMALL_QUOTAS`] VPCs, subnets and ports.
pub const NET_SMALL: AccountSpec = AccountSpec {
    domain_id: "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
    domain_name: "net-small",
    operator: false,
    projects: &["5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f"],
    service_quota: 10,
    endpoint_quota: 10,
    network_quotas: NET_SMALL_QUOTAS,
    access_key: "AKNETSMALL0000000001",
    secret_key: "net-small-secret-key",
};

/// The VPC, subnet and port quotas of [`NET_SMALL`].
pub const NET_SMALL_QUOTAS: [u64; 3] = [2, 3, 4];

/// Every tenant of the test accounts file.
pub const ACCOUNTS: &[AccountSpec] = &[OWNER, CONSUMER, OPERATOR, SMALL, NET_SMALL];

fn accounts_toml() -> String {
    let mut out = String::new();
    for a in ACCOUNTS {
        let projects = a
            .projects
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "[[account]]\ndomain_id = {:?}\ndomain_name = {:?}\noperator = {}\nprojects = [{projects}]\n\
             [account.quotas]\nendpoint_service = {}\nendpoint = {}\nvpc = {}\nsubnet = {}\nport = {}\n\
             [[account.credential]]\naccess_key = {:?}\nsecret_key = {:?}\n\n",
            a.domain_id,
            a.domain_name,
            a.operator,
            a.service_quota,
            a.endpoint_quota,
            a.network_quotas[0],
            a.network_quotas[1],
            a.network_quotas[2],
            a.access_key,
            a.secret_key
        ));
    }
    out
}

/// How long a graceful server shutdown may take before the test fails.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// One running server: the task serving it and how to stop it.
struct RunningServer {
    /// Fires the graceful shutdown future given to `ControlPlane::serve`.
    stop: CancellationToken,
    /// The serve task; its result is the server's exit.
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    async fn start(config: &ServeConfig) -> (Self, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let plane = ControlPlane::open(config)
            .await
            .expect("open the control plane");
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(plane.serve(listener, async move { signal.cancelled().await }));
        (RunningServer { stop, task }, format!("http://{addr}"))
    }

    async fn stop(self) {
        self.stop.cancel();
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("the server failed: {e:#}"),
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("the server did not shut down within {SHUTDOWN_TIMEOUT:?}"),
        }
    }
}

/// The PostgreSQL URL with `synchronous_commit` off for the server's sessions: commits return
/// before their WAL is flushed, which only matters if the database server crashes. Visibility,
/// locking and isolation are unchanged, so every behaviour under test is the same, and the
/// suite runs faster. SQLite URLs are returned as they are.
fn fast_commits(url: &str) -> String {
    url.replacen(
        "options=-c%20",
        "options=-c%20synchronous_commit%3Doff%20-c%20",
        1,
    )
}

/// Settings of a [`TestApp`] before it starts.
pub struct TestAppBuilder {
    backend: Backend,
    provisioning_delay: Duration,
    inventory: Option<String>,
    sqlite_file: Option<std::path::PathBuf>,
}

impl TestAppBuilder {
    /// Keeps the SQLite database in this file (its directory must exist) instead of a fresh
    /// temporary one; SQLite only.
    pub fn sqlite_file(mut self, path: std::path::PathBuf) -> Self {
        assert_eq!(self.backend, Backend::Sqlite, "a file is a SQLite database");
        self.sqlite_file = Some(path);
        self
    }

    /// Preloads this inventory file text (the server's `--inventory`) at every start.
    pub fn inventory(mut self, toml: &str) -> Self {
        self.inventory = Some(toml.into());
        self
    }

    /// How long creations and deletions take (the server's `--provisioning-delay`).
    pub fn provisioning_delay(mut self, delay: Duration) -> Self {
        self.provisioning_delay = delay;
        self
    }

    /// Starts the app, or answers `None` when its backend is PostgreSQL and that is not
    /// reachable (and not required; `TestDb` prints the notice).
    pub async fn start(self) -> Option<TestApp> {
        let Some(db) = TestDb::new(self.backend).await else {
            // Written past the test harness's output capture, so the skip shows in a plain run.
            let test = std::thread::current()
                .name()
                .unwrap_or("this test")
                .to_string();
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("SKIPPED {test}: PostgreSQL is not reachable (VPCEP_REQUIRE_PG=1 makes this a failure)\n")
                    .as_bytes(),
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = dir.path().join("accounts.toml");
        std::fs::write(&accounts, accounts_toml()).expect("write the accounts file");
        let inventory = self.inventory.map(|text| {
            let path = dir.path().join("inventory.toml");
            std::fs::write(&path, text).expect("write the inventory file");
            path
        });
        let database = match &self.sqlite_file {
            Some(path) => format!("sqlite://{}", path.display()),
            None => fast_commits(&db.url),
        };
        let config = ServeConfig {
            database,
            region: REGION.into(),
            accounts: Some(accounts),
            provisioning_delay: self.provisioning_delay,
            inventory,
            ..ServeConfig::default()
        };
        let (server, base_url) = RunningServer::start(&config).await;
        Some(TestApp {
            backend: self.backend,
            base_url,
            config,
            db: Some(db),
            _accounts_dir: dir,
            server: Some(server),
            networks: Default::default(),
        })
    }
}

/// A control plane serving on `127.0.0.1:<ephemeral>` over its own fresh database.
///
/// Call [`TestApp::shutdown`] at the end of a test: it stops the server gracefully and drops
/// the database. A test that panics before that still has its PostgreSQL schema dropped.
pub struct TestApp {
    /// The backend under test.
    pub backend: Backend,
    /// `http://127.0.0.1:<port>` of the current server (changes on restart).
    pub base_url: String,
    config: ServeConfig,
    db: Option<TestDb>,
    _accounts_dir: tempfile::TempDir,
    server: Option<RunningServer>,
    networks: Networks,
}

/// Each project's default network (see [`Tenant::fresh_port`]), made on first use.
type Networks = Arc<tokio::sync::Mutex<HashMap<&'static str, Network>>>;

impl TestApp {
    /// A builder with the defaults (no provisioning delay).
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            provisioning_delay: Duration::ZERO,
            inventory: None,
            sqlite_file: None,
        }
    }

    /// Starts an app with the defaults; `None` when PostgreSQL is unavailable (see the builder).
    pub async fn start(backend: Backend) -> Option<TestApp> {
        Self::builder(backend).start().await
    }

    /// Stops the server gracefully (in-flight requests finish, the reconciler stops) and starts
    /// a new one on the same database with `provisioning_delay`. Clients made before must be
    /// made again: the new server listens on another port.
    pub async fn restart(&mut self, provisioning_delay: Duration) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.config.provisioning_delay = provisioning_delay;
        let (server, base_url) = RunningServer::start(&self.config).await;
        self.server = Some(server);
        self.base_url = base_url;
    }

    /// The settings the current server runs with (its database, accounts, inventory).
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// Stops the server gracefully, then drops the database.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }

    /// A signed client of `account` acting in its `project`-th project.
    pub fn tenant(&self, account: AccountSpec, project: usize) -> Tenant {
        let project_id = account.projects[project];
        Tenant {
            account,
            project_id,
            client: Client::new(
                &self.base_url,
                account.access_key,
                account.secret_key,
                project_id,
            )
            .expect("client"),
            networks: self.networks.clone(),
        }
    }

    /// [`OWNER`] in its first project.
    pub fn owner(&self) -> Tenant {
        self.tenant(OWNER, 0)
    }

    /// [`OWNER`] in its second project.
    pub fn owner_other_project(&self) -> Tenant {
        self.tenant(OWNER, 1)
    }

    /// [`CONSUMER`].
    pub fn consumer(&self) -> Tenant {
        self.tenant(CONSUMER, 0)
    }

    /// [`OPERATOR`].
    pub fn operator(&self) -> Tenant {
        self.tenant(OPERATOR, 0)
    }

    /// [`SMALL`].
    pub fn small(&self) -> Tenant {
        self.tenant(SMALL, 0)
    }

    /// [`NET_SMALL`].
    pub fn net_small(&self) -> Tenant {
        self.tenant(NET_SMALL, 0)
    }

    /// An unsigned `GET` of `path` (e.g. `/health`).
    pub async fn get_unsigned(&self, path: &str) -> Resp {
        let resp = reqwest::Client::new()
            .get(format!("{}{path}", self.base_url))
            .send()
            .await
            .expect("send");
        Resp::from_reqwest(resp).await
    }

    /// A request signed by hand as `account`, to be tampered with before sending.
    pub fn hand_signed(&self, account: AccountSpec, method: &str, path: &str) -> HandSigned {
        HandSigned {
            base_url: self.base_url.clone(),
            access_key: account.access_key.into(),
            secret_key: account.secret_key.into(),
            project_id: account.projects[0].into(),
            method: method.into(),
            path: path.replace("{project_id}", account.projects[0]),
            query: String::new(),
            sent_query: None,
            body: Vec::new(),
            sent_body: None,
            date: unix_now(),
            authorization: true,
            unsigned: None,
            extra: Vec::new(),
            payload_hash: None,
        }
    }
}

impl Drop for TestApp {
    /// The cleanup of a test that did not reach `shutdown` (it panicked): stop the server and
    /// drop the PostgreSQL schema from a helper thread, since `Drop` cannot await.
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop.cancel();
            server.task.abort();
        }
        if let Some(db) = self.db.take() {
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(db.cleanup());
                }
            })
            .join();
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Waits until the wall clock has moved past the current millisecond, so that the next change
/// on the server gets a strictly later timestamp than everything answered so far.
pub async fn next_millisecond() {
    let millis = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis()
    };
    let start = millis();
    while millis() <= start {
        tokio::task::yield_now().await;
    }
}

/// Polls `check` every 20 ms until it answers `Ok`, and returns that value. Panics after
/// `timeout` with the last `Err` (the state observed), so a failure says what was seen.
pub async fn eventually<T, E, F, Fut>(timeout: Duration, mut check: F) -> T
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("condition not met within {timeout:?}; last observed: {last:?}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// How long background transitions may take in tests before they count as stuck.
pub const SETTLE: Duration = Duration::from_secs(10);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl From<RawResponse> for Resp {
    fn from(r: RawResponse) -> Self {
        Resp {
            status: r.status,
            headers: r.headers,
            body: r.body.to_vec(),
        }
    }
}

impl Resp {
    async fn from_reqwest(r: reqwest::Response) -> Self {
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes().await.expect("read body").to_vec(),
        }
    }

    /// The body as JSON; panics with the text when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): status {} body {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `X-Request-Id`, if present.
    pub fn request_id(&self) -> Option<&str> {
        self.headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
    }

    /// Asserts a 2xx status `status`; answers the JSON body (`null` when empty).
    pub fn ok(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.text()
        );
        assert!(self.request_id().is_some(), "no X-Request-Id");
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts the API error shape with `status` and `code` (and an `X-Request-Id`); answers
    /// `error_msg`.
    pub fn err(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status,
            status,
            "expected {status} {code}, got {}: {}",
            self.status,
            self.text()
        );
        assert!(
            self.request_id().is_some_and(|id| !id.is_empty()),
            "error response without X-Request-Id: {}",
            self.text()
        );
        let v = self.json();
        assert_eq!(v["error_code"], code, "error body: {v}");
        let msg = v["error_msg"].as_str().unwrap_or_default().to_string();
        assert!(!msg.is_empty(), "error_msg is empty: {v}");
        msg
    }

    /// Like [`Resp::err`], and the message names `field`.
    pub fn err_naming(&self, status: u16, code: &str, field: &str) -> String {
        let msg = self.err(status, code);
        assert!(
            msg.contains(field),
            "error_msg does not name {field:?}: {msg}"
        );
        msg
    }
}

/// A signed client for one account acting in one project.
#[derive(Clone)]
pub struct Tenant {
    /// Whose credentials sign.
    pub account: AccountSpec,
    /// The `{project_id}` of the paths.
    pub project_id: &'static str,
    /// The signed client.
    pub client: Client,
    networks: Networks,
}

const SERVICES: &str = "/v1/{project_id}/vpc-endpoint-services";

impl Tenant {
    /// Sends a signed request; `{project_id}` in the path is the tenant's project.
    pub async fn send(&self, method: Method, path_and_query: &str, body: Option<Vec<u8>>) -> Resp {
        self.client
            .send_raw(method, path_and_query, body)
            .await
            .expect("transport")
            .into()
    }

    /// The same credentials with another `{project_id}` in the paths.
    pub fn in_project(&self, project_id: &'static str) -> Tenant {
        Tenant {
            project_id,
            client: self.client.with_project(project_id),
            ..self.clone()
        }
    }

    /// `create_endpoint_service` with a JSON body.
    pub async fn create(&self, body: &Value) -> Resp {
        self.create_raw(body.to_string().into_bytes()).await
    }

    /// `create_endpoint_service` with raw bytes.
    pub async fn create_raw(&self, body: Vec<u8>) -> Resp {
        self.send(Method::POST, SERVICES, Some(body)).await
    }

    /// `create_endpoint_service`, asserting 200; answers the service.
    pub async fn create_ok(&self, body: &Value) -> Value {
        self.create(body).await.ok(200)
    }

    /// `list_service_details`.
    pub async fn show(&self, id: &str) -> Resp {
        self.send(Method::GET, &format!("{SERVICES}/{id}"), None)
            .await
    }

    /// `list_endpoint_service` with a raw query string (without `?`).
    pub async fn list(&self, query: &str) -> Resp {
        let path = if query.is_empty() {
            SERVICES.to_string()
        } else {
            format!("{SERVICES}?{query}")
        };
        self.send(Method::GET, &path, None).await
    }

    /// `list_endpoint_service`, asserting 200; answers (ids in order, total_count).
    pub async fn list_ids(&self, query: &str) -> (Vec<String>, u64) {
        let v = self.list(query).await.ok(200);
        let ids = v["endpoint_services"]
            .as_array()
            .unwrap_or_else(|| panic!("endpoint_services is not a list: {v}"))
            .iter()
            .map(|s| s["id"].as_str().expect("id").to_string())
            .collect();
        (ids, v["total_count"].as_u64().expect("total_count"))
    }

    /// `update_endpoint_service`.
    pub async fn update(&self, id: &str, body: &Value) -> Resp {
        self.send(
            Method::PUT,
            &format!("{SERVICES}/{id}"),
            Some(body.to_string().into_bytes()),
        )
        .await
    }

    /// `update_endpoint_service_name`.
    pub async fn rename(&self, id: &str, name: &str) -> Resp {
        self.send(
            Method::PUT,
            &format!("{SERVICES}/{id}/name"),
            Some(
                json!({ "endpoint_service_name": name })
                    .to_string()
                    .into_bytes(),
            ),
        )
        .await
    }

    /// `delete_endpoint_service`.
    pub async fn delete(&self, id: &str) -> Resp {
        self.send(Method::DELETE, &format!("{SERVICES}/{id}"), None)
            .await
    }

    /// `list_service_describe_details` with a raw query string.
    pub async fn describe(&self, query: &str) -> Resp {
        self.send(Method::GET, &format!("{SERVICES}/describe?{query}"), None)
            .await
    }

    /// `list_service_public_details` with a raw query string.
    pub async fn public(&self, query: &str) -> Resp {
        let path = if query.is_empty() {
            format!("{SERVICES}/public")
        } else {
            format!("{SERVICES}/public?{query}")
        };
        self.send(Method::GET, &path, None).await
    }

    /// Polls `list_service_details` until the service has `status`; answers it.
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        eventually(SETTLE, || async {
            let r = self.show(id).await;
            match r.status {
                200 if r.json()["status"] == status => Ok(r.json()),
                _ => Err((r.status, r.text())),
            }
        })
        .await
    }

    /// Polls `list_service_details` until the service is gone (404 EndPoint.0005).
    pub async fn wait_gone(&self, id: &str) {
        eventually(SETTLE, || async {
            let r = self.show(id).await;
            match r.status {
                404 => {
                    r.err(404, "EndPoint.0005");
                    Ok(())
                }
                _ => Err((r.status, r.text())),
            }
        })
        .await
    }
}

/// A fresh UUID string (port, VPC ids).
pub fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A TCP port mapping for request bodies.
pub fn port(client: u16, server: u16) -> Value {
    json!({ "client_port": client, "server_port": server, "protocol": "TCP" })
}

/// A valid create body (the seed example's shape) on `backing` (a `VM` port) with `ports`.
pub fn service_on(backing: &Backing, ports: &[(u16, u16)]) -> Value {
    json!({
        "port_id": backing.port_id,
        "vpc_id": backing.vpc_id,
        "server_type": "VM",
        "ports": ports.iter().map(|&(c, s)| port(c, s)).collect::<Vec<_>>(),
    })
}

/// The default port mappings of [`Tenant::service`].
pub const DEFAULT_PORTS: &[(u16, u16)] = &[(8080, 90), (8081, 80)];

/// `body` with `key` set to `value`.
pub fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// `body` without `key`.
pub fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().expect("object").remove(key);
    body
}

/// The `id` of a service JSON.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// A request signed by hand with `vpcep_sign::sign`, like the SDK, where the test can change
/// what is sent after signing.
pub struct HandSigned {
    base_url: String,
    access_key: String,
    secret_key: String,
    project_id: String,
    method: String,
    path: String,
    query: String,
    sent_query: Option<String>,
    body: Vec<u8>,
    sent_body: Option<Vec<u8>>,
    date: i64,
    authorization: bool,
    unsigned: Option<&'static str>,
    extra: Vec<(&'static str, String, bool)>,
    payload_hash: Option<String>,
}

impl HandSigned {
    /// Signs and sends this query (without `?`).
    pub fn query(mut self, q: &str) -> Self {
        self.query = q.into();
        self
    }

    /// Sends this query instead of the signed one.
    pub fn send_query(mut self, q: &str) -> Self {
        self.sent_query = Some(q.into());
        self
    }

    /// Signs and sends this body.
    pub fn body(mut self, b: &[u8]) -> Self {
        self.body = b.to_vec();
        self
    }

    /// Sends this body instead of the signed one.
    pub fn send_body(mut self, b: &[u8]) -> Self {
        self.sent_body = Some(b.to_vec());
        self
    }

    /// Signs with these credentials instead.
    pub fn keys(mut self, access_key: &str, secret_key: &str) -> Self {
        self.access_key = access_key.into();
        self.secret_key = secret_key.into();
        self
    }

    /// Dates the request `offset_secs` from now (negative: in the past).
    pub fn date_offset(mut self, offset_secs: i64) -> Self {
        self.date = unix_now() + offset_secs;
        self
    }

    /// Leaves the `Authorization` header out.
    pub fn without_authorization(mut self) -> Self {
        self.authorization = false;
        self
    }

    /// Leaves the header `name` (`Host`, `X-Sdk-Date`, ...) out of the signed headers; it is
    /// still sent.
    pub fn without_signed(mut self, name: &'static str) -> Self {
        self.unsigned = Some(name);
        self
    }

    /// Sends the header `name: value` too; `signed` puts it in `SignedHeaders`.
    pub fn header(mut self, name: &'static str, value: &str, signed: bool) -> Self {
        self.extra.push((name, value.into(), signed));
        self
    }

    /// Signs with this literal in place of the hex SHA-256 of the body, as the SDK does with
    /// `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`.
    pub fn payload_hash(mut self, literal: &str) -> Self {
        self.payload_hash = Some(literal.into());
        self
    }

    /// Signs and sends.
    pub async fn send(self) -> Resp {
        let host = self
            .base_url
            .strip_prefix("http://")
            .expect("http base url")
            .to_string();
        let date = vpcep_sign::format_sdk_date(self.date);
        let content_type = "application/json;charset=utf-8";
        let headers = [
            ("Content-Type", content_type),
            ("Host", host.as_str()),
            ("X-Project-Id", self.project_id.as_str()),
            ("X-Sdk-Date", date.as_str()),
        ];
        let parts = vpcep_sign::RequestParts {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            body: &self.body,
        };
        let mut signed: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .filter(|(name, _)| Some(*name) != self.unsigned)
            .collect();
        signed.extend(
            self.extra
                .iter()
                .filter(|(_, _, is_signed)| *is_signed)
                .map(|(name, value, _)| (*name, value.as_str())),
        );
        let auth = match &self.payload_hash {
            None => vpcep_sign::sign(&self.access_key, &self.secret_key, &parts, &signed),
            Some(literal) => {
                let mut lower: Vec<(String, &str)> = signed
                    .iter()
                    .map(|(n, v)| (n.to_ascii_lowercase(), *v))
                    .collect();
                lower.sort();
                let refs: Vec<(&str, &str)> = lower.iter().map(|(n, v)| (n.as_str(), *v)).collect();
                let creq = vpcep_sign::canonical_request(&parts, &refs, literal);
                let sig = vpcep_sign::signature(
                    &self.secret_key,
                    &vpcep_sign::string_to_sign(&date, &creq),
                );
                let names: Vec<&str> = refs.iter().map(|(n, _)| *n).collect();
                format!(
                    "{} Access={}, SignedHeaders={}, Signature={sig}",
                    vpcep_sign::ALGORITHM,
                    self.access_key,
                    names.join(";")
                )
            }
        };
        let query = self.sent_query.as_deref().unwrap_or(&self.query);
        let url = if query.is_empty() {
            format!("{}{}", self.base_url, self.path)
        } else {
            format!("{}{}?{query}", self.base_url, self.path)
        };
        let method = Method::from_bytes(self.method.as_bytes()).expect("method");
        let mut req = reqwest::Client::new()
            .request(method, url)
            .header("Content-Type", content_type)
            .header("X-Project-Id", &self.project_id)
            .header("X-Sdk-Date", &date);
        for (name, value, _) in &self.extra {
            req = req.header(*name, value);
        }
        if self.authorization {
            req = req.header("Authorization", auth);
        }
        let body = self.sent_body.unwrap_or(self.body);
        Resp::from_reqwest(req.body(body).send().await.expect("send")).await
    }
}

/// `device_owner` of a VM's NIC: backs `server_type` `VM`.
pub const VM_OWNER: &str = "compute:test-1a";
/// `device_owner` of a load balancer's VIP port: backs `server_type` `LB`.
pub const LB_OWNER: &str = "neutron:LOADBALANCERV2";
/// `device_owner` of a virtual IP port: backs `server_type` `VIP`.
pub const VIP_OWNER: &str = "neutron:VIP_PORT";

/// The `device_owner` a port needs to back a service of `server_type`.
pub fn device_owner_for(server_type: &str) -> &'static str {
    match server_type {
        "VM" => VM_OWNER,
        "LB" => LB_OWNER,
        "VIP" => VIP_OWNER,
        other => panic!("no device owner for server_type {other:?}"),
    }
}

/// A VPC with one subnet, made through the VPC API.
#[derive(Debug, Clone)]
pub struct Network {
    /// The VPC.
    pub vpc_id: String,
    /// Its subnet (also the `network_id` of ports).
    pub subnet_id: String,
    /// The subnet's CIDR.
    pub cidr: String,
}

/// A port that can back an endpoint service, with where it sits.
#[derive(Debug, Clone)]
pub struct Backing {
    /// The port's VPC.
    pub vpc_id: String,
    /// The port's subnet.
    pub subnet_id: String,
    /// The port.
    pub port_id: String,
    /// Its fixed IP.
    pub ip: String,
}

/// The first host address of an IPv4 CIDR (`10.0.1.0/24` → `10.0.1.1`): the tests' gateway.
pub fn first_host(cidr: &str) -> String {
    let (net, _) = cidr.split_once('/').expect("CIDR");
    let ip: std::net::Ipv4Addr = net.parse().expect("IPv4 network");
    std::net::Ipv4Addr::from(u32::from(ip) + 1).to_string()
}

/// A create-endpoint body for `service_id` in `net`.
pub fn endpoint_to(service_id: &str, net: &Network) -> Value {
    json!({
        "endpoint_service_id": service_id,
        "vpc_id": net.vpc_id,
        "subnet_id": net.subnet_id,
    })
}

const VPCS: &str = "/v1/{project_id}/vpcs";
const SUBNETS: &str = "/v1/{project_id}/subnets";
const PORTS: &str = "/v1/{project_id}/ports";
const ENDPOINTS: &str = "/v1/{project_id}/vpc-endpoints";

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    }
}

/// The `id` strings of a JSON list.
pub fn ids_in(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(id_of)
        .collect()
}

impl Tenant {
    async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::POST, path, Some(body.to_string().into_bytes()))
            .await
    }

    async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send(Method::PUT, path, Some(body.to_string().into_bytes()))
            .await
    }

    async fn get(&self, path: &str) -> Resp {
        self.send(Method::GET, path, None).await
    }

    async fn del(&self, path: &str) -> Resp {
        self.send(Method::DELETE, path, None).await
    }

    /// `create_vpc` with `{"vpc": vpc}`.
    pub async fn create_vpc(&self, vpc: &Value) -> Resp {
        self.post(VPCS, &json!({ "vpc": vpc })).await
    }

    /// `create_vpc` with this CIDR, asserting 200; answers the VPC id.
    pub async fn vpc_ok(&self, cidr: &str) -> String {
        id_of(&self.create_vpc(&json!({ "cidr": cidr })).await.ok(200)["vpc"])
    }

    /// `show_vpc`.
    pub async fn show_vpc(&self, id: &str) -> Resp {
        self.get(&format!("{VPCS}/{id}")).await
    }

    /// `list_vpcs` with a raw query.
    pub async fn list_vpcs(&self, query: &str) -> Resp {
        self.get(&with_query(VPCS, query)).await
    }

    /// `update_vpc` with `{"vpc": vpc}`.
    pub async fn update_vpc(&self, id: &str, vpc: &Value) -> Resp {
        self.put(&format!("{VPCS}/{id}"), &json!({ "vpc": vpc }))
            .await
    }

    /// `delete_vpc`.
    pub async fn delete_vpc(&self, id: &str) -> Resp {
        self.del(&format!("{VPCS}/{id}")).await
    }

    /// `create_subnet` with `{"subnet": subnet}`.
    pub async fn create_subnet(&self, subnet: &Value) -> Resp {
        self.post(SUBNETS, &json!({ "subnet": subnet })).await
    }

    /// `create_subnet` with this CIDR (gateway: its first host), asserting 200; answers the subnet
    /// id.
    pub async fn subnet_ok(&self, vpc_id: &str, cidr: &str) -> String {
        let body = json!({
            "name": "subnet",
            "cidr": cidr,
            "gateway_ip": first_host(cidr),
            "vpc_id": vpc_id,
        });
        id_of(&self.create_subnet(&body).await.ok(200)["subnet"])
    }

    /// `show_subnet`.
    pub async fn show_subnet(&self, id: &str) -> Resp {
        self.get(&format!("{SUBNETS}/{id}")).await
    }

    /// `list_subnets` with a raw query.
    pub async fn list_subnets(&self, query: &str) -> Resp {
        self.get(&with_query(SUBNETS, query)).await
    }

    /// `update_subnet` with `{"subnet": subnet}`.
    pub async fn update_subnet(&self, vpc_id: &str, id: &str, subnet: &Value) -> Resp {
        self.put(
            &format!("{VPCS}/{vpc_id}/subnets/{id}"),
            &json!({ "subnet": subnet }),
        )
        .await
    }

    /// `delete_subnet`.
    pub async fn delete_subnet(&self, vpc_id: &str, id: &str) -> Resp {
        self.del(&format!("{VPCS}/{vpc_id}/subnets/{id}")).await
    }

    /// `create_port` with `{"port": port}`.
    pub async fn create_port(&self, port: &Value) -> Resp {
        self.post(PORTS, &json!({ "port": port })).await
    }

    /// `create_port` in `subnet_id` with `device_owner`, asserting 200; answers the port.
    pub async fn port_ok(&self, subnet_id: &str, device_owner: &str) -> Value {
        let body = json!({ "network_id": subnet_id, "device_owner": device_owner });
        self.create_port(&body).await.ok(200)["port"].clone()
    }

    /// `show_port`.
    pub async fn show_port(&self, id: &str) -> Resp {
        self.get(&format!("{PORTS}/{id}")).await
    }

    /// `list_ports` with a raw query.
    pub async fn list_ports(&self, query: &str) -> Resp {
        self.get(&with_query(PORTS, query)).await
    }

    /// `update_port` with `{"port": port}`.
    pub async fn update_port(&self, id: &str, port: &Value) -> Resp {
        self.put(&format!("{PORTS}/{id}"), &json!({ "port": port }))
            .await
    }

    /// `delete_port`.
    pub async fn delete_port(&self, id: &str) -> Resp {
        self.del(&format!("{PORTS}/{id}")).await
    }

    /// `list_privateips` with a raw query.
    pub async fn private_ips(&self, subnet_id: &str, query: &str) -> Resp {
        self.get(&with_query(
            &format!("{SUBNETS}/{subnet_id}/privateips"),
            query,
        ))
        .await
    }

    /// `list_privateips`, asserting 200; answers the allocated addresses, sorted.
    pub async fn allocated(&self, subnet_id: &str) -> Vec<String> {
        let v = self.private_ips(subnet_id, "").await.ok(200);
        let mut ips: Vec<String> = v["privateips"]
            .as_array()
            .unwrap_or_else(|| panic!("no privateips: {v}"))
            .iter()
            .map(|p| p["ip_address"].as_str().expect("ip_address").to_string())
            .collect();
        ips.sort_by_key(|ip| ip.parse::<std::net::Ipv4Addr>().expect("IPv4"));
        ips
    }

    /// A new VPC of `vpc_cidr` with one subnet of `subnet_cidr`.
    pub async fn network_with(&self, vpc_cidr: &str, subnet_cidr: &str) -> Network {
        let vpc_id = self.vpc_ok(vpc_cidr).await;
        let subnet_id = self.subnet_ok(&vpc_id, subnet_cidr).await;
        Network {
            vpc_id,
            subnet_id,
            cidr: subnet_cidr.into(),
        }
    }

    /// A new VPC 10.0.0.0/16 with the subnet 10.0.0.0/20.
    pub async fn network(&self) -> Network {
        self.network_with("10.0.0.0/16", "10.0.0.0/20").await
    }

    /// A new port with `device_owner` in `net`.
    pub async fn backing_in(&self, net: &Network, device_owner: &str) -> Backing {
        let p = self.port_ok(&net.subnet_id, device_owner).await;
        Backing {
            vpc_id: net.vpc_id.clone(),
            subnet_id: net.subnet_id.clone(),
            port_id: id_of(&p),
            ip: p["fixed_ips"][0]["ip_address"]
                .as_str()
                .expect("fixed ip")
                .to_string(),
        }
    }

    /// A new VPC, subnet and VM port, for a test that needs a backend of its own.
    pub async fn backend(&self) -> Backing {
        let net = self.network().await;
        self.backing_in(&net, VM_OWNER).await
    }

    /// This project's default network (10.0.0.0/16 with the subnet 10.0.0.0/18), made on
    /// first use and shared by [`Tenant::fresh_port`].
    pub async fn default_network(&self) -> Network {
        let mut nets = self.networks.lock().await;
        if let Some(net) = nets.get(self.project_id) {
            return net.clone();
        }
        let net = self.network_with("10.0.0.0/16", "10.0.0.0/18").await;
        nets.insert(self.project_id, net.clone());
        net
    }

    /// A new VM port in the default network: one request per service after the first.
    pub async fn fresh_port(&self) -> Backing {
        self.fresh_port_of("VM").await
    }

    /// A new port in the default network that backs `server_type`.
    pub async fn fresh_port_of(&self, server_type: &str) -> Backing {
        let net = self.default_network().await;
        self.backing_in(&net, device_owner_for(server_type)).await
    }

    /// A valid create body on a fresh VM port with [`DEFAULT_PORTS`].
    pub async fn service(&self) -> Value {
        service_on(&self.fresh_port().await, DEFAULT_PORTS)
    }

    /// `create_endpoint_service` with `body`, then waits until the service is `available`; answers
    /// it.
    pub async fn available_service(&self, body: &Value) -> Value {
        let id = id_of(&self.create_ok(body).await);
        self.wait_status(&id, "available").await
    }

    /// `create_endpoint`.
    pub async fn create_endpoint(&self, body: &Value) -> Resp {
        self.post(ENDPOINTS, body).await
    }

    /// `create_endpoint`, asserting 200; answers the endpoint.
    pub async fn endpoint_ok(&self, body: &Value) -> Value {
        self.create_endpoint(body).await.ok(200)
    }

    /// `list_endpoint_info_details`.
    pub async fn show_endpoint(&self, id: &str) -> Resp {
        self.get(&format!("{ENDPOINTS}/{id}")).await
    }

    /// `list_endpoints` with a raw query.
    pub async fn list_endpoints(&self, query: &str) -> Resp {
        self.get(&with_query(ENDPOINTS, query)).await
    }

    /// `list_endpoints`, asserting 200; answers (ids in order, total_count).
    pub async fn list_endpoint_ids(&self, query: &str) -> (Vec<String>, u64) {
        let v = self.list_endpoints(query).await.ok(200);
        (
            ids_in(&v["endpoints"]),
            v["total_count"].as_u64().expect("total_count"),
        )
    }

    /// `update_endpoint_white`.
    pub async fn update_whitelist(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("{ENDPOINTS}/{id}"), body).await
    }

    /// `delete_endpoint`.
    pub async fn delete_endpoint(&self, id: &str) -> Resp {
        self.del(&format!("{ENDPOINTS}/{id}")).await
    }

    /// `update_endpoint_policy`.
    pub async fn update_policy(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("{ENDPOINTS}/{id}/policy"), body).await
    }

    /// `delete_endpoint_policy`.
    pub async fn delete_policy(&self, id: &str) -> Resp {
        self.del(&format!("{ENDPOINTS}/{id}/policy")).await
    }

    /// `update_endpoint_routetable`.
    pub async fn update_routetables(&self, id: &str, body: &Value) -> Resp {
        self.put(&format!("{ENDPOINTS}/{id}/routetables"), body)
            .await
    }

    /// `upgrade_endpoint`.
    pub async fn upgrade_endpoint(&self, id: &str, body: &Value) -> Resp {
        self.post(
            &format!("/v2/{{project_id}}/vpc-endpoints/{id}/upgrade"),
            body,
        )
        .await
    }

    /// Polls `list_endpoint_info_details` until the endpoint has `status`; answers it.
    pub async fn wait_endpoint_status(&self, id: &str, status: &str) -> Value {
        eventually(SETTLE, || async {
            let r = self.show_endpoint(id).await;
            match r.status {
                200 if r.json()["status"] == status => Ok(r.json()),
                _ => Err((r.status, r.text())),
            }
        })
        .await
    }

    /// Polls `list_endpoint_info_details` until the endpoint is gone (404 EndPoint.2006).
    pub async fn wait_endpoint_gone(&self, id: &str) {
        eventually(SETTLE, || async {
            let r = self.show_endpoint(id).await;
            match r.status {
                404 => {
                    r.err(404, "EndPoint.2006");
                    Ok(())
                }
                _ => Err((r.status, r.text())),
            }
        })
        .await
    }

    /// `list_service_connections` with a raw query.
    pub async fn connections(&self, service_id: &str, query: &str) -> Resp {
        self.get(&with_query(
            &format!("{SERVICES}/{service_id}/connections"),
            query,
        ))
        .await
    }

    /// `accept_or_reject_endpoint` with `action` on `endpoints`.
    pub async fn connection_action(
        &self,
        service_id: &str,
        action: &str,
        endpoints: &[&str],
    ) -> Resp {
        self.post(
            &format!("{SERVICES}/{service_id}/connections/action"),
            &json!({ "action": action, "endpoints": endpoints }),
        )
        .await
    }

    /// `update_endpoint_connections_desc`.
    pub async fn connection_descriptions(&self, service_id: &str, body: &Value) -> Resp {
        self.put(
            &format!("{SERVICES}/{service_id}/connections/description"),
            body,
        )
        .await
    }

    /// `add_or_remove_service_permissions` with `action` (`add` or `remove`) on `permissions` (type
    /// `domainId`).
    pub async fn permission_action(
        &self,
        service_id: &str,
        action: &str,
        permissions: &[&str],
    ) -> Resp {
        self.post(
            &format!("{SERVICES}/{service_id}/permissions/action"),
            &json!({ "action": action, "permissions": permissions }),
        )
        .await
    }

    /// `batch_add_endpoint_service_permissions` with a raw body.
    pub async fn batch_add_permissions(&self, service_id: &str, body: &Value) -> Resp {
        self.post(
            &format!("{SERVICES}/{service_id}/permissions/batch-create"),
            body,
        )
        .await
    }

    /// v2 `upgrade_endpoint_service` with an optional JSON body (the SDK sends none).
    pub async fn upgrade_service(&self, service_id: &str, body: Option<&Value>) -> Resp {
        self.send(
            Method::POST,
            &format!("/v2/{{project_id}}/vpc-endpoint-services/{service_id}/upgrade"),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    /// `list_quota_details` with a raw query; asserting 200, answers `(used, quota)` per resource
    /// type.
    pub async fn quotas(&self, query: &str) -> HashMap<String, (u64, u64)> {
        let v = self
            .get(&with_query("/v1/{project_id}/quotas", query))
            .await
            .ok(200);
        v["quotas"]["resources"]
            .as_array()
            .unwrap_or_else(|| panic!("no quotas.resources: {v}"))
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().expect("type").to_string(),
                    (
                        r["used"].as_u64().expect("used"),
                        r["quota"].as_u64().expect("quota"),
                    ),
                )
            })
            .collect()
    }

    /// `batch_add_or_remove_resource_instance` on `/v1/{project_id}/{kind}/{id}/tags/action`.
    pub async fn tag_action(&self, kind: &str, id: &str, body: &Value) -> Resp {
        self.post(&format!("/v1/{{project_id}}/{kind}/{id}/tags/action"), body)
            .await
    }

    /// `list_query_project_resource_tags`.
    pub async fn project_tags(&self, kind: &str) -> Resp {
        self.get(&format!("/v1/{{project_id}}/{kind}/tags")).await
    }

    /// `list_resource_instances`.
    pub async fn query_resources(&self, kind: &str, body: &Value) -> Resp {
        self.post(
            &format!("/v1/{{project_id}}/{kind}/resource_instances/action"),
            body,
        )
        .await
    }
}
