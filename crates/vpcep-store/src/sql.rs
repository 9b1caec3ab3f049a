//! The SQL store, [`SqlStore`], serving SQLite and PostgreSQL with one set
//! of queries (`$n` placeholders work on both) written against one connection interface,
//! `conn::Conn`. Where the dialects differ (row locks, migrations) [`Dialect`] says so.
//!
//! SQLite is driven through rusqlite: a statement is a plain function call on the thread that
//! runs it (prepared once per connection and cached), not a round trip to a driver thread.
//! PostgreSQL goes through a sqlx `PgPool`.
//!
//! Writes:
//! - **SQLite** has one writer connection owned by a dedicated OS thread. Concurrent write calls
//!   queue up on a channel; the thread runs each as it takes it, in one `BEGIN IMMEDIATE`
//!   transaction, and commits once the last commit's sync is done and the calls queued at that
//!   moment have run (or `max_batch` calls are in). A failing call rolls back only itself:
//!   calls that may run again (all of the store's) run without a savepoint, and a failure
//!   after writes rolls the transaction back and runs the calls before it again; the calls
//!   after it run inside a SAVEPOINT each (see `Writer::run_call`).
//!   The commit's `fdatasync` of the WAL is not on the writer's path: a syncer thread beside
//!   it syncs the WAL and only then answers the callers of every transaction committed before
//!   the sync began (group commit: every acknowledged write is durable, and the writer runs
//!   the calls that arrive during a sync in the next transaction, which commits as the sync
//!   ends: one commit per sync, and a page the calls share is written once). Another
//!   connection may read a committed write a moment before it is durable, as from any database
//!   whose commit is still being flushed; a write that depends on it commits later in the same
//!   WAL, so it is never acknowledged before what it read. A failed sync answers its callers
//!   with the error and faults the store (as the file guard does): nothing is acknowledged until
//!   a restart, because what reached the disk is unknown. A write call is an async function like
//!   any other store code; on the writer thread its future is driven with `block_on`, which
//!   never waits since SQLite statements complete synchronously. WAL checkpoints run on a
//!   checkpointer thread beside the writer (`PASSIVE`, at most every 500 ms), so that copying
//!   pages into the database file and syncing it do not delay commits; the writer checkpoints
//!   the remaining frames itself only when the WAL has grown long, so that it can start over.
//! - **PostgreSQL** runs each write call in its own transaction on the pool, so any number of
//!   control-plane nodes can share the database. A call whose transaction PostgreSQL ended in a
//!   conflict with another one (deadlock, serialization failure) runs again, a few times.
//!
//! SQLite's files: no connection memory-maps anything (no `mmap_size`, and the `unix-excl` VFS
//! keeps the WAL index in process memory rather than in a mapped `-shm` file), so a file that
//! shrinks or cannot be written answers errors instead of SIGBUS; the process holds the database
//! exclusively. The guard (`crate::guard`) checks after every commit, before the callers are
//! answered, that the database file and WAL are still the ones opened. A storage failure that
//! makes SQLite roll back the whole transaction (disk full, I/O error) fails the calls of the
//! batch that ran; the calls not yet run go to the next batch.
//!
//! Reads: on SQLite a read call takes an idle read connection (WAL lets readers run beside the
//! writer; a new one is opened when all are busy, and at most `max_connections` are kept) and
//! runs its statements on the calling task's thread, without a hop to another thread (which
//! would cost more than most of these reads). On PostgreSQL reads use the pool.

use crate::conn::Conn;
use crate::guard::FileGuard;
use crate::StoreResult;
use futures::future::BoxFuture;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::ConnectOptions;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    /// SQLite: idle read connections kept. PostgreSQL: connections in the pool (reads and
    /// writes).
    pub max_connections: u32,
    /// Most write calls one SQLite group commit takes.
    pub max_batch: usize,
    /// A data plane serves this store: creating or updating an endpoint or service whose
    /// data-plane address another VPC holds in the same address space is refused (EndPoint.2042,
    /// EndPoint.3046) and endpoint addresses are allocated clear of such addresses. Off, claims
    /// are recorded all the same but refuse nothing (nothing listens or connects).
    pub enforce_claims: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            max_batch: 512,
            enforce_claims: false,
        }
    }
}

/// Answers a write call's caller with the outcome of the commit that carried it.
type Deliver = Box<dyn FnOnce(StoreResult<()>) + Send>;

/// Runs a write call and keeps its result for its [`Deliver`]; answers whether it succeeded.
type Run = Box<dyn for<'c> FnMut(&'c mut Conn) -> BoxFuture<'c, StoreResult<()>> + Send>;

/// A write call, type-erased for the SQLite writer thread.
struct Job {
    run: Run,
    /// Whether `run` may run again after what it wrote was rolled back (its result then comes
    /// from the last run). Such calls run without a savepoint (see [`Writer::run_call`]);
    /// the others run in a savepoint each.
    retryable: bool,
    deliver: Deliver,
}

/// What the SQLite writer thread is sent.
enum ToWriter {
    Call(Job),
    /// Look again at the syncer and the end flag (the syncer finished; the store closes).
    Wake,
}

/// The writer's open transaction: the calls that ran in it, and whether retryable calls may
/// still run without a savepoint (see [`Writer::run_call`]).
struct OpenTx {
    calls: Vec<Job>,
    optimistic: bool,
}

enum Backend {
    Sqlite {
        writer: mpsc::Sender<ToWriter>,
        readers: ReadPool,
        guard: Arc<FileGuard>,
        /// The writer's end flag and end signal (see [`SqlStore::close`]).
        closing: Arc<AtomicBool>,
        ended: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    },
    Postgres(PgPool),
}

/// The SQL store. Cheap to share behind an `Arc`.
pub struct SqlStore {
    pub(crate) dialect: Dialect,
    /// [`StoreOptions::enforce_claims`].
    pub(crate) enforce_claims: bool,
    backend: Backend,
}

/// Every SQLite connection's settings. `synchronous = FULL` for every connection but the writer
/// (whose commits the syncer thread makes durable before they are acknowledged; see the module
/// docs); checkpoints sync the WAL before copying it and the database file after.
/// `temp_store = MEMORY` keeps the statement journals of the writer's per-call savepoints in
/// memory rather than in temporary files. No `mmap_size`: pages
/// are read with `pread`, because a read through a memory map of a database file that shrank
/// under the process (truncated or overwritten in place) is a SIGBUS, where `pread` answers an
/// error. (Measured with `vpcep-bench` show-service and list-services: the map made no
/// difference beyond the machine's noise.)
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;";

