//! Servers the tool starts itself: `vpcep serve` child processes over a temporary SQLite file
//! or a fresh PostgreSQL schema, with an accounts file whose quota never gets in the way.

use anyhow::{bail, Context as _};
use sqlx::{Connection, Executor};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// The PostgreSQL the tool makes fresh schemas in unless told otherwise (the test suite's).
pub const DEFAULT_POSTGRES_URL: &str = "postgres://root@127.0.0.1:5432/test";

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

/// The accounts file: one account, two projects, an endpoint-service quota of 100 000 000.
pub fn accounts_toml() -> String {
    format!(
        "[[account]]\ndomain_id = \"{DOMAIN_ID}\"\ndomain_name = \"bench\"\n\
         projects = [\"{CREATE_PROJECT}\", \"{SEED_PROJECT}\"]\n\
         [account.quotas]\nendpoint_service = 100000000\nendpoint = 100000000\n\
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

/// A `vpcep` child process (a `serve` or an `agent`) whose output goes to `<dir>/<name>.log`
/// (appended, so a restarted node keeps one log); killed when dropped.
pub struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Runs `bin args...` in `dir` with `VPCEP_LOG=log_level`.
    pub fn spawn(
        bin: &Path,
        args: &[String],
        dir: &Path,
        name: &str,
        log_level: &str,
    ) -> anyhow::Result<Proc> {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = Command::new(bin)
            .args(args)
            .current_dir(dir)
            .env("VPCEP_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        Ok(Proc { child, log })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its log so far (for error messages).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails, with the log, if the process exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}):\n{}",
                self.log.display(),
                self.log_text()
            );
        }
        Ok(())
    }

    /// Sends SIGTERM (a graceful stop), by process id.
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
    }

    /// SIGKILL, and waits for it.
    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits up to `timeout` for the process to exit: its status, `None` while it runs.
    pub async fn exited_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Stops it with SIGTERM (SIGKILL after 10 s).
    pub async fn stop(mut self) {
        self.terminate();
        if self.exited_within(Duration::from_secs(10)).await.is_none() {
            self.kill().await;
        }
    }
}

/// A running `vpcep serve`.
pub struct Server {
    proc: Proc,
    pub url: String,
    /// How it was started (for [`Server::restart_around`]).
    launch: Launch,
}

/// How a server was started.
struct Launch {
    bin: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    name: String,
    log_level: String,
}

/// A port that was free on 127.0.0.1 a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
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
        let listen = format!("127.0.0.1:{}", free_port()?);
        let args: Vec<String> = ["serve", "--listen", &listen, "--database", database]
            .into_iter()
            .map(String::from)
            .chain(["--accounts".to_string(), accounts.display().to_string()])
            .collect();
        let proc = Proc::spawn(bin, &args, dir, name, log_level)?;
        let mut server = Server {
            proc,
            url: format!("http://{listen}"),
            launch: Launch {
                bin: bin.to_path_buf(),
                args,
                dir: dir.to_path_buf(),
                name: name.to_string(),
                log_level: log_level.to_string(),
            },
        };
        wait_healthy(&mut server.proc, &server.url, Duration::from_secs(60)).await?;
        Ok(server)
    }

    /// The process id (for memory readings).
    pub fn pid(&self) -> Option<u32> {
        self.proc.pid()
    }

    /// Stops it with SIGTERM (SIGKILL after 10 s).
    pub async fn stop(self) {
        self.proc.stop().await;
    }

    /// Stops it (SIGTERM), runs `between` while it is down, and starts it again with the same
    /// settings and address. A SQLite database is open to one process at a time: this is how
    /// another process writes to it.
    pub async fn restart_around<T>(
        &mut self,
        between: impl std::future::Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        self.proc.terminate();
        if self
            .proc
            .exited_within(Duration::from_secs(10))
            .await
            .is_none()
        {
            self.proc.kill().await;
        }
        let result = between.await;
        let l = &self.launch;
        self.proc = Proc::spawn(&l.bin, &l.args, &l.dir, &l.name, &l.log_level)?;
        wait_healthy(&mut self.proc, &self.url, Duration::from_secs(60)).await?;
        result
    }
}

/// Waits until the `vpcep serve` `proc` answers `GET {url}/health` with 200; fails if it exits
/// or `timeout` passes.
pub async fn wait_healthy(proc: &mut Proc, url: &str, timeout: Duration) -> anyhow::Result<()> {
    let target = crate::http::Target::parse(url)?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(mut c) = crate::http::Conn::open(target.addr).await {
            let req = crate::http::request(&target, None, http::Method::GET, "/health", vec![]);
            if let Ok((200, _)) = c.send(req).await {
                return Ok(());
            }
        }
        proc.check_running()?;
        if Instant::now() > deadline {
            bail!("{url} did not become healthy within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
