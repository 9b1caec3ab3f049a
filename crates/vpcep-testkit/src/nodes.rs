//! Several control-plane nodes on one database (the multi-node and crash tests): an [`Env`]
//! (fresh database and accounts file), in-process [`Node`]s, `vpcep serve` child
//! [`Process`]es, a signed [`Api`] wrapper and a direct look at the stored rows ([`Stored`]).

pub use crate::accounts::{AccountSpec, Quotas};
pub use crate::app::id_of;
pub use crate::db::{skip_notice, Backend};
pub use crate::server::Server as Node;
pub use crate::wait::{eventually, free_port};

use crate::db::TestDb;
use crate::process::Child;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::{Connection, Row};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vpcep::server::ServeConfig;
use vpcep_client::Client;

/// Region of every test server.
pub const REGION: &str = "mn-1";

/// The usual owner: a quota large enough never to matter.
pub const OWNER: AccountSpec = AccountSpec {
    domain_id: "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
    domain_name: "owner",
    operator: false,
    projects: &["5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b"],
    quotas: Quotas {
        endpoint_service: Some(1_000_000),
        ..Quotas::DEFAULT
    },
    access_key: "AKMNOWNER00000000001",
    secret_key: "mn-owner-secret",
};

/// A tenant whose project holds at most [`SMALL_QUOTA`] services.
pub const SMALL: AccountSpec = AccountSpec {
    domain_id: "6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a",
    domain_name: "small",
    operator: false,
    projects: &["6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b"],
    quotas: Quotas {
        endpoint_service: Some(SMALL_QUOTA),
        ..Quotas::DEFAULT
    },
    access_key: "AKMNSMALL00000000001",
    secret_key: "mn-small-secret",
};

/// The endpoint-service quota of [`SMALL`].
pub const SMALL_QUOTA: u64 = 7;

/// A fresh database plus a temp dir holding the accounts file and logs. The PostgreSQL schema
/// is dropped when this goes out of scope, also after a panic.
pub struct Env {
    pub backend: Backend,
    db: Option<TestDb>,
    pub dir: tempfile::TempDir,
    pub accounts: PathBuf,
}

impl Env {
    /// A fresh environment, or `None` (with a notice) when PostgreSQL is unreachable and not
    /// required.
    pub async fn new(backend: Backend) -> Option<Env> {
        let db = TestDb::or_skip(backend).await?;
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = crate::accounts::write_accounts(dir.path(), &[OWNER, SMALL]);
        Some(Env {
            backend,
            db: Some(db),
            dir,
            accounts,
        })
    }

    /// The database URL.
    pub fn url(&self) -> &str {
        &self.db.as_ref().expect("db").url
    }

    /// A `ServeConfig` on this database and accounts file.
    pub fn config(&self, provisioning_delay: Duration) -> ServeConfig {
        ServeConfig {
            database: self.url().to_string(),
            region: REGION.into(),
            accounts: Some(self.accounts.clone()),
            provisioning_delay,
            ..ServeConfig::default()
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(db) = self.db.take() {
            db.cleanup_blocking();
        }
    }
}

impl Node {
    /// A signed API client of `tenant` on this node.
    pub fn api(&self, tenant: AccountSpec) -> Api {
        Api::new(&self.url, tenant)
    }
}

/// A `vpcep serve` child process; killed (SIGKILL) when dropped.
pub struct Process {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl Process {
    /// Spawns `vpcep serve` on `database` with `--provisioning-delay delay` (humantime) in
    /// `cwd`, logging to `cwd/<log_name>`. `accounts: None` leaves the flag out.
    pub fn spawn(
        database: &str,
        accounts: Option<&Path>,
        delay: &str,
        cwd: &Path,
        log_name: &str,
    ) -> Process {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "serve",
            "--database",
            database,
            "--listen",
            &listen,
            "--region",
            REGION,
            "--provisioning-delay",
            delay,
        ];
        let accounts = accounts.map(|a| a.display().to_string());
        if let Some(a) = &accounts {
            args.extend(["--accounts", a]);
        }
        let log = cwd.join(log_name);
        Process {
            child: Child::spawn("vpcep serve", cwd, &args, "warn", log.clone()),
            url: format!("http://{listen}"),
            log,
        }
    }

