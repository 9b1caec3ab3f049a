//! `run_agent` against a fake control plane: long-poll, reports, outage, recovery.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use vpcep_proxy::{run_agent, AgentConfig, AgentReport, Snapshot};

#[derive(Clone)]
struct FakeControlPlane {
    snapshot: watch::Sender<Snapshot>,
    reports: Arc<Mutex<Vec<AgentReport>>>,
    unsigned: Arc<Mutex<usize>>,
}

async fn snapshot(
    State(cp): State<FakeControlPlane>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Snapshot> {
    let signed = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("SDK-HMAC-SHA256 Access=AKOPERATOR"));
    if !signed {
        *cp.unsigned.lock().unwrap() += 1;
    }
    let since: Option<u64> = q.get("since").and_then(|v| v.parse().ok());
    let timeout: u64 = q.get("timeout").and_then(|v| v.parse().ok()).unwrap_or(30);
    let mut rx = cp.snapshot.subscribe();
    if since == Some(rx.borrow().version) {
        let _ = tokio::time::timeout(Duration::from_secs(timeout), rx.changed()).await;
    }
    let current = rx.borrow().clone();
    Json(current)
}

async fn report(State(cp): State<FakeControlPlane>, Json(r): Json<AgentReport>) -> StatusCode {
    cp.reports.lock().unwrap().push(r);
    StatusCode::NO_CONTENT
}

/// Serves the fake on `addr` until the returned sender fires.
async fn serve(
    cp: FakeControlPlane,
    listener: TcpListener,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route("/agent/v1/snapshot", get(snapshot))
        .route("/agent/v1/report", post(report))
        .with_state(cp);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    (stop, task)
}

fn has_report(cp: &FakeControlPlane, version: u64) -> Option<AgentReport> {
    cp.reports
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|r| r.version == version)
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_follows_the_control_plane_and_survives_its_outage() {
    init_tracing();
    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port("127.0.0.2");
    let ep: SocketAddr = format!("127.0.0.2:{port}").parse().unwrap();
    let first = spec("ep-1", "127.0.0.2", port, backend.addr);
    let cp = FakeControlPlane {
        snapshot: watch::channel(snapshot_of(1, vec![first.clone()])).0,
        reports: Default::default(),
        unsigned: Default::default(),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cp_addr = listener.local_addr().unwrap();
    let (stop_cp, cp_task) = serve(cp.clone(), listener).await;

    let mut cfg = AgentConfig::new(
        &format!("http://{cp_addr}"),
        "AKOPERATOR",
        "operator-secret",
    );
    cfg.poll_timeout = Duration::from_secs(1);
    cfg.max_backoff = Duration::from_millis(400);
    cfg.proxy = opts();
    let (stop_agent, agent_stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(run_agent(cfg, async {
        let _ = agent_stopped.await;
    }));

    // 1. The first snapshot is served and reported.
    assert!(
        eventually(Duration::from_secs(5), || async {
            has_report(&cp, 1).is_some()
        })
        .await
    );
    let r = has_report(&cp, 1).unwrap();
    assert!(r.endpoints[0].ok, "{r:?}");
    let mut c = TcpStream::connect(ep).await.unwrap();
    assert_eq!(roundtrip(&mut c, b"v1").await.unwrap(), b"v1");

    // 2. A change wakes the long-poll and is applied well under a second.
    let mut second = first.clone();
    second.tcp_proxy = "toa_open".into();
    let changed_at = tokio::time::Instant::now();
    cp.snapshot
        .send_replace(snapshot_of(2, vec![second.clone()]));
    assert!(
        eventually(Duration::from_secs(3), || async {
            has_report(&cp, 2).is_some()
        })
        .await
    );
    assert!(
        changed_at.elapsed() < Duration::from_secs(1),
        "took {:?}",
        changed_at.elapsed()
    );
    assert!(
        has_report(&cp, 2).unwrap().endpoints[0].error.is_some(),
        "TOA note reported"
    );

    // 3. The control plane goes away: traffic keeps flowing.
    let _ = stop_cp.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), cp_task).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        roundtrip(&mut c, b"during outage").await.unwrap(),
        b"during outage"
    );
    let mut c2 = TcpStream::connect(ep).await.unwrap();
    assert_eq!(roundtrip(&mut c2, b"new conn").await.unwrap(), b"new conn");

    // 4. It comes back on the same address with the endpoint removed: the agent catches up.
    cp.snapshot.send_replace(snapshot_of(3, vec![]));
    let listener = TcpListener::bind(cp_addr).await.unwrap();
    let (stop_cp, cp_task) = serve(cp.clone(), listener).await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            has_report(&cp, 3).is_some()
        })
        .await
    );
    assert!(TcpStream::connect(ep).await.is_err(), "listener closed");
    assert_eq!(*cp.unsigned.lock().unwrap(), 0, "every poll is signed");

    drop((c, c2));
    let _ = stop_agent.send(());
    tokio::time::timeout(Duration::from_secs(5), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let _ = stop_cp.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), cp_task).await;
}

fn snapshot_of(version: u64, endpoints: Vec<vpcep_proxy::EndpointSpec>) -> Snapshot {
    support::snapshot(version, endpoints)
}
