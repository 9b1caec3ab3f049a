//! Storage faults under a running server (SQLite, the embedded default): a full disk answers
//! 507 EndPoint.0507 and an unwritable WAL 503 EndPoint.0503, and writes resume by themselves
//! once space returns or the WAL is writable again; a database file or WAL
//! removed, replaced or truncated under the server fails `/health` and refuses writes (503
//! EndPoint.0503) instead of acknowledging them into files that are gone; nothing of this kills
//! the process (no memory-mapped file, no `-shm` mapping); a second process cannot open the
//! database while the server runs.
//!
//! The disk-full test mounts a small tmpfs (`mount -t tmpfs`, which needs root); where that is
//! not possible it prints SKIPPED and passes.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use vpcep_testkit::app::*;

/// A server on a SQLite file in `dir`; answers the app and the database path.
async fn app_in(dir: &Path) -> (TestApp, PathBuf) {
    let db = dir.join("vpcep.db");
    let app = TestApp::builder(Backend::Sqlite)
        .sqlite_file(db.clone())
        .start()
        .await
        .expect("SQLite always starts");
    (app, db)
}

/// The WAL of `db`.
fn wal(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", db.display()))
}

/// `/health` answers 503 EndPoint.0503 (the guard also notices in the background, within
/// 250 ms).
async fn health_fails(app: &TestApp) {
    eventually(SETTLE, || async {
        let r = app.get_unsigned("/health").await;
        if r.status == 503 {
            Ok(r)
        } else {
            Err(r.status)
        }
    })
    .await
    .err(503, "EndPoint.0503");
}

/// After the files changed: every write and read is refused with 503 EndPoint.0503, never
/// acknowledged, and `/health` fails.
async fn refuses_everything(app: &TestApp) {
    let t = app.owner();
    for i in 0..5 {
        t.create_vpc(&json!({ "cidr": format!("10.{i}.0.0/16") }))
            .await
            .err(503, "EndPoint.0503");
    }
    health_fails(app).await;
    t.list_vpcs("").await.err(503, "EndPoint.0503");
}

