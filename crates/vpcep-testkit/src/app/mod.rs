//! The API test harness: a real control plane on an ephemeral port over a fresh database of
//! either backend, with fixed tenants and signed clients for each of them.
//!
//! - [`api_tests!`](crate::api_tests): the one way to write an API test. Each listed
//!   `async fn name(app: &mut TestApp)` runs as `sqlite::name` and `postgres::name`; the macro
//!   starts the app (skipping when PostgreSQL is unreachable), runs the test and shuts the app
//!   down gracefully.
//! - [`TestApp`]: the running app (`restart`, `tenant`, `hand_signed`); [`TestAppBuilder`]
//!   its settings (provisioning delay, inventory, SQLite file).
//! - The tenants: [`OWNER`], [`CONSUMER`], [`OPERATOR`], [`SMALL`], [`NET_SMALL`].
//! - [`Tenant`] (`tenant.rs`): a signed client for one account and project, with one method
//!   per operation, and the body helpers ([`service_on`], [`endpoint_to`], [`with`], ...).
//! - [`Resp`] (`resp.rs`): an HTTP answer with its assertions (`ok`, `err`, `err_naming`).
//! - [`HandSigned`] (`signed.rs`): a request signed by hand that can break the rules.

mod resp;
mod signed;
mod tenant;

pub use crate::accounts::{AccountSpec, Quotas};
pub use crate::api_tests;
pub use crate::db::Backend;
pub use crate::wait::{eventually, next_millisecond, unix_now, SETTLE};
pub use resp::Resp;
pub use signed::HandSigned;
pub use tenant::*;

use crate::db::TestDb;
use crate::server::Server;
use std::time::Duration;
use vpcep::server::ServeConfig;

/// Runs each listed `async fn name(app: &mut TestApp)` of the file as `sqlite::name` and
/// `postgres::name`: starts a [`TestApp`] on that backend, runs the test, then shuts the app
/// down gracefully (a failed shutdown fails the test). PostgreSQL cases skip (printing why)
/// when the database is unreachable, unless `VPCEP_REQUIRE_PG=1`.
///
/// `name = |b| b.provisioning_delay(FOREVER)` starts that test's app with other settings (a
/// `FnOnce(TestAppBuilder) -> TestAppBuilder`). Attributes for one backend's case go before the
/// name, SQLite's first: `#[sqlite ignore = "..."] #[postgres ignore = "..."] name`.
#[macro_export]
macro_rules! api_tests {
    ($( $(#[sqlite $sqlite_attr:meta])* $(#[postgres $postgres_attr:meta])* $name:ident $(= $configure:expr)? ),+ $(,)?) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$sqlite_attr])*
                async fn $name() {
                    $crate::api_tests!(@run Sqlite, $name $(, $configure)?);
                }
            )+
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$postgres_attr])*
                async fn $name() {
                    $crate::api_tests!(@run Postgres, $name $(, $configure)?);
                }
            )+
        }
    };
    (@run $backend:ident, $name:ident $(, $configure:expr)?) => {{
        let builder = $crate::app::TestApp::builder($crate::db::Backend::$backend);
        $( let builder = $crate::app::configure(builder, $configure); )?
        let Some(mut app) = builder.start().await else {
            return;
        };
        super::$name(&mut app).await;
        app.shutdown().await;
    }};
}

/// Applies `f` to `builder` (what `name = f` of [`api_tests!`](crate::api_tests) does).
pub fn configure(
    builder: TestAppBuilder,
    f: impl FnOnce(TestAppBuilder) -> TestAppBuilder,
) -> TestAppBuilder {
    f(builder)
}

/// The region the test servers run in; service names start with it.
pub const REGION: &str = "test-1";

/// The quotas of the usual tenants: large, so that no test but the quota tests meets them.
const LARGE: Quotas = Quotas {
    endpoint_service: Some(1000),
    endpoint: Some(1000),
    vpc: Some(LARGE_NETWORK_QUOTAS[0]),
    subnet: Some(LARGE_NETWORK_QUOTAS[1]),
    port: Some(LARGE_NETWORK_QUOTAS[2]),
};

/// Owns two projects and a large quota: the usual service owner.
pub const OWNER: AccountSpec = AccountSpec {
    domain_id: "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
    domain_name: "owner",
    operator: false,
    projects: &[
        "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a",
        "1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b",
    ],
    quotas: LARGE,
    access_key: "AKOWNER0000000000001",
    secret_key: "owner-secret-key",
};

/// Another tenant, who consumes services.
pub const CONSUMER: AccountSpec = AccountSpec {
    domain_id: "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
    domain_name: "consumer",
    operator: false,
    projects: &["2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c"],
    quotas: LARGE,
    access_key: "AKCONSUMER0000000001",
    secret_key: "consumer-secret-key",
};

