//! The SQL implementation of [`Store`](crate::Store) over `sqlx::Any`, serving SQLite and
//! PostgreSQL with one set of queries (`$n` placeholders work on both). Where the dialects
//! differ (row locks, migrations) [`Dialect`] says so.
//!
//! Writes:
//! - **SQLite** has one writer connection owned by a task. Concurrent write calls queue up;
//!   the task runs whatever is queued in one `BEGIN IMMEDIATE` transaction, each call inside
//!   its own SAVEPOINT (a failing call rolls back only itself), commits once with
//!   `synchronous=FULL`, and only then answers the callers (group commit: every acknowledged
//!   write is durable, and one fsync serves many writes).
//! - **PostgreSQL** runs each write call in its own transaction on the pool, so any number of
//!   control-plane nodes can share the database.
//!
//! Reads go to a pool (SQLite in WAL mode lets them run beside the writer).

use crate::StoreResult;
use futures::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Which SQL dialect a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Embedded, one process.
    Sqlite,
    /// Shared by any number of nodes.
    Postgres,
}

impl Dialect {
    /// The row-lock clause for a read that precedes a write in the same transaction.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }

    /// The shared row-lock clause: the row may not change or vanish until the transaction ends.
    pub(crate) fn for_share(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR SHARE",
        }
    }

    /// The clause that lets concurrent reconcilers take disjoint rows.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// Tuning that callers may set; defaults suit a laptop.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the read pool (and, for PostgreSQL, the write pool too).
    pub max_connections: u32,
    /// Most write calls one SQLite group commit takes.
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            max_batch: 512,
        }
    }
}

/// A write call, type-erased for the SQLite writer task: runs inside a savepoint and answers
/// whether it succeeded plus how to deliver its result once the commit outcome is known.
type Deliver = Box<dyn FnOnce(StoreResult<()>) + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;

enum Writer {
    Sqlite(mpsc::Sender<Job>),
    Postgres,
}

/// The SQL store. Cheap to share behind an `Arc`.
pub struct SqlStore {
    pub(crate) dialect: Dialect,
    pub(crate) pool: AnyPool,
    writer: Writer,
}

const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Turns `sqlite://path` into a URL that creates the file, and creates its directory.
fn prepare_sqlite_url(url: &str) -> StoreResult<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(dir) = std::path::Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| {
                crate::StoreError::Internal(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
    }
    let mut q: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    if !q.iter().any(|p| p.starts_with("mode=")) {
        q.push("mode=rwc");
    }
    Ok(format!("sqlite://{path}?{}", q.join("&")))
}

/// Opens (creating if needed) and migrates the database at `url`: `sqlite://path` or
/// `postgres://...`. Migrations take the database's migration lock, so several nodes may
/// start at once.
pub async fn open(url: &str, opts: StoreOptions) -> StoreResult<Arc<SqlStore>> {
    sqlx::any::install_default_drivers();
    let (dialect, url) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        (Dialect::Postgres, url.to_string())
    } else if url.starts_with("sqlite:") {
        (Dialect::Sqlite, prepare_sqlite_url(url)?)
    } else {
        return Err(crate::StoreError::Internal(format!(
            "unsupported database URL {url:?}; use sqlite://PATH or postgres://..."
        )));
    };
    let connect = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
    let mut pool_opts = AnyPoolOptions::new()
        .max_connections(opts.max_connections)
        .acquire_timeout(Duration::from_secs(10));
    if dialect == Dialect::Sqlite {
        pool_opts = pool_opts.after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_PRAGMAS).await?;
                Ok(())
            })
        });
    }
    let pool = pool_opts.connect_with(connect.clone()).await?;
    let migrator = match dialect {
        Dialect::Sqlite => &SQLITE_MIGRATOR,
        Dialect::Postgres => &POSTGRES_MIGRATOR,
    };
    migrator
        .run(&pool)
        .await
        .map_err(|e| crate::StoreError::Internal(format!("migration failed: {e}")))?;
    let writer = match dialect {
        Dialect::Postgres => Writer::Postgres,
        Dialect::Sqlite => {
            let mut conn = AnyConnection::connect_with(&connect).await?;
            conn.execute(SQLITE_PRAGMAS).await?;
            let (tx, rx) = mpsc::channel(opts.max_batch * 4);
            tokio::spawn(sqlite_writer(conn, rx, opts.max_batch));
            Writer::Sqlite(tx)
        }
    };
    Ok(Arc::new(SqlStore {
        dialect,
        pool,
        writer,
    }))
}

/// The SQLite writer task: group commit of queued write calls (see the module docs).
async fn sqlite_writer(mut conn: AnyConnection, mut rx: mpsc::Receiver<Job>, max_batch: usize) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        metrics::histogram!("vpcep_store_commit_batch_size").record(batch.len() as f64);
        let mut delivers = Vec::with_capacity(batch.len());
        // Control statements between jobs go in one round trip each (`RELEASE w; SAVEPOINT w`):
        // every statement is a round trip to the driver's worker thread.
        let outcome: StoreResult<()> = async {
            conn.execute("BEGIN IMMEDIATE; SAVEPOINT w").await?;
            let last = batch.len() - 1;
            for (i, job) in batch.drain(..).enumerate() {
                let (ok, deliver) = job(&mut conn).await;
                delivers.push(deliver);
                let undo = if ok { "" } else { "ROLLBACK TO w; " };
                let next = if i == last {
                    "RELEASE w; COMMIT"
                } else {
                    "RELEASE w; SAVEPOINT w"
                };
                conn.execute(format!("{undo}{next}").as_str()).await?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "sqlite group commit failed; rolling back the batch");
            let _ = conn.execute("ROLLBACK").await;
        }
        batch.clear();
        for deliver in delivers {
            deliver(outcome.clone());
        }
    }
}

impl SqlStore {
    /// Runs `f` as one transaction and answers its result once the transaction is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let result = self.write_inner(f).await;
        let backend = match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        };
        metrics::histogram!("vpcep_store_write_seconds", "backend" => backend)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn write_inner<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        match &self.writer {
            Writer::Postgres => {
                let mut tx = self.pool.begin().await?;
                let value = f(&mut tx).await?;
                tx.commit().await?;
                Ok(value)
            }
            Writer::Sqlite(queue) => {
                let (tx, rx) = oneshot::channel::<StoreResult<T>>();
                let job: Job = Box::new(move |conn| {
                    Box::pin(async move {
                        let result = f(conn).await;
                        let ok = result.is_ok();
                        let deliver: Deliver = Box::new(move |commit| {
                            let _ = tx.send(commit.and(result));
                        });
                        (ok, deliver)
                    })
                });
                queue
                    .send(job)
                    .await
                    .map_err(|_| crate::StoreError::Unavailable("the writer has stopped".into()))?;
                rx.await
                    .map_err(|_| crate::StoreError::Unavailable("the writer has stopped".into()))?
            }
        }
    }
}
