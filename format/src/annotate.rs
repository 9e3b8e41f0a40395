//! A source file annotated with memory: for every line, the bytes and
//! blocks allocated *at* it (the line is the traceback's most recent
//! frame) and *through* it (the line is any frame of the traceback, as in
//! cumulative mode), with the differences to an older snapshot when
//! comparing. tracemallocqt's "annotate the source code" item.
//!
//! Both come from `lineno` views ([`View`]): the table's own computation,
//! so a line's numbers are exactly its row's.
//!
//! ```
//! use tracemalloc_format::{KeyType, Snapshot};
//! use tracemalloc_format::annotate::FileAnnotation;
//! use tracemalloc_format::rows::{Grouping, View};
//!
//! let s = Snapshot::from_raw_traces(
//!     5,
//!     [
//!         (0, 64, &[("app.py", 7), ("main.py", 2)][..], None),
//!         (0, 36, &[("app.py", 9), ("app.py", 3)][..], None),
//!     ],
//! )?;
//! let here = View::plain(&Grouping::new(&s, KeyType::Lineno, false)?);
//! let through = View::plain(&Grouping::new(&s, KeyType::Lineno, true)?);
//! let app = FileAnnotation::new(&here, &through, "app.py");
//! assert_eq!(app.line(7).map(|l| l.here.size), Some(64));
//! assert_eq!(app.line(3).map(|l| (l.here.size, l.through.size)), Some((0, 36)));
//! assert_eq!(app.here_total().size, 100);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::rows::{View, ViewRow};
use crate::stats::{KeyType, Metric};

/// A line's (or a file's) memory in the shown snapshot, and its
/// differences to the compared one (zero when not comparing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineMemory {
    /// Bytes.
    pub size: u64,
    /// Blocks.
    pub count: u64,
    /// Bytes minus the old snapshot's.
    pub size_diff: i64,
    /// Blocks minus the old snapshot's.
    pub count_diff: i64,
}

impl LineMemory {
    fn of(row: &ViewRow) -> LineMemory {
        LineMemory {
            size: row.size,
            count: row.count,
            size_diff: row.size_diff,
            count_diff: row.count_diff,
        }
    }

    fn add(&mut self, other: LineMemory) {
        self.size += other.size;
        self.count += other.count;
        self.size_diff = self.size_diff.saturating_add(other.size_diff);
        self.count_diff = self.count_diff.saturating_add(other.count_diff);
    }

    /// Whether nothing is allocated and nothing changed.
    pub fn is_empty(&self) -> bool {
        self.size == 0 && self.count == 0 && self.size_diff == 0 && self.count_diff == 0
    }
}

/// One annotated line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineAnnotation {
    /// The line number (1-based; 0 for frames whose line is unknown).
    pub lineno: u32,
    /// Allocated at this line: it is the most recent frame.
    pub here: LineMemory,
    /// Allocated through this line: it is any frame (each block once).
    pub through: LineMemory,
}

/// A file's annotated lines (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileAnnotation {
    filename: String,
    metric: Metric,
    comparison: bool,
    /// Sorted by line number.
    lines: Vec<LineAnnotation>,
    here_total: LineMemory,
    max_here: u64,
}

