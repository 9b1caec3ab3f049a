//! The data plane's accept threads: one single-threaded tokio runtime per thread, each serving
//! its own listening socket of every listener (`SO_REUSEPORT` side by side, see
//! `crate::listener`). A connection lives its whole life on the thread that accepted it:
//! its accept, backend connect, PROXY header and copy never wait for another thread's wake-up,
//! as HAProxy's threads work.

use std::io;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// The default number of accept threads: `TOKIO_WORKER_THREADS` when set (the knob that sizes
/// the process's other runtime too), else one per CPU this process may use.
pub fn default_threads() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
}

/// Running accept threads. Dropping this stops them: their runtimes end, and with them any
/// task still on them.
#[derive(Debug)]
pub(crate) struct Workers {
    handles: Vec<Handle>,
    stop: CancellationToken,
}

impl Workers {
    /// Starts `n` threads (at least one). Each builds its runtime on itself (a runtime must not
    /// be dropped inside another's context, as a failed start would otherwise do).
    pub(crate) fn start(n: usize) -> io::Result<Workers> {
        let stop = CancellationToken::new();
        // Until every thread is up: a failure stops those already started.
        let guard = stop.clone().drop_guard();
        let mut handles = Vec::with_capacity(n.max(1));
        for i in 0..n.max(1) {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("vpcep-accept-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(stop.cancelled());
                })?;
            handles.push(
                rx.recv()
                    .map_err(|_| io::Error::other("accept thread died"))??,
            );
        }
        guard.disarm();
        Ok(Workers { handles, stop })
    }

    /// The threads' runtimes.
    pub(crate) fn handles(&self) -> &[Handle] {
        &self.handles
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        // Not joined: the last reference may be dropped by a task on one of these threads.
        self.stop.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_on_the_threads_and_stop_with_them() {
        let w = Workers::start(2).unwrap();
        assert_eq!(w.handles().len(), 2);
        let names: Vec<String> = w
            .handles()
            .iter()
            .map(|h| {
                let (tx, rx) = std::sync::mpsc::channel();
                h.spawn(async move {
                    let _ = tx.send(std::thread::current().name().unwrap_or("").to_string());
                });
                rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap()
            })
            .collect();
        assert_eq!(names, ["vpcep-accept-0", "vpcep-accept-1"]);

        // A task still running when the workers go is dropped with its runtime.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        w.handles()[0].spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await
        });
        drop(w);
        assert_eq!(
            rx.recv_timeout(std::time::Duration::from_secs(5)),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        );
    }
}
