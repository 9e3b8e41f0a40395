//! The open snapshots and the files that failed to open.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use tracemalloc_format::dhat::DhatPoint;
use tracemalloc_format::{Snapshot, SnapshotKind, Timestamp, Totals};

use super::display_text;

/// Identifies one loaded snapshot. A reload gives the snapshot a new id, so
/// that caches keyed by id never mix old and new data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotId(pub u64);

/// Where a snapshot came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file on disk (command line, dialog, drag-and-drop of a path).
    File(PathBuf),
    /// A snapshot bundled in the binary.
    Demo(&'static str),
    /// Bytes dropped on the window without a path (as on the web).
    Dropped(String),
}

impl Origin {
    /// The name shown for the snapshot: the file name.
    pub fn name(&self) -> String {
        match self {
            Origin::File(path) => display_text::file_name(path),
            Origin::Demo(name) => (*name).to_owned(),
            Origin::Dropped(name) => name.clone(),
        }
    }

    /// The path, for files.
    pub fn path(&self) -> Option<&PathBuf> {
        match self {
            Origin::File(path) => Some(path),
            _ => None,
        }
    }
}

/// What the lists show about a snapshot, computed once when it loads.
#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    /// Total size and blocks.
    pub total: Totals,
    /// Number of traces.
    pub traces: usize,
    /// When it was taken, from the snapshot itself.
    pub timestamp: Option<Timestamp>,
    /// The file's modification time, for snapshots without a timestamp
    /// (CPython pickles).
    pub modified: Option<SystemTime>,
    /// Whether it was recorded with frames a default recording leaves out
    /// (the standard library's, the recorder's), which the viewer can hide.
    pub has_hideable_frames: bool,
    /// The file's format.
    pub kind: SnapshotKind,
    /// For a DHAT profile, the moment it was read at.
    pub dhat_point: Option<DhatPoint>,
}

/// One open snapshot.
#[derive(Clone, Debug)]
pub struct LoadedSnapshot {
    /// Its id.
    pub id: SnapshotId,
    /// Where it came from.
    pub origin: Origin,
    /// The snapshot, shared with the analysis thread.
    pub snapshot: Arc<Snapshot>,
    /// Its summary.
    pub info: SnapshotInfo,
    /// The order it was opened in, the last tie-breaker of the list.
    pub opened: u64,
}

impl LoadedSnapshot {
    /// When the snapshot was taken, as well as is known: its timestamp, or
    /// its file's modification time, in microseconds since the epoch.
    pub fn time_micros(&self) -> Option<i64> {
        self.info.timestamp.map(|t| t.unix_micros).or_else(|| {
            self.info
                .modified
                .map(|m| Timestamp::from_system_time(m).unix_micros)
        })
    }

    /// The snapshot's name: the file's, with the moment read for a DHAT
    /// profile (`dhat-heap.json (t-gmax)`).
    pub fn name(&self) -> String {
        match self.info.dhat_point {
            Some(point) => format!("{} ({point})", self.origin.name()),
            None => self.origin.name(),
        }
    }

    /// When the snapshot was taken, as `2026-11-23 19:41:00`, with
    /// milliseconds when `millis` (snapshots taken within one second).
    pub fn time_text(&self, millis: bool) -> Option<String> {
        let stamp = Timestamp {
            unix_micros: self.time_micros()?,
        }
        .to_string();
        // `2026-11-23T19:41:00.123456Z`.
        let end = if millis { 23 } else { 19 };
        Some(stamp.get(..end).unwrap_or(&stamp).replace('T', " "))
    }

    /// One line for pickers and lists: name, total size, trace count and
    /// time, e.g. `leaky_service-03.tmsnap — 3.2 MiB, 12,345 traces,
    /// 2026-11-23 12:00:03`.
    pub fn label(&self, millis: bool) -> String {
        let mut label = format!(
            "{} — {}, {} traces",
            self.name(),
            display_text::size(self.info.total.size),
            display_text::thousands(self.info.traces as u64)
        );
        if let Some(time) = self.time_text(millis) {
            label.push_str(&format!(", {time}"));
        }
        label
    }
}

/// A file that could not be opened, shown in the window until dismissed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The file's name.
    pub name: String,
    /// The full message: which file, what is wrong.
    pub message: String,
}

/// The open snapshots, sorted by time, and the errors of the last loads.
#[derive(Debug, Default)]
pub struct Session {
    snapshots: Vec<LoadedSnapshot>,
    /// Files that failed to open.
    pub errors: Vec<LoadError>,
    next_id: u64,
    /// Whether the snapshots are the bundled demo.
    pub showing_demo: bool,
}

impl Session {
    /// The snapshots, oldest first: by time, then name, then the order they
    /// were opened in (snapshots without a time come last).
    pub fn snapshots(&self) -> &[LoadedSnapshot] {
        &self.snapshots
    }

    /// A fresh id.
    pub fn next_id(&mut self) -> SnapshotId {
        self.next_id += 1;
        SnapshotId(self.next_id)
    }

