//! The data-plane test harness: a control plane with the data plane (the agent in process,
//! or `vpcep serve` / `vpcep agent` as child processes, see [`crate::process`]), on the
//! accounts of this module.
//!
//! - [`Plane`] with [`PlaneOptions`] (`--with-agent`, `--require-agent`, `--inventory`,
//!   `--dataplane-cidrs`, private DNS) and more nodes on its database ([`Plane::second_node`]).
//! - [`Api`] (`api.rs`): the signed client of the VPC and VPCEP resources these tests use.
//! - [`crate::net`] (re-exported): echo [`Backend`]s, clients from a chosen source address,
//!   network namespaces.

mod api;

pub use crate::accounts::{AccountSpec, Quotas};
pub use crate::app::id_of;
pub use crate::db::{notice, Backend as Db};
pub use crate::net::*;
pub use crate::process::{healthy, Child};
pub use crate::server::Server;
pub use crate::wait::{eventually, free_port_on as free_port, SETTLE};
pub use api::Api;

use crate::db::TestDb;
use reqwest::Method;
use std::time::Duration;
use vpcep::server::ServeConfig;

/// The tenant that owns the services, the VPCs and the endpoints.
pub const TENANT: AccountSpec = AccountSpec {
    domain_id: TENANT_DOMAIN,
    domain_name: "tenant",
    operator: false,
    projects: &[PROJECT],
    quotas: Quotas::DEFAULT,
    access_key: "AKE2ETENANT000000001",
    secret_key: "e2e-tenant-secret",
};
/// Its account.
pub const TENANT_DOMAIN: &str = "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a";
/// Its project.
pub const PROJECT: &str = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a";

/// Another tenant, for the attacks of one tenant on another.
pub const VICTIM: AccountSpec = AccountSpec {
    domain_id: "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
    domain_name: "victim",
    operator: false,
    projects: &["1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b"],
    quotas: Quotas::DEFAULT,
    access_key: "AKE2EVICTIM000000001",
    secret_key: "e2e-victim-secret",
};
/// The attacker tenant (see [`VICTIM`]).
pub const ATTACKER: AccountSpec = AccountSpec {
    domain_id: "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
    domain_name: "attacker",
    operator: false,
    projects: &["1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c"],
    quotas: Quotas::DEFAULT,
    access_key: "AKE2EATTACKER0000001",
    secret_key: "e2e-attacker-secret",
};
/// The operator account agents sign with.
pub const OPERATOR: AccountSpec = AccountSpec {
    domain_id: "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e",
    domain_name: "operator",
    operator: true,
    projects: &["3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e"],
    quotas: Quotas::DEFAULT,
    access_key: OPERATOR_AK,
    secret_key: OPERATOR_SK,
};
/// The operator's access key.
pub const OPERATOR_AK: &str = "AKE2EOPERATOR0000001";
/// Its secret key.
pub const OPERATOR_SK: &str = "e2e-operator-secret";

/// The accounts of every test server of this module.
pub const ACCOUNTS: &[AccountSpec] = &[TENANT, VICTIM, ATTACKER, OPERATOR];

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

/// A control plane serving in this process on `127.0.0.1:<ephemeral>` over a fresh SQLite file.
pub struct Plane {
    /// `http://127.0.0.1:<port>` (changes on restart).
    pub base_url: String,
    /// The tenant's signed client.
    pub api: Api,
    cfg: ServeConfig,
    server: Option<Server>,
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
        let db = TestDb::or_skip(opts.db).await?;
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = crate::accounts::write_accounts(dir.path(), ACCOUNTS);
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
        let server = Server::start(&cfg).await;
        Some(Plane {
            api: Api::tenant(&server.url),
            base_url: server.url.clone(),
            cfg,
            server: Some(server),
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
        let server = Server::start(&self.cfg).await;
        self.api = Api::tenant(&server.url);
        self.base_url = server.url.clone();
        self.server = Some(server);
    }

    /// Stops gracefully (the data plane drains); fails the test if that takes over 10 s.
    pub async fn shutdown(mut self) {
        self.stop_gracefully().await;
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }

    async fn stop_gracefully(&mut self) {
        self.server.take().expect("running").stop().await;
    }

    /// The Prometheus text of `/metrics` (no signature).
    pub async fn metrics(&self) -> String {
        crate::http()
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The in-process data plane's per-endpoint counters (`GET /agent/v1/metrics`, operator).
    pub async fn dataplane_metrics(&self) -> String {
        let op = crate::client(&self.base_url, OPERATOR_AK, OPERATOR_SK, "");
        let r = op
            .send_raw(Method::GET, "/agent/v1/metrics", None)
            .await
            .expect("GET /agent/v1/metrics");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        String::from_utf8(r.body.to_vec()).expect("text")
    }

    /// Another control-plane node on the same database, with agents elsewhere
    /// (`--require-agent`, no data plane of its own), serving at the returned URL until the
    /// node is stopped or dropped.
    pub async fn second_node(&self) -> Server {
        self.second_node_with_dns(None).await
    }

    /// Like [`Plane::second_node`], with its own private DNS server (`dns`).
    pub async fn second_node_with_dns(&self, dns: Option<vpcep_dns::DnsOptions>) -> Server {
        let cfg = ServeConfig {
            with_agent: false,
            require_agent: true,
            inventory: None,
            dns,
            ..self.cfg.clone()
        };
        Server::start(&cfg).await
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        drop(self.server.take());
        // A test that failed still drops its PostgreSQL schema.
        if let Some(db) = self.db.take() {
            db.cleanup_blocking();
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