impl FileAnnotation {
    /// The lines of `filename` (as the snapshot records it) from a
    /// non-cumulative `lineno` view (`here`) and a cumulative one
    /// (`through`) of the same snapshots. Lines with no memory in either
    /// view are left out. The amounts are the views' metric
    /// ([`Grouping::new_by`](crate::rows::Grouping::new_by)): bytes
    /// allocated, temporary or at the peak at each line, when the views
    /// were grouped by such a metric.
    ///
    /// # Panics
    /// If the views are not `lineno` views, non-cumulative and cumulative,
    /// both comparisons or both not, of the same metric.
    pub fn new(here: &View, through: &View, filename: &str) -> FileAnnotation {
        assert!(
            here.metric() == through.metric()
                && here.key_type() == KeyType::Lineno
                && through.key_type() == KeyType::Lineno
                && !here.cumulative()
                && through.cumulative()
                && here.is_comparison() == through.is_comparison(),
            "a file is annotated from a plain and a cumulative lineno view"
        );
        let mut lines: Vec<LineAnnotation> = Vec::new();
        let mut here_total = LineMemory::default();
        for (view, is_here) in [(here, true), (through, false)] {
            for (i, row) in view.rows().iter().enumerate() {
                let Some(frame) = view.frames(i).next() else {
                    continue;
                };
                if frame.filename != filename {
                    continue;
                }
                let memory = LineMemory::of(row);
                if memory.is_empty() {
                    continue;
                }
                lines.push(LineAnnotation {
                    lineno: frame.lineno,
                    here: if is_here {
                        memory
                    } else {
                        LineMemory::default()
                    },
                    through: if is_here {
                        LineMemory::default()
                    } else {
                        memory
                    },
                });
                if is_here {
                    here_total.add(memory);
                }
            }
        }
        // One entry per line: a line's `here` and `through` rows merge.
        lines.sort_by_key(|l| l.lineno);
        let mut merged: Vec<LineAnnotation> = Vec::with_capacity(lines.len());
        for line in lines {
            match merged.last_mut() {
                Some(last) if last.lineno == line.lineno => {
                    last.here.add(line.here);
                    last.through.add(line.through);
                }
                _ => merged.push(line),
            }
        }
        let max_here = merged.iter().map(|l| l.here.size).max().unwrap_or(0);
        FileAnnotation {
            filename: filename.to_owned(),
            metric: here.metric(),
            comparison: here.is_comparison(),
            lines: merged,
            here_total,
            max_here,
        }
    }

    /// What the lines' amounts measure.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// The file, as recorded.
    pub fn filename(&self) -> &str {
        &self.filename
    }

    /// Whether the numbers compare two snapshots.
    pub fn is_comparison(&self) -> bool {
        self.comparison
    }

    /// The annotated lines, by line number.
    pub fn lines(&self) -> &[LineAnnotation] {
        &self.lines
    }

    /// A line's annotation, if it has memory.
    pub fn line(&self, lineno: u32) -> Option<&LineAnnotation> {
        self.lines
            .binary_search_by_key(&lineno, |l| l.lineno)
            .ok()
            .map(|i| &self.lines[i])
    }

    /// Everything allocated in the file: the sum of its lines' `here`
    /// (each block has one most recent frame, so nothing counts twice).
    pub fn here_total(&self) -> LineMemory {
        self.here_total
    }

    /// The largest `here` size of any line, to scale a heat colour.
    pub fn max_here_size(&self) -> u64 {
        self.max_here
    }

