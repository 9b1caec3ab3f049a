//! The vpcep test kit (dev-only): everything the workspace's tests need to start a server and
//! talk to it, in one place. Layout:
//!
//! - `db.rs`: [`db::Backend`] and [`db::TestDb`], a fresh database per test (a temporary SQLite
//!   file or a PostgreSQL schema), and the PostgreSQL URL and skip rules.
//! - `wait.rs`: [`wait::eventually`], [`wait::free_port`], clock helpers.
//! - `net.rs`: echo backends that record PROXY headers, clients from a chosen source address,
//!   network namespaces (the data-plane tests of `vpcep` and `vpcep-proxy`).
//! - `accounts.rs`: [`accounts::AccountSpec`] and the accounts file of the test servers.
//! - `server.rs` (feature `app`): [`server::Server`], one control plane served in this
//!   process, which every harness below runs.
//! - `app/` (feature `app`): the API test harness, [`app::TestApp`] with its tenants and
//!   [`api_tests!`], the one way to write an API test (`mod.rs`; `tenant.rs`, `resp.rs`,
//!   `signed.rs`).
//! - `dp/` (feature `app`): the data-plane harness, [`dp::Plane`] with the agent in process
//!   or as `vpcep serve` / `vpcep agent` child processes (`mod.rs`; `api.rs`: its signed
//!   client).
//! - `nodes.rs` (feature `app`): several nodes on one database, in process or as
//!   `vpcep serve` child processes (for signals and crashes), and a direct look at the rows.
//! - `process.rs` (feature `app`): the `vpcep` binary as a child process.
//!
//! The feature `app` (default) pulls in the `vpcep` crate; the store's tests use the kit
//! without it (`default-features = false`), which keeps them free of a dependency cycle.

pub mod accounts;
pub mod db;
pub mod net;
pub mod wait;

#[cfg(feature = "app")]
pub mod app;
#[cfg(feature = "app")]
pub mod dp;
#[cfg(feature = "app")]
pub mod nodes;
#[cfg(feature = "app")]
pub mod process;
#[cfg(feature = "app")]
pub mod server;

/// A plain HTTP client for tests: every answer within [`wait::REQUEST_TIMEOUT`], so a server
/// that accepts and never answers fails the test instead of hanging it.
#[cfg(feature = "app")]
pub fn http() -> reqwest::Client {
    http_within(wait::REQUEST_TIMEOUT)
}

/// A plain HTTP client whose every answer must come within `timeout` (e.g. a health probe: a
/// listener bound before its server serves accepts and does not answer yet).
#[cfg(feature = "app")]
pub fn http_within(timeout: std::time::Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("an HTTP client")
}

/// A signed client for tests, with [`wait::REQUEST_TIMEOUT`] per answer.
#[cfg(feature = "app")]
pub fn client(base_url: &str, ak: &str, sk: &str, project_id: &str) -> vpcep_client::Client {
    vpcep_client::Client::new(base_url, ak, sk, project_id)
        .expect("a client")
        .with_timeout(wait::REQUEST_TIMEOUT)
}
