//! `vpcep-bench resilience`: the data plane through restarts, node loss and outages, for two
//! `vpcep` binaries side by side (before and after a change), each scenario run once:
//!
//! - **planned restart of the agent under load**: long-lived connections exchanging a message
//!   at a fixed pace and a probe opening a new connection at a fixed pace through one
//!   endpoint, while the agent is replaced: SIGTERM then a new agent at once; SIGTERM, wait
//!   for the old agent to exit, then a new one (`systemctl restart`); and, for a binary that
//!   can, a new agent started beside the running one (takeover). Counted: refused and failed
//!   new connections, the longest time new connections failed, long-lived connections
//!   dropped, how soon the old agent exited (the long-lived connections are closed by their
//!   clients `--hold` after the restart; both versions drain open connections for 30 s), and
//!   whether the new agent still ran at the end.
//! - **node loss**: two `serve --require-agent` nodes on one PostgreSQL schema, the agent
//!   given both URLs (a binary that takes one URL gets the first); the node it follows is
//!   SIGKILLed and an endpoint is created through the other one.
//! - **outage**: one `serve --require-agent` node on SQLite is SIGKILLed, started again on the
//!   same database and address after N s, and an endpoint is created through it as soon as it
//!   answers `/health`.
//!
//!   For node loss and outages: the time from the create call to the first echo through the
//!   new endpoint and to its status `accepted`.
//!
//! The restarts run one after the other, alone. Node loss and outages mostly wait (for the
//! outage to end, for an agent's retry), so they all run side by side, each with its own
//! processes, database and addresses, their events staggered so that no two start together.

mod cluster;
mod traffic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use cluster::{Change, Cluster, Version};
use traffic::{LongLived, Probe, ProbeFigures};

use crate::spawn::{Db, Fresh};

/// `vpcep-bench resilience` options.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `vpcep` binary before the change (bench/resilience.sh builds it from 3907ce7).
    #[arg(long)]
    before_bin: PathBuf,
    /// The `vpcep` binary after the change.
    #[arg(long)]
    after_bin: PathBuf,
    /// PostgreSQL for the node-loss scenario (a fresh schema, dropped after); skipped when
    /// unreachable.
    #[arg(
        long,
        env = "VPCEP_TEST_POSTGRES_URL",
        default_value = crate::spawn::DEFAULT_POSTGRES_URL
    )]
    postgres_url: String,
    /// Outages of the control plane to measure, in seconds.
    #[arg(long, value_delimiter = ',', default_value = "10,45,90")]
    outages: Vec<u64>,
    /// Long-lived connections held through a restart.
    #[arg(long, default_value_t = 20)]
    long_lived: usize,
    /// How often each long-lived connection exchanges a message.
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    message_every: Duration,
    /// How often the probe opens a new connection.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    probe_every: Duration,
    /// How long after a restart the clients of the long-lived connections close them.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// How long to wait for a change to be served (longer shows as "> give-up").
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    give_up: Duration,
    /// Keep the logs and databases of the child processes in this directory (default: a
    /// temporary directory, removed at the end).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// `VPCEP_LOG` of the child processes.
    #[arg(long, default_value = "info")]
    server_log: String,
}

/// How the agent is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    /// SIGTERM to the running agent, then a new one at once.
    StopThenStart,
    /// SIGTERM, wait for the running agent to exit, then a new one (`systemctl restart`).
    StopWaitStart,
    /// A new agent beside the running one (same id and handover socket).
    Takeover,
}

impl Restart {
    fn slug(self) -> &'static str {
        match self {
            Restart::StopThenStart => "stop-start",
            Restart::StopWaitStart => "stop-wait-start",
            Restart::Takeover => "takeover",
        }
    }
}

/// What a planned restart did to the traffic.
#[derive(Debug, Clone)]
struct RestartFigures {
    probe: ProbeFigures,
    dropped: usize,
    drop_reason: Option<String>,
    /// From the restart to the old agent's exit (`None`: still running after the cap).
    old_exited: Option<Duration>,
    /// `None` while the new agent runs at the end; else how it ended, with its log's error.
    new_failed: Option<String>,
}

