//! Servers the tool starts itself: `vpcep serve` child processes over a temporary SQLite file
//! or a fresh PostgreSQL schema, with an accounts file whose quota never gets in the way.

use anyhow::{bail, Context as _};
use sqlx::{Connection, Executor};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The account the tool writes (and uses by default against a given URL too).
pub const DOMAIN_ID: &str = "bebebebebebebebebebebebebebebebe";
/// Where services are created.
pub const CREATE_PROJECT: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
/// The project seeded for list and show.
pub const SEED_PROJECT: &str = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2";
/// Access key of the bench account.
pub const ACCESS_KEY: &str = "AKBENCH0000000000001";
/// Secret key of the bench account.
pub const SECRET_KEY: &str = "bench-secret-key";

/// The accounts file: one account, two projects, quotas of 100 000 000 of every kind.
pub fn accounts_toml() -> String {
    format!(
        "[[account]]\ndomain_id = \"{DOMAIN_ID}\"\ndomain_name = \"bench\"\n\
         projects = [\"{CREATE_PROJECT}\", \"{SEED_PROJECT}\"]\n\
         [account.quotas]\nendpoint_service = 100000000\nendpoint = 100000000\n\
         vpc = 100000000\nsubnet = 100000000\nport = 100000000\n\
         [[account.credential]]\naccess_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n"
    )
}

/// Which database the spawned servers share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh database: a SQLite file in a temp dir, or a new schema (dropped at [`Fresh::drop_schema`]).
pub struct Fresh {
    pub url: String,
    schema: Option<(String, String)>,
}

impl Fresh {
    /// Makes the database.
    pub async fn new(db: Db, dir: &Path, postgres_base: &str) -> anyhow::Result<Fresh> {
        match db {
            Db::Sqlite => Ok(Fresh {
                url: format!("sqlite://{}", dir.join("bench.db").display()),
                schema: None,
            }),
            Db::Postgres => {
                let schema = format!("vpcep_bench_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(postgres_base)
                    .await
                    .with_context(|| format!("connecting to {postgres_base}"))?;
                conn.execute(format!("CREATE SCHEMA {schema}").as_str())
                    .await?;
                let _ = conn.close().await;
                let sep = if postgres_base.contains('?') {
                    '&'
                } else {
                    '?'
                };
                Ok(Fresh {
                    url: format!("{postgres_base}{sep}options=-c%20search_path%3D{schema}"),
                    schema: Some((postgres_base.to_string(), schema)),
                })
            }
        }
    }

    /// Drops the PostgreSQL schema (nothing for SQLite: the temp dir goes).
    pub async fn drop_schema(&self) {
        if let Some((base, schema)) = &self.schema {
            if let Ok(mut conn) = sqlx::PgConnection::connect(base).await {
                let _ = conn
                    .execute(format!("DROP SCHEMA {schema} CASCADE").as_str())
                    .await;
                let _ = conn.close().await;
            }
        }
    }
}

/// How a server is started (kept for [`Server::restart_around`]).
struct Launch {
    bin: PathBuf,
    port: u16,
    database: String,
    accounts: PathBuf,
    dir: PathBuf,
    log: PathBuf,
    log_level: String,
}

impl Launch {
    /// Starts `bin serve`, its output appended to the log.
    fn spawn(&self) -> anyhow::Result<Child> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        Command::new(&self.bin)
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--database")
            .arg(&self.database)
            .arg("--accounts")
            .arg(&self.accounts)
            .current_dir(&self.dir)
            .env("VPCEP_LOG", &self.log_level)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))
    }
}

/// A running `vpcep serve`.
pub struct Server {
    child: Child,
    pub url: String,
    launch: Launch,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    /// Starts `bin serve` on `database` and waits for `/health`.
    pub async fn start(
        bin: &Path,
        database: &str,
        accounts: &Path,
        dir: &Path,
        name: &str,
        log_level: &str,
    ) -> anyhow::Result<Server> {
        let launch = Launch {
            bin: bin.to_path_buf(),
            port: free_port()?,
            database: database.to_string(),
            accounts: accounts.to_path_buf(),
            dir: dir.to_path_buf(),
            log: dir.join(format!("{name}.log")),
            log_level: log_level.to_string(),
        };
        let mut server = Server {
            child: launch.spawn()?,
            url: format!("http://127.0.0.1:{}", launch.port),
            launch,
        };
        server.wait_healthy(Duration::from_secs(60)).await?;
        Ok(server)
    }

    /// Stops it (SIGTERM), runs `between` while it is down, and starts it again with the same
    /// settings and address. A SQLite database is open to one process at a time: this is how
    /// another process writes to it.
    pub async fn restart_around<T>(
        &mut self,
        between: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        self.terminate().await;
        let result = between.await;
        self.child = self.launch.spawn()?;
        self.wait_healthy(Duration::from_secs(60)).await?;
        result
    }

    async fn wait_healthy(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let target = crate::http::Target::parse(&self.url)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(mut c) = crate::http::Conn::open(target.addr).await {
                let req = crate::http::request(&target, None, http::Method::GET, "/health", vec![]);
                if let Ok((200, _)) = c.send(req).await {
                    return Ok(());
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited ({status}): {}",
                    std::fs::read_to_string(&self.launch.log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                bail!("the server did not become healthy within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops it with SIGTERM (SIGKILL after 10 s).
    pub async fn stop(mut self) {
        self.terminate().await;
    }

    async fn terminate(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