    /// Waits until `/health` answers 200; panics with the log after `timeout` or if the
    /// process exits.
    pub async fn wait_healthy(&mut self, timeout: Duration) {
        let http = crate::http_within(Duration::from_secs(2));
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = http.get(format!("{}/health", self.url)).send().await {
                if r.status().as_u16() == 200 {
                    return;
                }
            }
            self.child.assert_running();
            if Instant::now() >= deadline {
                panic!(
                    "vpcep serve not healthy within {timeout:?}: {}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The log written so far.
    pub fn log_text(&self) -> String {
        self.child.log_text()
    }

    /// `kill -9` and reap.
    pub async fn kill9(&mut self) {
        self.child.kill9().await;
    }

    /// SIGTERM (graceful stop) and reap.
    pub async fn terminate(&mut self) {
        self.child.stop_gracefully().await;
    }

    /// A signed API client of `tenant` on this process.
    pub fn api(&self, tenant: AccountSpec) -> Api {
        Api::new(&self.url, tenant)
    }
}

/// A backend port made through the VPC API.
#[derive(Debug, Clone)]
pub struct BackendPort {
    pub vpc_id: String,
    pub subnet_id: String,
    pub port_id: String,
}

/// An answer: status and JSON body (`Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error_code"].as_str().unwrap_or("")
    }
}

/// A signed client of one tenant on one server.
#[derive(Clone)]
pub struct Api {
    pub client: Client,
}

const SERVICES: &str = "/v1/{project_id}/vpc-endpoint-services";

/// A create-service body on `b` with TCP `ports` (client, server).
pub fn service_body(b: &BackendPort, ports: &[(u16, u16)]) -> Value {
    json!({
        "port_id": b.port_id,
        "vpc_id": b.vpc_id,
        "server_type": "VM",
        "service_type": "interface",
        "approval_enabled": false,
        "ports": crate::app::ports(ports),
    })
}

/// The (client, server) pairs of a service JSON, in order.
pub fn ports_of(v: &Value) -> Vec<(u16, u16)> {
    v["ports"]
        .as_array()
        .unwrap_or_else(|| panic!("no ports in {v}"))
        .iter()
        .map(|p| {
            (
                p["client_port"].as_u64().expect("client_port") as u16,
                p["server_port"].as_u64().expect("server_port") as u16,
            )
        })
        .collect()
}

impl Api {
    pub fn new(url: &str, t: AccountSpec) -> Api {
        Api {
            client: crate::client(url, t.access_key, t.secret_key, t.project()),
        }
    }

    /// Sends a signed request; `Err` on transport failure.
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, String> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        let r = self
            .client
            .send_raw(method, path, bytes)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Answer {
            status: r.status,
            body: r.json(),
        })
    }

