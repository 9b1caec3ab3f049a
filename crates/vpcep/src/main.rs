//! `vpcep`: the control plane (`serve`) and, in later subcommands, the agent and client.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use vpcep::server::{self, ServeConfig};

#[derive(Parser)]
#[command(
    name = "vpcep",
    version,
    about = "A self-hostable VPC Endpoint service (Huawei Cloud VPCEP API)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (the VPCEP and VPC APIs).
    Serve(ServeArgs),
    /// Run a data-plane agent: serve the accepted endpoints the control plane lists.
    Agent(AgentArgs),
    /// Client commands: signed calls to a vpcep server.
    #[command(flatten)]
    Client(vpcep::cli::ClientCommand),
}

#[derive(clap::Args)]
struct AgentArgs {
    /// The control plane's URL, e.g. http://127.0.0.1:8480 (or https://..., verified against
    /// --ca-cert when given); several nodes: repeat the flag or separate URLs with commas (the
    /// agent follows one and moves on after a failed call).
    #[arg(long, env = "VPCEP_CONTROL_PLANE", required = true, value_delimiter = ',', value_parser = parse_url)]
    control_plane: Vec<String>,
    /// Name in reports (default: the host name).
    #[arg(long, env = "VPCEP_AGENT_ID")]
    agent_id: Option<String>,
    /// Serve the agent's per-endpoint metrics at GET /metrics on this address (e.g. 127.0.0.1:9480).
    #[arg(long, env = "VPCEP_METRICS_LISTEN")]
    metrics_listen: Option<String>,
    /// The operator account whose keys the agent uses: --access-key and --secret-key, or
    /// --profile (default `operator`), or --account-file (its first operator account).
    #[command(flatten)]
    creds: vpcep::cli::Credentials,
    #[command(flatten)]
    proxy: ProxyArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// Logging options of `serve` and `agent`.
#[derive(clap::Args)]
struct LogArgs {
    /// Log format: `text` (plain when stderr is not a terminal) or `json`.
    #[arg(long, env = "VPCEP_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

/// Data-plane options shared by `serve --with-agent` and `agent`.
#[derive(clap::Args)]
struct ProxyArgs {
    /// PROXY protocol version written for tcp_proxy proxy_open, open and proxy_vni (1 or 2).
    #[arg(long, env = "VPCEP_PROXY_PROTOCOL_VERSION", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    proxy_protocol_version: u8,
    /// Host address ranges (CIDRs, comma-separated) the data plane may listen on and connect to
    /// for VPCs without a network namespace; the host's loopback 127.0.0.1, its interface
    /// addresses and link-local addresses are refused even inside them. Empty: none.
    #[arg(long, env = "VPCEP_DATAPLANE_CIDRS", default_value = vpcep_domain::dataplane::DEFAULT_DATAPLANE_CIDRS, value_parser = parse_cidrs)]
    dataplane_cidrs: Cidrs,
    /// How long open connections may go on after the data plane stops (SIGTERM) or hands its
    /// listeners to a successor; it exits as soon as they finish.
    #[arg(long, env = "VPCEP_DRAIN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,
    /// Unix socket where a new process takes the listening sockets over from a running one, so
    /// that a restart refuses no connection (start the new one; the old one drains and exits).
    /// Default: /run/vpcep/<agent id>.sock for an agent; beside the SQLite file for serve.
    #[arg(long, env = "VPCEP_HANDOVER_SOCKET")]
    handover_socket: Option<PathBuf>,
    /// `auto`: endpoints with tcp_proxy close in this host's namespace are forwarded by
    /// nftables NAT where the process may (the `nft` tool and CAP_NET_ADMIN), the others by
    /// the user-space proxy; `off`: all by the user-space proxy.
    #[arg(long, env = "VPCEP_KERNEL_PATH", default_value = "auto", value_parser = ["auto", "off"])]
    kernel_path: String,
}

/// Checks a `--control-plane` URL (`http://` or `https://`, a host, an optional port).
fn parse_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let url = reqwest::Url::parse(text)
        .map_err(|e| format!("{text:?} is not a URL ({e}); expected e.g. http://127.0.0.1:8480"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{text:?}: expected an http:// or https:// URL with a host, e.g. http://127.0.0.1:8480"
        ));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// A parsed `--dataplane-cidrs` value.
#[derive(Clone, Debug)]
struct Cidrs(Vec<ipnet::IpNet>);

fn parse_cidrs(text: &str) -> Result<Cidrs, String> {
    vpcep_domain::dataplane::AddressPolicy::parse_cidrs(text).map(Cidrs)
}

impl ProxyArgs {
    fn options(&self) -> vpcep_proxy::ProxyOptions {
        vpcep_proxy::ProxyOptions {
            proxy_version: if self.proxy_protocol_version == 1 {
                vpcep_proxy::ProxyVersion::V1
            } else {
                vpcep_proxy::ProxyVersion::V2
            },
            dataplane_cidrs: self.dataplane_cidrs.0.clone(),
            drain_timeout: self.drain_timeout,
            handover_socket: self.handover_socket.clone(),
            kernel_path: if self.kernel_path == "off" {
                vpcep_proxy::KernelPathMode::Off
            } else {
                vpcep_proxy::KernelPathMode::Auto
            },
            ..Default::default()
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "VPCEP_LISTEN", default_value = server::DEFAULT_LISTEN)]
    listen: String,
    /// `sqlite://PATH` (created if missing) or `postgres://...`.
    #[arg(long, env = "VPCEP_DATABASE_URL", default_value = server::DEFAULT_DATABASE)]
    database: String,
    /// Region name, used in service names `region.name.id`.
    #[arg(long, env = "VPCEP_REGION", default_value = server::DEFAULT_REGION)]
    region: String,
    /// The server's accounts file (TOML): the tenants and operators allowed to call. The
    /// default accounts of the first start stay in force beside it unless it lists their
    /// domain_id. Without it, the first start creates a tenant and an operator account.
    #[arg(long, env = "VPCEP_ACCOUNTS")]
    accounts: Option<PathBuf>,
    /// How long `creating` and `deleting` last before the reconciler finishes them (e.g. `2s`).
    #[arg(long, env = "VPCEP_PROVISIONING_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    provisioning_delay: Duration,
    /// Inventory file (TOML): VPCs, subnets and ports to create at start when absent.
    #[arg(long, env = "VPCEP_INVENTORY")]
    inventory: Option<PathBuf>,
    /// Requests per second each account may make; more answer 429 with Retry-After (0: off).
    #[arg(long, env = "VPCEP_RATE_LIMIT", default_value_t = 0)]
    rate_limit: u32,
    /// Run the data plane in this process: accepted endpoints carry traffic with one command.
    #[arg(long, env = "VPCEP_WITH_AGENT")]
    with_agent: bool,
    /// Services become available and endpoints accepted only once a data-plane agent realized
    /// them (for separate `vpcep agent` processes; implied by --with-agent).
    #[arg(long, env = "VPCEP_REQUIRE_AGENT")]
    require_agent: bool,
    /// How long an agent counts as alive after its last report; an endpoint no live agent
    /// serves for this long is shown `failed` (agents are asked to report 3 times as often).
    #[arg(long, env = "VPCEP_AGENT_GRACE", default_value = "30s", value_parser = humantime::parse_duration)]
    agent_grace: Duration,
    /// Serve HTTPS with this PEM certificate chain (reloaded on SIGHUP; needs --tls-key).
    #[arg(long, env = "VPCEP_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "VPCEP_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Most client connections open at once; beyond it idle ones are closed first (default:
    /// 7/8 of the open-file limit, at most 16384; a quarter of it with --with-agent).
    #[arg(long, env = "VPCEP_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// A connection must send a complete request head within this time (e.g. `10s`).
    #[arg(long, env = "VPCEP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed (e.g. `60s`).
    #[arg(long, env = "VPCEP_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// Request body bytes all requests together may hold buffered; beyond it 503 (min 1 MiB).
    #[arg(long, env = "VPCEP_MAX_BUFFERED_BYTES", default_value_t = vpcep_api::auth::DEFAULT_BODY_BUDGET)]
    max_buffered_bytes: usize,
    #[command(flatten)]
    dns: Box<DnsArgs>,
    #[command(flatten)]
    proxy: ProxyArgs,
    #[command(flatten)]
    log: LogArgs,
}

/// Private DNS options of `serve`.
#[derive(clap::Args)]
struct DnsArgs {
    /// Answer the endpoint zone `vpcep.<region>.internal` by DNS on this address (UDP and TCP,
    /// e.g. 127.0.0.1:5353); off by default.
    #[arg(long, env = "VPCEP_DNS_LISTEN")]
    dns_listen: Option<std::net::SocketAddr>,
    /// Forward names outside the zone to this DNS server (e.g. 10.0.0.2:53); without it they
    /// are REFUSED.
    #[arg(long, env = "VPCEP_DNS_UPSTREAM", requires = "dns_listen")]
    dns_upstream: Option<std::net::SocketAddr>,
    /// With --with-agent: the address of the resolver inside each VPC's network namespace,
    /// answering only that VPC's endpoints (`off`: none).
    #[arg(long, env = "VPCEP_DNS_VPC_LISTEN", default_value = "127.0.0.53:53")]
    dns_vpc_listen: String,
}

impl DnsArgs {
    /// The DNS server's options (`None`: no --dns-listen).
    fn options(&self) -> anyhow::Result<Option<vpcep_dns::DnsOptions>> {
        let Some(listen) = self.dns_listen else {
            return Ok(None);
        };
        let vpc_listen = match self.dns_vpc_listen.as_str() {
            "off" | "" => None,
            v => Some(
                v.parse()
                    .map_err(|e| anyhow::anyhow!("--dns-vpc-listen {v:?}: {e}"))?,
            ),
        };
        Ok(Some(vpcep_dns::DnsOptions {
            upstream: self.dns_upstream,
            vpc_listen,
            ..vpcep_dns::DnsOptions::new(listen)
        }))
    }
}

/// Default `--max-connections` for an open-file limit of `nofile`: room is left for the
/// database, listeners and logs (and, with the in-process data plane, for its two sockets and
/// pipe per forwarded connection).
fn default_max_connections(nofile: u64, with_agent: bool) -> usize {
    let api = if with_agent {
        nofile / 4
    } else {
        nofile - (nofile / 8).max(64).min(nofile / 2)
    };
    usize::try_from(api).unwrap_or(usize::MAX).clamp(16, 16_384)
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VPCEP_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "info,hickory_server=warn,hickory_proto=warn,hickory_resolver=warn",
        )
    });
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The URL a client on this host reaches `--listen` at (a wildcard address becomes loopback).
fn client_url(listen: &str, tls: bool) -> Option<String> {
    let addr: std::net::SocketAddr = listen.parse().ok()?;
    let ip = match addr.ip() {
        std::net::IpAddr::V4(v) if v.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(v) if v.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    Some(format!(
        "{scheme}://{}",
        std::net::SocketAddr::new(ip, addr.port())
    ))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
}

/// Takes the listening sockets over from a `serve --with-agent` running with the same handover
/// socket (`None` when none runs).
async fn take_over(
    path: &std::path::Path,
) -> anyhow::Result<Option<vpcep_proxy::handover::Inherited>> {
    let asked = path.to_path_buf();
    let inherited = tokio::task::spawn_blocking(move || vpcep_proxy::handover::take_over(&asked))
        .await?
        .with_context(|| format!("taking over from the server at {}", path.display()))?;
    if let Some(i) = &inherited {
        tracing::info!(
            listeners = i.listeners.len(),
            socket = %path.display(),
            "took the listening sockets over from the running server"
        );
    }
    Ok(inherited)
}

/// Raises the soft open-file limit to the hard limit (each client connection, and each
/// forwarded one twice over, holds descriptors); returns the limit in force.
fn raise_nofile_limit() -> u64 {
    match vpcep_proxy::raise_nofile_limit() {
        Ok(n) => {
            tracing::debug!(limit = n, "open-file limit raised");
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit; assuming 1024");
            1024
        }
    }
}

/// mimalloc instead of glibc's allocator: list pages and creates allocate many short strings
/// per row on several threads, where glibc's malloc and free took about a quarter of the
/// server's samples in a profile of list-services (`perf record` during `vpcep-bench`). With
/// the crate's `override` feature, C code's `malloc` is mimalloc's too: SQLite's writer
/// allocates and frees its savepoints' statement journal in 1 KiB chunks, and creates at 256
/// clients ran 7-10 % faster than with glibc's `malloc` (three alternating runs each).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    // One line naming what failed (the cause chain), never a backtrace.
    if let Err(e) = run().await {
        eprintln!("vpcep: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(a) => {
            init_tracing(&a.log.log_format);
            let nofile = raise_nofile_limit();
            let http = vpcep_api::serve::HttpLimits {
                header_timeout: a.header_timeout,
                idle_timeout: a.idle_timeout,
                max_connections: a
                    .max_connections
                    .unwrap_or_else(|| default_max_connections(nofile, a.with_agent)),
                ..Default::default()
            };
            let mut cfg = ServeConfig {
                database: a.database,
                region: a.region,
                accounts: a.accounts,
                provisioning_delay: a.provisioning_delay,
                inventory: a.inventory,
                rate_limit: a.rate_limit,
                with_agent: a.with_agent,
                require_agent: a.require_agent,
                proxy: a.proxy.options(),
                agent_grace: a.agent_grace,
                tls: a.tls_cert.clone().zip(a.tls_key),
                http,
                max_buffered_bytes: a.max_buffered_bytes,
                client_profile_endpoint: client_url(&a.listen, a.tls_cert.is_some()),
                dns: a.dns.options()?,
            };
            let mut inherited = None;
            if cfg.with_agent {
                let path = cfg.proxy.handover_socket.clone().unwrap_or_else(|| {
                    server::default_handover_socket(&cfg.database, &cfg.proxy.agent_id)
                });
                inherited = take_over(&path).await?;
                cfg.proxy.handover_socket = Some(path);
            }
            // The predecessor's API socket, when it listens where this server is to listen.
            let wanted: Option<std::net::SocketAddr> = a.listen.parse().ok();
            let api = inherited
                .as_mut()
                .and_then(|i| i.extra.remove(server::HANDOVER_API))
                .filter(|l| l.local_addr().ok() == wanted);
            let listener = match api {
                Some(l) => {
                    l.set_nonblocking(true)?;
                    tokio::net::TcpListener::from_std(l)?
                }
                None => vpcep_api::serve::bind(&a.listen)
                    .await
                    .map_err(|e| {
                        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                            " (another process listens there: another `vpcep serve`? choose another --listen)"
                        } else {
                            ""
                        };
                        anyhow::anyhow!("cannot listen on {}: {e}{hint}", a.listen)
                    })?,
            };
            // Traffic first: the predecessor stops (and releases the database) once this data
            // plane serves its sockets.
            let predecessor = inherited.is_some();
            let dp = server::start_data_plane(&cfg, listener.local_addr()?, inherited).await?;
            server::open_after(&cfg, predecessor)
                .await?
                .serve_with(listener, dp, shutdown_signal())
                .await
        }
        Command::Client(c) => {
            if let Err(e) = vpcep::cli::run(c).await {
                eprintln!("vpcep: {e}");
                std::process::exit(e.code);
            }
            Ok(())
        }
        Command::Agent(a) => {
            init_tracing(&a.log.log_format);
            raise_nofile_limit();
            // An operator account's keys: flags, the profile, or an account file.
            let who = a
                .creds
                .resolve(Some(&a.control_plane[0]), true)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut cfg = vpcep_proxy::AgentConfig::new(
                &a.control_plane[0],
                &who.access_key,
                &who.secret_key,
            );
            cfg.control_planes = a.control_plane;
            cfg.proxy = a.proxy.options();
            cfg.ca_cert_pem = who.ca_cert_pem().map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(id) = a.agent_id {
                cfg.proxy.agent_id = id;
            }
            if cfg.proxy.handover_socket.is_none() {
                cfg.proxy.handover_socket =
                    Some(vpcep_proxy::handover::default_path(&cfg.proxy.agent_id));
            }
            // The recorder must exist before the data plane takes its metric handles.
            let stop = tokio_util::sync::CancellationToken::new();
            let metrics = match &a.metrics_listen {
                Some(addr) => {
                    let _ = server::metrics_handle();
                    let listener = tokio::net::TcpListener::bind(addr)
                        .await
                        .with_context(|| format!("cannot listen on --metrics-listen {addr}"))?;
                    let stopped = stop.clone();
                    Some(tokio::spawn(server::serve_metrics(listener, async move {
                        stopped.cancelled().await
                    })))
                }
                None => None,
            };
            let result = vpcep_proxy::run_agent(cfg, shutdown_signal()).await;
            stop.cancel();
            if let Some(m) = metrics {
                let _ = m.await;
            }
            result?;
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{default_max_connections, Cli};

    #[test]
    fn the_command_line_is_well_formed() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn serve_help_lists_server_flags_only() {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let serve = cmd.find_subcommand_mut("serve").unwrap();
        let help = serve.render_long_help().to_string();
        for client in [
            "--endpoint",
            "--access-key",
            "--profile",
            "--account-file",
            "--output",
        ] {
            assert!(!help.contains(client), "serve --help lists {client}");
        }
        assert!(help.contains("--accounts"));
    }

    #[test]
    fn every_flag_and_command_has_a_help_text() {
        fn walk(cmd: &clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name());
            assert!(
                cmd.get_about().is_some() || path == " vpcep",
                "{path} has no about"
            );
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                assert!(
                    arg.get_help().is_some() || matches!(id, "help" | "version"),
                    "{path} {id} has no help text"
                );
            }
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                walk(sub, &path);
            }
        }
        let mut cmd = <Cli as clap::CommandFactory>::command();
        cmd.build();
        walk(&cmd, "");
    }

    #[test]
    fn default_max_connections_stays_below_the_open_file_limit() {
        assert_eq!(default_max_connections(1024, false), 896);
        assert_eq!(default_max_connections(1024, true), 256);
        assert_eq!(default_max_connections(20_000, false), 16_384);
        assert_eq!(default_max_connections(u64::MAX, false), 16_384);
        assert_eq!(default_max_connections(64, false), 32);
    }
}
