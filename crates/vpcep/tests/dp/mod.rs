//! Helpers for the data-plane end-to-end tests: a control plane with the data plane (in
//! process, or `vpcep serve` / `vpcep agent` as child processes), signed API calls for the
//! VPC and VPCEP resources, echo backends that record PROXY headers, and clients with a chosen
//! source address.
//!
//! Independent of `tests/common` (owned elsewhere): these tests need `--with-agent`,
//! `--require-agent` and `--inventory`, which that harness does not set.
#![allow(dead_code)]

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vpcep::server::{ControlPlane, ServeConfig};
use vpcep_client::Client;
pub use vpcep_store::conformance::Backend as Db;
use vpcep_store::conformance::TestDb;

/// The tenant that owns the services, the VPCs and the endpoints.
pub const TENANT_DOMAIN: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
/// Its project.
pub const PROJECT: &str = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a";
const TENANT_AK: &str = "AKE2ETENANT000000001";
const TENANT_SK: &str = "e2e-tenant-secret";
/// The operator account agents sign with.
pub const OPERATOR_AK: &str = "AKE2EOPERATOR0000001";
/// Its secret key.
pub const OPERATOR_SK: &str = "e2e-operator-secret";

/// Two more tenants, for the attacks of one tenant on another: (domain, project, AK, SK).
pub const VICTIM: (&str, &str, &str, &str) = (
    "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
    "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b",
    "AKE2EVICTIM000000001",
    "e2e-victim-secret",
);
/// The attacker tenant (see [`VICTIM`]).
pub const ATTACKER: (&str, &str, &str, &str) = (
    "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
    "1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c",
    "AKE2EATTACKER0000001",
    "e2e-attacker-secret",
);

/// The accounts file of every test server.
pub fn accounts_toml() -> String {
    let tenant = |(domain, project, ak, sk): (&str, &str, &str, &str), name: &str| {
        format!(
            "[[account]]\ndomain_id = \"{domain}\"\ndomain_name = \"{name}\"\noperator = false\n\
             projects = [\"{project}\"]\n[[account.credential]]\naccess_key = \"{ak}\"\n\
             secret_key = \"{sk}\"\n\n"
        )
    };
    format!(
        "{}{}{}\
         [[account]]\ndomain_id = \"0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e\"\ndomain_name = \"operator\"\n\
         operator = true\nprojects = [\"3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e\"]\n[[account.credential]]\n\
         access_key = \"{OPERATOR_AK}\"\nsecret_key = \"{OPERATOR_SK}\"\n",
        tenant((TENANT_DOMAIN, PROJECT, TENANT_AK, TENANT_SK), "tenant"),
        tenant(VICTIM, "victim"),
        tenant(ATTACKER, "attacker"),
    )
}

/// How long background transitions may take before a test fails.
pub const SETTLE: Duration = Duration::from_secs(10);
/// How soon a change of desired state must show in the data plane.
pub const PROMPT: Duration = Duration::from_secs(1);

/// Prints logs when `TEST_LOG` is set.
pub fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,vpcep_proxy=debug")
            .with_test_writer()
            .try_init();
    }
}

/// Written past the harness's output capture, so that a skip shows in a plain run.
pub fn notice(msg: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{msg}\n").as_bytes());
}

/// Polls `check` every 20 ms until it answers `Ok`; panics after `timeout` with the last `Err`.
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

/// A control plane serving in this process on `127.0.0.1:<ephemeral>` over a fresh SQLite file.
pub struct Plane {
    /// `http://127.0.0.1:<port>` (changes on restart).
    pub base_url: String,
    /// The tenant's signed client.
    pub api: Api,
    cfg: ServeConfig,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    db: Option<TestDb>,
    _dir: tempfile::TempDir,
}

/// What a [`Plane`] runs with.
pub struct PlaneOptions {
    /// The store (SQLite unless said).
    pub db: Db,
    /// `--with-agent`.
    pub with_agent: bool,
    /// `--require-agent`.
    pub require_agent: bool,
    /// The `--inventory` file's text.
    pub inventory: Option<String>,
    /// `--dataplane-cidrs` ([`DATAPLANE_CIDRS`] unless said).
    pub dataplane_cidrs: Option<String>,
    /// `--dns-listen` and friends (private DNS off unless said).
    pub dns: Option<vpcep_dns::DnsOptions>,
}