/// The SQLite VFS of every connection: the standard unix VFS holding one exclusive lock on the
/// database for the whole process, which keeps the WAL index in heap memory shared by the
/// process's connections instead of in a memory-mapped `-shm` file. Writing through that
/// mapping is a SIGBUS when the file cannot take the write (made immutable, or its pages cannot
/// be allocated); with the index in memory there is no `-shm` file at all. The price: no other
/// process can open the database while the store runs (a second `vpcep serve` on the same file
/// is refused at start instead of sharing it).
const SQLITE_VFS: &str = "unix-excl";

/// The writer's own settings: no automatic checkpoints in its commits (the checkpointer thread
/// runs them beside it), commits that write the WAL without syncing it (the syncer thread
/// syncs it before the callers are answered), and a 64 MiB page cache: with SQLite's default
/// of 2 MiB a batch of creates re-read index pages with `pread` and spilled dirty pages to the
/// WAL before its commit (a profile of creates at 256 clients: a fifth of the writer's time).
const SQLITE_WRITER_PRAGMAS: &str =
    "PRAGMA wal_autocheckpoint = 0; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -65536;";

/// Least time between two background WAL checkpoints. Each one copies the pages changed since
/// the last into the database file and syncs that file, and the WAL syncs that acknowledge
/// commits queue behind that sync on the disk: fewer, larger checkpoints copy a page changed by
/// many commits once and sync the file less often. (`vpcep-bench` create-service at 32 clients,
/// 5 alternated pairs: p99 4.6-5.8 ms at 50 ms, 3.3-3.5 ms at 500 ms, creates/s the same within
/// the noise; at 1 s the largest checkpoints held commits up to 20 ms.)
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL length (frames, 4 KiB each) past which the writer checkpoints itself, so that the WAL
/// starts over. Each such checkpoint syncs the database file on the writer's path; at 16,000
/// frames (64 MiB of WAL) a busy writer does it every few seconds rather than several times a
/// second.
const WAL_RESTART_FRAMES: i64 = 16_000;

/// `PRAGMA wal_checkpoint(PASSIVE)`: answers the WAL's length in frames.
fn checkpoint(conn: &rusqlite::Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The SQLite migrations, in order: (version, description, SQL).
const SQLITE_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "inventory",
        include_str!("../migrations/sqlite/0002_inventory.sql"),
    ),
    (
        3,
        "endpoints",
        include_str!("../migrations/sqlite/0003_endpoints.sql"),
    ),
    (
        4,
        "dataplane",
        include_str!("../migrations/sqlite/0004_dataplane.sql"),
    ),
    (
        5,
        "desired version",
        include_str!("../migrations/sqlite/0005_desired_version.sql"),
    ),
    (
        6,
        "address claims",
        include_str!("../migrations/sqlite/0006_address_claims.sql"),
    ),
    (
        7,
        "network quotas",
        include_str!("../migrations/sqlite/0007_network_quotas.sql"),
    ),
    (
        8,
        "compact claims",
        include_str!("../migrations/sqlite/0008_compact_claims.sql"),
    ),
    (
        9,
        "port keyed claims",
        include_str!("../migrations/sqlite/0009_port_keyed_claims.sql"),
    ),
    (
        10,
        "claims freed",
        include_str!("../migrations/sqlite/0010_claims_freed.sql"),
    ),
    (
        11,
        "usage slots",
        include_str!("../migrations/sqlite/0011_usage_slots.sql"),
    ),
    (
        12,
        "claims released by port",
        include_str!("../migrations/sqlite/0012_claims_released_by_port.sql"),
    ),
    (
        13,
        "names found by id",
        include_str!("../migrations/sqlite/0013_names_found_by_id.sql"),
    ),
    (
        14,
        "services in transition",
        include_str!("../migrations/sqlite/0014_services_in_transition.sql"),
    ),
    (
        15,
        "claims by id bytes",
        include_str!("../migrations/sqlite/0015_claims_by_id_bytes.sql"),
    ),
];