    /// Sends a signed request; panics on transport failure.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Answer {
        self.try_send(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    async fn post_ok(&self, path: &str, body: Value) -> Value {
        let a = self.send(Method::POST, path, Some(&body)).await;
        assert!(
            a.status == 200 || a.status == 201,
            "POST {path}: {} {}",
            a.status,
            a.body
        );
        a.body
    }

    /// A VPC with `cidr` (a /16), a /24 subnet and a VM port in it.
    pub async fn make_backend(&self, second_octet: u8) -> BackendPort {
        let vpc = self
            .post_ok(
                "/v1/{project_id}/vpcs",
                json!({"vpc": {"name": format!("vpc-{second_octet}-{}", uuid::Uuid::new_v4().simple()), "cidr": format!("10.{second_octet}.0.0/16")}}),
            )
            .await;
        let vpc_id = vpc["vpc"]["id"].as_str().expect("vpc id").to_string();
        let subnet = self
            .post_ok(
                "/v1/{project_id}/subnets",
                json!({"subnet": {"name": "sn", "cidr": format!("10.{second_octet}.0.0/24"),
                    "gateway_ip": format!("10.{second_octet}.0.1"), "vpc_id": vpc_id}}),
            )
            .await;
        let subnet_id = subnet["subnet"]["id"]
            .as_str()
            .expect("subnet id")
            .to_string();
        let mut b = BackendPort {
            vpc_id,
            subnet_id,
            port_id: String::new(),
        };
        b.port_id = self.make_port(&b).await;
        b
    }

    /// Another VM port in the subnet of `b`; answers its id.
    pub async fn make_port(&self, b: &BackendPort) -> String {
        let port = self
            .post_ok(
                "/v1/{project_id}/ports",
                json!({"port": {"network_id": b.subnet_id, "device_owner": "compute:az1"}}),
            )
            .await;
        port["port"]["id"].as_str().expect("port id").to_string()
    }

    /// `create_endpoint_service`.
    pub async fn try_create(
        &self,
        b: &BackendPort,
        ports: &[(u16, u16)],
    ) -> Result<Answer, String> {
        self.try_send(Method::POST, SERVICES, Some(&service_body(b, ports)))
            .await
    }

    /// `create_endpoint_service`; panics on transport failure.
    pub async fn create(&self, b: &BackendPort, ports: &[(u16, u16)]) -> Answer {
        self.try_create(b, ports).await.expect("transport")
    }

    /// `create_endpoint_service`, asserting 200; answers the service.
    pub async fn create_ok(&self, b: &BackendPort, ports: &[(u16, u16)]) -> Value {
        let a = self.create(b, ports).await;
        assert_eq!(a.status, 200, "create: {}", a.body);
        a.body
    }

    /// `list_service_details`.
    pub async fn show(&self, id: &str) -> Answer {
        self.send(Method::GET, &format!("{SERVICES}/{id}"), None)
            .await
    }

    /// `delete_endpoint_service`.
    pub async fn try_delete(&self, id: &str) -> Result<Answer, String> {
        self.try_send(Method::DELETE, &format!("{SERVICES}/{id}"), None)
            .await
    }

    /// `update_endpoint_service` with a JSON body.
    pub async fn update(&self, id: &str, body: &Value) -> Answer {
        self.send(Method::PUT, &format!("{SERVICES}/{id}"), Some(body))
            .await
    }

    /// `list_endpoint_service` with a query (without `?`), asserting 200: (services, total_count).
    pub async fn list(&self, query: &str) -> (Vec<Value>, u64) {
        let a = self
            .send(Method::GET, &format!("{SERVICES}?{query}"), None)
            .await;
        assert_eq!(a.status, 200, "list: {}", a.body);
        (
            a.body["endpoint_services"]
                .as_array()
                .expect("endpoint_services")
                .clone(),
            a.body["total_count"].as_u64().expect("total_count"),
        )
    }

    /// Every service of the project (paging by offset, 1000 a page) and the first page's
    /// `total_count`, with an extra filter `query` (may be empty).
    pub async fn list_all(&self, query: &str) -> (Vec<Value>, u64) {
        let mut all = Vec::new();
        let mut first_total = None;
        loop {
            let sep = if query.is_empty() { "" } else { "&" };
            let (page, total) = self
                .list(&format!("limit=1000&offset={}{sep}{query}", all.len()))
                .await;
            first_total.get_or_insert(total);
            let n = page.len();
            all.extend(page);
            if n < 1000 {
                return (all, first_total.unwrap_or(0));
            }
        }
    }
}

/// What the database holds, read directly (not through the server).
#[derive(Debug, Default)]
pub struct Stored {
    /// id → (project, status, port_id, ports JSON).
    pub services: BTreeMap<String, (String, String, String, String)>,
    /// (port_id, protocol, side, port) → service id.
    pub claims: BTreeMap<(String, String, String, i64), String>,
    /// project → `endpoint_service` usage counter.
    pub usage: BTreeMap<String, i64>,
}

impl Stored {
    /// Reads the tables of interest.
    pub async fn read(url: &str) -> Stored {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(url)
            .await
            .expect("connect to the test database");
        let mut out = Stored::default();
        for r in sqlx::query("SELECT id, project_id, status, port_id, ports FROM endpoint_services")
            .fetch_all(&mut conn)
            .await
            .expect("read services")
        {
            out.services.insert(
                r.get("id"),
                (
                    r.get("project_id"),
                    r.get("status"),
                    r.get("port_id"),
                    r.get("ports"),
                ),
            );
        }
        // Claims keep their ids as 16 bytes (migration 0015): read back as UUID text.
        let id = |r: &sqlx::any::AnyRow, col: &str| -> String {
            let bytes: Vec<u8> = r.get(col);
            uuid::Uuid::from_slice(&bytes)
                .map_or_else(|_| format!("not a UUID: {bytes:?}"), |u| u.to_string())
        };
        for r in
            sqlx::query("SELECT port_id, protocol, side, port, service_id FROM service_port_claims")
                .fetch_all(&mut conn)
                .await
                .expect("read claims")
        {
            out.claims.insert(
                (
                    id(&r, "port_id"),
                    r.get("protocol"),
                    r.get("side"),
                    r.get("port"),
                ),
                id(&r, "service_id"),
            );
        }
        for r in sqlx::query(
            "SELECT project_id, CAST(SUM(used) AS BIGINT) AS used FROM usage_slots \
             WHERE resource = 'endpoint_service' GROUP BY project_id",
        )
        .fetch_all(&mut conn)
        .await
        .expect("read usage")
        {
            out.usage.insert(r.get("project_id"), r.get("used"));
        }
        let _ = conn.close().await;
        out
    }