impl Default for PlaneOptions {
    fn default() -> Self {
        PlaneOptions {
            db: Db::Sqlite,
            with_agent: false,
            require_agent: false,
            inventory: None,
            dataplane_cidrs: None,
            dns: None,
        }
    }
}

/// The `--dataplane-cidrs` of the test servers and agents: all of loopback (the host's own
/// `127.0.0.1` stays refused), so that tests can use many /16s side by side.
pub const DATAPLANE_CIDRS: &str = "127.0.0.0/8";

/// Data-plane options of the in-process agent: short drain so that shutdowns are quick.
pub fn proxy_options() -> vpcep_proxy::ProxyOptions {
    vpcep_proxy::ProxyOptions {
        agent_id: "e2e-in-process".into(),
        drain_timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(2),
        retry_interval: Duration::from_millis(500),
        dataplane_cidrs: vec![DATAPLANE_CIDRS.parse().unwrap()],
        ..vpcep_proxy::ProxyOptions::default()
    }
}

impl Plane {
    /// Starts a control plane; `None` (with a printed notice) when its database is PostgreSQL
    /// and that is not reachable (and `VPCEP_REQUIRE_PG` is not set).
    pub async fn try_start(opts: PlaneOptions) -> Option<Plane> {
        let Some(db) = TestDb::new(opts.db).await else {
            let test = std::thread::current().name().unwrap_or("test").to_string();
            notice(&format!("SKIPPED {test}: PostgreSQL is not reachable"));
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = dir.path().join("accounts.toml");
        std::fs::write(&accounts, accounts_toml()).expect("write accounts");
        let inventory = opts.inventory.as_ref().map(|text| {
            let p = dir.path().join("inventory.toml");
            std::fs::write(&p, text).expect("write inventory");
            p
        });
        let cfg = ServeConfig {
            database: db.url.clone(),
            region: "e2e-1".into(),
            accounts: Some(accounts),
            inventory,
            with_agent: opts.with_agent,
            require_agent: opts.require_agent,
            proxy: vpcep_proxy::ProxyOptions {
                dataplane_cidrs: vpcep_domain::dataplane::AddressPolicy::parse_cidrs(
                    opts.dataplane_cidrs.as_deref().unwrap_or(DATAPLANE_CIDRS),
                )
                .expect("valid --dataplane-cidrs"),
                ..proxy_options()
            },
            dns: opts.dns,
            ..ServeConfig::default()
        };
        let (stop, task, base_url) = serve(&cfg).await;
        Some(Plane {
            api: Api::tenant(&base_url),
            base_url,
            cfg,
            stop,
            task: Some(task),
            db: Some(db),
            _dir: dir,
        })
    }

    /// Starts a control plane on SQLite (or fails).
    pub async fn start(opts: PlaneOptions) -> Plane {
        assert_eq!(opts.db, Db::Sqlite, "use try_start");
        Self::try_start(opts).await.expect("SQLite is always there")
    }

    /// Stops gracefully, then starts again on the same database (on another port).
    pub async fn restart(&mut self) {
        self.pause().await;
        self.resume().await;
    }

    /// Stops gracefully; [`Plane::resume`] starts it again.
    pub async fn pause(&mut self) {
        self.stop_gracefully().await;
    }

    /// Starts a paused plane again on the same database (on another port).
    pub async fn resume(&mut self) {
        let (stop, task, base_url) = serve(&self.cfg).await;
        self.stop = stop;
        self.task = Some(task);
        self.api = Api::tenant(&base_url);
        self.base_url = base_url;
    }

    /// Stops gracefully (the data plane drains); fails the test if that takes over 10 s.
    pub async fn shutdown(mut self) {
        self.stop_gracefully().await;
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }

    async fn stop_gracefully(&mut self) {
        self.stop.cancel();
        let task = self.task.take().expect("running");
        match tokio::time::timeout(Duration::from_secs(10), task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("the server failed: {e:#}"),
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("the server did not shut down within 10 s"),
        }
    }

    /// The Prometheus text of `/metrics` (no signature).
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("{}/metrics", self.base_url))
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The in-process data plane's per-endpoint counters (`GET /agent/v1/metrics`, operator).
    pub async fn dataplane_metrics(&self) -> String {
        let op = Client::new(&self.base_url, OPERATOR_AK, OPERATOR_SK, "").expect("client");
        let r = op
            .send_raw(Method::GET, "/agent/v1/metrics", None)
            .await
            .expect("GET /agent/v1/metrics");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        String::from_utf8(r.body.to_vec()).expect("text")
    }

