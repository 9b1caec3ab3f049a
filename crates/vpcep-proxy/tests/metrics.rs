//! The exported metrics, read through a debugging recorder (global, so alone in this binary).

mod support;

use std::sync::Mutex;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use support::*;
use tokio::net::TcpStream;
use vpcep_proxy::DataPlane;

/// The debugging recorder resets counters and gauges on every snapshot, so values are
/// accumulated here: the sum of the deltas is the current value.
/// (name, labels, accumulated value).
type Series = (String, Vec<(String, String)>, f64);

struct Metrics {
    snapshotter: Snapshotter,
    seen: Mutex<Vec<Series>>,
}

impl Metrics {
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut seen = self.seen.lock().unwrap();
        for (k, _, _, v) in self.snapshotter.snapshot().into_vec() {
            let key = k.key();
            let ls: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            let delta = match v {
                DebugValue::Counter(c) => c as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(h) => h.len() as f64,
            };
            match seen
                .iter_mut()
                .find(|(n, l, _)| n == key.name() && *l == ls)
            {
                Some(e) => e.2 += delta,
                None => seen.push((key.name().to_string(), ls, delta)),
            }
        }
        seen.iter().find_map(|(n, l, v)| {
            (n == name
                && labels
                    .iter()
                    .all(|(k, want)| l.iter().any(|(lk, lv)| lk == k && lv == want)))
            .then_some(*v)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_bytes_and_refusals_are_exported_per_endpoint() {
    let recorder = DebuggingRecorder::new();
    let snap = Metrics {
        snapshotter: recorder.snapshotter(),
        seen: Mutex::new(Vec::new()),
    };
    recorder.install().unwrap();

    let backend = Backend::start(BACKEND_IP, Mode::Echo).await;
    let port = free_port("127.0.0.2");
    let dp = DataPlane::start(opts());
    let mut e = spec("ep-m", "127.0.0.2", port, backend.addr);
    e.whitelist_enabled = true;
    e.whitelist = vec!["127.0.0.1".into()];
    dp.push(snapshot(1, vec![e]));
    applied(&dp, 1).await;

    let mut c = TcpStream::connect(("127.0.0.2", port)).await.unwrap();
    assert_eq!(
        roundtrip(&mut c, b"0123456789").await.unwrap(),
        b"0123456789"
    );
    let id = [("endpoint_id", "ep-m")];
    assert_eq!(snap.value("vpcep_agent_connections_active", &id), Some(1.0));
    let endpoint = std::net::SocketAddr::from(([127, 0, 0, 2], port));
    let mut refused = connect_from("127.0.0.5", endpoint).await.unwrap();
    assert!(is_closed_by_peer(&mut refused).await);
    drop(c);

    assert!(
        eventually(Duration::from_secs(5), || async {
            snap.value("vpcep_agent_connections_active", &id) == Some(0.0)
        })
        .await
    );
    assert_eq!(snap.value("vpcep_agent_connections_total", &id), Some(1.0));
    assert_eq!(
        snap.value(
            "vpcep_agent_bytes_total",
            &[("endpoint_id", "ep-m"), ("direction", "client_to_backend")]
        ),
        Some(10.0)
    );
    assert_eq!(
        snap.value(
            "vpcep_agent_bytes_total",
            &[("endpoint_id", "ep-m"), ("direction", "backend_to_client")]
        ),
        Some(10.0)
    );
    assert_eq!(
        snap.value(
            "vpcep_agent_connections_refused_total",
            &[("endpoint_id", "ep-m"), ("reason", "whitelist")]
        ),
        Some(1.0)
    );
    dp.shutdown().await;
}
