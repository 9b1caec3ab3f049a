//! Runs the vpcep data plane in process with one endpoint, for bench/dataplane/run.sh.
//!
//! `dataplane-bench-agent LISTEN_ADDR BACKEND_ADDR TCP_PROXY COPY_MODE [BYTES]`
//! (COPY_MODE: `splice`, `userspace`, or `kernel`: the nftables fast path, which needs
//! TCP_PROXY `close`, root and `nft`, and fails if the endpoint does not take it; BYTES: pipe
//! size for splice, buffer size for userspace). Prints `ready` once listening; stops on
//! SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::time::Duration;

use vpcep_proxy::{
    CopyMode, DataPlane, EndpointSpec, KernelPathMode, PortPair, ProxyOptions, Snapshot,
};

/// The allocator the `vpcep` binary runs the data plane with.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err(
            "usage: dataplane-bench-agent LISTEN BACKEND TCP_PROXY splice|userspace|kernel [BYTES]"
                .into(),
        );
    }
    let listen: SocketAddr = args[0].parse()?;
    let backend: SocketAddr = args[1].parse()?;
    let kernel = args[3] == "kernel";
    let copy_mode = match args[3].as_str() {
        "splice" | "kernel" => CopyMode::Splice,
        "userspace" => CopyMode::Userspace,
        other => return Err(format!("unknown copy mode {other}").into()),
    };
    let bytes: Option<usize> = args.get(4).map(|s| s.parse()).transpose()?;
    let defaults = ProxyOptions::default();
    vpcep_proxy::raise_nofile_limit()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let dp = DataPlane::start(ProxyOptions {
            copy_mode,
            pipe_bytes: bytes.or(defaults.pipe_bytes),
            buffer_bytes: bytes.unwrap_or(defaults.buffer_bytes),
            drain_timeout: Duration::from_secs(1),
            // The backend is on loopback (not the host's own 127.0.0.1: see run.sh).
            dataplane_cidrs: vec!["127.0.0.0/8".parse()?],
            kernel_path: if kernel {
                KernelPathMode::Auto
            } else {
                KernelPathMode::Off
            },
            ..ProxyOptions::default()
        });
        dp.push(Snapshot {
            version: 1,
            endpoints: vec![EndpointSpec {
                endpoint_id: "bench-endpoint".into(),
                marker_id: 1,
                service_id: "bench-service".into(),
                ip: listen.ip().to_string(),
                listen_netns: None,
                backend_ip: backend.ip().to_string(),
                backend_netns: None,
                ports: vec![PortPair {
                    client_port: listen.port(),
                    server_port: backend.port(),
                }],
                tcp_proxy: args[2].clone(),
                vni: 0,
                whitelist_enabled: false,
                whitelist: vec![],
                refused: None,
            }],
            report_every_ms: None,
        });
        let report = dp.applied(1).await.ok_or("data plane stopped")?;
        if !report.endpoints[0].ok {
            return Err(format!("endpoint failed: {:?}", report.endpoints[0].error).into());
        }
        let on_kernel = dp
            .stats()
            .get("bench-endpoint")
            .is_some_and(|s| s.kernel_path);
        if kernel && !on_kernel {
            return Err(
                "the endpoint did not take the kernel path (root, nft, tcp_proxy close?)".into(),
            );
        }
        println!("ready");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        dp.shutdown().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
