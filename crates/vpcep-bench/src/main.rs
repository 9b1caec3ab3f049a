//! `vpcep-bench`: a load generator for the vpcep control plane.
//!
//! It signs every request exactly as the SDK does (`vpcep-sign`), keeps `--connections`
//! HTTP/1.1 connections busy (closed loop: a connection sends its next request when the last
//! answer is read), and reports per scenario the rate (req/s) and p50/p99 latency.
//!
//! It either starts the servers itself (`--spawn sqlite|postgres`, `--nodes N`: the release
//! `vpcep` binary over a temporary SQLite file or a fresh PostgreSQL schema; with several
//! nodes, connections are spread over them) or targets running servers (`--url`, repeatable).
//!
//! Scenarios: `health` (no auth), `list-services` (limit 100, on a project seeded with
//! `--seed` services), `show-service` and `update-service` (cycling over those),
//! `create-service` (each request a new service with ports no other request uses, on a backend
//! port made for its connection), `moto-create` (AWS's equivalent create against moto's server,
//! `--moto-url`). `--list-sizes` then grows the listed project (in SQL, see `bulk`) and runs
//! list-services at each size.
//!
//! `vpcep-bench resilience --before-bin OLD --after-bin NEW` measures the data plane through
//! agent restarts, control-plane node loss and outages instead (see `resilience`).
//!
//! # Layout
//! - `load`: the scenarios, the closed-loop load and the figures.
//! - `http`: one keep-alive connection sending signed requests.
//! - `spawn`: `vpcep serve` child processes over SQLite or PostgreSQL.
//! - `bulk`: growing the listed project to 10^5 or 10^6 services in SQL.
//! - `soak`: what anonymous floods cost signed clients (`--soak`).
//! - `resilience`: the data plane through restarts, node loss and outages (`resilience/cluster.rs`:
//!   one measured setup; `resilience/traffic.rs`: traffic through an endpoint).

mod bulk;
mod cpu;
mod http;
mod load;
mod resilience;
mod soak;
mod spawn;

use anyhow::{bail, Context as _};
use clap::Parser;
use load::{Plan, Report, Scenario};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "vpcep-bench",
    version,
    about = "Load generator for the vpcep control plane",
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Start the servers: `sqlite` (a temporary file) or `postgres` (a fresh schema).
    #[arg(long, value_parser = ["sqlite", "postgres"], conflicts_with = "url")]
    spawn: Option<String>,
    /// With --spawn: how many `vpcep serve` nodes share the database (PostgreSQL only for more
    /// than one).
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// The `vpcep` binary to spawn (default: `vpcep` beside this executable).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// `VPCEP_LOG` of spawned servers (per-request logs at `info` cost throughput).
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// PostgreSQL to make the fresh schema in.
    #[arg(
        long,
        env = "VPCEP_TEST_POSTGRES_URL",
        default_value = spawn::DEFAULT_POSTGRES_URL
    )]
    postgres_url: String,
    /// Running servers to target (`http://IP:PORT`), instead of --spawn.
    #[arg(long)]
    url: Vec<String>,
    /// Access key (default: the one in the accounts file --write-accounts gives).
    #[arg(long, default_value = spawn::ACCESS_KEY)]
    access_key: String,
    /// Secret key.
    #[arg(long, default_value = spawn::SECRET_KEY)]
    secret_key: String,
    /// Project the creates go to.
    #[arg(long, default_value = spawn::CREATE_PROJECT)]
    project_id: String,
    /// Project seeded for list-services and show-service (its own, so creates do not change it).
    #[arg(long, default_value = spawn::SEED_PROJECT)]
    seed_project_id: String,
    /// Prints the accounts file the tool uses and exits (to start a server by hand).
    #[arg(long)]
    write_accounts: bool,
    /// Scenarios, comma separated, run in the order health, list, show, create.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "health,list-services,show-service,create-service"
    )]
    scenarios: Vec<String>,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Requests per second each connection sends (paced, open loop); 0: the next request as
    /// soon as the last answer is read (closed loop).
    #[arg(long, default_value_t = 0.0)]
    rate_per_connection: f64,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured seconds before each scenario.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Services seeded for list-services and show-service.
    #[arg(long, default_value_t = 200)]
    seed: usize,
    /// After the scenarios: grow the listed project to each of these sizes and run
    /// list-services at each (with --spawn sqlite: the server is stopped while its SQLite file
    /// grows, since a running server holds it exclusively).
    #[arg(long, value_delimiter = ',')]
    list_sizes: Vec<u64>,
    /// moto's server (`moto_server -p PORT`) for the moto-create scenario.
    #[arg(long)]
    moto_url: Option<String>,
    /// The network load balancer ARN moto's creates publish (made beforehand in moto).
    #[arg(long, requires = "moto_url")]
    moto_lb_arn: Option<String>,
    /// Name of this configuration in the report.
    #[arg(long, default_value = "")]
    label: String,
    /// One JSON object per scenario instead of the table.
    #[arg(long)]
    json: bool,
    /// Soak: measure show-service quiet, then again while anonymous floods run (--soak-idle
    /// connections that send nothing, --soak-slow that trickle a head, --soak-bodies unsigned
    /// 1 MiB bodies), and report both p99s and the server's peak memory.
    #[arg(long)]
    soak: bool,
    /// Soak: connections that never send a byte.
    #[arg(long, default_value_t = 10_000)]
    soak_idle: usize,
    /// Soak: connections that send a request head one byte per second.
    #[arg(long, default_value_t = 1_000)]
    soak_slow: usize,
    /// Soak: clients sending unsigned 1 MiB - 1 bodies in a loop.
    #[arg(long, default_value_t = 500)]
    soak_bodies: usize,
    /// Soak: seconds the floods run before the measurement starts (past the header timeout,
    /// so the server is already closing and the floods reopening).
    #[arg(long, default_value_t = 12.0)]
    soak_ramp: f64,
    /// Soak with --url: the server's process id, to read its memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Internal: run only the soak's floods against this address until stdin closes.
    #[arg(long, hide = true)]
    soak_flood: Option<std::net::SocketAddr>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// The data plane through agent restarts, node loss and control-plane outages, two `vpcep`
    /// binaries side by side (bench/resilience.sh).
    Resilience(resilience::Args),
}

