//! Watching a folder for new snapshots (the recorder's periodic writer,
//! a Python program dumping now and then): a named thread lists the folder
//! every interval and reports the snapshot files that were not there
//! before, once their size has stopped changing.
//!
//! Polling rather than the system's file notifications: it needs no
//! dependency, works the same on every platform and on network folders,
//! and a second's delay does not matter for snapshots taken minutes apart.
//! Writers that replace files atomically (the recorder, `.tmsnap` dumps)
//! only ever show complete files; waiting for a stable size also covers
//! writers that do not (CPython's `Snapshot.dump`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use anyhow::{Context as _, Result};

use super::loader::{Notify, snapshot_files};

/// The thread watching one folder. Dropping it stops the thread.
#[derive(Debug)]
pub struct FolderWatch {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    found: Receiver<Vec<PathBuf>>,
}

impl FolderWatch {
    /// Starts watching `dir` every `interval`; the snapshot files there now
    /// are not reported, only those that appear later.
    pub fn start(dir: PathBuf, interval: Duration, notify: Notify) -> Result<FolderWatch> {
        let known: BTreeSet<PathBuf> = snapshot_files(&dir)?.into_iter().collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = channel();
        let thread_dir = dir.clone();
        let thread_stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("folder-watch".to_owned())
            .spawn(move || {
                let mut known = known;
                // New files by size at the previous look.
                let mut pending: BTreeMap<PathBuf, u64> = BTreeMap::new();
                while !thread_stop.load(Ordering::Relaxed) {
                    sleep_unless_stopped(interval, &thread_stop);
                    let Ok(files) = snapshot_files(&thread_dir) else {
                        // The folder may be back next time (a remount).
                        continue;
                    };
                    let mut ready = Vec::new();
                    let mut still = BTreeMap::new();
                    for path in files.into_iter().filter(|p| !known.contains(p)) {
                        let Ok(size) = std::fs::metadata(&path).map(|m| m.len()) else {
                            continue;
                        };
                        if pending.get(&path) == Some(&size) {
                            ready.push(path);
                        } else {
                            still.insert(path, size);
                        }
                    }
                    pending = still;
                    if !ready.is_empty() {
                        known.extend(ready.iter().cloned());
                        if tx.send(ready).is_err() {
                            return;
                        }
                        notify();
                    }
                }
            })
            .context("cannot start the thread that watches the folder")?;
        Ok(FolderWatch {
            dir,
            stop,
            found: rx,
        })
    }

    /// The watched folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The new snapshot files found since the last call, in name order.
    pub fn poll(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self.found.try_iter().flatten().collect();
        out.sort();
        out
    }
}

impl Drop for FolderWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sleeps `total`, in short steps so that a stop is noticed quickly.
fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(50).min(total);
    let mut slept = Duration::ZERO;
    while slept < total && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(step);
        slept += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tracemalloc_format::Snapshot;

    #[test]
    fn new_complete_snapshots_are_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let snap = Snapshot::from_raw_traces(1, [(0, 5, &[("a.py", 1)][..], None)]).unwrap();
        snap.dump(dir.path().join("s-1.tmsnap")).unwrap();
        let watch = FolderWatch::start(
            dir.path().to_owned(),
            Duration::from_millis(20),
            Arc::new(|| {}),
        )
        .unwrap();
        assert_eq!(watch.dir(), dir.path());
        snap.dump(dir.path().join("s-2.tmsnap")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"not a snapshot").unwrap();
        let start = Instant::now();
        let mut found = Vec::new();
        while found.is_empty() {
            found = watch.poll();
            assert!(start.elapsed() < Duration::from_secs(20), "never reported");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(found, [dir.path().join("s-2.tmsnap")]);
        // Not again.
        std::thread::sleep(Duration::from_millis(100));
        assert!(watch.poll().is_empty());
    }
}
