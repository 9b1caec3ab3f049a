//! `vpcep`: the control plane (`serve`) and, in later subcommands, the agent and client.

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
    /// Log format: `text` or `json`.
    #[arg(long, env = "VPCEP_LOG_FORMAT", default_value = "text", global = true)]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (the VPCEP and VPC APIs).
    Serve(ServeArgs),
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
    /// Accounts file (TOML). Without it, a default account is created on first start.
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
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VPCEP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing(&cli.log_format);
    match cli.command {
        Command::Serve(a) => {
            let cfg = ServeConfig {
                database: a.database,
                region: a.region,
                accounts: a.accounts,
                provisioning_delay: a.provisioning_delay,
                inventory: a.inventory,
                rate_limit: a.rate_limit,
            };
            let listener = tokio::net::TcpListener::bind(&a.listen).await?;
            server::run(cfg, listener, shutdown_signal()).await
        }
    }
}