fn server_bin(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(b) = &args.server_bin {
        return std::fs::canonicalize(b).with_context(|| format!("--server-bin {}", b.display()));
    }
    let me = std::env::current_exe()?;
    let bin = me
        .parent()
        .context("the executable has no directory")?
        .join("vpcep");
    if !bin.exists() {
        bail!(
            "{} not found; build it (cargo build --release -p vpcep) or give --server-bin",
            bin.display()
        );
    }
    Ok(bin)
}

fn print_table(label: &str, reports: &[Report]) {
    println!(
        "{:<16} {:<15} {:>8} {:>5} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>13} {:>12} {:>6}",
        "config",
        "scenario",
        "stored",
        "conns",
        "requests",
        "errors",
        "rate/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "server us/req",
        "bench us/req",
        "idle %"
    );
    for r in reports {
        let cpu =
            |f: fn(&cpu::Usage) -> f64| r.cpu.map(|c| format!("{:.1}", f(&c))).unwrap_or_default();
        println!(
            "{:<16} {:<15} {:>8} {:>5} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>13} {:>12} {:>6}",
            label,
            r.scenario.name(),
            r.stored.map(|n| n.to_string()).unwrap_or_default(),
            r.connections,
            r.requests,
            r.errors,
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            cpu(cpu::Usage::servers_us),
            cpu(|c| c.bench_us),
            r.cpu.map(|c| format!("{:.0}", c.idle_pct)).unwrap_or_default()
        );
    }
}

