//! One control plane served in this process on `127.0.0.1:<ephemeral>`: what every in-process
//! harness ([`crate::app::TestApp`], [`crate::dp::Plane`], [`crate::nodes`]) runs.

use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vpcep::server::{ControlPlane, ServeConfig};
use vpcep_control::Ctx;

/// How long a graceful server shutdown may take before the test fails.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// A control plane serving in this process; stopped gracefully by [`Server::stop`], aborted
/// when dropped (a test that panicked).
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// The control plane's shared state.
    pub ctx: Arc<Ctx>,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// Opens (migrating) and serves.
    pub async fn start(config: &ServeConfig) -> Server {
        Self::serve(
            ControlPlane::open(config)
                .await
                .expect("open the control plane"),
        )
        .await
    }

    /// Serves an opened control plane.
    pub async fn serve(plane: ControlPlane) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let ctx = plane.ctx.clone();
        let stop = CancellationToken::new();
        let signal = stop.clone();
        let task = tokio::spawn(plane.serve(listener, async move { signal.cancelled().await }));
        Server {
            url,
            ctx,
            stop,
            task: Some(task),
        }
    }

    /// Stops gracefully (in-flight requests finish, the reconciler stops, the data plane
    /// drains); panics when the server failed or takes over [`SHUTDOWN_TIMEOUT`].
    pub async fn stop(mut self) {
        self.stop.cancel();
        let task = self.task.take().expect("running");
        match tokio::time::timeout(SHUTDOWN_TIMEOUT, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => panic!("the server failed: {e:#}"),
            Ok(Err(e)) => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("the server did not shut down within {SHUTDOWN_TIMEOUT:?}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}