    /// Another control-plane node on the same database, with agents elsewhere
    /// (`--require-agent`, no data plane of its own), serving at the returned URL until the
    /// returned token fires.
    pub async fn second_node(&self) -> (String, CancellationToken, JoinHandle<anyhow::Result<()>>) {
        self.second_node_with_dns(None).await
    }

    /// Like [`Plane::second_node`], with its own private DNS server (`dns`).
    pub async fn second_node_with_dns(
        &self,
        dns: Option<vpcep_dns::DnsOptions>,
    ) -> (String, CancellationToken, JoinHandle<anyhow::Result<()>>) {
        let cfg = ServeConfig {
            with_agent: false,
            require_agent: true,
            inventory: None,
            dns,
            ..self.cfg.clone()
        };
        let (stop, task, base_url) = serve(&cfg).await;
        (base_url, stop, task)
    }
}

async fn serve(cfg: &ServeConfig) -> (CancellationToken, JoinHandle<anyhow::Result<()>>, String) {
    let plane = ControlPlane::open(cfg)
        .await
        .expect("open the control plane");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let signal = stop.clone();
    let task = tokio::spawn(plane.serve(listener, async move { signal.cancelled().await }));
    (stop, task, base_url)
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.abort();
        }
        // A test that failed still drops its PostgreSQL schema (from a thread: Drop cannot
        // await).
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

/// The value of the sample of `name` whose labels include every `labels` pair (0 when absent).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A port that was free on `ip` a moment ago.
pub fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .expect("bind an ephemeral port")
        .local_addr()
        .unwrap()
        .port()
}

/// A child process (`vpcep serve` or `vpcep agent`) killed when dropped; its stderr goes to a
/// file that is printed when the test fails.
pub struct Child {
    name: &'static str,
    child: tokio::process::Child,
    log: PathBuf,
}

