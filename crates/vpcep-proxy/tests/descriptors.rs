//! A listener's extra sockets (one per accept thread) are an optimization: with the process
//! short of descriptors, a listener starts with the sockets it could get and serves with them.
//! Its own test binary: it lowers the process's open-file limit.

mod support;

use std::net::SocketAddr;

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use support::*;
use vpcep_proxy::DataPlane;

const ENDPOINT_IP: &str = "127.0.0.2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_short_of_descriptors_starts_with_the_sockets_it_gets() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port(ENDPOINT_IP);
    let ep: SocketAddr = format!("{ENDPOINT_IP}:{port}").parse().unwrap();
    let dp = DataPlane::start(with_threads(8));
    // Let the data plane's threads and runtimes settle before counting descriptors.
    dp.push(snapshot(1, vec![]));
    applied(&dp, 1).await;

    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, limit_leaving(4), hard).unwrap();
    dp.push(snapshot(
        2,
        vec![spec("ep-1", ENDPOINT_IP, port, backend.addr)],
    ));
    let report = applied(&dp, 2).await;
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();

    assert!(report.endpoints[0].ok, "{report:?}");
    // Four descriptors were left: the listener took what it could (less a descriptor or two
    // something else may have opened meanwhile), and no more.
    let sockets = listening_sockets(ep);
    assert!(
        (2..=4).contains(&sockets),
        "{sockets} of eight sockets in the descriptors left"
    );
    all_served(ep, 100).await;
    dp.shutdown().await;
    assert_eq!(listening_sockets(ep), 0);
}