/// Time from the warm-up to the restart, during which the traffic runs undisturbed.
const WARM: Duration = Duration::from_secs(2);
/// How long the probe goes on after the old agent exited.
const AFTER: Duration = Duration::from_secs(2);
/// How long the old agent may take to exit after a restart before it counts as "still
/// running".
const EXIT_CAP: Duration = Duration::from_secs(45);

async fn planned_restart(
    v: &Version,
    how: Restart,
    root: &Path,
    block: u8,
    args: &Args,
) -> anyhow::Result<RestartFigures> {
    if how == Restart::Takeover && !v.resilient {
        bail!("{} cannot take sockets over", v.bin.display());
    }
    let name = format!("restart-{}-{}", v.label, how.slug());
    let mut c = Cluster::new(v, root, &name, None, block, &args.server_log)?;
    let node = c.start_node().await?;
    let mut old = c.agent("agent-old", &[node])?;
    let api = c.api(node)?;
    let published = c.publish(&api).await?;
    let dst = c.serving_endpoint(&api, &published, 10).await?;
    let long = LongLived::open(args.long_lived, c.client_ip(), dst, args.message_every).await?;
    let probe = Probe::start(c.client_ip(), dst, args.probe_every);
    tokio::time::sleep(WARM).await;

    let restart = Instant::now();
    if how != Restart::Takeover {
        old.terminate();
    }
    let mut new = match how {
        Restart::StopWaitStart => None,
        _ => Some(c.agent("agent-new", &[node])?),
    };
    tokio::time::sleep_until((restart + args.hold).into()).await;
    let (dropped, drop_reason) = long.close().await?;
    let cap = EXIT_CAP.saturating_sub(restart.elapsed());
    let old_exited = old.exited_within(cap).await.map(|_| restart.elapsed());
    let mut new = match new.take() {
        Some(n) => n,
        None => c.agent("agent-new", &[node])?,
    };
    // New connections go on a while after the old agent is gone.
    tokio::time::sleep(AFTER).await;
    let probe = probe.finish().await?;
    let new_failed = new.check_running().err().map(|e| {
        let text = format!("{e:#}");
        let error = text.lines().find(|l| l.starts_with("Error")).unwrap_or("");
        format!("{} {error}", text.lines().next().unwrap_or(""))
    });
    Ok(RestartFigures {
        probe,
        dropped,
        drop_reason,
        old_exited,
        new_failed,
    })
}

/// A setup ready for a node-loss or outage event.
struct Prepared {
    cluster: Cluster,
    _agent: crate::spawn::Proc,
    published: cluster::Published,
    /// The node the agent follows (killed by the event).
    followed: usize,
    /// The node the change is made through afterwards.
    survivor: usize,
}

/// `nodes` nodes on `database`, an agent following all of them, a published service and an
/// endpoint carrying traffic.
async fn prepare(
    v: &Version,
    root: &Path,
    name: &str,
    database: Option<String>,
    nodes: usize,
    block: u8,
    args: &Args,
) -> anyhow::Result<Prepared> {
    let mut c = Cluster::new(v, root, name, database, block, &args.server_log)?;
    let mut ids = Vec::new();
    for _ in 0..nodes {
        ids.push(c.start_node().await?);
    }
    let agent = c.agent("agent", &ids)?;
    let api = c.api(ids[0])?;
    let published = c.publish(&api).await?;
    c.serving_endpoint(&api, &published, 10).await?;
    Ok(Prepared {
        cluster: c,
        _agent: agent,
        published,
        followed: ids[0],
        survivor: *ids.last().context("no node")?,
    })
}

/// At `at`: SIGKILL the followed node, wait `outage` (then start it again, when it is also the
/// survivor), and measure a change made through the survivor.
async fn node_event(
    mut p: Prepared,
    at: Instant,
    outage: Option<Duration>,
    give_up: Duration,
) -> anyhow::Result<Change> {
    tokio::time::sleep_until(at.into()).await;
    p.cluster.kill_node(p.followed).await;
    if let Some(outage) = outage {
        tokio::time::sleep(outage).await;
        p.cluster.restart_node(p.followed).await?;
    }
    let api = p.cluster.api(p.survivor)?;
    Ok(p.cluster
        .measure_change(&api, &p.published, 11, give_up)
        .await)
}

