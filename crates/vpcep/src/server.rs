//! `vpcep serve`: opens the store, loads tenants, starts the reconciler and serves the API.

use anyhow::Context as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use vpcep_api::AppState;
use vpcep_control::accounts::{AccountsFile, Registry};
use vpcep_control::Ctx;
use vpcep_domain::dataplane::AddressPolicy;
use vpcep_store::{SqlStore, StoreOptions};

/// Default `--listen`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";
/// Default `--database`.
pub const DEFAULT_DATABASE: &str = "sqlite://./vpcep-data/vpcep.db";
/// Default `--region`.
pub const DEFAULT_REGION: &str = "local-1";

/// Settings of `vpcep serve` (the flags of the interface contract in `shared/design.md`).
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `--database`.
    pub database: String,
    /// `--region`.
    pub region: String,
    /// `--accounts`.
    pub accounts: Option<PathBuf>,
    /// `--provisioning-delay`.
    pub provisioning_delay: Duration,
    /// `--inventory`: VPCs, subnets and ports created at start when absent.
    pub inventory: Option<PathBuf>,
    /// `--rate-limit`: requests per second per account (0: unlimited).
    pub rate_limit: u32,
    /// `--with-agent`: run the data plane in this process.
    pub with_agent: bool,
    /// `--require-agent`: services become `available` and endpoints `accepted` only once a data
    /// plane agent realized them (implied by `with_agent`).
    pub require_agent: bool,
    /// Data-plane tunables for `with_agent`.
    pub proxy: vpcep_proxy::ProxyOptions,
    /// `--agent-grace`: how long an agent counts as alive after its last report, and an
    /// endpoint no live agent serves stays `accepted`.
    pub agent_grace: Duration,
    /// `--tls-cert` and `--tls-key`: serve HTTPS with this PEM chain and key (reloaded on
    /// SIGHUP).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Connection limits: `--header-timeout`, `--idle-timeout`, `--max-connections`.
    pub http: vpcep_api::serve::HttpLimits,
    /// `--max-buffered-bytes`: request body bytes all requests together may hold.
    pub max_buffered_bytes: usize,
    /// The URL clients reach this server at: when set, the first start writes the client
    /// profiles `default` and `operator` for it (see [`crate::cli::config`]).
    pub client_profile_endpoint: Option<String>,
    /// `--dns-listen` and friends: private DNS for endpoint names (off when `None`).
    pub dns: Option<vpcep_dns::DnsOptions>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            database: DEFAULT_DATABASE.into(),
            region: DEFAULT_REGION.into(),
            accounts: None,
            provisioning_delay: Duration::ZERO,
            inventory: None,
            rate_limit: 0,
            with_agent: false,
            require_agent: false,
            proxy: vpcep_proxy::ProxyOptions::default(),
            agent_grace: vpcep_control::dataplane::DEFAULT_AGENT_GRACE,
            tls: None,
            http: vpcep_api::serve::HttpLimits::default(),
            max_buffered_bytes: vpcep_api::auth::DEFAULT_BODY_BUDGET,
            client_profile_endpoint: None,
            dns: None,
        }
    }
}

/// The directory of a `sqlite://` database, if the URL names one.
fn sqlite_dir(database: &str) -> Option<PathBuf> {
    database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .map(|p| p.split('?').next().unwrap_or(p))
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
}

/// Creates `dir` (and missing parents) readable by the owner only (0700); an existing
/// directory is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Writes a file holding secrets, readable by the owner only (0600, also when it existed).
fn write_secret_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path)?;
    restrict_to_owner(path)?;
    f.write_all(contents.as_bytes())
}

/// Takes group and other permissions off a secret file (0600).
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            tracing::warn!(file = %path.display(), "the file holds secret keys: made it readable by its owner only (0600)");
        }
    }
    Ok(())
}

/// Where the default account's TOML copy is written: beside the SQLite file, else `./vpcep-data`.
fn default_account_path(database: &str) -> PathBuf {
    sqlite_dir(database)
        .unwrap_or_else(|| PathBuf::from("./vpcep-data"))
        .join("default-account.toml")
}