/// The operator: its services are the public ones.
pub const OPERATOR: AccountSpec = AccountSpec {
    domain_id: "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e",
    domain_name: "operator",
    operator: true,
    projects: &["3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e"],
    quotas: LARGE,
    access_key: "AKOPERATOR0000000001",
    secret_key: "operator-secret-key",
};

/// A tenant whose projects may hold only [`SMALL_QUOTA`] services.
pub const SMALL: AccountSpec = AccountSpec {
    domain_id: "0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d",
    domain_name: "small",
    operator: false,
    projects: &["4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d"],
    quotas: Quotas {
        endpoint_service: Some(SMALL_QUOTA),
        endpoint: Some(SMALL_ENDPOINT_QUOTA),
        ..LARGE
    },
    access_key: "AKSMALL0000000000001",
    secret_key: "small-secret-key",
};

/// The endpoint-service quota of [`SMALL`].
pub const SMALL_QUOTA: u64 = 2;

/// The endpoint quota of [`SMALL`].
pub const SMALL_ENDPOINT_QUOTA: u64 = 3;

/// The VPC, subnet and port quotas of the usual tenants: large, so that no test but the quota
/// tests meets them.
pub const LARGE_NETWORK_QUOTAS: [u64; 3] = [1_000, 10_000, 100_000];

/// A tenant with small network quotas: [`NET_SMALL_QUOTAS`] VPCs, subnets and ports.
pub const NET_SMALL: AccountSpec = AccountSpec {
    domain_id: "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f",
    domain_name: "net-small",
    operator: false,
    projects: &["5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f5f"],
    quotas: Quotas {
        endpoint_service: Some(10),
        endpoint: Some(10),
        vpc: Some(NET_SMALL_QUOTAS[0]),
        subnet: Some(NET_SMALL_QUOTAS[1]),
        port: Some(NET_SMALL_QUOTAS[2]),
    },
    access_key: "AKNETSMALL0000000001",
    secret_key: "net-small-secret-key",
};

/// The VPC, subnet and port quotas of [`NET_SMALL`].
pub const NET_SMALL_QUOTAS: [u64; 3] = [2, 3, 4];

/// Every tenant of the test accounts file.
pub const ACCOUNTS: &[AccountSpec] = &[OWNER, CONSUMER, OPERATOR, SMALL, NET_SMALL];

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
    accounts: &'static [AccountSpec],
    region: String,
}

impl TestAppBuilder {
    /// Serves these accounts instead of [`ACCOUNTS`] (then [`TestApp::tenant`] is the way to a
    /// client).
    pub fn accounts(mut self, accounts: &'static [AccountSpec]) -> Self {
        self.accounts = accounts;
        self
    }

    /// Runs in this region instead of [`REGION`].
    pub fn region(mut self, region: &str) -> Self {
        self.region = region.into();
        self
    }

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
        let db = TestDb::or_skip(self.backend).await?;
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = crate::accounts::write_accounts(dir.path(), self.accounts);
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
            region: self.region,
            accounts: Some(accounts),
            provisioning_delay: self.provisioning_delay,
            inventory,
            ..ServeConfig::default()
        };
        let server = Server::start(&config).await;
        Some(TestApp {
            backend: self.backend,
            base_url: server.url.clone(),
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
/// [`api_tests!`](crate::api_tests) calls [`TestApp::shutdown`] after the test: it stops the
/// server gracefully and drops the database. A test that panics before that still has its
/// PostgreSQL schema dropped.
pub struct TestApp {
    /// The backend under test.
    pub backend: Backend,
    /// `http://127.0.0.1:<port>` of the current server (changes on restart).
    pub base_url: String,
    config: ServeConfig,
    db: Option<TestDb>,
    _accounts_dir: tempfile::TempDir,
    server: Option<Server>,
    networks: Networks,
}

impl TestApp {
    /// A builder with the defaults (no provisioning delay).
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            provisioning_delay: Duration::ZERO,
            inventory: None,
            sqlite_file: None,
            accounts: ACCOUNTS,
            region: REGION.into(),
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
        let server = Server::start(&self.config).await;
        self.base_url = server.url.clone();
        self.server = Some(server);
    }

    /// The running control plane's shared state (its store, to seed what the API cannot make).
    pub fn ctx(&self) -> &vpcep_control::Ctx {
        &self.server.as_ref().expect("running").ctx
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
            client: crate::client(
                &self.base_url,
                account.access_key,
                account.secret_key,
                project_id,
            ),
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
        let resp = crate::http()
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
        drop(self.server.take());
        if let Some(db) = self.db.take() {
            db.cleanup_blocking();
        }
    }
}