impl Child {
    /// Runs the `vpcep` binary with `args`, logging to `dir/<name>.log`.
    pub fn vpcep(name: &'static str, dir: &std::path::Path, args: &[&str]) -> Child {
        let log = dir.join(format!(
            "{}-{}.log",
            name.replace(' ', "-"),
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vpcep"))
            .args(args)
            .env("VPCEP_LOG", "info,vpcep_proxy=debug")
            .env("VPCEP_CONFIG", dir.join("client-config.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn vpcep");
        Child { name, child, log }
    }

    /// Fails if the process already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited with {status}:\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// Kills the process (by its id) and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Sends SIGTERM (a graceful stop).
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-s", "TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -TERM {pid}");
    }

    /// Waits up to `timeout` for the process to exit; answers its status, `None` while it runs.
    pub async fn exited_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Waits until `child` (a `vpcep serve`) answers `GET {base}/health`.
pub async fn healthy(mut child: Child, base: &str) -> Child {
    let url = format!("{base}/health");
    eventually(SETTLE, || {
        child.assert_running();
        let url = url.clone();
        async move {
            match reqwest::get(&url).await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await;
    child
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            notice(&format!(
                "---- {} log ----\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ));
        }
    }
}

/// A signed client for the tenant's project.
#[derive(Clone)]
pub struct Api {
    client: Client,
}

impl Api {
    /// The tenant's client of the server at `base_url`.
    pub fn tenant(base_url: &str) -> Api {
        Api {
            client: Client::new(base_url, TENANT_AK, TENANT_SK, PROJECT).expect("client"),
        }
    }

    /// The client of another tenant ([`VICTIM`], [`ATTACKER`]) of the server at `base_url`.
    pub fn of(base_url: &str, (_, project, ak, sk): (&str, &str, &str, &str)) -> Api {
        Api {
            client: Client::new(base_url, ak, sk, project).expect("client"),
        }
    }

    /// The same account's client of another node.
    pub fn at(&self, base_url: &str) -> Api {
        Api {
            client: self.client.clone_to(base_url),
        }
    }

    /// Sends a signed request; answers the status and the JSON body (`null` when empty).
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = self
            .client
            .send_raw(method, path, body.map(|b| b.to_string().into_bytes()))
            .await
            .expect("transport");
        (r.status, r.json())
    }

    /// Like [`Api::send`], asserting a 2xx answer.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let m = method.clone();
        let (status, v) = self.send(method, path, body).await;
        assert!(
            (200..300).contains(&status),
            "{m} {path}: HTTP {status}: {v}"
        );
        v
    }

    /// A VPC with one subnet (gateway: the subnet's first host); answers (vpc_id, subnet_id).
    pub async fn vpc_with_subnet(&self, name: &str, cidr: &str, subnet: &str) -> (String, String) {
        let vpc = self
            .ok(
                Method::POST,
                "/v1/{project_id}/vpcs",
                Some(json!({"vpc": {"name": name, "cidr": cidr}})),
            )
            .await;
        let vpc_id = vpc["vpc"]["id"].as_str().expect("vpc id").to_string();
        let network: std::net::Ipv4Addr = subnet
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .expect("subnet cidr");
        let gateway = std::net::Ipv4Addr::from(u32::from(network) + 1).to_string();
        let s = self
            .ok(
                Method::POST,
                "/v1/{project_id}/subnets",
                Some(json!({"subnet": {
                    "name": format!("{name}-subnet"), "cidr": subnet,
                    "gateway_ip": gateway, "vpc_id": vpc_id,
                }})),
            )
            .await;
        let subnet_id = s["subnet"]["id"].as_str().expect("subnet id").to_string();
        (vpc_id, subnet_id)
    }

    /// A published service of this tenant: a provider VPC `{net}.0.0/16`, an echo backend on
    /// `{net}.0.10`, port 80 → the backend, `close`; answers the service id once `available`,
    /// and the backend.
    pub async fn published(&self, net: &str, approval: bool) -> (String, Backend) {
        let (vpc, subnet) = self
            .vpc_with_subnet(
                &format!("provider-{net}"),
                &format!("{net}.0.0/16"),
                &format!("{net}.0.0/24"),
            )
            .await;
        let backend = Backend::start(&format!("{net}.0.10:0")).await;
        let port = self.port(&subnet, &format!("{net}.0.10")).await;
        let svc = self
            .service(&port, &vpc, &[(80, backend.addr.port())], "close", approval)
            .await;
        self.wait_service(&svc, "available").await;
        (svc, backend)
    }

    /// A VM NIC with a fixed IP in `subnet_id`; answers its id.
    pub async fn port(&self, subnet_id: &str, ip: &str) -> String {
        let p = self
            .ok(
                Method::POST,
                "/v1/{project_id}/ports",
                Some(json!({"port": {
                    "name": format!("backend-{ip}"), "network_id": subnet_id,
                    "fixed_ips": [{"ip_address": ip}], "device_owner": "compute:az1",
                }})),
            )
            .await;
        p["port"]["id"].as_str().expect("port id").to_string()
    }

    /// `create_endpoint_service`: an interface service on `port_id`; answers its id.
    pub async fn service(
        &self,
        port_id: &str,
        vpc_id: &str,
        ports: &[(u16, u16)],
        tcp_proxy: &str,
        approval: bool,
    ) -> String {
        let v = self
            .ok(
                Method::POST,
                "/v1/{project_id}/vpc-endpoint-services",
                Some(json!({
                    "port_id": port_id, "vpc_id": vpc_id, "server_type": "VM",
                    "service_type": "interface", "tcp_proxy": tcp_proxy,
                    "approval_enabled": approval, "ports": mappings(ports),
                })),
            )
            .await;
        v["id"].as_str().expect("service id").to_string()
    }

    /// `list_service_details`.
    pub async fn show_service(&self, id: &str) -> (u16, Value) {
        self.send(
            Method::GET,
            &format!("/v1/{{project_id}}/vpc-endpoint-services/{id}"),
            None,
        )
        .await
    }

    /// Polls `list_service_details` until the service has `status`.
    pub async fn wait_service(&self, id: &str, status: &str) -> Value {
        eventually(SETTLE, || async {
            let (code, v) = self.show_service(id).await;
            if code == 200 && v["status"] == status {
                Ok(v)
            } else {
                Err((code, v))
            }
        })
        .await
    }

    /// `update_endpoint_service` with `ports`.
    pub async fn set_service_ports(&self, id: &str, ports: &[(u16, u16)]) -> Value {
        self.ok(
            Method::PUT,
            &format!("/v1/{{project_id}}/vpc-endpoint-services/{id}"),
            Some(json!({ "ports": mappings(ports) })),
        )
        .await
    }

    /// `create_endpoint`: an interface endpoint at `ip` in the subnet, optionally with a whitelist.
    pub async fn endpoint(
        &self,
        service_id: &str,
        vpc_id: &str,
        subnet_id: &str,
        ip: &str,
        whitelist: Option<&[&str]>,
    ) -> Value {
        let mut body = json!({
            "endpoint_service_id": service_id, "vpc_id": vpc_id, "subnet_id": subnet_id,
            "port_ip": ip,
        });
        if let Some(w) = whitelist {
            body["whitelist"] = json!(w);
            body["enable_whitelist"] = json!(true);
        }
        self.ok(Method::POST, "/v1/{project_id}/vpc-endpoints", Some(body))
            .await
    }

    /// `list_endpoint_info_details`.
    pub async fn show_endpoint(&self, id: &str) -> (u16, Value) {
        self.send(
            Method::GET,
            &format!("/v1/{{project_id}}/vpc-endpoints/{id}"),
            None,
        )
        .await
    }

    /// Polls `list_endpoint_info_details` until the endpoint has `status`.
    pub async fn wait_endpoint(&self, id: &str, status: &str) -> Value {
        eventually(SETTLE, || async {
            let (code, v) = self.show_endpoint(id).await;
            if code == 200 && v["status"] == status {
                Ok(v)
            } else {
                Err((code, v))
            }
        })
        .await
    }

    /// `update_endpoint_white`.
    pub async fn set_whitelist(&self, id: &str, whitelist: &[&str], enable: bool) -> Value {
        self.ok(
            Method::PUT,
            &format!("/v1/{{project_id}}/vpc-endpoints/{id}"),
            Some(json!({"whitelist": whitelist, "enable_whitelist": enable})),
        )
        .await
    }

    /// `delete_endpoint`.
    pub async fn delete_endpoint(&self, id: &str) {
        self.ok(
            Method::DELETE,
            &format!("/v1/{{project_id}}/vpc-endpoints/{id}"),
            None,
        )
        .await;
    }

    /// `accept_or_reject_endpoint` with `action` (`receive` or `reject`); answers the connection
    /// entry.
    pub async fn connection(&self, service_id: &str, endpoint_id: &str, action: &str) -> Value {
        let v = self
            .ok(
                Method::POST,
                &format!(
                    "/v1/{{project_id}}/vpc-endpoint-services/{service_id}/connections/action"
                ),
                Some(json!({"action": action, "endpoints": [endpoint_id]})),
            )
            .await;
        let entry = v["connections"][0].clone();
        assert!(
            entry["error"].as_array().is_none_or(Vec::is_empty),
            "{action} failed: {v}"
        );
        entry
    }
}

fn mappings(ports: &[(u16, u16)]) -> Value {
    json!(ports
        .iter()
        .map(|&(c, s)| json!({"client_port": c, "server_port": s, "protocol": "TCP"}))
        .collect::<Vec<_>>())
}

/// The `id` of a JSON resource.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// The PROXY protocol v2 signature.
pub const V2_SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];
/// What the echo backend writes after the client's FIN, before its own.
pub const TRAILER: &[u8] = b"<eof>";

/// One connection a [`Backend`] accepted.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Who connected (the agent's side).
    pub peer: SocketAddr,
    /// The PROXY header that preceded the payload (v1 or v2), if any.
    pub header: Option<Vec<u8>>,
}

/// An echo server: records a leading PROXY header, echoes the payload, and after the client's
/// FIN writes [`TRAILER`] and closes.
#[derive(Clone)]
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

enum Leading {
    NeedMore,
    Header(usize),
    Payload,
}

fn leading(buf: &[u8]) -> Leading {
    let n = buf.len();
    let v2 = if n <= 12 {
        V2_SIGNATURE.starts_with(buf)
    } else {
        buf.starts_with(&V2_SIGNATURE)
    };
    if v2 {
        if n >= 16 {
            let len = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
            if n >= len {
                return Leading::Header(len);
            }
        }
        return Leading::NeedMore;
    }
    let v1 = if n <= 6 {
        b"PROXY ".starts_with(buf)
    } else {
        buf.starts_with(b"PROXY ")
    };
    if v1 {
        if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
            return Leading::Header(p + 2);
        }
        return if n > 107 {
            Leading::Payload
        } else {
            Leading::NeedMore
        };
    }
    Leading::Payload
}

impl Backend {
    /// Listens on `addr` (port 0: any).
    pub async fn start(addr: &str) -> Backend {
        let l = TcpListener::bind(addr).await.expect("bind the backend");
        Self::serve(l)
    }