/// The tenants: the accounts file when given (with the stored default accounts it does not
/// list, see [`AccountsFile::with_defaults`]), else the stored default accounts (made and
/// printed once on first start). Also answers the stored default accounts, for reloads.
async fn load_accounts(
    cfg: &ServeConfig,
    store: &SqlStore,
) -> anyhow::Result<(AccountsFile, Option<AccountsFile>)> {
    if let Some(path) = &cfg.accounts {
        let file = AccountsFile::load(path)
            .with_context(|| format!("loading --accounts {}", path.display()))?;
        let stored = store
            .stored_default_account()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let Some(stored) = stored else {
            return Ok((file, None));
        };
        let defaults =
            AccountsFile::parse(&stored).context("the stored default account is invalid")?;
        let (merged, kept) = file.with_defaults(&defaults).with_context(|| {
            format!(
                "refusing to start with --accounts {}: fix the file (the default accounts are in {})",
                path.display(),
                default_account_path(&cfg.database).display()
            )
        })?;
        if !kept.is_empty() {
            tracing::info!(
                file = %path.display(),
                kept = %kept.join(","),
                "the default accounts of the first start stay in force beside --accounts (to revoke one, list its domain_id in the file without credentials)"
            );
        }
        return Ok((merged, Some(defaults)));
    }
    let fresh = AccountsFile::generate_default();
    let fresh_toml = fresh.to_toml();
    let stored = store
        .default_account(fresh_toml.clone())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let file = AccountsFile::parse(&stored).context("the stored default account is invalid")?;
    let path = default_account_path(&cfg.database);
    if stored == fresh_toml {
        let saved = create_private_dir(path.parent().unwrap_or(Path::new(".")))
            .and_then(|_| write_secret_file(&path, &stored));
        let mut text = String::from("vpcep: created the default accounts (keys shown once)\n");
        for a in &file.accounts {
            let c = &a.credentials[0];
            let role = if a.operator {
                "operator: its keys run data-plane agents; its services are public"
            } else {
                "tenant: use it for your resources"
            };
            text.push_str(&format!(
                "  {} ({role})\n    domain_id  = {}\n    project_id = {}\n    access_key = {}\n    secret_key = {}\n",
                a.domain_name, a.domain_id, a.projects[0], c.access_key, c.secret_key,
            ));
        }
        text.push_str(&format!(
            "They are stored in the database{}; the file works as --accounts.",
            match saved {
                Ok(()) => format!(" and in {}", path.display()),
                Err(e) => format!(" (could not write {}: {e})", path.display()),
            }
        ));
        if let Some(endpoint) = &cfg.client_profile_endpoint {
            text.push_str(&write_client_profiles(endpoint, &file));
        }
        println!("{text}");
    } else {
        tracing::info!(domain_id = %file.accounts[0].domain_id, file = %path.display(), "using the stored default account");
        if path.exists() {
            if let Err(e) = restrict_to_owner(&path) {
                tracing::warn!(file = %path.display(), error = %e, "cannot restrict the default account file to its owner");
            }
        }
    }
    Ok((file, None))
}

/// Writes the client profiles for the first start's accounts; answers a line saying where.
fn write_client_profiles(endpoint: &str, file: &AccountsFile) -> String {
    use crate::cli::config;
    let profile = |a: &vpcep_control::accounts::AccountConfig| config::Profile {
        endpoint: Some(endpoint.to_string()),
        access_key: a.credentials.first().map(|c| c.access_key.clone()),
        secret_key: a.credentials.first().map(|c| c.secret_key.clone()),
        project_id: a.projects.first().cloned(),
        domain_id: Some(a.domain_id.clone()),
        ca_cert: None,
    };
    let Some(tenant) = file.first_tenant() else {
        return String::new();
    };
    let Some(path) = config::config_path() else {
        return "\nNo client profile written: no configuration directory (set HOME or VPCEP_CONFIG).".into();
    };
    match config::write_first_start_profiles(
        &path,
        endpoint,
        profile(tenant),
        file.first_operator().map(profile),
    ) {
        Ok(names) => format!(
            "\nThe CLI uses them from any directory: client profiles {} in {} (`vpcep whoami`; `vpcep --profile NAME ...`).",
            names.join(" and "),
            path.display()
        ),
        Err(e) => format!("\nNo client profile written: {e}"),
    }
}

/// The process's Prometheus recorder (installed once; later calls share it).
pub fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .ok()
        })
        .clone()
}