/// `--soak`: show-service quiet, then under the floods; prints both side by side.
async fn soak(args: &Args, plan: Arc<Plan>, pid: Option<u32>) -> anyhow::Result<Vec<Report>> {
    let floods = soak::Floods {
        idle: args.soak_idle,
        slow: args.soak_slow,
        bodies: args.soak_bodies,
    };
    let rss_before = pid.and_then(soak::rss).unwrap_or(0);
    let quiet = load::run(plan.clone(), Scenario::ShowService, None).await;
    eprintln!(
        "vpcep-bench: soak: starting {} idle, {} slow-header and {} unsigned-body clients; measuring after {} s",
        floods.idle, floods.slow, floods.bodies, args.soak_ramp
    );
    let running = soak::start(plan.targets[0].addr, floods)?;
    let sampling = tokio_util::sync::CancellationToken::new();
    let sampler = pid.map(|pid| tokio::spawn(soak::peak_rss(pid, sampling.clone())));
    tokio::time::sleep(Duration::from_secs_f64(args.soak_ramp)).await;
    let open_at_start = running.counters()["open"].as_u64().unwrap_or(0);
    let attack = load::run(plan.clone(), Scenario::ShowService, None).await;
    sampling.cancel();
    let peak = match sampler {
        Some(s) => s.await.unwrap_or(0),
        None => 0,
    };
    let c = running.counters();
    let get = |k: &str| c[k].as_u64().unwrap_or(0);
    let (open, closed, answered, r401, cerr) = (
        get("open"),
        get("closed_by_server"),
        get("bodies_answered"),
        get("bodies_401"),
        get("connect_errors"),
    );
    running.stop().await;
    for (name, r) in [("quiet", &quiet), ("under attack", &attack)] {
        if let Some(e) = &r.first_error {
            eprintln!("vpcep-bench: soak {name}: {} errors; first: {e}", r.errors);
        }
    }
    if args.json {
        println!("{}", quiet.to_json("soak-quiet"));
        println!("{}", attack.to_json("soak-attack"));
    }
    println!(
        "soak: show-service over {} signed connection(s){}, {} s measured each",
        plan.connections,
        match plan.pace {
            Some(p) => format!(" at {:.0} req/s each", 1.0 / p.as_secs_f64()),
            None => " (closed loop)".into(),
        },
        args.duration
    );
    println!(
        "{:<14} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}",
        "", "requests", "errors", "rate/s", "p50 ms", "p99 ms", "max ms"
    );
    for (name, r) in [("quiet", &quiet), ("under attack", &attack)] {
        println!(
            "{:<14} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2}",
            name, r.requests, r.errors, r.rate, r.p50_ms, r.p99_ms, r.max_ms
        );
    }
    println!(
        "p99 under attack / quiet: {:.2} (target <= 2)",
        attack.p99_ms / quiet.p99_ms.max(1e-9)
    );
    if pid.is_some() {
        println!(
            "server RSS: {:.0} MiB before, {:.0} MiB peak under attack (target < 300 MiB)",
            rss_before as f64 / 1048576.0,
            peak as f64 / 1048576.0
        );
    }
    println!(
        "floods: {open_at_start} idle/slow connections open when measuring began, {open} at the end; \
         {closed} closed by the server; {answered} unsigned bodies answered ({r401} with 401); \
         {cerr} failed connects"
    );
    Ok(vec![quiet, attack])
}

/// What --list-sizes grows: the SQLite database of a spawned server, and that server (stopped
/// while the file grows).
struct Growth<'a> {
    url: String,
    server: &'a mut spawn::Server,
}

