//! Private DNS for VPC endpoints: an authoritative server for the zone
//! `vpcep.<region>.internal.` answering each `dns_names` entry of accepted interface endpoints
//! with `enable_dns` (A for `ip`, AAAA for `ipv6_address`), plus the zone's SOA and NS.
//!
//! - The records come from the store (the same rows every control-plane node reads): a
//!   fingerprint of the endpoints table is polled every [`DnsOptions::poll_every`], and the
//!   zone is rebuilt whole and swapped in when it moves, so accept, reject and delete show
//!   within a second on every node.
//! - Names outside the zone are forwarded to `--dns-upstream` when given, else REFUSED.
//! - Split horizon: with the in-process data plane, a resolver inside each VPC network
//!   namespace (on [`DnsOptions::vpc_listen`], default `127.0.0.53:53`) answers only the
//!   endpoints of VPCs in that namespace.
//! - DNS parsing and encoding are hickory's (`hickory-server`); nothing here parses messages
//!   (TCP framing, a 2-byte length, is `tcp.rs`'s: our accept loop caps open connections).
//!
//! # Layout
//! - [`zone`]: the endpoint zone in memory, built whole from the store's records.
//! - `handler`: answers one request (authoritative inside the zone, forwarded or REFUSED outside).
//! - `udp`: the UDP receive loops (`recvmmsg`/`sendmmsg`, one thread per socket).
//! - `tcp`: DNS over TCP with a capped accept loop.
//! - [`metrics`]: query counters by type and response code.
//! - here: [`DnsOptions`] and the server that ties them together.

mod handler;
pub mod metrics;
mod tcp;
mod udp;
pub mod zone;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::Resolver;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vpcep_proxy::netns::NetnsPool;
use vpcep_store::{DnsRecords, SqlStore};

use crate::handler::Handler;
use crate::metrics::QueryMetrics;
pub use crate::zone::{zone_name, Scope, Zone};

/// Default address of the resolver inside each VPC's network namespace (`--dns-vpc-listen`):
/// a loopback address of the namespace itself, which no endpoint may take (the data plane
/// never listens on loopback in a namespace) and no other VPC can reach.
pub const DEFAULT_VPC_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)), 53);

/// Default [`DnsOptions::tcp_max_connections`].
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 256;

/// Settings of the DNS server (`vpcep serve --dns-listen ...`).
#[derive(Debug, Clone)]
pub struct DnsOptions {
    /// `--dns-listen`: UDP and TCP on this address (port 0: any free port, the same for both).
    pub listen: SocketAddr,
    /// `--dns-upstream`: where names outside the zone go; `None`: REFUSED.
    pub upstream: Option<SocketAddr>,
    /// Where each VPC namespace's resolver listens (`None`: no split-horizon resolvers).
    pub vpc_listen: Option<SocketAddr>,
    /// A TCP connection that sends no query for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// Most DNS TCP connections open at once (per listener); more are closed at once.
    pub tcp_max_connections: usize,
    /// How often the store is asked whether endpoints changed.
    pub poll_every: Duration,
}

impl DnsOptions {
    /// Options for `listen` with the defaults.
    pub fn new(listen: SocketAddr) -> Self {
        DnsOptions {
            listen,
            upstream: None,
            vpc_listen: None,
            tcp_idle_timeout: Duration::from_secs(10),
            tcp_max_connections: DEFAULT_TCP_MAX_CONNECTIONS,
            poll_every: Duration::from_millis(200),
        }
    }
}