/// A control plane ready to serve: its context and the tasks to start.
pub struct ControlPlane {
    /// Shared by handlers and the reconciler.
    pub ctx: Arc<Ctx>,
    /// Requests per second per account (0: unlimited).
    rate_limit: u32,
    /// Data-plane options when the agent runs in this process.
    in_process_agent: Option<vpcep_proxy::ProxyOptions>,
    /// `--accounts`, reloaded by [`ControlPlane::reload`].
    accounts_file: Option<PathBuf>,
    /// The stored default accounts kept beside `--accounts` (see
    /// [`AccountsFile::with_defaults`]), also at each reload.
    default_accounts: Option<AccountsFile>,
    /// The HTTPS certificate and key, reloaded by [`ControlPlane::reload`].
    tls: Option<Arc<vpcep_api::tls::TlsFiles>>,
    http: vpcep_api::serve::HttpLimits,
    max_buffered_bytes: usize,
    /// Private DNS (split-horizon resolvers only with the in-process data plane).
    dns: Option<vpcep_dns::DnsOptions>,
}

impl ControlPlane {
    /// Opens the store (migrating it) and loads the tenants.
    pub async fn open(cfg: &ServeConfig) -> anyhow::Result<Self> {
        let tls = match &cfg.tls {
            Some((cert, key)) => Some(vpcep_api::tls::TlsFiles::load(cert, key)?),
            None => None,
        };
        if let Some(dir) = sqlite_dir(&cfg.database) {
            create_private_dir(&dir)
                .with_context(|| format!("creating the data directory {}", dir.display()))?;
        }
        let dataplane = cfg.with_agent || cfg.require_agent;
        let store = vpcep_store::open(
            &cfg.database,
            StoreOptions {
                enforce_claims: dataplane,
                ..StoreOptions::default()
            },
        )
        .await
        .with_context(|| format!("opening {}", cfg.database))?;
        // With the data plane in this process, this host's addresses are the data plane's; with
        // agents elsewhere, only the grant is known here (each agent refuses its own host's).
        let host = if cfg.with_agent {
            let mut host = vpcep_proxy::host_addresses();
            host.extend(cfg.proxy.extra_host_addresses.iter().copied());
            host
        } else {
            Vec::new()
        };
        let policy = AddressPolicy::new(cfg.proxy.dataplane_cidrs.clone(), host);
        let (accounts, default_accounts) = load_accounts(cfg, &store).await?;
        let ctx = Arc::new(Ctx {
            store,
            region: cfg.region.clone(),
            accounts: Arc::new(Registry::new(&accounts)),
            reconciler_wake: Arc::new(Notify::new()),
            provisioning_delay: cfg.provisioning_delay,
            dataplane,
            policy: Arc::new(policy),
            agent_grace: cfg.agent_grace,
            started_at: vpcep_domain::time::now_millis(),
        });
        if let Some(path) = &cfg.inventory {
            let file =
                vpcep_control::network::InventoryFile::load(path).map_err(anyhow::Error::msg)?;
            let created = vpcep_control::network::preload(&ctx, &file)
                .await
                .map_err(|e| anyhow::anyhow!("preloading --inventory {}: {e}", path.display()))?;
            tracing::info!(file = %path.display(), created, "inventory preloaded");
        }
        Ok(ControlPlane {
            ctx,
            rate_limit: cfg.rate_limit,
            in_process_agent: cfg.with_agent.then(|| cfg.proxy.clone()),
            accounts_file: cfg.accounts.clone(),
            default_accounts,
            tls,
            http: cfg.http,
            max_buffered_bytes: cfg.max_buffered_bytes,
            dns: cfg.dns.clone().map(|mut d| {
                if !cfg.with_agent {
                    d.vpc_listen = None;
                }
                d
            }),
        })
    }

