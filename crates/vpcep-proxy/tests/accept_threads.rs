//! Accept threads and the handover of their sockets: every accept thread has its own listening
//! socket of each listener (`SO_REUSEPORT`), and a successor serves every socket it inherits,
//! however many threads either side runs.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use support::*;
use vpcep_proxy::handover;
use vpcep_proxy::{CopyMode, DataPlane, ListenerKey, ProxyOptions};

const ENDPOINT_IP: &str = "127.0.0.2";

/// The kernel's identity of a socket descriptor (`socket:[inode]`).
fn socket_identity(l: &std::net::TcpListener) -> String {
    use std::os::fd::AsRawFd;
    std::fs::read_link(format!("/proc/self/fd/{}", l.as_raw_fd()))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn handover_path(port: u16) -> PathBuf {
    std::env::temp_dir()
        .join(format!("vpcep-handover-test-{}-{port}", std::process::id()))
        .join("h.sock")
}

/// A data plane with `opts` serving one endpoint (snapshot 1) that forwards to `backend`.
async fn serving(opts: ProxyOptions, backend: SocketAddr) -> (DataPlane, SocketAddr) {
    init_tracing();
    let port = free_port(ENDPOINT_IP);
    let dp = DataPlane::start(opts);
    dp.push(snapshot(1, vec![spec("ep-1", ENDPOINT_IP, port, backend)]));
    assert!(applied(&dp, 1).await.endpoints[0].ok);
    (dp, format!("{ENDPOINT_IP}:{port}").parse().unwrap())
}

/// The peer ended `conn` (EOF or reset) within 5 s, rather than leaving it open.
fn assert_ended(mut conn: std::net::TcpStream) {
    use std::io::Read;
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    match conn.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the connection is still open: {other:?}"),
    }
}

/// A data plane with `threads` accept threads serving one endpoint, offering its sockets at
/// the handover path.
async fn predecessor(threads: usize, backend: &Backend) -> (DataPlane, SocketAddr, PathBuf) {
    let (dp, ep) = serving(with_threads(threads), backend.addr).await;
    let path = handover_path(ep.port());
    let _offered = dp.offer_handover(handover::bind(&path).unwrap(), Vec::new());
    (dp, ep, path)
}

/// Takes the sockets offered at `path` over with a data plane of `threads` threads; the
/// predecessor then retires and shuts down.
async fn take_over(path: PathBuf, threads: usize, old: DataPlane) -> (DataPlane, usize) {
    let inherited = tokio::task::spawn_blocking(move || handover::take_over(&path))
        .await
        .unwrap()
        .unwrap()
        .expect("the predecessor offers its sockets");
    let handed: usize = inherited.listeners.values().map(Vec::len).sum();
    let new = DataPlane::start_inheriting(with_threads(threads), inherited)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), old.retired())
        .await
        .expect("the predecessor retires once the successor serves");
    old.shutdown().await;
    (new, handed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_accept_thread_listens_on_its_own_socket() {
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let (dp, ep, path) = predecessor(3, &backend).await;
    assert_eq!(listening_sockets(ep), 3, "one socket per accept thread");
    all_served(ep, 200).await;

    // The three are distinct sockets (not descriptors of one), and all are offered.
    let inherited = tokio::task::spawn_blocking(move || handover::take_over(&path))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let key = ListenerKey {
        netns: None,
        addr: ep,
    };
    let mut ids: Vec<String> = inherited.listeners[&key]
        .iter()
        .map(socket_identity)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "{ids:?}");
    // Not taken over (no DONE): the predecessor goes on serving.
    drop(inherited);
    all_served(ep, 50).await;
    dp.shutdown().await;
    assert_eq!(listening_sockets(ep), 0, "shutdown closes every socket");
}

/// A successor with fewer threads than its predecessor had sockets serves them all: a socket
/// left unserved would hold the connections the kernel hashes to it, and one closed would
/// reset those in its queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_with_fewer_threads_serves_every_socket_it_inherits() {
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let (old, ep, path) = predecessor(3, &backend).await;
    let (new, handed) = take_over(path, 1, old).await;
    assert_eq!(handed, 3);
    assert_eq!(
        listening_sockets(ep),
        3,
        "the successor keeps all three open"
    );
    all_served(ep, 200).await;
    new.shutdown().await;
    assert_eq!(listening_sockets(ep), 0);
}

