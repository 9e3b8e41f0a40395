//! Exports: the table as CSV, the traceback tree as folded stacks (the
//! input of flamegraph.pl and inferno) and the shown snapshot as a pprof
//! heap profile, written by `tracemalloc_format::export` and
//! `tracemalloc_format::pprof` on a background thread ("export"), so that a
//! million rows never stall a frame. Files are replaced atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError, channel};

use anyhow::{Context as _, Result};
use tracemalloc_format::export::{write_csv, write_folded, write_folded_diff};
use tracemalloc_format::flame::{FlameTree, FlameWeight};
use tracemalloc_format::pipeline;
use tracemalloc_format::pprof;
use tracemalloc_format::rows::View;
use tracemalloc_format::{Metric, Snapshot, TraceFilter, write_atomically};

use super::loader::Notify;

/// What can be exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExportKind {
    /// The table's rows, in the shown order, as CSV.
    TableCsv,
    /// The traceback tree as folded stacks; two columns (old, new) when
    /// comparing.
    FoldedStacks,
    /// The shown snapshot (filtered, std frames hidden as shown) as a
    /// pprof heap profile.
    Pprof,
}

impl ExportKind {
    /// The save dialog's title.
    pub fn title(self) -> &'static str {
        match self {
            ExportKind::TableCsv => "Export the table as CSV",
            ExportKind::FoldedStacks => "Export the flame graph as folded stacks",
            ExportKind::Pprof => "Export the snapshot as a pprof profile",
        }
    }

    /// The file name the save dialog proposes.
    pub fn default_file_name(self) -> &'static str {
        match self {
            ExportKind::TableCsv => "table.csv",
            ExportKind::FoldedStacks => "stacks.folded",
            ExportKind::Pprof => "heap.pb.gz",
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            ExportKind::TableCsv => "csv",
            ExportKind::FoldedStacks => "folded",
            // Dialogs match the last extension: `heap.pb.gz`.
            ExportKind::Pprof => "gz",
        }
    }

    /// The save dialog's filter name.
    pub fn filter_name(self) -> &'static str {
        match self {
            ExportKind::TableCsv => "CSV (.csv)",
            ExportKind::FoldedStacks => "Folded stacks (.folded)",
            ExportKind::Pprof => "pprof profile (.pb.gz)",
        }
    }
}

/// A snapshot to export a tree of.
#[derive(Clone, Debug)]
pub struct TreeInput {
    /// The snapshot, as loaded.
    pub snapshot: Arc<Snapshot>,
    /// Whether hiding std frames changes it.
    pub has_untrimmed_frames: bool,
}

/// The data of an export, taken from what the window shows.
#[derive(Clone, Debug)]
pub enum ExportJob {
    /// The table's rows.
    Csv {
        /// The rows.
        view: Arc<View>,
        /// The shown order (sorted, searched).
        order: Arc<Vec<u32>>,
    },
    /// The traceback tree of the shown snapshot under the shown filters,
    /// and of the compared one.
    Folded {
        /// The shown snapshot.
        new: TreeInput,
        /// The compared snapshot.
        old: Option<TreeInput>,
        /// Hide the standard library's frames, as the window does.
        hide_std_frames: bool,
        /// The filters.
        filters: Vec<TraceFilter>,
        /// The metric the flame graph shows.
        metric: Metric,
        /// Bytes or blocks.
        weight: FlameWeight,
    },
    /// The shown snapshot under the shown filters as a pprof profile
    /// (gzipped unless the file name ends in `.pb`).
    Pprof {
        /// The shown snapshot.
        snapshot: TreeInput,
        /// Hide the standard library's frames, as the window does.
        hide_std_frames: bool,
        /// The filters.
        filters: Vec<TraceFilter>,
    },
}

/// The exports being written.
#[derive(Debug, Default)]
pub struct Exports {
    pending: Vec<Receiver<Result<String, String>>>,
}

impl Exports {
    /// Writes `job` to `path` on a new thread; the outcome arrives through
    /// [`Exports::poll`].
    pub fn start(&mut self, job: ExportJob, path: PathBuf, notify: Notify) -> Result<()> {
        let (tx, rx) = channel();
        std::thread::Builder::new()
            .name("export".to_owned())
            .spawn(move || {
                let outcome = run(&job, &path).map_err(|e| format!("{e:#}"));
                let _ = tx.send(outcome);
                notify();
            })
            .context("cannot start a thread to export")?;
        self.pending.push(rx);
        Ok(())
    }

    /// Whether an export is being written.
    pub fn is_busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The outcomes that arrived: what was saved, or why not.
    pub fn poll(&mut self) -> Vec<Result<String, String>> {
        let mut out = Vec::new();
        self.pending.retain(|rx| match rx.try_recv() {
            Ok(outcome) => {
                out.push(outcome);
                false
            }
            Err(TryRecvError::Empty) => true,
            Err(TryRecvError::Disconnected) => {
                out.push(Err("the export stopped unexpectedly".to_owned()));
                false
            }
        });
        out
    }
}