/// The database file of a `sqlite://path` URL (query parameters are ignored); creates its
/// directory.
fn sqlite_path(url: &str) -> StoreResult<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split_once('?').map_or(rest, |(p, _)| p);
    if let Some(dir) = Path::new(path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| {
                crate::StoreError::internal(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
    }
    Ok(PathBuf::from(path))
}

/// Opens a SQLite connection with the store's settings; `create`: make the database file when
/// it is missing (only the first connection may: a later one that finds no file must fail
/// rather than start an empty database).
fn sqlite_connect(path: &Path, create: bool) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = rusqlite::Connection::open_with_flags_and_vfs(path, flags, SQLITE_VFS)?;
    conn.execute_batch(SQLITE_PRAGMAS)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

/// Applies the SQLite migrations not yet applied, each in its own transaction, recording them in
/// `_vpcep_migrations`. A database migrated by an earlier build (sqlx's `_sqlx_migrations`)
/// counts its applied versions too.
fn sqlite_migrate(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _vpcep_migrations (version INTEGER PRIMARY KEY, \
         description TEXT NOT NULL, applied_at INTEGER NOT NULL DEFAULT (unixepoch()))",
    )?;
    let legacy: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        [],
        |r| r.get(0),
    )?;
    for (version, description, sql) in SQLITE_MIGRATIONS {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let step = || -> rusqlite::Result<()> {
            let mut applied: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM _vpcep_migrations WHERE version = ?1",
                [version],
                |r| r.get(0),
            )?;
            if !applied && legacy {
                applied = conn.query_row(
                    "SELECT COUNT(*) > 0 FROM _sqlx_migrations WHERE version = ?1 AND success",
                    [version],
                    |r| r.get(0),
                )?;
            }
            if !applied {
                conn.execute_batch(sql)?;
            }
            conn.execute(
                "INSERT OR IGNORE INTO _vpcep_migrations (version, description) VALUES (?1, ?2)",
                rusqlite::params![version, description],
            )?;
            Ok(())
        };
        match step() {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Opens (creating if needed) and migrates the database at `url`: `sqlite://path` or
/// `postgres://...`. Migrations take the database's migration lock, so several nodes may
/// start at once.
pub async fn open(url: &str, opts: StoreOptions) -> StoreResult<Arc<SqlStore>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let connect = PgConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(connect)
            .await?;
        POSTGRES_MIGRATOR
            .run(&pool)
            .await
            .map_err(|e| crate::StoreError::internal(format!("migration failed: {e}")))?;
        return Ok(Arc::new(SqlStore {
            dialect: Dialect::Postgres,
            enforce_claims: opts.enforce_claims,
            backend: Backend::Postgres(pool),
        }));
    }
    if !url.starts_with("sqlite:") {
        return Err(crate::StoreError::internal(format!(
            "unsupported database URL {url:?}; use sqlite://PATH or postgres://..."
        )));
    }
    let path = sqlite_path(url)?;
    let writer = tokio::task::spawn_blocking(move || -> StoreResult<_> {
        let in_use = |e: rusqlite::Error| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                crate::StoreError::Unavailable(format!(
                    "{} is in use by another process (a SQLite database serves one process)",
                    path.display()
                ))
            }
            _ => crate::StoreError::from(e),
        };
        let conn = sqlite_connect(&path, true).map_err(in_use)?;
        sqlite_migrate(&conn).map_err(|e| match in_use(e) {
            crate::StoreError::Unavailable(m) => crate::StoreError::Unavailable(m),
            e => crate::StoreError::internal(format!("migration failed: {e}")),
        })?;
        Ok((conn, path))
    })
    .await
    .map_err(|e| crate::StoreError::internal(format!("opening the database: {e}")))??;
    let (conn, path) = writer;
    conn.execute_batch(SQLITE_WRITER_PRAGMAS)?;
    let guard = FileGuard::start(&path).map_err(|e| {
        crate::StoreError::internal(format!("cannot watch {}: {e}", path.display()))
    })?;
    let checkpointer_conn = sqlite_connect(&path, false)?;
    let (committed, commits) = std::sync::mpsc::sync_channel(1);
    let wal_frames = Arc::new(AtomicI64::new(0));
    let frames = wal_frames.clone();
    let thread_error =
        |e: std::io::Error| crate::StoreError::internal(format!("cannot start a thread: {e}"));
    std::thread::Builder::new()
        .name("vpcep-sqlite-checkpoint".into())
        .spawn({
            let guard = guard.clone();
            move || sqlite_checkpointer(checkpointer_conn, commits, frames, guard)
        })
        .map_err(thread_error)?;
    let wal = std::fs::File::open(guard.wal_path()).map_err(|e| {
        crate::StoreError::internal(format!("cannot open {}: {e}", guard.wal_path().display()))
    })?;
    let (tx, rx) = mpsc::channel(opts.max_batch * 4);
    let in_sync = Arc::new(AtomicUsize::new(0));
    let (synced, to_sync) = std::sync::mpsc::channel();
    let syncer = std::thread::Builder::new()
        .name("vpcep-sqlite-sync".into())
        .spawn({
            let syncer = Syncer {
                wal,
                guard: guard.clone(),
                in_sync: in_sync.clone(),
                // Weak: the writer ends when the store's own senders are gone.
                writer: tx.downgrade(),
            };
            move || syncer.run(to_sync)
        })
        .map_err(thread_error)?;
    let max_batch = opts.max_batch.max(1);
    let closing = Arc::new(AtomicBool::new(false));
    let (ended_tx, ended_rx) = tokio::sync::oneshot::channel();
    let writer = Writer {
        conn: Conn::Sqlite(conn),
        max_batch,
        committed,
        wal_frames,
        guard: guard.clone(),
        synced: Some((synced, syncer)),
        in_sync,
        closing: closing.clone(),
        ended: Some(ended_tx),
    };
    std::thread::Builder::new()
        .name("vpcep-sqlite-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(thread_error)?;
    Ok(Arc::new(SqlStore {
        dialect: Dialect::Sqlite,
        enforce_claims: opts.enforce_claims,
        backend: Backend::Sqlite {
            writer: tx,
            readers: ReadPool {
                path,
                idle: Mutex::new(Vec::new()),
                keep: opts.max_connections.max(1) as usize,
                guard: guard.clone(),
                closed: AtomicBool::new(false),
            },
            guard,
            closing,
            ended: Mutex::new(Some(ended_rx)),
        },
    }))
}