/// Starts a server in a fresh directory, acknowledges one write, lets `change` act on the
/// directory and the database path, then expects everything refused; answers the directory
/// and the database path once the server has stopped.
async fn refused_after(change: impl FnOnce(&Path, &Path)) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (app, db) = app_in(dir.path()).await;
    app.owner().vpc_ok("10.100.0.0/16").await;
    app.get_unsigned("/health").await.ok(200);
    change(dir.path(), &db);
    refuses_everything(&app).await;
    app.shutdown().await;
    (dir, db)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_file_removed_under_the_server_fails_health_and_refuses_writes() {
    let (_dir, db) = refused_after(|_, db| std::fs::remove_file(db).unwrap()).await;
    assert!(
        !db.exists(),
        "no new empty database was started at the path"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_removed_under_the_server_fails_health_and_refuses_writes() {
    refused_after(|_, db| std::fs::remove_file(wal(db)).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_replaced_under_the_server_fails_health_and_refuses_writes() {
    refused_after(|dir, db| {
        let other = dir.join("other-wal");
        std::fs::write(&other, vec![0u8; 4096]).unwrap();
        std::fs::rename(&other, wal(db)).unwrap();
    })
    .await;
}

/// A database file overwritten in place (same inode, emptied) under the server: no request
/// crashes the process or answers a generic 500 (pages are read with `pread`, which reports the
/// short file, where a read through a memory map of it is a SIGBUS); each answers or is
/// refused with 503 EndPoint.0503. (The guard notices a file found shorter than it was, but a
/// checkpoint may have written the file back to its length first, so refusal is not asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_file_emptied_under_the_server_answers_or_refuses_never_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let (app, db) = app_in(dir.path()).await;
    let t = app.owner();
    for i in 0..50 {
        t.vpc_ok(&format!("10.{i}.0.0/16")).await;
    }
    // Let the checkpointer copy the WAL into the database file, so that reads need its pages.
    eventually(SETTLE, || async {
        let len = std::fs::metadata(&db).unwrap().len();
        if len > 64 * 1024 {
            Ok(())
        } else {
            Err(len)
        }
    })
    .await;
    std::fs::write(&db, b"").unwrap();
    for i in 0..20 {
        for r in [
            t.list_vpcs("").await,
            t.create_vpc(&json!({ "cidr": format!("10.{}.0.0/16", 100 + i) }))
                .await,
        ] {
            assert!(
                r.status == 200 || r.status == 503,
                "answered or refused: {} {}",
                r.status,
                r.text()
            );
            if r.status == 503 {
                r.err(503, "EndPoint.0503");
            }
        }
    }
    app.shutdown().await;
}

/// `chattr` on `path` (`+i` / `-i`); false (with a notice) where the file system refuses.
fn chattr(flag: &str, path: &Path) -> bool {
    let ok = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED: chattr {flag} is not possible here (it needs root and ext4 or tmpfs)");
    }
    ok
}

/// An immutable WAL (writes to it fail with EPERM) answers 503 EndPoint.0503, not a generic
/// 500; `/health` stays up (the files are the same) and writes resume once the WAL is writable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unwritable_wal_answers_503_and_writes_resume_once_it_is_writable() {
    let dir = tempfile::tempdir().unwrap();
    let (app, db) = app_in(dir.path()).await;
    let t = app.owner();
    t.vpc_ok("10.100.0.0/16").await;
    if !chattr("+i", &wal(&db)) {
        app.shutdown().await;
        return;
    }
    let refused = t.create_vpc(&json!({"cidr": "10.101.0.0/16"})).await;
    let undo = chattr("-i", &wal(&db));
    let msg = refused.err(503, "EndPoint.0503");
    assert!(msg.contains("cannot read or write its database"), "{msg}");
    assert!(undo);
    app.get_unsigned("/health").await.ok(200);
    t.vpc_ok("10.102.0.0/16").await;
    let vpcs = t.list_vpcs("").await.ok(200)["vpcs"].clone();
    let cidrs: Vec<&str> = vpcs
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cidr"].as_str().unwrap())
        .collect();
    assert_eq!(cidrs, ["10.100.0.0/16", "10.102.0.0/16"]);
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_index_is_not_a_shared_memory_file() {
    let dir = tempfile::tempdir().unwrap();
    let (app, db) = app_in(dir.path()).await;
    app.owner().vpc_ok("10.100.0.0/16").await;
    assert!(wal(&db).exists());
    let shm = PathBuf::from(format!("{}-shm", db.display()));
    assert!(
        !shm.exists(),
        "an -shm file is memory-mapped and written: SIGBUS when it cannot take a write"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_cannot_open_the_database_of_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let (app, db) = app_in(dir.path()).await;
    app.owner().vpc_ok("10.100.0.0/16").await;
    let mut second = Command::new(env!("CARGO_BIN_EXE_vpcep"));
    second
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(format!("sqlite://{}", db.display()))
        .current_dir(dir.path())
        .env("VPCEP_CONFIG", dir.path().join("client-config.toml"));
    let out = vpcep_testkit::process::output_within(second, Duration::from_secs(60));
    assert!(!out.status.success(), "the second server must not start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another process"),
        "the refusal says why: {stderr}"
    );
    app.get_unsigned("/health").await.ok(200);
    app.owner().vpc_ok("10.101.0.0/16").await;
    app.shutdown().await;
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped (also when a test
/// panics).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts it, or answers `None` (printing why) where mounting is not allowed.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            other => {
                let why = match other {
                    Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
                    Err(e) => e.to_string(),
                };
                let _ = std::io::Write::write_all(
                    &mut std::io::stderr(),
                    format!(
                        "SKIPPED disk-full test: cannot mount a tmpfs ({why}); it needs root\n"
                    )
                    .as_bytes(),
                );
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` with one file; answers its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 16 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "ENOSPC expected: {e}");
            break;
        }
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_answers_507_and_writes_resume_by_themselves_once_space_returns() {
    let Some(fs) = Tmpfs::mount("6m") else {
        return;
    };
    let (mut app, _db) = app_in(fs.path()).await;
    let t = app.owner();
    let net = t.network_with("10.0.0.0/16", "10.0.0.0/16").await;
    let port = |i: u32| json!({"network_id": net.subnet_id, "name": format!("p{i:0>200}")});
    t.create_port(&port(0)).await.ok(200);
    let filler = fill(fs.path());

    // Writes go on while the WAL has room, then answer 507, never a generic 500.
    let mut acknowledged = 1;
    let mut full = 0;
    for i in 1..5000 {
        let r = t.create_port(&port(i)).await;
        match r.status {
            200 => acknowledged += 1,
            _ => {
                let msg = r.err(507, "EndPoint.0507");
                assert!(msg.contains("storage is full"), "{msg}");
                full += 1;
                if full == 3 {
                    break;
                }
            }
        }
    }
    assert_eq!(full, 3, "the disk never filled up");
    // Reads and health go on.
    app.get_unsigned("/health").await.ok(200);
    let listed = |v: serde_json::Value| v["ports"].as_array().unwrap().len();
    assert_eq!(listed(t.list_ports("").await.ok(200)), acknowledged);

    // Space returns: writes succeed again without a restart.
    std::fs::remove_file(filler).unwrap();
    eventually(SETTLE, || async {
        let r = t.create_port(&port(9999)).await;
        match r.status {
            200 => Ok(()),
            507 => Err(r.status),
            _ => panic!("unexpected answer: {} {}", r.status, r.text()),
        }
    })
    .await;
    acknowledged += 1;
    // Every acknowledged write is there after a restart.
    app.restart(Duration::ZERO).await;
    let t = app.owner();
    assert_eq!(listed(t.list_ports("").await.ok(200)), acknowledged);
    app.shutdown().await;
    drop(fs);
}