    /// Serves on a bound listener (e.g. one made in another namespace).
    pub fn serve(l: TcpListener) -> Backend {
        let b = Backend {
            addr: l.local_addr().expect("backend address"),
            seen: Arc::default(),
        };
        let seen = b.seen.clone();
        tokio::spawn(async move {
            while let Ok((s, peer)) = l.accept().await {
                tokio::spawn(echo(s, peer, seen.clone()));
            }
        });
        b
    }

    /// Connections accepted so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The last connection accepted.
    pub fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the backend saw a connection")
    }
}

async fn echo(mut s: TcpStream, peer: SocketAddr, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::with_capacity(256);
    let header = loop {
        match leading(&buf) {
            Leading::Header(n) => break Some(buf.drain(..n).collect::<Vec<u8>>()),
            Leading::Payload => break None,
            Leading::NeedMore => match s.read_buf(&mut buf).await {
                Ok(0) => break None,
                Ok(_) => {}
                Err(_) => return,
            },
        }
    };
    seen.lock().unwrap().push(Seen { peer, header });
    let (mut r, mut w) = s.split();
    if w.write_all(&buf).await.is_err() {
        return;
    }
    if tokio::io::copy(&mut r, &mut w).await.is_ok() {
        let _ = w.write_all(TRAILER).await;
    }
    let _ = w.shutdown().await;
}