/// Whether PostgreSQL answers at `url`.
async fn postgres_reachable(url: &str) -> bool {
    use sqlx::Connection as _;
    matches!(
        tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url)).await,
        Ok(Ok(_))
    )
}

/// When each version's events start in the side-by-side phase (from its start): node loss
/// first, then the outages (whose restarts follow N s later).
fn schedule(version: usize) -> (Duration, Duration) {
    let node_loss = Duration::from_secs(2 * version as u64);
    let outage = Duration::from_secs(5 + 3 * version as u64);
    (node_loss, outage)
}

/// Everything measured, by (version, scenario).
#[derive(Default)]
struct Results {
    restarts: BTreeMap<(&'static str, &'static str), Result<RestartFigures, String>>,
    changes: BTreeMap<(&'static str, String), Result<Change, String>>,
    postgres: bool,
}

/// Runs every scenario and prints the table.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let versions = [
        Version::detect("before", &args.before_bin)?,
        Version::detect("after", &args.after_bin)?,
    ];
    let temp;
    let root = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    let mut results = Results::default();
    let mut block = 0u8;
    let mut next_block = || {
        block += 1;
        block - 1
    };

    for v in &versions {
        for how in [
            Restart::StopThenStart,
            Restart::StopWaitStart,
            Restart::Takeover,
        ] {
            if how == Restart::Takeover && !v.resilient {
                continue;
            }
            eprintln!("== planned restart, {}: {}", v.label, how.slug());
            let r = planned_restart(v, how, &root, next_block(), &args).await;
            results
                .restarts
                .insert((v.label, how.slug()), r.map_err(|e| format!("{e:#}")));
        }
    }

    results.postgres = postgres_reachable(&args.postgres_url).await;
    if !results.postgres {
        eprintln!(
            "== PostgreSQL not reachable at {}: no node-loss figures",
            args.postgres_url
        );
    }
    eprintln!(
        "== preparing node loss and outages {:?} s for both versions",
        args.outages
    );
    let mut schemas = Vec::new();
    let mut events = tokio::task::JoinSet::new();
    let mut prepared = Vec::new();
    for v in &versions {
        if results.postgres {
            let fresh = Fresh::new(Db::Postgres, &root, &args.postgres_url).await?;
            let name = format!("node-loss-{}", v.label);
            let p = prepare(
                v,
                &root,
                &name,
                Some(fresh.url.clone()),
                2,
                next_block(),
                &args,
            )
            .await;
            schemas.push(fresh);
            prepared.push((v.label, "node loss".to_string(), None, p));
        }
        for &secs in &args.outages {
            let name = format!("outage-{secs}s-{}", v.label);
            let p = prepare(v, &root, &name, None, 1, next_block(), &args).await;
            prepared.push((v.label, format!("outage {secs} s"), Some(secs), p));
        }
    }
    let start = Instant::now();
    for (label, scenario, outage, p) in prepared {
        let version = versions.iter().position(|v| v.label == label).unwrap_or(0);
        let (node_loss_at, outage_at) = schedule(version);
        let at = start
            + if outage.is_some() {
                outage_at
            } else {
                node_loss_at
            };
        let give_up = args.give_up;
        events.spawn(async move {
            let change = match p {
                Ok(p) => node_event(p, at, outage.map(Duration::from_secs), give_up).await,
                Err(e) => Err(e),
            };
            (label, scenario, change.map_err(|e| format!("{e:#}")))
        });
    }
    eprintln!(
        "== node loss and outages under way (about {} s)",
        args.outages.iter().max().copied().unwrap_or(0) + 30
    );
    while let Some(done) = events.join_next().await {
        let (label, scenario, change) = done?;
        eprintln!("   {label}, {scenario}: done");
        results.changes.insert((label, scenario), change);
    }
    for s in schemas {
        s.drop_schema().await;
    }
    print_table(&args, &versions, &results);
    Ok(())
}

