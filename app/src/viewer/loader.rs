//! Loading snapshot files off the UI thread, with progress and cancel.
//!
//! Every way of opening a snapshot (command line, dialogs, drag-and-drop,
//! Reload, the demo, a watched folder) makes a [`LoadSource`] and goes
//! through [`Loader::start`]: one `open_path` / `open_bytes` path, as in
//! puffin_viewer. Each request runs on its own named thread, which lists
//! the snapshots of the folders it was given, reads each file in chunks
//! (reporting progress, checking for cancel between chunks), decodes it,
//! and summarizes it for the lists.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result, bail};
use tracemalloc_format::dhat::looks_like_dhat;
use tracemalloc_format::{LoadOptions, Snapshot, SnapshotKind, detect_kind};

use super::session::{Origin, SnapshotInfo};

/// Bytes read between two progress reports and cancel checks.
const CHUNK: usize = 1 << 20;

/// File extensions of snapshots in a folder; `.json` files count when
/// their content is a DHAT profile.
pub const FOLDER_EXTENSIONS: &[&str] = &["tmsnap", "pickle", "pkl"];

/// Something to open.
#[derive(Clone, Debug)]
pub enum LoadSource {
    /// A file.
    Path(PathBuf),
    /// Every snapshot file of a folder ([`snapshot_files`]).
    Folder(PathBuf),
    /// Bytes already in memory: a bundled demo snapshot or a dropped file.
    Bytes {
        /// Where they came from.
        origin: Origin,
        /// The file's content.
        bytes: Arc<[u8]>,
    },
}

impl LoadSource {
    /// The name shown while loading.
    pub fn name(&self) -> String {
        match self {
            LoadSource::Path(path) | LoadSource::Folder(path) => {
                super::display_text::file_name(path)
            }
            LoadSource::Bytes { origin, .. } => origin.name(),
        }
    }
}

/// A snapshot read and decoded by a loader thread.
#[derive(Debug)]
pub struct Loaded {
    /// Where it came from.
    pub origin: Origin,
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Its summary.
    pub info: SnapshotInfo,
}

/// What a loader thread reports.
#[derive(Debug)]
pub enum LoadEvent {
    /// One file loaded.
    Loaded(Box<Loaded>),
    /// One file failed: its name and the whole message.
    Failed {
        /// The file's name.
        name: String,
        /// Which file, what is wrong.
        message: String,
    },
    /// The request is done (every file loaded or failed).
    Finished,
}

/// Progress of one request, shared with its thread.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes read so far, over all files of the request.
    pub done: AtomicU64,
    /// Bytes to read, over all files whose size is known.
    pub total: AtomicU64,
    /// What the thread is doing, e.g. `Decoding leaky_service-03.tmsnap`.
    pub phase: Mutex<String>,
}

/// One request being loaded.
#[derive(Debug)]
pub struct LoadJob {
    /// Its number, to match events to it.
    pub id: u64,
    /// What the status bar says before the thread reports a phase.
    pub title: String,
    /// Set to stop the thread after its current step.
    pub cancel: Arc<AtomicBool>,
    /// Its progress.
    pub progress: Arc<Progress>,
    events: Receiver<LoadEvent>,
}

impl LoadJob {
    /// The progress as a fraction from 0 to 1, when the sizes are known.
    pub fn fraction(&self) -> Option<f32> {
        let total = self.progress.total.load(Ordering::Relaxed);
        (total > 0).then(|| {
            (self.progress.done.load(Ordering::Relaxed) as f64 / total as f64).min(1.0) as f32
        })
    }

    /// What the thread is doing now.
    pub fn phase(&self) -> String {
        let phase = self
            .progress
            .phase
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        if phase.is_empty() {
            self.title.clone()
        } else {
            phase
        }
    }
}

/// The running load requests.
#[derive(Debug, Default)]
pub struct Loader {
    jobs: Vec<LoadJob>,
    next_job: u64,
}

/// Calls back when a thread has news, e.g. to request a repaint.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