/// Connects to `dst` from `src` (port chosen by the kernel).
pub async fn connect_from(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(
        src.parse::<IpAddr>().expect("source ip"),
        0,
    ))?;
    tokio::time::timeout(Duration::from_secs(5), s.connect(dst))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))?
}

/// Writes `msg` and reads the same number of bytes back.
pub async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg).await?;
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got))
        .await
        .map_err(|_| std::io::Error::other("no echo within 5 s"))??;
    Ok(got)
}

/// Whether a fresh connection from `src` to `dst` carries an echo of one message.
pub async fn echoes(src: &str, dst: SocketAddr) -> Result<(), String> {
    let mut s = connect_from(src, dst)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    match roundtrip(&mut s, b"hello").await {
        Ok(v) if v == b"hello" => Ok(()),
        Ok(v) => Err(format!("echo {v:?}")),
        Err(e) => Err(format!("roundtrip: {e}")),
    }
}

/// Whether a connection to `dst` is refused (nothing listens).
pub async fn refused(src: &str, dst: SocketAddr) -> Result<(), String> {
    match connect_from(src, dst).await {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(format!("connect failed otherwise: {e}")),
        Ok(_) => Err("connected".into()),
    }
}

/// Whether a connection from `src` to `dst` is accepted and then closed with no echo (what the
/// whitelist does).
pub async fn cut_off(src: &str, dst: SocketAddr) -> Result<(), String> {
    let mut s = connect_from(src, dst)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = s.write_all(b"hello").await;
    let mut buf = [0u8; 16];
    match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Ok(()),
        Ok(Ok(n)) => Err(format!("got {:?}", &buf[..n])),
        Err(_) => Err("neither data nor close within 5 s".into()),
    }
}

/// `Ok` when the peer closes `s` (EOF or reset) within `t`, sending nothing more.
pub async fn closed_within(s: &mut TcpStream, t: Duration) -> Result<(), String> {
    let mut buf = [0u8; 16];
    match tokio::time::timeout(t, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Ok(()),
        Ok(Ok(n)) => Err(format!("got {:?}", &buf[..n])),
        Err(_) => Err(format!("still open after {t:?}")),
    }
}

/// `ip:port` as a socket address.
pub fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("ip"), port)
}

/// Deletes the namespaces it holds (with their interfaces) when dropped, also on panic.
pub struct Namespaces(pub Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", n])
                .output();
        }
    }
}

pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Adds namespace `ns` (held by `guard`) with loopback up carrying `addrs` (host addresses,
/// /32: only they are local), so that sockets in it can bind and reach those addresses.
pub fn namespace(guard: &mut Namespaces, ns: &str, addrs: &[&str]) -> Result<(), String> {
    ip(&["netns", "add", ns])?;
    guard.0.push(ns.to_string());
    ip(&["-n", ns, "link", "set", "lo", "up"])?;
    for a in addrs {
        ip(&["-n", ns, "addr", "add", &format!("{a}/32"), "dev", "lo"])?;
    }
    Ok(())
}