    /// A line's heat: its `here` size relative to the file's largest, from
    /// 0 to 1.
    pub fn heat(&self, lineno: u32) -> f64 {
        match self.line(lineno) {
            Some(l) if self.max_here > 0 => l.here.size as f64 / self.max_here as f64,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Snapshot;
    use crate::rows::Grouping;

    fn views(new: &Snapshot, old: Option<&Snapshot>) -> (View, View) {
        let view = |cumulative| {
            let g = Grouping::new(new, KeyType::Lineno, cumulative).unwrap();
            match old {
                Some(old) => View::compare(
                    &g,
                    &Grouping::new(old, KeyType::Lineno, cumulative).unwrap(),
                ),
                None => View::plain(&g),
            }
        };
        (view(false), view(true))
    }

    fn snapshot(leak: u64) -> Snapshot {
        Snapshot::from_raw_traces(
            5,
            [
                (
                    0,
                    leak,
                    &[("cache.rs", 8), ("server.rs", 12), ("main.rs", 30)][..],
                    None,
                ),
                (
                    0,
                    1024,
                    &[("server.rs", 20), ("server.rs", 12), ("main.rs", 30)][..],
                    None,
                ),
                (0, 512, &[("config.rs", 5), ("main.rs", 31)][..], None),
                // Recursion: line 12 twice in one traceback counts once.
                (
                    0,
                    10,
                    &[("server.rs", 12), ("server.rs", 12), ("main.rs", 30)][..],
                    None,
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn lines_show_memory_here_and_through() {
        let s = snapshot(4096);
        let (here, through) = views(&s, None);
        let server = FileAnnotation::new(&here, &through, "server.rs");
        let rows: Vec<(u32, u64, u64)> = server
            .lines()
            .iter()
            .map(|l| (l.lineno, l.here.size, l.through.size))
            .collect();
        assert_eq!(rows, [(12, 10, 4096 + 1024 + 10), (20, 1024, 1024)]);
        assert_eq!(server.here_total().size, 1034);
        assert_eq!(server.here_total().count, 2);
        assert_eq!(server.max_here_size(), 1024);
        assert_eq!(server.heat(20), 1.0);
        assert_eq!(server.heat(21), 0.0);
        assert!(server.line(13).is_none());
        assert!(!server.is_comparison());
        assert_eq!(server.filename(), "server.rs");

        let main = FileAnnotation::new(&here, &through, "main.rs");
        assert_eq!(main.here_total().size, 0);
        assert_eq!(main.line(31).map(|l| l.through.size), Some(512));
        assert_eq!(main.heat(31), 0.0);
        assert!(
            FileAnnotation::new(&here, &through, "missing.rs")
                .lines()
                .is_empty()
        );
    }

    #[test]
    fn lines_carry_the_views_metric() {
        use crate::stats::tests::snapshot_with_history;

        let s = snapshot_with_history();
        let view = |metric, cumulative| {
            View::plain(&Grouping::new_by(&s, metric, KeyType::Lineno, cumulative).unwrap())
        };
        let a = FileAnnotation::new(
            &view(Metric::Temporary, false),
            &view(Metric::Temporary, true),
            "a.py",
        );
        assert_eq!(a.metric(), Metric::Temporary);
        let lines: Vec<(u32, u64, u64)> = a
            .lines()
            .iter()
            .map(|l| (l.lineno, l.here.size, l.here.count))
            .collect();
        assert_eq!(lines, [(2, 30, 3), (5, 6400, 100)]);
        let b = FileAnnotation::new(
            &view(Metric::Temporary, false),
            &view(Metric::Temporary, true),
            "b.py",
        );
        assert_eq!(
            b.line(4).map(|l| (l.through.size, l.through.count)),
            Some((6430, 103))
        );
        let live = FileAnnotation::new(
            &view(Metric::Live, false),
            &view(Metric::Live, true),
            "a.py",
        );
        assert_eq!(live.metric(), Metric::Live);
        assert_eq!(live.lines().len(), 1);
    }

    #[test]
    #[should_panic(expected = "a file is annotated from")]
    fn views_of_two_metrics_are_refused() {
        use crate::stats::tests::snapshot_with_history;

        let s = snapshot_with_history();
        let here =
            View::plain(&Grouping::new_by(&s, Metric::Peak, KeyType::Lineno, false).unwrap());
        let through = View::plain(&Grouping::new(&s, KeyType::Lineno, true).unwrap());
        FileAnnotation::new(&here, &through, "a.py");
    }

    #[test]
    fn comparisons_carry_the_differences() {
        let (new, old) = (snapshot(4096), snapshot(1000));
        let (here, through) = views(&new, Some(&old));
        let cache = FileAnnotation::new(&here, &through, "cache.rs");
        assert!(cache.is_comparison());
        let line = cache.line(8).unwrap();
        assert_eq!((line.here.size, line.here.size_diff), (4096, 3096));
        assert_eq!(line.through.size_diff, 3096);
        assert_eq!(cache.here_total().size_diff, 3096);
        // A line that vanished shows its shrinkage.
        let gone = Snapshot::from_raw_traces(5, [(0, 1, &[("other.rs", 1)][..], None)]).unwrap();
        let (here, through) = views(&gone, Some(&old));
        let cache = FileAnnotation::new(&here, &through, "cache.rs");
        assert_eq!(
            cache.line(8).map(|l| (l.here.size, l.here.size_diff)),
            Some((0, -1000))
        );
    }
}