    /// Adds a snapshot, or replaces the one with the same path (a reload or
    /// an opened-again file); returns the id it replaced.
    pub fn insert(&mut self, mut loaded: LoadedSnapshot) -> Option<SnapshotId> {
        loaded.opened = self.next_id;
        let replaced = match &loaded.origin {
            Origin::File(_) | Origin::Demo(_) => self
                .snapshots
                .iter()
                .position(|s| s.origin == loaded.origin),
            Origin::Dropped(_) => None,
        };
        let old_id = replaced.map(|i| {
            let old = std::mem::replace(&mut self.snapshots[i], loaded.clone());
            self.snapshots[i].opened = old.opened;
            old.id
        });
        if replaced.is_none() {
            self.snapshots.push(loaded);
        }
        self.sort();
        old_id
    }

    fn sort(&mut self) {
        self.snapshots.sort_by(|a, b| {
            // Snapshots with a time first, by time; then by name; then by
            // the order they were opened in.
            let time = |s: &LoadedSnapshot| (s.time_micros().is_none(), s.time_micros());
            time(a)
                .cmp(&time(b))
                .then_with(|| a.name().cmp(&b.name()))
                .then(a.opened.cmp(&b.opened))
        });
    }

    /// Removes a snapshot.
    pub fn remove(&mut self, id: SnapshotId) {
        self.snapshots.retain(|s| s.id != id);
    }

    /// Removes every snapshot.
    pub fn clear(&mut self) {
        self.snapshots.clear();
        self.showing_demo = false;
    }

    /// The snapshot with this id.
    pub fn get(&self, id: SnapshotId) -> Option<&LoadedSnapshot> {
        self.snapshots.iter().find(|s| s.id == id)
    }

    /// Whether two snapshots were taken within the same second, so that
    /// their times need milliseconds to tell them apart.
    pub fn needs_millis(&self) -> bool {
        let seconds = |s: &LoadedSnapshot| s.time_micros().map(|t| t.div_euclid(1_000_000));
        self.snapshots
            .windows(2)
            .any(|w| seconds(&w[0]).is_some() && seconds(&w[0]) == seconds(&w[1]))
    }

    /// Whether any open snapshot is a DHAT profile.
    pub fn has_dhat(&self) -> bool {
        self.snapshots.iter().any(|s| s.info.dhat_point.is_some())
    }

    /// The position of a snapshot in the time order.
    pub fn position(&self, id: SnapshotId) -> Option<usize> {
        self.snapshots.iter().position(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemalloc_format::Metadata;

    fn loaded(session: &mut Session, name: &str, micros: Option<i64>) -> LoadedSnapshot {
        let snapshot = Snapshot::from_raw_traces(1, [(0, 10, &[("a.py", 1)][..], None)]).unwrap();
        LoadedSnapshot {
            id: session.next_id(),
            origin: Origin::File(PathBuf::from(format!("/tmp/{name}"))),
            snapshot: Arc::new(snapshot),
            info: SnapshotInfo {
                total: Totals {
                    size: 1536,
                    count: 1,
                },
                traces: 1234,
                timestamp: micros.map(|unix_micros| Timestamp { unix_micros }),
                modified: None,
                has_hideable_frames: false,
                kind: SnapshotKind::Tmsnap,
                dhat_point: None,
            },
            opened: 0,
        }
    }

    #[test]
    fn snapshots_are_listed_by_time_then_name() {
        let mut s = Session::default();
        for (name, t) in [
            ("c", Some(30)),
            ("none-b", None),
            ("b", Some(10)),
            ("a", Some(10)),
            ("none-a", None),
        ] {
            let l = loaded(&mut s, name, t);
            s.insert(l);
        }
        let names: Vec<String> = s.snapshots().iter().map(LoadedSnapshot::name).collect();
        assert_eq!(names, ["a", "b", "c", "none-a", "none-b"]);
        let _ = Metadata::default();
    }

    #[test]
    fn reopening_a_file_replaces_it() {
        let mut s = Session::default();
        let first = loaded(&mut s, "a", Some(1));
        let first_id = first.id;
        assert_eq!(s.insert(first), None);
        let again = loaded(&mut s, "a", Some(1));
        let again_id = again.id;
        assert_eq!(s.insert(again), Some(first_id));
        assert_eq!(s.snapshots().len(), 1);
        assert_eq!(s.snapshots()[0].id, again_id);
        assert!(s.get(first_id).is_none());
    }

    #[test]
    fn labels_say_name_size_traces_and_time() {
        let mut s = Session::default();
        let l = loaded(&mut s, "x.tmsnap", Some(1_795_462_860_123_456));
        assert_eq!(
            l.label(false),
            "x.tmsnap — 1536 B, 1,234 traces, 2026-11-23 19:41:00"
        );
        assert_eq!(
            l.label(true),
            "x.tmsnap — 1536 B, 1,234 traces, 2026-11-23 19:41:00.123"
        );
        s.insert(l);
        assert!(!s.needs_millis());
        assert!(!s.has_dhat());
        let other = loaded(&mut s, "y.tmsnap", Some(1_795_462_860_923_456));
        s.insert(other);
        assert!(s.needs_millis());
    }
}