    /// Reads the accounts file and the TLS certificate and key again (what SIGHUP does). A
    /// file that cannot be used leaves the current accounts or certificate in place; the log
    /// says why.
    pub fn reload(&self) {
        match &self.accounts_file {
            Some(path) => {
                match AccountsFile::load(path).and_then(|file| match &self.default_accounts {
                    Some(d) => file.with_defaults(d).map(|(f, _)| f),
                    None => Ok(file),
                }) {
                    Ok(file) => {
                        self.ctx.accounts.replace(&file);
                        tracing::info!(file = %path.display(), accounts = file.accounts.len(), keys = self.ctx.accounts.key_count(), "accounts reloaded");
                    }
                    Err(e) => {
                        tracing::error!(file = %path.display(), error = %e, "accounts not reloaded; the previous accounts stay in force");
                    }
                }
            }
            None => {
                tracing::info!("no --accounts file: the default account stays (nothing to reload)")
            }
        }
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays in use")
                }
            }
        }
    }

    /// Serves the API on `listener` and runs the reconciler until `shutdown` resolves; then
    /// stops accepting, finishes in-flight requests and stops the reconciler.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let dp = match &self.in_process_agent {
            Some(opts) => Some(vpcep_proxy::DataPlane::start(in_process_options(
                opts.clone(),
                listener.local_addr()?,
            ))),
            None => None,
        };
        self.serve_with(listener, dp, shutdown).await
    }

    /// Like [`ControlPlane::serve`], with the in-process data plane already running (see
    /// [`start_data_plane`]). With a handover socket, this server offers its sockets (the API's
    /// listener included) to a successor, and stops as `shutdown` would once one took them.
    /// Last, it closes the store, so that a successor can open a SQLite file this process held.
    pub async fn serve_with(
        self,
        listener: TcpListener,
        dp: Option<vpcep_proxy::DataPlane>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let reconciler = tokio::spawn(vpcep_control::reconciler::run(
            self.ctx.clone(),
            cancel.clone(),
        ));
        let mut state = AppState::new(self.ctx.clone(), metrics_handle())
            .with_rate_limit(self.rate_limit)
            .with_body_budget(self.max_buffered_bytes);
        let mut retired = None;
        let mut offered = None;
        let agent = match dp {
            Some(dp) => {
                if let Some(path) = self
                    .in_process_agent
                    .as_ref()
                    .and_then(|o| o.handover_socket.as_ref())
                {
                    let api = std::os::fd::AsFd::as_fd(&listener).try_clone_to_owned()?;
                    let socket = vpcep_proxy::handover::bind(path)
                        .with_context(|| format!("handover socket {}", path.display()))?;
                    offered =
                        Some(dp.offer_handover(socket, vec![(HANDOVER_API.to_string(), api)]));
                    retired = Some(dp.retired());
                }
                let stats = dp.stats().clone();
                state.dataplane_metrics = Some(Arc::new(move || stats.render_prometheus()));
                Some(tokio::spawn(run_in_process_agent(
                    self.ctx.clone(),
                    dp,
                    cancel.clone(),
                )))
            }
            None => None,
        };
        let shutdown = async move {
            match retired {
                Some(retired) => tokio::select! {
                    _ = shutdown => {}
                    _ = retired => tracing::info!("a successor took the listening sockets over; stopping"),
                },
                None => shutdown.await,
            }
            // The API's socket closes as the accept loop ends, not once requests and the data
            // plane have drained: a copy kept for a successor would go on taking connections
            // into a backlog nobody accepts from.
            if let Some(offered) = offered {
                offered.withdraw();
            }
        };
        let dns = match &self.dns {
            Some(opts) => Some(
                vpcep_dns::start(
                    self.ctx.store.clone(),
                    &self.ctx.region,
                    opts.clone(),
                    cancel.clone(),
                )
                .await
                .with_context(|| format!("private DNS on {}", opts.listen))?,
            ),
            None => None,
        };
        let app = vpcep_api::router(state);
        tracing::info!(
            addr = %listener.local_addr()?,
            scheme = if self.tls.is_some() { "https" } else { "http" },
            max_connections = self.http.max_connections,
            backend = self.ctx.store.backend(),
            region = %self.ctx.region,
            "vpcep control plane listening"
        );
        let (tls, http) = (self.tls.clone(), self.http);
        let plane = Arc::new(self);
        let reloader = tokio::spawn(reload_on_sighup(plane.clone()));
        vpcep_api::serve::serve(listener, app, shutdown, http, tls).await;
        reloader.abort();
        cancel.cancel();
        let _ = reconciler.await;
        if let Some(dns) = dns {
            dns.stopped().await;
        }
        // No request, reconciler pass or agent poll uses the store any more; the in-process data
        // plane may still drain its connections.
        plane.ctx.store.close().await;
        if let Some(agent) = agent {
            let _ = agent.await;
        }
        Ok(())
    }
}

/// Calls [`ControlPlane::reload`] on each SIGHUP.
async fn reload_on_sighup(plane: Arc<ControlPlane>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: no reloads");
                return;
            }
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the accounts file and the TLS certificate");
            plane.reload();
        }
    }
    #[cfg(not(unix))]
    drop(plane);
}

/// How often the in-process agent confirms it is alive when nothing changes.
const IN_PROCESS_HEARTBEAT: Duration = Duration::from_secs(5);