async fn bench(
    args: &Args,
    urls: Vec<String>,
    growth: Option<Growth<'_>>,
    pid: Option<u32>,
) -> anyhow::Result<Vec<Report>> {
    let targets = urls
        .iter()
        .map(|u| http::Target::parse(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let creds = http::Creds {
        access_key: args.access_key.clone(),
        secret_key: args.secret_key.clone(),
    };
    let pace = (args.rate_per_connection > 0.0)
        .then(|| Duration::from_secs_f64(1.0 / args.rate_per_connection));
    if args.soak {
        let seed_ids =
            load::seed_services(&targets[0], &creds, &args.seed_project_id, args.seed.max(1))
                .await
                .context("seeding services")?;
        let plan = Arc::new(Plan {
            targets,
            creds,
            create_project: args.project_id.clone(),
            create_backends: Vec::new(),
            seed_project: args.seed_project_id.clone(),
            seed_ids,
            moto: None,
            connections: args.connections.max(1),
            warmup: Duration::from_secs_f64(args.warmup),
            duration: Duration::from_secs_f64(args.duration),
            pace,
        });
        return soak(args, plan, pid).await;
    }
    let mut scenarios = Vec::new();
    for s in &args.scenarios {
        scenarios.push(Scenario::parse(s.trim())?);
    }
    let scenarios: Vec<Scenario> = Scenario::ALL
        .into_iter()
        .filter(|s| scenarios.contains(s))
        .collect();
    let connections = args.connections.max(1);
    let create_backends = if scenarios.contains(&Scenario::CreateService) {
        load::make_backends(&targets[0], &creds, &args.project_id, connections)
            .await
            .context("making the backends of the creates")?
    } else {
        Vec::new()
    };
    if scenarios.contains(&Scenario::MotoCreate) && args.moto_lb_arn.is_none() {
        bail!("moto-create needs --moto-url and --moto-lb-arn");
    }
    let moto = match (&args.moto_url, &args.moto_lb_arn) {
        (Some(url), Some(arn)) => Some((http::Target::parse(url)?, arn.clone())),
        _ => None,
    };
    if !args.list_sizes.is_empty() {
        if growth.is_none() {
            bail!("--list-sizes grows a SQLite database: use --spawn sqlite");
        }
        if args.list_sizes.windows(2).any(|w| w[0] >= w[1]) || args.list_sizes[0] < args.seed as u64
        {
            bail!(
                "--list-sizes must grow, from at least --seed ({})",
                args.seed
            );
        }
    }
    let seed_ids = if scenarios.iter().any(|s| s.needs_seed()) || !args.list_sizes.is_empty() {
        load::seed_services(&targets[0], &creds, &args.seed_project_id, args.seed.max(1))
            .await
            .context("seeding services")?
    } else {
        Vec::new()
    };
    let plan = Arc::new(Plan {
        targets,
        creds,
        create_project: args.project_id.clone(),
        create_backends,
        seed_project: args.seed_project_id.clone(),
        seed_ids,
        moto,
        connections,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
        pace,
    });
    let mut reports = Vec::new();
    let mut report = |r: Report| {
        if let Some(e) = &r.first_error {
            eprintln!(
                "vpcep-bench: {}: {} errors; first: {e}",
                r.scenario.name(),
                r.errors
            );
        }
        if args.json {
            println!("{}", r.to_json(&args.label));
        }
        reports.push(r);
    };
    for s in scenarios {
        let stored = (s == Scenario::ListServices).then_some(plan.seed_ids.len() as u64);
        report(load::run(plan.clone(), s, stored).await);
    }
    if let (Some(Growth { url, server }), Some(&largest)) = (growth, args.list_sizes.last()) {
        let bulk_total = largest - plan.seed_ids.len() as u64;
        let backends = load::make_backends(
            &plan.targets[0],
            &plan.creds,
            &plan.seed_project,
            bulk_total.div_ceil(bulk::PER_BACKEND) as usize,
        )
        .await
        .context("making the backends of the bulk services")?;
        let backends: Vec<String> = backends.into_iter().map(|b| b.port_id).collect();
        let mut stored = plan.seed_ids.len() as u64;
        for &size in &args.list_sizes {
            let started = std::time::Instant::now();
            server
                .restart_around(bulk::grow_sqlite(
                    &url,
                    &plan.seed_project,
                    &plan.seed_ids[0],
                    &backends,
                    stored - plan.seed_ids.len() as u64,
                    size - plan.seed_ids.len() as u64,
                ))
                .await
                .with_context(|| format!("growing the listed project to {size} services"))?;
            eprintln!(
                "vpcep-bench: listed project grown to {size} services in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            stored = size;
            report(load::run(plan.clone(), Scenario::ListServices, Some(size)).await);
        }
    }
    Ok(reports)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Resilience(r)) = args.command {
        return resilience::run(r).await;
    }
    if let Some(addr) = args.soak_flood {
        let floods = soak::Floods {
            idle: args.soak_idle,
            slow: args.soak_slow,
            bodies: args.soak_bodies,
        };
        soak::flood_main(addr, floods).await;
        return Ok(());
    }
    if args.write_accounts {
        print!("{}", spawn::accounts_toml());
        return Ok(());
    }
    let reports = match &args.spawn {
        None => {
            if args.url.is_empty() {
                bail!("give --spawn sqlite|postgres or --url http://IP:PORT");
            }
            bench(&args, args.url.clone(), None, args.server_pid).await?
        }
        Some(kind) => {
            let db = if kind == "sqlite" {
                spawn::Db::Sqlite
            } else {
                spawn::Db::Postgres
            };
            if db == spawn::Db::Sqlite && args.nodes > 1 {
                bail!("SQLite serves one node; use --spawn postgres for several");
            }
            let bin = server_bin(&args)?;
            let dir = tempfile::tempdir()?;
            let accounts = dir.path().join("accounts.toml");
            std::fs::write(&accounts, spawn::accounts_toml())?;
            let fresh = spawn::Fresh::new(db, dir.path(), &args.postgres_url).await?;
            let result = async {
                let mut servers = Vec::new();
                for n in 0..args.nodes.max(1) {
                    servers.push(
                        spawn::Server::start(
                            &bin,
                            &fresh.url,
                            &accounts,
                            dir.path(),
                            &format!("node{n}"),
                            &args.server_log,
                        )
                        .await?,
                    );
                }
                let urls = servers.iter().map(|s| s.url.clone()).collect();
                let pid = servers.first().and_then(|s| s.pid());
                let growth = match (db, servers.first_mut()) {
                    (spawn::Db::Sqlite, Some(server)) => Some(Growth {
                        url: fresh.url.clone(),
                        server,
                    }),
                    _ => None,
                };
                let reports = bench(&args, urls, growth, pid).await;
                for s in servers {
                    s.stop().await;
                }
                reports
            }
            .await;
            fresh.drop_schema().await;
            result?
        }
    };
    if !args.json && !args.soak {
        print_table(&args.label, &reports);
    }
    Ok(())
}
