//! Snapshots written periodically into a directory, for long-running
//! programs: the viewer's timeline reads such a directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::Error;
use crate::tls::untraced;

/// Writes numbered snapshots (`{prefix}-{n}.tmsnap`, `n` from 1, padded to
/// `digits`) into a directory: every `interval` on a background thread,
/// and whenever [`PeriodicSnapshots::write_now`] is called. Each snapshot
/// carries its timestamp in its metadata.
///
/// ```no_run
/// # fn main() -> Result<(), tracemalloc::Error> {
/// tracemalloc::start(16)?;
/// let snapshots = tracemalloc::PeriodicSnapshots::builder("snapshots")
///     .interval(std::time::Duration::from_secs(60))
///     .start()?;
/// // ... the program runs ...
/// snapshots.stop()?; // or drop it
/// # Ok(())
/// # }
/// ```
///
/// The thread and its work are not traced. A snapshot that cannot be
/// written (disk full, ...) is reported on stderr by the background thread
/// and returned as an error by `write_now`; numbering goes on.
pub struct PeriodicSnapshots {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread: after `fork()` the child has
    /// no such thread and must not wait for it.
    pid: u32,
}

/// Settings for [`PeriodicSnapshots`].
#[derive(Clone, Debug)]
pub struct PeriodicBuilder {
    dir: PathBuf,
    prefix: String,
    digits: usize,
    interval: Option<Duration>,
}

struct Shared {
    dir: PathBuf,
    prefix: String,
    digits: usize,
    state: Mutex<Inner>,
    wake: Condvar,
}

struct Inner {
    next: u64,
    stopping: bool,
}

impl PeriodicBuilder {
    /// File names start with `prefix` (default `snapshot`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Numbers are zero-padded to at least `digits` digits (default 4).
    pub fn digits(mut self, digits: usize) -> Self {
        self.digits = digits.clamp(1, 20);
        self
    }

    /// Writes a snapshot every `interval` on a background thread (default:
    /// none, only [`PeriodicSnapshots::write_now`]).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// Creates the directory and starts the background thread, if any.
    pub fn start(self) -> Result<PeriodicSnapshots, Error> {
        untraced(|| {
            std::fs::create_dir_all(&self.dir).map_err(|source| Error::Io {
                path: self.dir.clone(),
                source,
            })?;
            let shared = Arc::new(Shared {
                dir: self.dir,
                prefix: self.prefix,
                digits: self.digits,
                state: Mutex::new(Inner {
                    next: 1,
                    stopping: false,
                }),
                wake: Condvar::new(),
            });
            let thread = match self.interval {
                Some(interval) => {
                    let shared = Arc::clone(&shared);
                    let handle = std::thread::Builder::new()
                        .name("tracemalloc-snapshots".into())
                        .spawn(move || untraced(|| run(&shared, interval)))
                        .map_err(|source| Error::Io {
                            path: PathBuf::from("<thread>"),
                            source,
                        })?;
                    Some(handle)
                }
                None => None,
            };
            Ok(PeriodicSnapshots {
                shared,
                thread,
                pid: std::process::id(),
            })
        })
    }
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // The state is two plain fields, valid even if a holder panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(shared: &Shared, interval: Duration) {
    let mut state = lock(&shared.state);
    loop {
        let (next, timeout) = shared
            .wake
            .wait_timeout(state, interval)
            .unwrap_or_else(PoisonError::into_inner);
        state = next;
        if state.stopping {
            return;
        }
        if !timeout.timed_out() {
            // A spurious wake-up: wait again (the interval restarts, which
            // only matters for wake-ups that do not happen in practice).
            continue;
        }
        drop(state);
        if crate::is_tracing()
            && let Err(e) = shared.write()
        {
            eprintln!("tracemalloc: periodic snapshot: {e}");
        }
        state = lock(&shared.state);
    }
}

impl Shared {
    fn write(&self) -> Result<PathBuf, Error> {
        let n = {
            let mut state = lock(&self.state);
            let n = state.next;
            state.next += 1;
            n
        };
        let path = self.dir.join(format!(
            "{}-{:0width$}.tmsnap",
            self.prefix,
            n,
            width = self.digits
        ));
        let snapshot = crate::take_snapshot()?;
        snapshot.dump(&path)?;
        Ok(path)
    }
}

impl PeriodicSnapshots {
    /// Settings for snapshots written into `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> PeriodicBuilder {
        PeriodicBuilder {
            dir: dir.into(),
            prefix: "snapshot".into(),
            digits: 4,
            interval: None,
        }
    }

    /// Snapshots every `interval` into `dir`, with the default names.
    pub fn start(dir: impl Into<PathBuf>, interval: Duration) -> Result<PeriodicSnapshots, Error> {
        Self::builder(dir).interval(interval).start()
    }

    /// The directory the snapshots go to.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Writes the next numbered snapshot now; returns its path.
    pub fn write_now(&self) -> Result<PathBuf, Error> {
        untraced(|| self.shared.write())
    }

    /// Stops the background thread and waits for it.
    pub fn stop(mut self) -> Result<(), Error> {
        self.stop_thread();
        Ok(())
    }

    fn stop_thread(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        if self.pid != std::process::id() {
            // A forked child: the thread only exists in the parent.
            std::mem::forget(thread);
            return;
        }
        lock(&self.shared.state).stopping = true;
        self.shared.wake.notify_all();
        let _ = untraced(|| thread.join());
    }
}

impl Drop for PeriodicSnapshots {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

impl std::fmt::Debug for PeriodicSnapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeriodicSnapshots")
            .field("dir", &self.shared.dir)
            .field("prefix", &self.shared.prefix)
            .field("background", &self.thread.is_some())
            .finish()
    }
}
