//! A fresh database per test: a temporary SQLite file, or a new schema in the PostgreSQL
//! database named by `VPCEP_TEST_POSTGRES_URL` (default [`DEFAULT_TEST_POSTGRES_URL`]).
//! Independent of the store's types, so that the store's own tests can use it too.

use uuid::Uuid;

/// Default PostgreSQL URL for tests (local server, trust auth, database `test`).
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://root@127.0.0.1:5432/test";

/// Which backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A temporary SQLite file.
    Sqlite,
    /// A fresh schema in the test PostgreSQL database.
    Postgres,
}

/// A fresh database for one test; dropping it removes the SQLite file (the PostgreSQL schema is
/// dropped by [`TestDb::cleanup`], or by [`TestDb::cleanup_blocking`] from a `Drop`).
pub struct TestDb {
    /// The URL a server or store can open.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    schema: Option<String>,
}

/// The PostgreSQL URL tests use.
pub fn postgres_base_url() -> String {
    std::env::var("VPCEP_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_TEST_POSTGRES_URL.into())
}

/// Whether the test run must fail rather than skip when PostgreSQL is unreachable.
pub fn postgres_required() -> bool {
    std::env::var("VPCEP_REQUIRE_PG").is_ok_and(|v| v == "1" || v == "true")
}

/// Prints `SKIPPED <test>: <why> (...)` past the test harness's output capture, so that a skip
/// shows in a plain run.
pub fn skip_notice(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    notice(&format!(
        "SKIPPED {test}: {why} (VPCEP_REQUIRE_PG=1 makes this a failure)"
    ));
}

/// Writes `msg` to stderr past the test harness's output capture.
pub fn notice(msg: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{msg}\n").as_bytes());
}

impl TestDb {
    /// A fresh database on `backend`, or `None` (with a printed notice) when PostgreSQL is not
    /// reachable and not required. Panics when it is required and unreachable.
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("vpcep.db").display());
                Some(TestDb {
                    url,
                    _dir: Some(dir),
                    schema: None,
                })
            }
            Backend::Postgres => {
                use sqlx::{Connection, Executor};
                sqlx::any::install_default_drivers();
                let base = postgres_base_url();
                let mut conn = match sqlx::AnyConnection::connect(&base).await {
                    Ok(c) => c,
                    Err(e) if !postgres_required() => {
                        eprintln!("SKIPPED: PostgreSQL not reachable at {base} ({e}); set VPCEP_REQUIRE_PG=1 to make this fail");
                        return None;
                    }
                    Err(e) => panic!("PostgreSQL is required (VPCEP_REQUIRE_PG=1) but not reachable at {base}: {e}"),
                };
                let schema = format!("vpcep_t_{}", Uuid::new_v4().simple());
                conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await
                    .expect("create schema");
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Some(TestDb {
                    url,
                    _dir: None,
                    schema: Some(schema),
                })
            }
        }
    }

    /// [`TestDb::new`], printing `SKIPPED <test>: PostgreSQL is not reachable` past the
    /// harness's capture when it answers `None`.
    pub async fn or_skip(backend: Backend) -> Option<TestDb> {
        let db = Self::new(backend).await;
        if db.is_none() {
            skip_notice("PostgreSQL is not reachable");
        }
        db
    }

    /// Drops the PostgreSQL schema (no-op for SQLite). A schema still locked by a session
    /// left in a transaction is left behind after 10 s rather than waited for.
    pub async fn cleanup(self) {
        if let Some(schema) = &self.schema {
            use sqlx::{Connection, Executor};
            let drop = async {
                let mut conn = sqlx::AnyConnection::connect(&postgres_base_url()).await?;
                conn.execute("SET lock_timeout = '10s'").await?;
                conn.execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                    .await
            };
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), drop).await;
        }
    }

    /// [`TestDb::cleanup`] from a helper thread with its own runtime, for a `Drop` (which
    /// cannot await): the cleanup of a test that panicked.
    pub fn cleanup_blocking(self) {
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(self.cleanup());
            }
        })
        .join();
    }
}
