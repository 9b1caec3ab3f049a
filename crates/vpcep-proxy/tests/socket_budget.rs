//! A listener's extra sockets (one per accept thread beyond the first) come out of a budget of
//! a quarter of the open-file limit: however many endpoints there are (a tenant can create as
//! many as its quota allows), their listeners leave most descriptors to connections.
//! Its own test binary: it lowers the process's open-file limit before the data plane starts.

mod support;

use std::net::SocketAddr;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use support::*;
use vpcep_proxy::DataPlane;

const ENDPOINT_IP: &str = "127.0.0.2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_listening_sockets_stay_within_a_quarter_of_the_open_file_limit() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let limit = limit_leaving(300);
    setrlimit(Resource::RLIMIT_NOFILE, limit, hard).unwrap();
    let budget = (limit / 4) as usize;

    // 16 endpoints at 8 threads would hold 112 extra sockets; the budget is about 80.
    let dp = DataPlane::start(with_threads(8));
    let eps: Vec<SocketAddr> = (0..16)
        .map(|_| {
            let port = free_port(ENDPOINT_IP);
            format!("{ENDPOINT_IP}:{port}").parse().unwrap()
        })
        .collect();
    let specs = eps
        .iter()
        .enumerate()
        .map(|(i, ep)| spec(&format!("ep-{i}"), ENDPOINT_IP, ep.port(), backend.addr))
        .collect();
    dp.push(snapshot(1, specs));
    let report = applied(&dp, 1).await;
    assert!(report.endpoints.iter().all(|e| e.ok), "{report:?}");
    assert!(budget < 16 * 7, "the budget ({budget}) binds in this test");

    let per_endpoint: Vec<usize> = eps.iter().map(|&ep| listening_sockets(ep)).collect();
    let extra: usize = per_endpoint.iter().map(|n| n - 1).sum();
    assert!(
        per_endpoint.iter().all(|&n| (1..=8).contains(&n)),
        "{per_endpoint:?}"
    );
    assert_eq!(
        extra, budget,
        "extra sockets up to the budget: {per_endpoint:?}"
    );
    for &ep in &eps {
        all_served(ep, 5).await;
    }

    // Closing listeners gives their share back: a new endpoint gets all its sockets again.
    dp.push(snapshot(2, Vec::new()));
    applied(&dp, 2).await;
    let port = free_port(ENDPOINT_IP);
    dp.push(snapshot(
        3,
        vec![spec("ep-new", ENDPOINT_IP, port, backend.addr)],
    ));
    assert!(applied(&dp, 3).await.endpoints[0].ok);
    let ep: SocketAddr = format!("{ENDPOINT_IP}:{port}").parse().unwrap();
    assert_eq!(listening_sockets(ep), 8);
    dp.shutdown().await;
}