/// One figure of the table.
enum Fig {
    /// A count.
    Count(usize),
    /// A count out of a total.
    Of(usize, usize),
    /// Milliseconds.
    Ms(f64),
    /// Seconds; `None`: not within `--give-up` (or the exit cap).
    Secs(Option<f64>, f64),
    /// Yes or no (not compared).
    Flag(bool),
    /// Not measured, and why.
    Missing(&'static str),
}

impl Fig {
    /// The number compared, and whether it is only a lower bound.
    fn value(&self) -> Option<(f64, bool)> {
        match *self {
            Fig::Count(n) | Fig::Of(n, _) => Some((n as f64, false)),
            Fig::Ms(ms) => Some((ms, false)),
            Fig::Secs(Some(s), _) => Some((s, false)),
            Fig::Secs(None, cap) => Some((cap, true)),
            Fig::Flag(_) | Fig::Missing(_) => None,
        }
    }

    fn text(&self) -> String {
        match *self {
            Fig::Count(n) => n.to_string(),
            Fig::Of(n, of) => format!("{n} of {of}"),
            Fig::Ms(ms) => format!("{ms:.0} ms"),
            Fig::Secs(Some(s), _) => format!("{s:.2} s"),
            Fig::Secs(None, cap) => format!("> {cap:.0} s"),
            Fig::Flag(yes) => if yes { "yes" } else { "NO" }.to_string(),
            Fig::Missing(why) => why.to_string(),
        }
    }
}

/// `after / before`, with `<`/`>` when a side is only a bound.
fn ratio(before: &Fig, after: &Fig) -> String {
    match (before.value(), after.value()) {
        (Some((0.0, _)), Some((a, _))) => if a == 0.0 { "=" } else { "-" }.into(),
        (Some((b, b_bound)), Some((a, a_bound))) => {
            let prefix = match (b_bound, a_bound) {
                (false, false) => "",
                (true, false) => "< ",
                (false, true) => "> ",
                (true, true) => "~ ",
            };
            let r = three_decimals(a / b);
            if r.starts_with('<') {
                r
            } else {
                format!("{prefix}{r}")
            }
        }
        _ => "-".into(),
    }
}

/// A ratio with three decimals (`< 0.001` below that).
fn three_decimals(x: f64) -> String {
    if x > 0.0 && x < 0.001 {
        "< 0.001".into()
    } else {
        format!("{x:.3}")
    }
}

fn restart_figs(r: Option<&Result<RestartFigures, String>>) -> [Fig; 6] {
    match r {
        Some(Ok(r)) => [
            Fig::Count(r.probe.refused),
            Fig::Of(r.probe.failed, r.probe.tried),
            Fig::Ms(r.probe.longest_gap.as_secs_f64() * 1000.0),
            Fig::Count(r.dropped),
            Fig::Secs(
                r.old_exited.map(|d| d.as_secs_f64()),
                EXIT_CAP.as_secs_f64(),
            ),
            Fig::Flag(r.new_failed.is_none()),
        ],
        Some(Err(_)) => std::array::from_fn(|_| Fig::Missing("error")),
        None => std::array::from_fn(|_| Fig::Missing("n/a")),
    }
}

const RESTART_ROWS: [&str; 6] = [
    "refused new connections",
    "failed new connections",
    "longest time new connections failed",
    "long-lived connections dropped",
    "old agent exited after",
    "new agent running at the end",
];

fn change_figs(c: Option<&Result<Change, String>>, give_up: f64) -> [Fig; 2] {
    match c {
        Some(Ok(c)) => [
            Fig::Secs(c.served.map(|d| d.as_secs_f64()), give_up),
            Fig::Secs(c.accepted.map(|d| d.as_secs_f64()), give_up),
        ],
        Some(Err(_)) => [Fig::Missing("error"), Fig::Missing("error")],
        None => [Fig::Missing("n/a"), Fig::Missing("n/a")],
    }
}

fn print_table(args: &Args, versions: &[Version; 2], r: &Results) {
    let row = |figure: &str, b: &Fig, a: &Fig| {
        println!(
            "  {:<44}{:>14}{:>14}{:>14}",
            figure,
            b.text(),
            a.text(),
            ratio(b, a)
        );
    };
    println!(
        "{:<46}{:>14}{:>14}{:>14}",
        "", "before", "after", "after/before"
    );
    let (before, after) = (versions[0].label, versions[1].label);
    let restart_groups = [
        (
            "as operated (before: SIGTERM, then start; after: start the new agent)",
            (before, Restart::StopThenStart),
            (after, Restart::Takeover),
        ),
        (
            "SIGTERM, then start at once, on both (before: the same run)",
            (before, Restart::StopThenStart),
            (after, Restart::StopThenStart),
        ),
        (
            "SIGTERM, wait for the exit, then start (systemctl restart), on both",
            (before, Restart::StopWaitStart),
            (after, Restart::StopWaitStart),
        ),
    ];
    println!(
        "planned restarts of the agent: {} long-lived connections, each exchanging a message every {:?} and closed by its client {:?} after the restart; a new connection every {:?}",
        args.long_lived, args.message_every, args.hold, args.probe_every
    );
    for (title, (bl, bh), (al, ah)) in restart_groups {
        println!("{title}");
        let b = restart_figs(r.restarts.get(&(bl, bh.slug())));
        let a = restart_figs(r.restarts.get(&(al, ah.slug())));
        for (i, name) in RESTART_ROWS.iter().enumerate() {
            row(name, &b[i], &a[i]);
        }
    }
    let give_up = args.give_up.as_secs_f64();
    let mut scenarios = vec![(
        "node loss".to_string(),
        "a change after losing the followed node (2 nodes, PostgreSQL; before: the agent takes one URL)".to_string(),
    )];
    for s in &args.outages {
        scenarios.push((
            format!("outage {s} s"),
            format!("a change after a {s} s control-plane outage (1 node, SQLite; from the first create call once /health answers)"),
        ));
    }
    for (key, title) in &scenarios {
        println!("{title}");
        let b = change_figs(r.changes.get(&(before, key.clone())), give_up);
        let a = change_figs(r.changes.get(&(after, key.clone())), give_up);
        row("traffic through the new endpoint after", &b[0], &a[0]);
        row("status accepted after", &b[1], &a[1]);
    }

    println!();
    println!("{:<52}{:>20}{:>20}", "target", "before", "after");
    let verdict = |ok: Option<bool>, fig: &Fig| match ok {
        Some(true) => format!("met ({})", fig.text()),
        Some(false) => format!("MISSED ({})", fig.text()),
        None => "-".to_string(),
    };
    let refused = |label: &'static str| {
        let r = r
            .restarts
            .get(&(label, Restart::Takeover.slug()))
            .or_else(|| r.restarts.get(&(label, Restart::StopThenStart.slug())));
        match r {
            Some(Ok(f)) => {
                let fig = Fig::Count(f.probe.refused);
                verdict(Some(f.probe.refused == 0), &fig)
            }
            _ => "-".to_string(),
        }
    };
    println!(
        "{:<52}{:>20}{:>20}",
        "0 refused in a planned restart (as operated)",
        refused(before),
        refused(after)
    );
    for (key, _) in &scenarios {
        let served = |label: &'static str| {
            let [fig, _] = change_figs(r.changes.get(&(label, key.clone())), give_up);
            let ok = match fig {
                Fig::Secs(s, _) => Some(s.is_some_and(|s| s <= 2.0)),
                _ => None,
            };
            verdict(ok, &fig)
        };
        println!(
            "{:<52}{:>20}{:>20}",
            format!("change served within 2 s, {key}"),
            served(before),
            served(after)
        );
    }

    let mut notes = Vec::new();
    for ((label, how), res) in &r.restarts {
        match res {
            Err(e) => notes.push(format!("{label}, restart {how}: {e}")),
            Ok(f) => {
                if let Some(why) = &f.drop_reason {
                    notes.push(format!(
                        "{label}, restart {how}: first dropped connection: {why}"
                    ));
                }
                if let Some(why) = &f.new_failed {
                    notes.push(format!(
                        "{label}, restart {how}: the new agent failed: {why}"
                    ));
                }
            }
        }
    }
    for ((label, scenario), res) in &r.changes {
        match res {
            Err(e) => notes.push(format!("{label}, {scenario}: {e}")),
            Ok(Change { note: Some(n), .. }) => notes.push(format!("{label}, {scenario}: {n}")),
            Ok(_) => {}
        }
    }
    if !r.postgres {
        notes.push(format!(
            "node loss not measured: PostgreSQL unreachable at {}",
            args.postgres_url
        ));
    }
    if !notes.is_empty() {
        println!();
        for n in notes {
            println!("note: {n}");
        }
    }
}