/// A successor with more threads than sockets inherited binds more beside them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_successor_with_more_threads_binds_more_sockets_beside_the_inherited_one() {
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let (old, ep, path) = predecessor(1, &backend).await;
    assert_eq!(listening_sockets(ep), 1);
    let (new, handed) = take_over(path, 3, old).await;
    assert_eq!(handed, 1);
    assert_eq!(listening_sockets(ep), 3);
    all_served(ep, 200).await;
    new.shutdown().await;
    assert_eq!(listening_sockets(ep), 0);
}

/// The accept threads outlive the runtime that started the data plane: when that runtime goes
/// away without a shutdown (a test's runtime, a panic), its listeners still close and their
/// connections end.
#[test]
fn listeners_close_when_the_runtime_that_started_them_is_dropped() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (ep, conn) = rt.block_on(async {
        let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
        let (dp, ep) = serving(with_threads(2), backend.addr).await;
        let mut conn = connect_from("127.0.0.9", ep).await.unwrap();
        assert_eq!(roundtrip(&mut conn, b"ping").await.unwrap(), b"ping");
        std::mem::forget(dp);
        (ep, conn.into_std().unwrap())
    });
    assert_eq!(listening_sockets(ep), 2);
    drop(rt);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while listening_sockets(ep) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(listening_sockets(ep), 0, "the listeners closed");
    // The open connection was ended too (EOF or reset, not a hang).
    assert_ended(conn);
}

/// On a one-thread data plane, new connections are served while a client streams into a
/// backend that takes everything at once. (The copy loops also count against tokio's budget, so
/// that a connection whose source never runs dry still yields its thread; on loopback TCP's
/// flow control drains the source often enough that this test passes without that too.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bulk_transfer_does_not_starve_its_accept_thread() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    for mode in [CopyMode::Splice, CopyMode::Userspace] {
        // The backend: the first connection is the bulk one, read and discarded as fast as it
        // comes; later ones are echoed.
        let l = tokio::net::TcpListener::bind((BACKEND_IP, 0))
            .await
            .unwrap();
        let backend = l.local_addr().unwrap();
        let received = std::sync::Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        tokio::spawn(async move {
            let (mut sink, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 20];
                while let Ok(n @ 1..) = sink.read(&mut buf).await {
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        // Small chunks: the copy reads its source far slower than the client fills it, so it
        // always finds data waiting (with the backend always able to take it).
        let (dp, ep) = serving(
            ProxyOptions {
                copy_mode: mode,
                pipe_bytes: Some(4096),
                buffer_bytes: 1024,
                ..with_threads(1)
            },
            backend,
        )
        .await;

        let mut bulk = connect_from("127.0.0.9", ep).await.unwrap();
        let writer = tokio::spawn(async move {
            let chunk = vec![7u8; 1 << 20];
            while bulk.write_all(&chunk).await.is_ok() {}
        });
        let flowing = eventually(Duration::from_secs(5), || {
            let received = received.clone();
            async move { received.load(Ordering::Relaxed) > 1 << 20 }
        })
        .await;
        assert!(flowing, "{mode:?}: the bulk transfer runs");

        // Each within 5 s (connect, then the echo): starved, they would wait for the bulk
        // transfer to end, which it does not.
        all_served(ep, 20).await;
        writer.abort();
        dp.shutdown().await;
    }
}

/// A drain cut short (the runtime that waits for the deadline goes away) ends the drained
/// connections at once instead of leaving them on the accept threads for good.
#[test]
fn connections_draining_when_their_runtime_is_dropped_are_ended() {
    // The backend lives on a runtime of its own, so that it stays up throughout.
    let outer = tokio::runtime::Runtime::new().unwrap();
    let backend = outer.block_on(Backend::start(BACKEND_IP, Mode::Echo));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let conn = rt.block_on(async {
        let (dp, ep) = serving(
            ProxyOptions {
                drain_timeout: Duration::from_secs(120),
                ..with_threads(1)
            },
            backend.addr,
        )
        .await;
        let mut conn = connect_from("127.0.0.9", ep).await.unwrap();
        assert_eq!(roundtrip(&mut conn, b"ping").await.unwrap(), b"ping");
        // The endpoint goes: its listener closes and the connection drains (for 120 s).
        dp.push(snapshot(2, vec![]));
        applied(&dp, 2).await;
        assert_eq!(roundtrip(&mut conn, b"still").await.unwrap(), b"still");
        std::mem::forget(dp);
        conn.into_std().unwrap()
    });
    drop(rt);
    assert_ended(conn);
    drop(outer);
}