/// A snapshot as the window shows it: std frames hidden, filtered.
fn prepared(input: &TreeInput, hide: bool, filters: &[TraceFilter]) -> Result<Arc<Snapshot>> {
    let hide = hide && input.has_untrimmed_frames;
    Ok(pipeline::prepare(&input.snapshot, hide, filters)?)
}

/// Writes an export; returns what the status bar says.
pub fn run(job: &ExportJob, path: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    let what = match job {
        ExportJob::Csv { view, order } => {
            write_csv(view, order, &mut bytes)?;
            super::display_text::count_of(order.len() as u64, "row", "rows")
        }
        ExportJob::Folded {
            new,
            old,
            hide_std_frames,
            filters,
            metric,
            weight,
        } => {
            let new = prepared(new, *hide_std_frames, filters)?;
            let new_tree = FlameTree::new_by(&new, None, *metric, *weight)?;
            match old {
                Some(old) => {
                    let old = prepared(old, *hide_std_frames, filters)?;
                    let old_tree = FlameTree::new_by(&old, None, *metric, *weight)?;
                    write_folded_diff(&old_tree, &new_tree, &mut bytes)?;
                    "differential folded stacks (old, new)".to_owned()
                }
                None => {
                    write_folded(&new_tree, &mut bytes)?;
                    "folded stacks".to_owned()
                }
            }
        }
        ExportJob::Pprof {
            snapshot,
            hide_std_frames,
            filters,
        } => {
            let snapshot = prepared(snapshot, *hide_std_frames, filters)?;
            bytes = pprof::to_bytes(&snapshot, pprof::Encoding::for_path(path))
                .context("cannot encode the pprof profile")?;
            "pprof profile".to_owned()
        }
    };
    write_atomically(path, &bytes).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(format!("Saved {what} to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemalloc_format::KeyType;
    use tracemalloc_format::rows::Grouping;

    #[test]
    fn exports_write_what_the_window_shows() {
        let dir = tempfile::tempdir().unwrap();
        let new = Snapshot::from_raw_traces(
            5,
            [
                (0, 64, &[("leak.py", 9), ("main.py", 1)][..], None),
                (0, 8, &[("io.py", 2), ("main.py", 1)][..], None),
            ],
        )
        .unwrap();
        let view = Arc::new(View::plain(
            &Grouping::new(&new, KeyType::Lineno, false).unwrap(),
        ));
        let csv = dir.path().join("t.csv");
        let said = run(
            &ExportJob::Csv {
                view,
                order: Arc::new(vec![1]),
            },
            &csv,
        )
        .unwrap();
        assert_eq!(said, format!("Saved 1 row to {}", csv.display()));
        assert_eq!(
            std::fs::read_to_string(&csv).unwrap(),
            "source,filename,lineno,function,size,count,average\nio.py:2,io.py,2,,8,1,8.0\n"
        );

        let folded = dir.path().join("s.folded");
        let input = TreeInput {
            snapshot: Arc::new(new),
            has_untrimmed_frames: false,
        };
        run(
            &ExportJob::Folded {
                new: input.clone(),
                old: Some(input.clone()),
                hide_std_frames: true,
                filters: vec![tracemalloc_format::Filter::new(false, "io.py").into()],
                metric: Metric::Live,
                weight: FlameWeight::Bytes,
            },
            &folded,
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(&folded).unwrap(),
            "main.py:1;leak.py:9 64 64\n"
        );

        let profile = dir.path().join("heap.pb");
        let said = run(
            &ExportJob::Pprof {
                snapshot: input.clone(),
                hide_std_frames: true,
                filters: vec![tracemalloc_format::Filter::new(false, "io.py").into()],
            },
            &profile,
        )
        .unwrap();
        assert_eq!(
            said,
            format!("Saved pprof profile to {}", profile.display())
        );
        let filtered = input
            .snapshot
            .filter_traces(&[tracemalloc_format::Filter::new(false, "io.py").into()]);
        assert_eq!(
            std::fs::read(&profile).unwrap(),
            pprof::to_bytes(&filtered, pprof::Encoding::Plain).unwrap()
        );
        let err = run(
            &ExportJob::Csv {
                view: Arc::new(View::plain(
                    &Grouping::new(
                        &Snapshot::from_raw_traces(1, []).unwrap(),
                        KeyType::Lineno,
                        false,
                    )
                    .unwrap(),
                )),
                order: Arc::new(Vec::new()),
            },
            &dir.path().join("missing/x.csv"),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("cannot write"), "{err:#}");
    }
}