/// A running DNS server.
pub struct DnsServer {
    /// The address it answers on (UDP and TCP).
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl DnsServer {
    /// Waits until the server stopped (after the cancellation token given to [`start`]).
    pub async fn stopped(self) {
        let _ = self.task.await;
    }
}

/// Even with nothing changing, the zone is rebuilt this often (and namespaces whose resolver
/// could not start are tried again).
const FULL_REFRESH: Duration = Duration::from_secs(10);

/// Reads the records, binds `opts.listen` (UDP and TCP) and answers until `cancel`. Fails only
/// when the address cannot be bound; a store that does not answer yet leaves the zone empty
/// until it does.
pub async fn start(
    store: Arc<SqlStore>,
    region: &str,
    opts: DnsOptions,
    cancel: CancellationToken,
) -> anyhow::Result<DnsServer> {
    let origin = zone_name(region);
    let records = match store.dns_records().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "private DNS: cannot read the endpoints yet; the zone starts empty");
            DnsRecords::default()
        }
    };
    let zone = Arc::new(ArcSwap::from_pointee(
        Zone::build(&origin, &records, serial()).map_err(anyhow::Error::msg)?,
    ));
    let upstream = opts.upstream.map(|u| Arc::new(forwarder(u)));
    let metrics = Arc::new(QueryMetrics::new());
    let (udp, tcp) = bind_pair(opts.listen)?;
    let addr = udp[0].local_addr()?;
    let handler = Arc::new(Handler {
        zone: zone.clone(),
        scope: Scope::All,
        addr: addr.ip(),
        upstream: upstream.clone(),
        metrics: metrics.clone(),
    });
    tcp::spawn(
        tokio::net::TcpListener::from_std(tcp)?,
        handler.clone(),
        opts.tcp_idle_timeout,
        opts.tcp_max_connections,
        cancel.clone(),
    );
    for s in udp {
        udp::spawn(
            s,
            handler.clone(),
            cancel.clone(),
            tokio::runtime::Handle::current(),
        )?;
    }
    tracing::info!(%addr, zone = %origin, upstream = ?opts.upstream, names = zone.load().view(&Scope::All).len(), "private DNS listening (UDP and TCP)");
    let split = opts.vpc_listen.map(|listen| SplitHorizon {
        listen,
        zone: zone.clone(),
        upstream: upstream.clone(),
        metrics: metrics.clone(),
        idle: opts.tcp_idle_timeout,
        tcp_max: opts.tcp_max_connections,
        pool: NetnsPool::new(),
        running: HashMap::new(),
        failed: HashMap::new(),
        cancel: cancel.clone(),
    });
    let task = tokio::spawn(async move {
        let refresher = refresh(
            store,
            origin,
            zone,
            records,
            split,
            opts.poll_every,
            cancel.clone(),
        );
        tokio::select! {
            _ = refresher => {}
            _ = cancel.cancelled() => {}
        }
    });
    Ok(DnsServer { addr, task })
}

/// A forwarding resolver to `upstream` (cached; names are asked fully qualified).
fn forwarder(upstream: SocketAddr) -> Resolver<TokioConnectionProvider> {
    let config = ResolverConfig::from_parts(
        None,
        vec![],
        NameServerConfigGroup::from_ips_clear(&[upstream.ip()], upstream.port(), true),
    );
    let mut o = ResolverOpts::default();
    o.ndots = 0;
    o.attempts = 2;
    o.timeout = Duration::from_secs(2);
    o.preserve_intermediates = true;
    o.recursion_desired = true;
    o.cache_size = 4096;
    o.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    Resolver::builder_with_config(config, TokioConnectionProvider::default())
        .with_options(o)
        .build()
}

/// SOA serial: seconds since the epoch (grows with each rebuild on every node alike).
fn serial() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(1)
}

/// One UDP socket per core (SO_REUSEPORT: the kernel spreads queries over them) and one TCP
/// listener, all on the same address. SO_REUSEPORT also lets a successor process bind while
/// this one still runs (restarts refuse no query).
fn bind_pair(listen: SocketAddr) -> io::Result<(Vec<std::net::UdpSocket>, std::net::TcpListener)> {
    let first = udp_socket(listen)?;
    let addr = first.local_addr()?;
    let tcp = tcp_listener(addr)?;
    let mut udp = vec![first];
    let extra = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        - 1;
    for _ in 0..extra {
        udp.push(udp_socket(addr)?);
    }
    Ok((udp, tcp))
}

