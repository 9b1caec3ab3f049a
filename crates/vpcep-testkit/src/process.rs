//! The real `vpcep` binary as a child process, for the tests that need signals, a crash or a
//! separate agent: [`Child`] (killed when dropped; its log is printed when the test fails)
//! and [`healthy`].

use crate::db::notice;
use crate::wait::{eventually, SETTLE};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The `vpcep` binary that cargo built next to the running test (`target/<profile>/vpcep`); a
/// test of the `vpcep` package has it (cargo builds a package's binaries for its tests).
pub fn vpcep_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = dir.join(format!("vpcep{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the test from the vpcep package (cargo test -p vpcep)",
        bin.display()
    );
    bin
}

/// A child process of the `vpcep` binary, killed when dropped; its stdout and stderr go to a
/// log file that is printed when the test fails.
pub struct Child {
    name: String,
    child: tokio::process::Child,
    /// The log file.
    pub log: PathBuf,
}

impl Child {
    /// Runs `vpcep <args>` in `dir` with `VPCEP_LOG=info,vpcep_proxy=debug`, logging to
    /// `dir/<name>-<uuid>.log`.
    pub fn vpcep(name: &str, dir: &Path, args: &[&str]) -> Child {
        let log = dir.join(format!(
            "{}-{}.log",
            name.replace(' ', "-"),
            uuid::Uuid::new_v4().simple()
        ));
        Self::spawn(name, dir, args, "info,vpcep_proxy=debug", log)
    }

    /// Runs `vpcep <args>` in `dir` with `VPCEP_LOG=log_level`, logging to `log`.
    pub fn spawn(name: &str, dir: &Path, args: &[&str], log_level: &str, log: PathBuf) -> Child {
        let stderr = std::fs::File::create(&log).expect("log file");
        let stdout = stderr.try_clone().expect("log file");
        let child = tokio::process::Command::new(vpcep_bin())
            .args(args)
            .current_dir(dir)
            .env("VPCEP_LOG", log_level)
            .env("VPCEP_CONFIG", dir.join("client-config.toml"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn vpcep");
        Child {
            name: name.into(),
            child,
            log,
        }
    }

    /// The log written so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails if the process already exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}:\n{}", self.name, self.log_text());
        }
    }

    /// Kills the process (SIGKILL, by its id) and waits for it.
    pub async fn kill(mut self) {
        self.kill9().await;
    }

    /// `kill -9` and reap, keeping the handle (its log stays readable).
    pub async fn kill9(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM (graceful stop) and reap; `kill -9` when it has not exited within 10 s.
    pub async fn stop_gracefully(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-s", "TERM", &pid.to_string()])
                .status();
        }
        if self.exited_within(Duration::from_secs(10)).await.is_none() {
            self.kill9().await;
        }
    }

    /// Sends SIGTERM (a graceful stop).
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill")
            .args(["-s", "TERM", &pid])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -TERM {pid}");
    }

    /// Waits up to `timeout` for the process to exit; answers its status, `None` while it runs.
    pub async fn exited_within(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Waits until `child` (a `vpcep serve`) answers `GET {base}/health`.
pub async fn healthy(mut child: Child, base: &str) -> Child {
    let url = format!("{base}/health");
    let probe = crate::http_within(Duration::from_secs(2));
    eventually(SETTLE, || {
        child.assert_running();
        let request = probe.get(&url);
        async move {
            match request.send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await;
    child
}

/// Runs `cmd` (stdin closed) to its end and answers its output. One still running after
/// `deadline` is killed and fails the test, with what it printed, instead of hanging the suite.
pub fn output_within(mut cmd: std::process::Command, deadline: Duration) -> std::process::Output {
    use std::io::Read as _;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    // Read while it runs: a full pipe would stop it.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let end = std::time::Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            panic!(
                "{cmd:?} still running after {deadline:?}; it printed: {}",
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            notice(&format!("---- {} log ----\n{}", self.name, self.log_text()));
        }
    }
}