/// The in-process data plane's options: per-endpoint counters name tenants' endpoints, so they
/// stay out of the API's open `/metrics` (served at the operator-signed `/agent/v1/metrics`),
/// and the API's own address (`local`) is the host's, never the data plane's.
fn in_process_options(
    mut opts: vpcep_proxy::ProxyOptions,
    local: std::net::SocketAddr,
) -> vpcep_proxy::ProxyOptions {
    opts.export_metrics = false;
    opts.extra_host_addresses.push(local.ip());
    opts
}

/// Starts the data plane of `serve --with-agent` (`None` without it) before the store is
/// opened: on a predecessor's sockets and snapshot when `inherited` (serving them at once and
/// telling the predecessor, which then stops and releases the database), else empty. `local`
/// is the API's listen address.
pub async fn start_data_plane(
    cfg: &ServeConfig,
    local: std::net::SocketAddr,
    inherited: Option<vpcep_proxy::handover::Inherited>,
) -> anyhow::Result<Option<vpcep_proxy::DataPlane>> {
    if !cfg.with_agent {
        return Ok(None);
    }
    let opts = in_process_options(cfg.proxy.clone(), local);
    Ok(Some(match inherited {
        Some(i) => vpcep_proxy::DataPlane::start_inheriting(opts, i)
            .await
            .context("serving the sockets the predecessor handed over")?,
        None => vpcep_proxy::DataPlane::start(opts),
    }))
}

/// Opens the control plane; after a takeover (`predecessor`), waits up to a minute for the
/// predecessor to release a SQLite database it still holds while it stops.
pub async fn open_after(cfg: &ServeConfig, predecessor: bool) -> anyhow::Result<ControlPlane> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match ControlPlane::open(cfg).await {
            Err(e)
                if predecessor
                    && std::time::Instant::now() < deadline
                    && matches!(
                        e.downcast_ref::<vpcep_store::StoreError>(),
                        Some(vpcep_store::StoreError::Unavailable(_))
                    ) =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}

/// The name of the API's listening socket in a handover.
pub const HANDOVER_API: &str = "api";

/// The default handover socket of `serve --with-agent`: beside the SQLite file, else the
/// agent's default for `serve-<agent id>`.
pub fn default_handover_socket(database: &str, agent_id: &str) -> PathBuf {
    match sqlite_dir(database) {
        Some(dir) => dir.join("dataplane.sock"),
        None => vpcep_proxy::handover::default_path(&format!("serve-{agent_id}")),
    }
}

/// `--with-agent`: feeds the in-process data plane the desired state straight from the control
/// plane (no HTTP) and records its reports — each new one at once, the latest again every
/// [`IN_PROCESS_HEARTBEAT`] — until `cancel`; then drains the data plane.
async fn run_in_process_agent(
    ctx: Arc<Ctx>,
    dp: vpcep_proxy::DataPlane,
    cancel: CancellationToken,
) {
    let mut applied: Option<u64> = None;
    let mut reports = dp.reports();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            next = vpcep_control::dataplane::snapshot(&ctx, applied, IN_PROCESS_HEARTBEAT) => match next {
                Ok(snapshot) if Some(snapshot.version) != applied => {
                    let version = snapshot.version;
                    dp.push(snapshot);
                    // Wait until this version is applied, so its report is the one recorded
                    // (a stop does not wait for it).
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = dp.applied(version) => applied = Some(version),
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "in-process agent: cannot read the desired state; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            // A listener retried since the last snapshot came up or failed.
            changed = reports.changed() => if changed.is_err() { break },
        }
        let latest = reports.borrow_and_update().clone();
        if let Some(report) = latest {
            if let Err(e) = vpcep_control::dataplane::report(&ctx, &report).await {
                tracing::warn!(error = %e, "in-process agent: cannot record the report");
            }
        }
    }
    dp.shutdown().await;
}

/// Serves the process's Prometheus metrics at `GET /metrics` on `listener` until `shutdown`
/// (what `vpcep agent --metrics-listen` runs beside the data plane).
pub async fn serve_metrics(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handle =
        metrics_handle().ok_or_else(|| anyhow::anyhow!("cannot install the metrics recorder"))?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = handle.render();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    text,
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// Opens everything and serves until `shutdown` (what `vpcep serve` runs).
pub async fn run(
    cfg: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    ControlPlane::open(&cfg)
        .await?
        .serve(listener, shutdown)
        .await
}
