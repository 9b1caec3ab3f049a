//! The SQLite store's watch over its own files: the database file and its WAL must stay the
//! files the store opened, at their paths, never shorter than they were.
//!
//! A running store keeps both files open, so removing or replacing them under it goes unnoticed
//! by SQLite: commits land in the unlinked (or overwritten) files and are lost at the next
//! start. The guard notices instead: it compares each path's device, inode and length with what
//! the store opened, in a background thread (every [`CHECK_EVERY`]) and in the writer after
//! each commit, before the commit is acknowledged. The first difference is a fault that lasts
//! until a restart: `/health` fails, and reads and writes answer [`StoreError::Fault`].
//!
//! Lengths only grow while the store runs (no `VACUUM`, no `auto_vacuum`, WAL checkpoints never
//! truncate and a restarted WAL is rewritten from its start), so a shorter file was truncated or
//! overwritten under the store.

use crate::{StoreError, StoreResult};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often the background thread checks the files.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(250);

/// One watched file: where it is, which inode the store opened, the longest it has been seen.
struct Watched {
    path: PathBuf,
    dev: u64,
    ino: u64,
    min_len: AtomicU64,
}

impl Watched {
    fn open(path: PathBuf) -> std::io::Result<Watched> {
        let m = std::fs::metadata(&path)?;
        Ok(Watched {
            path,
            dev: m.dev(),
            ino: m.ino(),
            min_len: AtomicU64::new(m.len()),
        })
    }

    /// Why the file at the path is no longer the one the store opened, if it is not.
    fn problem(&self) -> Option<String> {
        let shown = self.path.display();
        // The floor is read before the file is looked at: another thread may record a larger
        // length meanwhile, which this look, taken earlier, need not reach.
        let floor = self.min_len.load(Ordering::Acquire);
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Some(format!("{shown} was removed"))
            }
            Err(e) => Some(format!("{shown} cannot be examined: {e}")),
            Ok(m) if (m.dev(), m.ino()) != (self.dev, self.ino) => {
                Some(format!("{shown} was replaced by another file"))
            }
            Ok(m) if m.len() < floor => Some(format!(
                "{shown} was truncated (from {floor} to {} bytes)",
                m.len()
            )),
            Ok(m) => {
                self.min_len.fetch_max(m.len(), Ordering::AcqRel);
                None
            }
        }
    }
}

/// Watches a SQLite database file and its WAL (see the module docs).
pub(crate) struct FileGuard {
    files: [Watched; 2],
    faulted: AtomicBool,
    reason: Mutex<Option<String>>,
}

impl FileGuard {
    /// Starts watching `db` and `db-wal` as they are now (both must exist: call it once the
    /// store has opened the database in WAL mode), with a background check every
    /// [`CHECK_EVERY`] that ends when the guard is dropped.
    pub(crate) fn start(db: &Path) -> std::io::Result<Arc<FileGuard>> {
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        let guard = Arc::new(FileGuard {
            files: [
                Watched::open(db.to_path_buf())?,
                Watched::open(PathBuf::from(wal))?,
            ],
            faulted: AtomicBool::new(false),
            reason: Mutex::new(None),
        });
        let weak: Weak<FileGuard> = Arc::downgrade(&guard);
        std::thread::Builder::new()
            .name("vpcep-sqlite-guard".into())
            .spawn(move || loop {
                std::thread::sleep(CHECK_EVERY);
                match weak.upgrade() {
                    Some(g) => {
                        let _ = g.check();
                    }
                    None => break,
                }
            })?;
        Ok(guard)
    }

    /// The fault found so far, without looking at the files again (an atomic load when
    /// healthy).
    pub(crate) fn state(&self) -> StoreResult<()> {
        if !self.faulted.load(Ordering::Acquire) {
            return Ok(());
        }
        let reason = self.reason.lock().expect("guard lock").clone();
        Err(fault(
            reason.as_deref().unwrap_or("the database files changed"),
        ))
    }

    /// Looks at the files now; the first difference becomes the store's lasting fault.
    pub(crate) fn check(&self) -> StoreResult<()> {
        self.state()?;
        let Some(problem) = self.files.iter().find_map(Watched::problem) else {
            return Ok(());
        };
        self.fail(problem)
    }

    /// Makes `problem` the store's lasting fault (the first one stays); answers it.
    pub(crate) fn fail(&self, problem: String) -> StoreResult<()> {
        {
            let mut reason = self.reason.lock().expect("guard lock");
            if reason.is_none() {
                tracing::error!(
                    problem = %problem,
                    "the SQLite database cannot be trusted any more; refusing reads and writes until a restart"
                );
                metrics::counter!("vpcep_store_file_faults_total").increment(1);
                *reason = Some(problem);
            }
        }
        self.faulted.store(true, Ordering::Release);
        self.state()
    }

    /// The WAL's path.
    pub(crate) fn wal_path(&self) -> &Path {
        &self.files[1].path
    }
}

fn fault(reason: &str) -> StoreError {
    StoreError::Fault(format!(
        "{reason}; the server refuses reads and writes until it is restarted"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded() -> (tempfile::TempDir, PathBuf, Arc<FileGuard>) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"0123456789").unwrap();
        std::fs::write(dir.path().join("x.db-wal"), b"wal").unwrap();
        let g = FileGuard::start(&db).unwrap();
        (dir, db, g)
    }

    /// Checks from several threads while the files grow never see a truncation: a look taken
    /// before another thread recorded a larger length is not held against that length.
    #[test]
    fn concurrent_checks_of_growing_files_find_nothing() {
        let (d, db, g) = guarded();
        let stop = Arc::new(AtomicBool::new(false));
        let grower = {
            let stop = stop.clone();
            let wal = d.path().join("x.db-wal");
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new().append(true).open(wal).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    std::io::Write::write_all(&mut f, &[0u8; 64]).unwrap();
                }
            })
        };
        let checkers: Vec<_> = (0..3)
            .map(|_| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..3000 {
                        g.check().unwrap();
                    }
                })
            })
            .collect();
        for c in checkers {
            c.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        grower.join().unwrap();
        assert!(g.check().is_ok() && db.exists());
    }

    #[test]
    fn growth_is_fine_removal_replacement_and_truncation_are_lasting_faults() {
        let (_d, db, g) = guarded();
        std::io::Write::write_all(
            &mut std::fs::OpenOptions::new().append(true).open(&db).unwrap(),
            b"more",
        )
        .unwrap();
        assert!(g.check().is_ok());

        let (d, _db, g) = guarded();
        std::fs::remove_file(d.path().join("x.db-wal")).unwrap();
        let e = g.check().unwrap_err();
        assert!(
            matches!(&e, StoreError::Fault(m) if m.contains("x.db-wal was removed")),
            "{e}"
        );
        std::fs::write(d.path().join("x.db-wal"), b"wal").unwrap();
        assert!(g.check().is_err(), "a fault lasts");
        assert!(g.state().is_err());

        let (d, db, g) = guarded();
        let other = d.path().join("other");
        std::fs::write(&other, b"0123456789").unwrap();
        std::fs::rename(&other, &db).unwrap();
        assert!(matches!(g.check().unwrap_err(), StoreError::Fault(m) if m.contains("replaced")));

        let (_d, db, g) = guarded();
        std::fs::write(&db, b"01").unwrap();
        assert!(matches!(g.check().unwrap_err(), StoreError::Fault(m) if m.contains("truncated")));
    }
}