/// Runs one statement of the writer's transaction control.
fn control(conn: &Conn, sql: &str) -> rusqlite::Result<()> {
    sqlite_of(conn).prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// The writer thread's SQLite connection.
fn sqlite_of(conn: &Conn) -> &rusqlite::Connection {
    match conn {
        Conn::Sqlite(c) => c,
        _ => unreachable!("the writer thread holds a SQLite connection"),
    }
}

/// The SQLite checkpointer thread: after commits, copies the WAL into the database file
/// (`PASSIVE`: never waits for, nor blocks, the writer or readers), at most once per
/// [`CHECKPOINT_EVERY`], so that the page copies and the database file's fsync do not delay
/// commits. It publishes the WAL's length in `wal_frames`. The guard looks at the files before
/// each checkpoint (nothing is copied into a database file that changed under the store) and
/// right after it (when the file has grown). Ends when the writer does.
///
/// A background checkpoint never catches up with a busy writer, and the WAL only starts over
/// once it is wholly checkpointed; so when it grows past [`WAL_RESTART_FRAMES`] the writer
/// checkpoints the few frames left itself, between two transactions.
fn sqlite_checkpointer(
    conn: rusqlite::Connection,
    commits: std::sync::mpsc::Receiver<()>,
    wal_frames: Arc<AtomicI64>,
    guard: Arc<FileGuard>,
) {
    while commits.recv().is_ok() {
        if guard.check().is_ok() {
            match checkpoint(&conn) {
                Ok(frames) => wal_frames.store(frames, Ordering::Relaxed),
                Err(e) => tracing::warn!(error = %e, "sqlite checkpoint failed"),
            }
            let _ = guard.check();
        }
        std::thread::sleep(CHECKPOINT_EVERY);
    }
    // A last checkpoint, so that a closed store leaves little WAL behind.
    let _ = checkpoint(&conn);
}

/// The SQLite writer thread's state: its connection, batch size, the checkpointer's nudge and
/// WAL length, and the guard over the database files.
struct Writer {
    conn: Conn,
    max_batch: usize,
    committed: std::sync::mpsc::SyncSender<()>,
    wal_frames: Arc<AtomicI64>,
    guard: Arc<FileGuard>,
    /// Committed batches' answers go to the syncer thread, which answers them once the WAL is
    /// synced; joined when the writer ends.
    synced: Option<(
        std::sync::mpsc::Sender<Vec<Deliver>>,
        std::thread::JoinHandle<()>,
    )>,
    /// Committed transactions handed to the syncer and not yet answered.
    in_sync: Arc<AtomicUsize>,
    /// Set by [`SqlStore::close`]: the writer ends after the transaction it is on.
    closing: Arc<AtomicBool>,
    /// Told when the writer ends (its connection, and so the database file, closed).
    ended: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Writer {
    /// Group commit of queued write calls (see the module docs), until the store is dropped or
    /// closed. Each call runs as soon as it is taken, in the transaction that is open (begun by
    /// the first call after a commit). The transaction commits once the syncer is idle and the
    /// calls queued then have run, or once it holds `max_batch` calls. A commit made while the
    /// syncer is busy would wait for the sync after that one anyway, so the calls that arrive
    /// meanwhile join it, and a sync's worth of calls writes each page it changes once instead
    /// of once per commit. With the syncer idle (a lone caller), a call commits at once.
    ///
    /// After each commit it checks the database files ([`FileGuard`]) before answering, and
    /// nudges the checkpointer (without waiting). A storage failure (disk full, I/O error) may
    /// make SQLite roll back the whole transaction inside a call: then every call of the
    /// transaction is answered with that failure (their changes are gone).
    fn run(mut self, mut rx: mpsc::Receiver<ToWriter>) {
        let mut tx = OpenTx {
            calls: Vec::with_capacity(self.max_batch),
            optimistic: true,
        };
        let mut disconnected = false;
        loop {
            // With the syncer idle, the transaction takes the calls queued when that was seen and
            // commits: calls that keep arriving meanwhile go to the next one (run during the
            // sync) instead of putting the commit off.
            let mut queued: Option<usize> = None;
            while tx.calls.len() < self.max_batch {
                if !tx.calls.is_empty() && !self.syncing() {
                    let left = queued.get_or_insert_with(|| rx.len());
                    if *left == 0 {
                        break;
                    }
                    *left -= 1;
                }
                match rx.try_recv() {
                    Ok(ToWriter::Call(job)) => self.run_call(&mut tx, job),
                    Ok(ToWriter::Wake) => {}
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            let closing = disconnected || self.closing.load(Ordering::SeqCst);
            if !tx.calls.is_empty()
                && (closing || tx.calls.len() >= self.max_batch || !self.syncing())
            {
                self.commit(&mut tx);
                // After answering, so that this transaction's callers do not wait for it.
                self.restart_wal();
                if closing {
                    break;
                }
                continue;
            }
            if closing {
                break;
            }
            // Wait for a call, or for the syncer to finish the sync in flight (it wakes us).
            match rx.blocking_recv() {
                Some(ToWriter::Call(job)) => self.run_call(&mut tx, job),
                Some(ToWriter::Wake) => {}
                None => disconnected = true,
            }
        }
        // Every committed transaction is answered (synced) before the store counts as closed.
        if let Some((synced, syncer)) = self.synced.take() {
            drop(synced);
            let _ = syncer.join();
        }
        if let Some(ended) = self.ended.take() {
            let _ = ended.send(());
        }
    }

    /// Whether a committed transaction waits for (or is in) a sync.
    fn syncing(&self) -> bool {
        self.in_sync.load(Ordering::SeqCst) > 0
    }

    /// Runs `job` in the open transaction (beginning one if none is open). A call fails alone:
    /// what it wrote is rolled back and the others stay. Retryable calls run without a
    /// savepoint while no other kind has run in the transaction (a savepoint copies every page
    /// a call writes to the statement journal, and a savepoint spanning several calls makes
    /// each statement's release walk that journal). A retryable call that fails having written
    /// nothing costs nothing more. One that fails having written rows rolls the transaction
    /// back: the calls before it run again, each in a savepoint, and every call after it runs
    /// in a savepoint of its own (as the other calls always do), so a call runs at most twice
    /// and a failed call leaves nothing written. When the transaction cannot go on, all of its
    /// calls are answered with the failure.
    fn run_call(&mut self, tx: &mut OpenTx, job: Job) {
        if tx.calls.is_empty() {
            if let Err(e) = control(&self.conn, "BEGIN IMMEDIATE") {
                (job.deliver)(Err(e.into()));
                return;
            }
            tx.optimistic = true;
        }
        tx.calls.push(job);
        let i = tx.calls.len() - 1;
        let step = if tx.optimistic && tx.calls[i].retryable {
            self.run_unguarded(&mut tx.calls, i)
                .map(|undone| tx.optimistic &= !undone)
        } else {
            tx.optimistic = false;
            self.run_alone(&mut tx.calls[i])
        };
        if let Err(e) = step {
            self.finish(tx, Err(e));
        }
    }

    /// Commits the open transaction and hands its callers to the syncer.
    fn commit(&mut self, tx: &mut OpenTx) {
        metrics::histogram!("vpcep_store_commit_batch_size").record(tx.calls.len() as f64);
        let outcome = control(&self.conn, "COMMIT").map_err(Into::into);
        self.finish(tx, outcome);
    }

    /// Ends the open transaction with `outcome` (checked against the database files when it
    /// committed): a failure rolls back what is left of it and answers its callers; a commit
    /// goes to the syncer, which answers them once it is durable.
    fn finish(&mut self, tx: &mut OpenTx, outcome: StoreResult<()>) {
        let outcome = outcome.and_then(|()| self.guard.check());
        if let Err(e) = &outcome {
            tracing::error!(error = %e, "sqlite group commit failed; rolling back the transaction");
            if !sqlite_of(&self.conn).is_autocommit() {
                let _ = control(&self.conn, "ROLLBACK");
            }
        }
        let delivers: Vec<Deliver> = tx.calls.drain(..).map(|job| job.deliver).collect();
        let _ = self.committed.try_send(());
        match (outcome, &self.synced) {
            (Ok(()), Some((synced, _))) => {
                self.in_sync.fetch_add(1, Ordering::SeqCst);
                if let Err(unsent) = synced.send(delivers) {
                    self.in_sync.fetch_sub(1, Ordering::SeqCst);
                    for deliver in unsent.0 {
                        deliver(Err(crate::StoreError::Unavailable(
                            "the syncer has stopped".into(),
                        )));
                    }
                }
            }
            (outcome, _) => {
                for deliver in delivers {
                    deliver(outcome.clone());
                }
            }
        }
    }

    /// Runs retryable call `i` without a savepoint. When it fails having written rows, the
    /// transaction is rolled back and begun again with the calls before it, each in its own
    /// savepoint; answers whether that happened. `Err` when the transaction cannot go on.
    fn run_unguarded(&mut self, batch: &mut [Job], i: usize) -> StoreResult<bool> {
        let before = sqlite_of(&self.conn).total_changes();
        let status = futures::executor::block_on((batch[i].run)(&mut self.conn));
        match status {
            Ok(()) => Ok(false),
            Err(e) if sqlite_of(&self.conn).is_autocommit() => Err(e),
            // A failed statement undoes its own rows; no row changed means nothing to undo.
            Err(_) if sqlite_of(&self.conn).total_changes() == before => Ok(false),
            Err(_) => {
                control(&self.conn, "ROLLBACK")?;
                control(&self.conn, "BEGIN IMMEDIATE")?;
                for job in &mut batch[..i] {
                    self.run_alone(job)?;
                }
                Ok(true)
            }
        }
    }

    /// Runs one call in its own savepoint; a failed call rolls back only itself. `Err` when the
    /// transaction cannot go on.
    fn run_alone(&mut self, job: &mut Job) -> StoreResult<()> {
        control(&self.conn, "SAVEPOINT w")?;
        let status = futures::executor::block_on((job.run)(&mut self.conn));
        if let Err(e) = status {
            if sqlite_of(&self.conn).is_autocommit() {
                return Err(e);
            }
            control(&self.conn, "ROLLBACK TO w")?;
        }
        control(&self.conn, "RELEASE w")?;
        Ok(())
    }

    /// Checkpoints the WAL's remaining frames once the checkpointer has let it grow long, so
    /// that it starts over.
    fn restart_wal(&self) {
        if self.wal_frames.load(Ordering::Relaxed) < WAL_RESTART_FRAMES {
            return;
        }
        match checkpoint(sqlite_of(&self.conn)) {
            Ok(_) => self.wal_frames.store(0, Ordering::Relaxed),
            // The checkpointer is at work: try again after the next commit.
            Err(rusqlite::Error::SqliteFailure(f, _))
                if f.code == rusqlite::ErrorCode::DatabaseBusy => {}
            Err(e) => {
                tracing::warn!(error = %e, "sqlite checkpoint failed");
                self.wal_frames.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// The syncer thread (see the module docs).
struct Syncer {
    wal: std::fs::File,
    guard: Arc<FileGuard>,
    /// Shared with the writer: committed transactions not yet answered.
    in_sync: Arc<AtomicUsize>,
    writer: mpsc::WeakSender<ToWriter>,
}

impl Syncer {
    /// Takes every committed transaction queued so far and syncs the WAL once. Then, once no
    /// committed transaction is left, it wakes the writer (which holds its next transaction
    /// open while a sync is in flight), and answers the synced callers. A failed sync faults
    /// the store for good.
    fn run(self, batches: std::sync::mpsc::Receiver<Vec<Deliver>>) {
        while let Ok(first) = batches.recv() {
            let mut ready = vec![first];
            ready.extend(batches.try_iter());
            let started = std::time::Instant::now();
            let outcome = self.guard.state().and_then(|()| {
                self.wal.sync_data().or_else(|e| {
                    self.guard.fail(format!(
                        "syncing {} failed ({e}): commits may not have reached the disk",
                        self.guard.wal_path().display()
                    ))
                })
            });
            metrics::histogram!("vpcep_store_sync_seconds").record(started.elapsed().as_secs_f64());
            metrics::histogram!("vpcep_store_sync_batches").record(ready.len() as f64);
            // The writer first: its next commit (writing the WAL frames) then overlaps these
            // callers' answers instead of waiting for them.
            let taken = ready.len();
            if self.in_sync.fetch_sub(taken, Ordering::SeqCst) == taken {
                // A full queue means the writer has calls to take and will look again.
                if let Some(writer) = self.writer.upgrade() {
                    let _ = writer.try_send(ToWriter::Wake);
                }
            }
            for deliver in ready.into_iter().flatten() {
                deliver(outcome.clone());
            }
        }
    }
}

/// Idle SQLite read connections.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    keep: usize,
    guard: Arc<FileGuard>,
    /// Set by [`SqlStore::close`]: no connection is opened or kept any more.
    closed: AtomicBool,
}

impl ReadPool {
    /// An idle connection, or a new one once the database files are checked (a new connection
    /// must open the file the store watches, never a replacement or a new empty one).
    fn take(&self) -> StoreResult<rusqlite::Connection> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(crate::StoreError::Unavailable(
                "the store is closed (this server is stopping)".into(),
            ));
        }
        self.guard.state()?;
        let idle = self.idle.lock().expect("read pool lock").pop();
        match idle {
            Some(c) => Ok(c),
            None => {
                self.guard.check()?;
                Ok(sqlite_connect(&self.path, false)?)
            }
        }
    }

    fn give_back(&self, c: rusqlite::Connection) {
        if !c.is_autocommit() && c.execute_batch("ROLLBACK").is_err() {
            return;
        }
        let mut idle = self.idle.lock().expect("read pool lock");
        if idle.len() < self.keep && !self.closed.load(Ordering::SeqCst) {
            idle.push(c);
        }
    }
}

/// A connection for reads; goes back to its pool when dropped.
pub(crate) struct Reader<'s> {
    conn: Option<Conn>,
    pool: Option<&'s ReadPool>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        self.conn.as_ref().expect("a reader holds a connection")
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("a reader holds a connection")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let (Some(Conn::Sqlite(c)), Some(pool)) = (self.conn.take(), self.pool) {
            pool.give_back(c);
        }
    }
}

impl Reader<'_> {
    /// Ends the read transaction begun by [`SqlStore::read_tx`].
    pub(crate) async fn commit(mut self) -> StoreResult<()> {
        match self.conn.take() {
            Some(Conn::Sqlite(c)) => {
                let done = c.execute_batch("COMMIT");
                if let Some(pool) = self.pool {
                    pool.give_back(c);
                }
                done?;
            }
            Some(Conn::PgTx(tx)) => tx.commit().await?,
            _ => {}
        }
        Ok(())
    }
}

impl SqlStore {
    /// Which backend this is (`sqlite` or `postgres`), for logs and metrics.
    pub fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    /// Whether the store can serve: `Err` ([`StoreError::Fault`](crate::StoreError::Fault)) once
    /// the SQLite database file or its WAL was removed or replaced under the running store
    /// (checked in the background and before each write is acknowledged); PostgreSQL is healthy
    /// here (its failures show on each call). Cheap: `/health` calls it.
    pub fn health(&self) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite { guard, .. } => guard.state(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Closes the database for this process: writes and reads from now on answer 503, the
    /// writer finishes the batch it is on, and every SQLite connection closes (which releases
    /// the file to another process, e.g. a successor that took this server's sockets over).
    /// Answers once the writer has ended. PostgreSQL: closes the pool.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite {
                writer,
                readers,
                closing,
                ended,
                ..
            } => {
                closing.store(true, Ordering::SeqCst);
                readers.closed.store(true, Ordering::SeqCst);
                readers.idle.lock().expect("read pool lock").clear();
                // Wake the writer if it waits for work: it commits what it holds and ends.
                let _ = writer.send(ToWriter::Wake).await;
                let ended = ended.lock().expect("writer end lock").take();
                if let Some(ended) = ended {
                    let _ = ended.await;
                }
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// A connection for reads.
    pub(crate) async fn reader(&self) -> StoreResult<Reader<'_>> {
        match &self.backend {
            Backend::Sqlite { readers, .. } => Ok(Reader {
                conn: Some(Conn::Sqlite(readers.take()?)),
                pool: Some(readers),
            }),
            Backend::Postgres(pool) => Ok(Reader {
                conn: Some(Conn::Pg(pool.acquire().await?)),
                pool: None,
            }),
        }
    }

    /// A connection in a read transaction: its reads see one state of the database. End it
    /// with [`Reader::commit`].
    pub(crate) async fn read_tx(&self) -> StoreResult<Reader<'_>> {
        match &self.backend {
            Backend::Sqlite { .. } => {
                let r = self.reader().await?;
                if let Conn::Sqlite(c) = &*r {
                    c.execute_batch("BEGIN")?;
                }
                Ok(r)
            }
            Backend::Postgres(pool) => Ok(Reader {
                conn: Some(Conn::PgTx(pool.begin().await?)),
                pool: None,
            }),
        }
    }

    /// Runs `f`, a call that cannot run again, as one transaction and answers its result once
    /// the transaction is durable. The store's own calls all may run again
    /// ([`SqlStore::write_retryable`]); this one is for the tests of the writer's path for calls
    /// that may not (each in a savepoint of its own on SQLite; a conflict answered busy on
    /// PostgreSQL).
    #[cfg(test)]
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let mut f = Some(f);
        self.timed_write(false, move |c| match f.take() {
            Some(f) => f(c),
            None => Box::pin(async { Err(crate::StoreError::internal("a write call ran twice")) }),
        })
        .await
    }

    /// Runs `f` as one transaction and answers its result once the transaction is durable. `f`
    /// may run more than once, each time from the state it first ran on (a pure function of its
    /// captures and what it reads; what it moves into its future it clones for each run), and
    /// its result is the last run's: on SQLite such calls
    /// run without a savepoint of their own, and run again if a failure rolls the batch back
    /// (see `Writer::run_call`); on PostgreSQL they run again (up to
    /// `PG_CONFLICT_RETRIES` times) when PostgreSQL ended their transaction in a conflict with
    /// another one (deadlock, serialization failure), which other calls answer as busy.
    pub(crate) async fn write_retryable<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        self.timed_write(true, f).await
    }

    async fn timed_write<T, F>(&self, retryable: bool, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut Conn) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let result = self.write_inner(retryable, f).await;
        let backend = match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        };
        metrics::histogram!("vpcep_store_write_seconds", "backend" => backend)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn write_inner<T, F>(&self, retryable: bool, mut f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnMut(&'c mut Conn) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut attempt = 0;
                loop {
                    match pg_write_once(pool, &mut f).await {
                        Err(crate::StoreError::Conflict(e))
                            if retryable && attempt < PG_CONFLICT_RETRIES =>
                        {
                            attempt += 1;
                            metrics::counter!("vpcep_store_conflict_retries_total").increment(1);
                            tracing::debug!(attempt, error = %e, "transaction conflict: running it again");
                            tokio::time::sleep(conflict_backoff(attempt)).await;
                        }
                        result => return result,
                    }
                }
            }
            Backend::Sqlite { writer, guard, .. } => {
                guard.state()?;
                // The last run's result, for the answer once the commit's outcome is known.
                let result = Arc::new(Mutex::new(None::<StoreResult<T>>));
                let (tx, rx) = oneshot::channel::<StoreResult<T>>();
                let kept = result.clone();
                let job = Job {
                    run: Box::new(move |conn| {
                        let call = f(conn);
                        let kept = kept.clone();
                        Box::pin(async move {
                            let r = call.await;
                            let status = r.as_ref().map(|_| ()).map_err(Clone::clone);
                            *kept.lock().expect("write result lock") = Some(r);
                            status
                        })
                    }),
                    retryable,
                    deliver: Box::new(move |commit| {
                        let r = result.lock().expect("write result lock").take();
                        let _ = tx.send(commit.and_then(|()| {
                            r.unwrap_or_else(|| {
                                Err(crate::StoreError::internal("a write call did not run"))
                            })
                        }));
                    }),
                };
                writer
                    .send(ToWriter::Call(job))
                    .await
                    .map_err(|_| crate::StoreError::Unavailable("the writer has stopped".into()))?;
                rx.await
                    .map_err(|_| crate::StoreError::Unavailable("the writer has stopped".into()))?
            }
        }
    }
}