    /// Checks that nothing is half-written: every service holds exactly the claims its ports
    /// make, no claim belongs to a missing service, and each project's usage counter equals its
    /// number of rows. Answers the problems found.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut per_service: BTreeMap<&str, BTreeSet<(String, String, i64)>> = BTreeMap::new();
        for ((port_id, protocol, side, port), sid) in &self.claims {
            match self.services.get(sid) {
                None => problems.push(format!(
                    "claim {port_id}/{protocol}/{side}/{port} of missing service {sid}"
                )),
                Some((_, _, sport, _)) if sport != port_id => problems.push(format!(
                    "claim on port_id {port_id} of service {sid} which is on {sport}"
                )),
                Some(_) => {
                    per_service.entry(sid.as_str()).or_default().insert((
                        protocol.clone(),
                        side.clone(),
                        *port,
                    ));
                }
            }
        }
        let mut rows: BTreeMap<&str, i64> = BTreeMap::new();
        for (id, (project, _, _, ports)) in &self.services {
            *rows.entry(project.as_str()).or_default() += 1;
            let mappings: Vec<(u16, u16, String)> =
                serde_json::from_str(ports).expect("ports JSON");
            let want: BTreeSet<(String, String, i64)> = mappings
                .iter()
                .flat_map(|(c, s, p)| {
                    [
                        (p.clone(), "client".to_string(), i64::from(*c)),
                        (p.clone(), "server".to_string(), i64::from(*s)),
                    ]
                })
                .collect();
            let have = per_service.get(id.as_str()).cloned().unwrap_or_default();
            if have != want {
                problems.push(format!(
                    "service {id}: claims {have:?}, its ports make {want:?}"
                ));
            }
        }
        for (project, used) in &self.usage {
            let n = rows.get(project.as_str()).copied().unwrap_or(0);
            if *used != n {
                problems.push(format!("project {project}: usage counter {used}, rows {n}"));
            }
        }
        for (project, n) in &rows {
            if !self.usage.contains_key(*project) {
                problems.push(format!("project {project}: {n} rows, no usage counter"));
            }
        }
        problems
    }
}