impl Loader {
    /// Starts loading `sources` on a new thread, reading multi-snapshot
    /// formats as `options` says; events arrive through [`Loader::poll`].
    pub fn start(
        &mut self,
        sources: Vec<LoadSource>,
        options: LoadOptions,
        notify: Notify,
    ) -> Result<()> {
        if sources.is_empty() {
            return Ok(());
        }
        self.next_job += 1;
        let (tx, rx) = channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let title = match sources.as_slice() {
            [one] => format!("Loading {}", one.name()),
            many => format!("Loading {} snapshots", many.len()),
        };
        let job = LoadJob {
            id: self.next_job,
            title,
            cancel: Arc::clone(&cancel),
            progress: Arc::clone(&progress),
            events: rx,
        };
        std::thread::Builder::new()
            .name("snapshot-loader".to_owned())
            .spawn(move || load_all(sources, options, &tx, &cancel, &progress, &*notify))
            .context("cannot start a thread to load snapshots")?;
        self.jobs.push(job);
        Ok(())
    }

    /// The running requests, oldest first.
    pub fn jobs(&self) -> &[LoadJob] {
        &self.jobs
    }

    /// Whether anything is loading.
    pub fn is_busy(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// Cancels every request: their threads stop after their current step,
    /// and nothing more is reported from them.
    pub fn cancel_all(&mut self) {
        for job in self.jobs.drain(..) {
            job.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Takes the events that arrived, and forgets finished requests.
    pub fn poll(&mut self) -> Vec<LoadEvent> {
        let mut events = Vec::new();
        self.jobs.retain(|job| {
            loop {
                match job.events.try_recv() {
                    Ok(LoadEvent::Finished) => return false,
                    Ok(event) => events.push(event),
                    Err(TryRecvError::Empty) => return true,
                    // The thread ended without saying so: it panicked.
                    Err(TryRecvError::Disconnected) => {
                        events.push(LoadEvent::Failed {
                            name: job.title.clone(),
                            message: format!("{}: the loader stopped unexpectedly", job.title),
                        });
                        return false;
                    }
                }
            }
        });
        events
    }
}

/// The snapshot files of a folder, sorted by path: files named `*.tmsnap`,
/// `*.pickle`, `*.pkl`, and `*.json` files that are DHAT profiles. Hidden
/// files (a writer's temporary files) are left out.
pub fn snapshot_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        // Follows symbolic links: a link to a snapshot is a snapshot.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let extension = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        if FOLDER_EXTENSIONS.contains(&extension.as_str())
            || (extension == "json" && is_dhat_file(&path))
        {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Whether a file starts like a DHAT profile (only its head is read).
fn is_dhat_file(path: &Path) -> bool {
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .is_ok_and(|_| looks_like_dhat(&head))
}

/// Replaces each folder by its snapshot files; a folder that cannot be
/// listed, or has no snapshot, is reported as failed.
fn expand_folders(
    sources: Vec<LoadSource>,
    tx: &Sender<LoadEvent>,
    notify: &(dyn Fn() + Send + Sync),
) -> Vec<LoadSource> {
    let mut out = Vec::new();
    for source in sources {
        let LoadSource::Folder(dir) = source else {
            out.push(source);
            continue;
        };
        match snapshot_files(&dir) {
            Ok(files) if files.is_empty() => {
                let _ = tx.send(LoadEvent::Failed {
                    name: super::display_text::file_name(&dir),
                    message: format!(
                        "{}: no snapshot in this folder (.tmsnap, .pickle, .pkl or DHAT .json)",
                        dir.display()
                    ),
                });
                notify();
            }
            Ok(files) => out.extend(files.into_iter().map(LoadSource::Path)),
            Err(err) => {
                let _ = tx.send(LoadEvent::Failed {
                    name: super::display_text::file_name(&dir),
                    message: format!("{err:#}"),
                });
                notify();
            }
        }
    }
    out
}

/// The loader thread: each source in turn.
fn load_all(
    sources: Vec<LoadSource>,
    options: LoadOptions,
    tx: &Sender<LoadEvent>,
    cancel: &AtomicBool,
    progress: &Progress,
    notify: &(dyn Fn() + Send + Sync),
) {
    let sources = expand_folders(sources, tx, notify);
    let total: u64 = sources
        .iter()
        .map(|s| match s {
            LoadSource::Path(path) | LoadSource::Folder(path) => {
                std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
            }
            LoadSource::Bytes { bytes, .. } => bytes.len() as u64,
        })
        .sum();
    // Reading a byte and decoding it count as two units of work, so that
    // the bar moves through both phases.
    progress.total.store(2 * total, Ordering::Relaxed);
    for source in sources {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        let name = source.name();
        let event = match load_one(source, &options, cancel, progress, notify) {
            Ok(Some(loaded)) => LoadEvent::Loaded(Box::new(loaded)),
            // Cancelled.
            Ok(None) => break,
            Err(err) => LoadEvent::Failed {
                name,
                message: format!("{err:#}"),
            },
        };
        if tx.send(event).is_err() {
            return;
        }
        notify();
    }
    // The receiver may be gone (cancelled): nothing to tell then.
    let _ = tx.send(LoadEvent::Finished);
    notify();
}

fn set_phase(progress: &Progress, phase: String) {
    if let Ok(mut p) = progress.phase.lock() {
        *p = phase;
    }
}

/// Reads, decodes and summarizes one snapshot; `None` when cancelled.
fn load_one(
    source: LoadSource,
    options: &LoadOptions,
    cancel: &AtomicBool,
    progress: &Progress,
    notify: &(dyn Fn() + Send + Sync),
) -> Result<Option<Loaded>> {
    let name = source.name();
    let (origin, bytes, modified) = match source {
        LoadSource::Path(path) | LoadSource::Folder(path) => {
            set_phase(progress, format!("Reading {name}"));
            let Some((bytes, modified)) = read_file(&path, cancel, progress, notify)? else {
                return Ok(None);
            };
            (Origin::File(path), Arc::from(bytes), modified)
        }
        LoadSource::Bytes { origin, bytes } => {
            progress
                .done
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            (origin, bytes, None)
        }
    };
    set_phase(progress, format!("Decoding {name}"));
    notify();
    let failed = |kind| anyhow::anyhow!("{}: {kind}", origin_label(&origin));
    let kind = detect_kind(&bytes).map_err(failed)?;
    let snapshot = Snapshot::from_bytes_with(&bytes, options).map_err(failed)?;
    progress
        .done
        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
    if cancel.load(Ordering::Relaxed) {
        return Ok(None);
    }
    let info = SnapshotInfo {
        total: snapshot.totals(),
        traces: snapshot.traces().len(),
        timestamp: snapshot.metadata().timestamp,
        modified,
        has_hideable_frames: snapshot.has_untrimmed_frames(),
        kind,
        dhat_point: (kind == SnapshotKind::Dhat).then_some(options.dhat_point),
    };
    Ok(Some(Loaded {
        origin,
        snapshot,
        info,
    }))
}

/// How errors name a snapshot: its path, or its name.
fn origin_label(origin: &Origin) -> String {
    match origin {
        Origin::File(path) => path.display().to_string(),
        other => other.name(),
    }
}

/// Reads a file in chunks; `None` when cancelled.
fn read_file(
    path: &Path,
    cancel: &AtomicBool,
    progress: &Progress,
    notify: &(dyn Fn() + Send + Sync),
) -> Result<Option<(Vec<u8>, Option<SystemTime>)>> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if metadata.is_dir() {
        bail!("{}: is a folder, not a snapshot file", path.display());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    let mut chunk = vec![0; CHUNK];
    let mut last_notify = Instant::now();
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let n = file
            .read(&mut chunk)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        progress.done.fetch_add(n as u64, Ordering::Relaxed);
        // A repaint per chunk would be wasted work on a fast disk.
        if last_notify.elapsed() > Duration::from_millis(50) {
            notify();
            last_notify = Instant::now();
        }
    }
    Ok(Some((bytes, metadata.modified().ok())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(loader: &mut Loader) -> Vec<LoadEvent> {
        let start = Instant::now();
        let mut events = Vec::new();
        while loader.is_busy() {
            events.extend(loader.poll());
            assert!(start.elapsed() < Duration::from_secs(20), "loading hangs");
            std::thread::sleep(Duration::from_millis(2));
        }
        events
    }

    fn noop() -> Notify {
        Arc::new(|| {})
    }

    #[test]
    fn good_and_bad_files_are_reported_separately() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.tmsnap");
        Snapshot::from_raw_traces(1, [(0, 30, &[("a.py", 2)][..], None)])
            .unwrap()
            .dump(&good)
            .unwrap();
        let bad = dir.path().join("bad.tmsnap");
        std::fs::write(&bad, b"hello world").unwrap();
        let missing = dir.path().join("missing.tmsnap");
        let mut loader = Loader::default();
        loader
            .start(
                vec![
                    LoadSource::Path(bad.clone()),
                    LoadSource::Path(good.clone()),
                    LoadSource::Path(missing.clone()),
                    LoadSource::Path(dir.path().to_owned()),
                ],
                LoadOptions::default(),
                noop(),
            )
            .unwrap();
        let events = wait(&mut loader);
        let mut loaded = Vec::new();
        let mut failed = Vec::new();
        for e in events {
            match e {
                LoadEvent::Loaded(l) => loaded.push(l),
                LoadEvent::Failed { name, message } => failed.push((name, message)),
                LoadEvent::Finished => unreachable!("poll keeps Finished"),
            }
        }
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].origin, Origin::File(good));
        assert_eq!(loaded[0].info.total.size, 30);
        assert!(loaded[0].info.modified.is_some());
        assert_eq!(failed.len(), 3);
        assert_eq!(failed[0].0, "bad.tmsnap");
        assert!(
            failed[0]
                .1
                .starts_with(&format!("{}: not a snapshot file", bad.display())),
            "{}",
            failed[0].1
        );
        assert!(failed[1].1.contains("cannot read"), "{}", failed[1].1);
        assert!(failed[2].1.contains("is a folder"), "{}", failed[2].1);
    }

    #[test]
    fn folders_open_their_snapshots_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        let snap = |size| Snapshot::from_raw_traces(1, [(0, size, &[("a.py", 2)][..], None)]);
        snap(20)
            .unwrap()
            .dump(dir.path().join("s-0002.tmsnap"))
            .unwrap();
        snap(10)
            .unwrap()
            .dump(dir.path().join("s-0001.TMSNAP"))
            .unwrap();
        // Not snapshots: a hidden temporary file, notes, another JSON, a folder.
        snap(30)
            .unwrap()
            .dump(dir.path().join(".s-0003.tmsnap.1.tmp"))
            .unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        std::fs::write(dir.path().join("other.json"), b"{\"a\": 1}").unwrap();
        std::fs::create_dir(dir.path().join("sub.tmsnap")).unwrap();
        // A DHAT profile is one, whatever its name.
        let dhat = include_bytes!("../../../format/tests/data/dhat/valgrind-dhat.json");
        std::fs::write(dir.path().join("dhat-out.json"), dhat).unwrap();
        let names: Vec<String> = snapshot_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| super::super::display_text::file_name(p))
            .collect();
        assert_eq!(names, ["dhat-out.json", "s-0001.TMSNAP", "s-0002.tmsnap"]);

        let empty = tempfile::tempdir().unwrap();
        let mut loader = Loader::default();
        let options = LoadOptions {
            dhat_point: tracemalloc_format::dhat::DhatPoint::End,
        };
        loader
            .start(
                vec![
                    LoadSource::Folder(dir.path().to_owned()),
                    LoadSource::Folder(empty.path().to_owned()),
                ],
                options,
                noop(),
            )
            .unwrap();
        let mut sizes = Vec::new();
        let mut failures = Vec::new();
        for event in wait(&mut loader) {
            match event {
                LoadEvent::Loaded(l) => sizes.push((l.info.total.size, l.info.dhat_point)),
                LoadEvent::Failed { message, .. } => failures.push(message),
                LoadEvent::Finished => {}
            }
        }
        assert_eq!(
            sizes,
            [
                (3000, Some(tracemalloc_format::dhat::DhatPoint::End)),
                (10, None),
                (20, None)
            ]
        );
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0]
                .ends_with("no snapshot in this folder (.tmsnap, .pickle, .pkl or DHAT .json)")
        );
    }

    #[test]
    fn cancelled_requests_report_nothing() {
        let mut loader = Loader::default();
        let bytes: Arc<[u8]> = Arc::from(
            Snapshot::from_raw_traces(1, [(0, 30, &[("a.py", 2)][..], None)])
                .unwrap()
                .to_tmsnap_bytes(),
        );
        loader
            .start(
                vec![LoadSource::Bytes {
                    origin: Origin::Dropped("x.tmsnap".into()),
                    bytes,
                }],
                LoadOptions::default(),
                noop(),
            )
            .unwrap();
        assert!(loader.is_busy());
        loader.cancel_all();
        assert!(!loader.is_busy());
        assert!(loader.poll().is_empty());
    }
}