fn udp_socket(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Keeps the zone in step with the store until the task is dropped.
async fn refresh(
    store: Arc<SqlStore>,
    origin: String,
    zone: Arc<ArcSwap<Zone>>,
    records: DnsRecords,
    mut split: Option<SplitHorizon>,
    poll_every: Duration,
    cancel: CancellationToken,
) {
    let mut last = None;
    let mut built = Instant::now();
    if let Some(s) = split.as_mut() {
        s.sync(&records.namespaces).await;
    }
    let mut namespaces = records.namespaces;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll_every) => {}
            _ = cancel.cancelled() => return,
        }
        let fp = match store.dns_fingerprint().await {
            Ok(fp) => Some(fp),
            Err(e) => {
                tracing::debug!(error = %e, "private DNS: cannot poll the store");
                continue;
            }
        };
        if fp == last && built.elapsed() < FULL_REFRESH {
            continue;
        }
        match store.dns_records().await {
            Ok(records) => match Zone::build(&origin, &records, serial()) {
                Ok(z) => {
                    let names = z.view(&Scope::All).len();
                    zone.store(Arc::new(z));
                    ::metrics::gauge!("vpcep_dns_names").set(names as f64);
                    last = fp;
                    built = Instant::now();
                    namespaces = records.namespaces;
                }
                Err(e) => tracing::error!(error = %e, "private DNS: cannot build the zone"),
            },
            Err(e) => tracing::warn!(error = %e, "private DNS: cannot read the endpoints"),
        }
        if let Some(s) = split.as_mut() {
            s.sync(&namespaces).await;
        }
    }
}

/// The resolvers inside VPC network namespaces.
struct SplitHorizon {
    listen: SocketAddr,
    zone: Arc<ArcSwap<Zone>>,
    upstream: Option<Arc<Resolver<TokioConnectionProvider>>>,
    metrics: Arc<QueryMetrics>,
    idle: Duration,
    tcp_max: usize,
    pool: NetnsPool,
    running: HashMap<String, CancellationToken>,
    failed: HashMap<String, Instant>,
    cancel: CancellationToken,
}

impl SplitHorizon {
    /// Starts a resolver in each namespace that has none (a failed one is retried after
    /// [`FULL_REFRESH`]) and stops those of namespaces no VPC lives in any more.
    async fn sync(&mut self, namespaces: &[String]) {
        self.running.retain(|ns, token| {
            let keep = namespaces.contains(ns);
            if !keep {
                token.cancel();
            }
            keep
        });
        for ns in namespaces {
            if self.running.contains_key(ns)
                || self
                    .failed
                    .get(ns)
                    .is_some_and(|t| t.elapsed() < FULL_REFRESH)
            {
                continue;
            }
            match self.start_in(ns).await {
                Ok(token) => {
                    tracing::info!(netns = %ns, addr = %self.listen, "private DNS: VPC resolver listening");
                    self.failed.remove(ns);
                    self.running.insert(ns.clone(), token);
                }
                Err(e) => {
                    tracing::warn!(netns = %ns, addr = %self.listen, error = %e, "private DNS: cannot start the VPC resolver");
                    self.failed.insert(ns.clone(), Instant::now());
                }
            }
        }
    }

    async fn start_in(&self, ns: &str) -> io::Result<CancellationToken> {
        let listen = self.listen;
        let (udp, tcp) = self
            .pool
            .run_in(ns, move || {
                let udp = udp_socket(listen)?;
                let tcp = tcp_listener(udp.local_addr()?)?;
                Ok((udp, tcp))
            })
            .await?;
        let handler = Arc::new(Handler {
            zone: self.zone.clone(),
            scope: Scope::Netns(ns.to_string()),
            addr: listen.ip(),
            upstream: self.upstream.clone(),
            metrics: self.metrics.clone(),
        });
        let token = self.cancel.child_token();
        tcp::spawn(
            tokio::net::TcpListener::from_std(tcp)?,
            handler.clone(),
            self.idle,
            self.tcp_max,
            token.clone(),
        );
        udp::spawn(
            udp,
            handler,
            token.clone(),
            tokio::runtime::Handle::current(),
        )?;
        Ok(token)
    }
}