/// How many times a retryable write call runs again after PostgreSQL ended its transaction in
/// a conflict with another one ([`crate::StoreError::Conflict`]).
const PG_CONFLICT_RETRIES: u32 = 3;

/// The pause before the `attempt`th run again: a few milliseconds, growing, with jitter so that
/// the transactions that collided do not collide again in step.
fn conflict_backoff(attempt: u32) -> Duration {
    let jitter = uuid::Uuid::new_v4().as_u128() % 1000;
    Duration::from_micros(u64::from(attempt) * 2000 + jitter as u64)
}

/// Runs `f` once in its own PostgreSQL transaction: committed when it succeeds, rolled back
/// when it fails.
async fn pg_write_once<T, F>(pool: &PgPool, f: &mut F) -> StoreResult<T>
where
    F: for<'c> FnMut(&'c mut Conn) -> BoxFuture<'c, StoreResult<T>>,
{
    let mut c = Conn::PgTx(pool.begin().await?);
    let result = f(&mut c).await;
    if let Conn::PgTx(tx) = c {
        match &result {
            Ok(_) => tx.commit().await?,
            // Rolled back before the caller hears of the failure: a dropped transaction is only
            // rolled back when its connection is next used, and until then keeps the row locks
            // it took (a reconciler pass skipping locked rows would skip them).
            Err(_) => tx.rollback().await?,
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreResult;

    /// Migration 0007 sets the network usage counters from the rows stored before it (and
    /// corrects a stale counter).
    #[test]
    fn network_quota_migration_counts_existing_rows() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::sqlite_connect(&dir.path().join("m.db"), true).unwrap();
        super::sqlite_migrate(&conn).unwrap();
        for (i, project) in ["a", "a", "a", "b"].iter().enumerate() {
            conn.execute(
                "INSERT INTO vpcs (id, project_id, name, description, cidr, routes, \
                 enterprise_project_id, usage_metrics, vni, created_at, updated_at) \
                 VALUES (?1, ?2, '', '', '10.0.0.0/16', '[]', '0', 0, 1, 0, 0)",
                rusqlite::params![format!("v{i}"), project],
            )
            .unwrap();
        }
        // The table 0007 ran against (0011 renamed it).
        conn.execute("ALTER TABLE usage_slots RENAME TO project_usage", [])
            .unwrap();
        conn.execute(
            "INSERT INTO project_usage (project_id, resource, used) VALUES ('a', 'vpc', 99)",
            [],
        )
        .unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite/0007_network_quotas.sql"))
            .unwrap();
        let used = |p: &str| -> i64 {
            conn.query_row(
                "SELECT used FROM project_usage WHERE project_id = ?1 AND resource = 'vpc'",
                [p],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!((used("a"), used("b")), (3, 1));
    }

    /// Migration 0015 turns the claims' text ids into their 16 bytes, keeps every claim, and
    /// from then on refuses a text id (which SQLite would store, and which would never conflict
    /// with the same id as bytes).
    #[test]
    fn claims_migration_stores_ids_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::sqlite_connect(&dir.path().join("c.db"), true).unwrap();
        super::sqlite_migrate(&conn).unwrap();
        // The table as 0009 made it, with text ids.
        conn.execute_batch(
            "DROP TABLE service_port_claims; \
             CREATE TABLE service_port_claims (port_id TEXT NOT NULL, protocol TEXT NOT NULL, \
             side TEXT NOT NULL, port BIGINT NOT NULL, service_id TEXT NOT NULL, \
             CONSTRAINT service_port_claims_pkey PRIMARY KEY (port_id, protocol, port, side)) \
             WITHOUT ROWID;",
        )
        .unwrap();
        let (port, service) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        for (side, p) in [("client", 80), ("server", 8080)] {
            conn.execute(
                "INSERT INTO service_port_claims VALUES (?1, 'TCP', ?2, ?3, ?4)",
                rusqlite::params![port.to_string(), side, p, service.to_string()],
            )
            .unwrap();
        }
        conn.execute_batch(include_str!(
            "../migrations/sqlite/0015_claims_by_id_bytes.sql"
        ))
        .unwrap();
        let rows: Vec<(Vec<u8>, String, i64, Vec<u8>)> = conn
            .prepare(
                "SELECT port_id, side, port, service_id FROM service_port_claims ORDER BY port",
            )
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let (p, s) = (port.as_bytes().to_vec(), service.as_bytes().to_vec());
        assert_eq!(
            rows,
            vec![
                (p.clone(), "client".into(), 80, s.clone()),
                (p.clone(), "server".into(), 8080, s.clone())
            ]
        );
        let text = conn.execute(
            "INSERT INTO service_port_claims VALUES (?1, 'TCP', 'client', 81, ?2)",
            rusqlite::params![port.to_string(), service.to_string()],
        );
        assert!(text.is_err(), "a text id was stored: {text:?}");
        // A claim that is not a UUID stops the migration instead of changing.
        conn.execute_batch(
            "DROP TABLE service_port_claims; \
             CREATE TABLE service_port_claims (port_id TEXT NOT NULL, protocol TEXT NOT NULL, \
             side TEXT NOT NULL, port BIGINT NOT NULL, service_id TEXT NOT NULL); \
             INSERT INTO service_port_claims VALUES ('not-a-uuid', 'TCP', 'client', 1, 'x');",
        )
        .unwrap();
        assert!(conn
            .execute_batch(include_str!(
                "../migrations/sqlite/0015_claims_by_id_bytes.sql"
            ))
            .is_err());
    }

    /// The reconciler's queries on services are served by its partial index (migration 0014):
    /// SQLite would scan the table for a query that does not repeat the index's condition.
    #[test]
    fn the_reconcilers_service_queries_use_the_partial_index() {
        use crate::services::{due_services, IN_TRANSITION};
        let (_dir, conn) = migrated_sqlite();
        let plan = |sql: &str| plan_of(&conn, sql);
        for sql in [
            due_services("id", "creating", "0", "", 10, ""),
            due_services(
                "id, ip",
                "creating",
                "0",
                " AND service_type = 'interface'",
                10,
                "",
            ),
            due_services("id", "deleting", "0", "", 10, ""),
            format!("SELECT MIN(status_at) FROM endpoint_services WHERE {IN_TRANSITION}"),
        ] {
            let p = plan(&sql);
            assert!(p.contains("endpoint_services_transition_idx"), "{sql}: {p}");
        }
        // Without the condition repeated, the index is not used.
        let p =
            plan("SELECT id FROM endpoint_services WHERE status = 'creating' ORDER BY status_at");
        assert!(!p.contains("endpoint_services_transition_idx"), "{p}");
    }

    /// A listed service's `has_tags` is a probe of the tags' primary key, not a scan of the
    /// tags (which a page would pay for once per row).
    #[test]
    fn has_tags_probes_the_tags_primary_key() {
        let (_dir, conn) = migrated_sqlite();
        let col = crate::tags::has_tags_col(crate::services::TAG_TYPE_SERVICE, "endpoint_services");
        let p = plan_of(&conn, &format!("SELECT id, {col} FROM endpoint_services"));
        assert!(
            p.contains("SEARCH t USING") && p.contains("resource_type=? AND resource_id=?"),
            "{p}"
        );
    }

    /// A migrated SQLite database in a temporary directory (kept while the guard lives).
    fn migrated_sqlite() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = super::sqlite_connect(&dir.path().join("p.db"), true).unwrap();
        super::sqlite_migrate(&conn).unwrap();
        (dir, conn)
    }

    /// SQLite's plan for `sql`, its steps joined by "; ".
    fn plan_of(conn: &rusqlite::Connection, sql: &str) -> String {
        let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = st.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    }

    /// Names a write call's type (closures do not infer a signature generic over lifetimes).
    fn as_call<F>(f: F) -> F
    where
        F: for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, StoreResult<i64>>,
    {
        f
    }

    /// A SQLite store in a temporary directory, with a table `t (k INTEGER PRIMARY KEY)`.
    async fn store_with_table() -> (tempfile::TempDir, Arc<SqlStore>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let store = super::open(&url, super::StoreOptions::default())
            .await
            .unwrap();
        store
            .write_retryable(|c| {
                Box::pin(async move {
                    crate::conn::query("CREATE TABLE t (k INTEGER PRIMARY KEY)")
                        .execute(c)
                        .await
                        .map(|_| ())
                        .map_err(Into::into)
                })
            })
            .await
            .unwrap();
        (dir, store)
    }

    /// One transaction of the SQLite writer mixing calls that run again (retryable) with calls
    /// that cannot, some failing after they wrote and some before: every caller gets its own
    /// outcome, exactly the succeeded calls' rows are committed, and a retryable call runs a
    /// second time only when a failure after writes rolled the transaction back before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_batch_commits_its_succeeded_calls_and_nothing_of_its_failed_ones() {
        use crate::conn::{query, query_scalar};
        use std::sync::atomic::AtomicUsize;
        use std::time::Duration;
        let (_dir, store) = store_with_table().await;
        let failed = || crate::StoreError::internal("refused");
        // Holds the writer (on its first run) so that every call below joins its transaction.
        let held = Arc::new(AtomicBool::new(false));
        let hold = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .write_retryable(move |_| {
                        let first = !held.swap(true, Ordering::SeqCst);
                        Box::pin(async move {
                            if first {
                                std::thread::sleep(Duration::from_millis(400));
                            }
                            Ok(())
                        })
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // (key, retryable, fails after inserting, fails before inserting)
        let calls = [
            (1, true, false, false),
            (2, true, true, false),
            (3, true, false, false),
            (4, false, true, false),
            (5, false, false, false),
            (6, true, false, true),
            (7, true, false, false),
        ];
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..8).map(|_| AtomicUsize::new(0)).collect());
        let mut tasks = Vec::new();
        for (k, retryable, fail_after, fail_before) in calls {
            let store = store.clone();
            let runs = runs.clone();
            let call = as_call(move |c| {
                runs[k as usize].fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    if fail_before {
                        return Err(failed());
                    }
                    query("INSERT INTO t (k) VALUES ($1)")
                        .bind(k)
                        .execute(&mut *c)
                        .await?;
                    if fail_after {
                        return Err(failed());
                    }
                    Ok(k)
                })
            });
            tasks.push(tokio::spawn(async move {
                if retryable {
                    store.write_retryable(call).await
                } else {
                    store.write(call).await
                }
            }));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        hold.await.unwrap().unwrap();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap().ok());
        }
        assert_eq!(
            answers,
            [Some(1), None, Some(3), None, Some(5), None, Some(7)]
        );
        let mut r = store.reader().await.unwrap();
        let keys: Vec<i64> = query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(&mut r)
            .await
            .unwrap();
        assert_eq!(keys, [1, 3, 5, 7]);
        let ran: Vec<usize> = runs.iter().map(|n| n.load(Ordering::SeqCst)).collect();
        // Call 2 failed after writing: call 1, before it, ran again; the others once.
        assert_eq!(ran[1..], [2, 1, 1, 1, 1, 1, 1]);
    }

    /// Rounds of callers writing at once, so that calls arrive while a sync is in flight: the
    /// writer holds them in its open transaction until the syncer wakes it. Every call is
    /// answered and every row is there. Without the wake-up, a round whose last calls wait in
    /// the open transaction is never answered (no later call comes to wake the writer).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn calls_arriving_during_syncs_are_all_committed_and_answered() {
        use crate::conn::{query, query_scalar};
        let (_dir, store) = store_with_table().await;
        let insert = |store: &Arc<SqlStore>, k: i64| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_retryable(move |c| {
                        Box::pin(async move {
                            query("INSERT INTO t (k) VALUES ($1)")
                                .bind(k)
                                .execute(c)
                                .await
                                .map(|_| ())
                                .map_err(Into::into)
                        })
                    })
                    .await
            })
        };
        let (rounds, callers) = (300i64, 8i64);
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            for round in 0..rounds {
                let calls: Vec<_> = (0..callers)
                    .map(|i| insert(&store, round * callers + i))
                    .collect();
                for call in calls {
                    call.await.unwrap().unwrap();
                }
            }
        })
        .await
        .expect("every write call is answered");
        let mut r = store.reader().await.unwrap();
        let n: i64 = query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut r)
            .await
            .unwrap();
        assert_eq!(n, rounds * callers);
        drop(r);
        store.close().await;
    }

    /// Two PostgreSQL transactions that lock two rows in opposite orders deadlock, and
    /// PostgreSQL ends one of them (`40P01`). A retryable call that loses runs again and
    /// succeeds once the other has committed; a call that cannot run again is answered busy
    /// (503), with nothing of it written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_deadlocked_retryable_write_runs_again_on_postgres() {
        use crate::conn::query;
        use std::sync::atomic::AtomicUsize;
        use vpcep_testkit::db::{Backend, TestDb};
        let Some(db) = TestDb::new(Backend::Postgres).await else {
            return;
        };
        let store = super::open(&db.url, super::StoreOptions::default())
            .await
            .unwrap();
        let setup = [
            "CREATE TABLE deadlock_probe (k BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
            "INSERT INTO deadlock_probe VALUES (1, 0), (2, 0)",
        ];
        for sql in setup {
            store
                .write(move |c| {
                    Box::pin(
                        async move { query(sql).execute(c).await.map(|_| ()).map_err(Into::into) },
                    )
                })
                .await
                .unwrap();
        }
        // Locks row `first`, waits until the other call holds its first row, then locks `second`.
        fn locking(
            first: i64,
            second: i64,
            runs: Arc<AtomicUsize>,
        ) -> impl for<'c> Fn(&'c mut Conn) -> BoxFuture<'c, StoreResult<()>> + Send + 'static
        {
            move |c| {
                let runs = runs.clone();
                Box::pin(async move {
                    let run = runs.fetch_add(1, Ordering::SeqCst);
                    let bump = "UPDATE deadlock_probe SET n = n + 1 WHERE k = $1";
                    query(bump).bind(first).execute(c).await?;
                    if run < 2 {
                        // Only the first two runs (one per call) wait for each other.
                        query("SELECT pg_sleep(0.3)").fetch_all(c).await?;
                    }
                    query(bump).bind(second).execute(c).await?;
                    Ok(())
                })
            }
        }
        let count = || async {
            let mut r = store.reader().await.unwrap();
            query_scalar_i64(&mut r, "SELECT CAST(SUM(n) AS BIGINT) FROM deadlock_probe").await
        };

        // Both retryable: both succeed, one of them after running again.
        let runs = Arc::new(AtomicUsize::new(0));
        let a = store.write_retryable(locking(1, 2, runs.clone()));
        let b = store.write_retryable(locking(2, 1, runs.clone()));
        let (a, b) = tokio::join!(a, b);
        assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 3, "the loser ran again, once");
        assert_eq!(count().await, 4, "each call's two updates, once");

        // One call that cannot run again: when it loses, its caller hears busy and nothing of
        // it stays; when the retryable one loses, it runs again. Either way the retryable one
        // succeeds.
        let runs = Arc::new(AtomicUsize::new(0));
        let once = locking(1, 2, runs.clone());
        let a = store.write(move |c| once(c));
        let b = store.write_retryable(locking(2, 1, runs.clone()));
        let (a, b) = tokio::join!(a, b);
        assert!(b.is_ok(), "{b:?}");
        match a {
            Ok(()) => {
                assert_eq!(runs.load(Ordering::SeqCst), 3);
                assert_eq!(count().await, 8);
            }
            Err(e) => {
                assert!(matches!(e, crate::StoreError::Conflict(_)), "{e:?}");
                let api = vpcep_domain::ApiError::from(e);
                assert_eq!(api.code, vpcep_domain::ErrorCode::Unavailable);
                assert_eq!(runs.load(Ordering::SeqCst), 2);
                assert_eq!(count().await, 6, "nothing of the failed call");
            }
        }
        drop(store);
        db.cleanup().await;
    }

    async fn query_scalar_i64(c: &mut Conn, sql: &str) -> i64 {
        crate::conn::query_scalar::<i64>(sql)
            .fetch_one(c)
            .await
            .unwrap()
    }

    /// Every file in `migrations/sqlite` is in [`super::SQLITE_MIGRATIONS`], in order.
    #[test]
    fn sqlite_migrations_list_every_file() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations/sqlite")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), super::SQLITE_MIGRATIONS.len());
        for (file, (version, _, sql)) in files.iter().zip(super::SQLITE_MIGRATIONS) {
            let number: i64 = file[..4].parse().expect("a numbered migration");
            assert_eq!(number, *version, "{file}");
            let text = std::fs::read_to_string(format!("{dir}/{file}")).expect("readable");
            assert_eq!(&text, sql, "{file}");
        }
    }
}
