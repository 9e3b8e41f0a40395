//! The first steps from a snapshot to the rows shown, in the one order
//! that the viewer (table, flame graph, timeline, exports) and the command
//! line use: hide the standard library's frames, then filter. Grouping
//! follows ([`crate::rows::Grouping`], which the table joins and
//! [`crate::timeline::Timeline`] merges; [`Snapshot::statistics`]), and a
//! top list's left-out rows add up to [`Others`].
//!
//! Hiding comes first because filters match file names: a filter on
//! `*/src/cache.rs` must see the user's frame that a recording with every
//! frame kept buries under `alloc::vec` frames.
//!
//! ```
//! use std::sync::Arc;
//! use tracemalloc_format::{Filter, Snapshot, pipeline};
//!
//! let s = Arc::new(Snapshot::from_raw_traces(
//!     1,
//!     [(0, 30, &[("a.py", 2)][..], None), (0, 66, &[("b.py", 1)][..], None)],
//! )?);
//! let shown = pipeline::prepare(&s, false, &[Filter::new(true, "a.*").into()])?;
//! assert_eq!(shown.totals().size, 30);
//! // Without filters nor frames to hide, the snapshot itself is used.
//! assert!(Arc::ptr_eq(&pipeline::prepare(&s, false, &[])?, &s));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

use crate::filter::TraceFilter;
use crate::model::{BuildError, Snapshot};
use crate::stats::{Statistic, StatisticDiff};

/// Why the standard library's frames could not be hidden (the trimmed
/// snapshot would not fit the tables' limits).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot hide the standard library's and the recorder's frames: {0}")]
pub struct HideFramesError(pub BuildError);

/// Step one: the snapshot without the Rust standard library's, the
/// recorder's and the allocator shims' frames
/// ([`Snapshot::with_default_trim`]).
pub fn hide_std_frames(snapshot: &Snapshot) -> Result<Snapshot, HideFramesError> {
    snapshot.with_default_trim().map_err(HideFramesError)
}

/// Step two: the traces the filters keep, with CPython's semantics
/// ([`Snapshot::filter_traces`]). Without filters it is `snapshot` itself,
/// not a copy of its trace list.
pub fn filtered(snapshot: Arc<Snapshot>, filters: &[TraceFilter]) -> Arc<Snapshot> {
    if filters.is_empty() {
        snapshot
    } else {
        Arc::new(snapshot.filter_traces(filters))
    }
}

/// Both steps: the snapshot as the viewer shows it, ready to group. `hide`
/// is whether to hide the standard library's frames; pass `false` when
/// the snapshot has none ([`Snapshot::has_untrimmed_frames`], known from
/// loading) to skip a copy.
pub fn prepare(
    snapshot: &Arc<Snapshot>,
    hide: bool,
    filters: &[TraceFilter],
) -> Result<Arc<Snapshot>, HideFramesError> {
    let source = if hide {
        Arc::new(hide_std_frames(snapshot)?)
    } else {
        Arc::clone(snapshot)
    };
    Ok(filtered(source, filters))
}

/// The rows a top list leaves out, added up: the "N other" line under
/// tracemalloc's "Top 10" display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Others {
    /// How many rows are left out.
    pub rows: usize,
    /// Their bytes.
    pub size: u64,
    /// Their blocks.
    pub count: u64,
    /// Their change in bytes (zero without a comparison).
    pub size_diff: i64,
    /// Their change in blocks (zero without a comparison).
    pub count_diff: i64,
}

impl Others {
    /// The statistics after the first `shown`.
    pub fn of_statistics(stats: &[Statistic], shown: usize) -> Others {
        let rest = stats.get(shown..).unwrap_or_default();
        Others {
            rows: rest.len(),
            size: rest.iter().map(|s| s.size).sum(),
            count: rest.iter().map(|s| s.count).sum(),
            size_diff: 0,
            count_diff: 0,
        }
    }

    /// The differences after the first `shown`.
    pub fn of_diffs(diffs: &[StatisticDiff], shown: usize) -> Others {
        let rest = diffs.get(shown..).unwrap_or_default();
        Others {
            rows: rest.len(),
            size: rest.iter().map(|d| d.size).sum(),
            count: rest.iter().map(|d| d.count).sum(),
            size_diff: rest.iter().map(|d| d.size_diff).sum(),
            count_diff: rest.iter().map(|d| d.count_diff).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Filter, KeyType, Metadata, SnapshotBuilder};

    /// A block allocated through `Vec::push` in `src/cache.rs`, and one in
    /// `src/main.rs` directly, as a recording that keeps std frames has them.
    fn recorded_with_std_frames() -> Arc<Snapshot> {
        let mut b = SnapshotBuilder::new(8);
        let push = b
            .intern_frame(
                "/rustc/0123/library/alloc/src/vec/mod.rs",
                2430,
                Some("alloc::vec::Vec<T,A>::push"),
            )
            .unwrap();
        let put = b
            .intern_frame("src/cache.rs", 8, Some("app::cache::put"))
            .unwrap();
        let main = b.intern_frame("src/main.rs", 3, Some("app::main")).unwrap();
        let leak = b.intern_traceback(&[push, put, main], None).unwrap();
        let direct = b.intern_traceback(&[main], None).unwrap();
        b.push_trace(0, 100, leak).unwrap();
        b.push_trace(0, 7, direct).unwrap();
        Arc::new(b.finish(Metadata::default()))
    }

    #[test]
    fn frames_are_hidden_before_filtering() {
        let s = recorded_with_std_frames();
        assert!(s.has_untrimmed_frames());
        // The filter sees the user's frame only once std frames are hidden.
        let cache: Vec<TraceFilter> = vec![Filter::new(true, "src/cache.rs").into()];
        assert_eq!(prepare(&s, false, &cache).unwrap().totals().size, 0);
        let shown = prepare(&s, true, &cache).unwrap();
        assert_eq!(shown.totals().size, 100);
        let top = shown.statistics(KeyType::Lineno, false).unwrap();
        assert_eq!(
            top[0].to_string(),
            "src/cache.rs:8: size=100 B, count=1, average=100 B"
        );
        // Hiding alone keeps every trace.
        assert_eq!(prepare(&s, true, &[]).unwrap().totals().size, 107);
    }

    #[test]
    fn others_add_up_what_a_top_list_leaves_out() {
        let new = Snapshot::from_raw_traces(
            1,
            [
                (0, 50, &[("a.py", 1)][..], None),
                (0, 20, &[("b.py", 1)][..], None),
                (0, 5, &[("c.py", 1)][..], None),
                (0, 5, &[("c.py", 1)][..], None),
            ],
        )
        .unwrap();
        let old = Snapshot::from_raw_traces(1, [(0, 30, &[("b.py", 1)][..], None)]).unwrap();
        let stats = new.statistics(KeyType::Lineno, false).unwrap();
        assert_eq!(
            Others::of_statistics(&stats, 1),
            Others {
                rows: 2,
                size: 30,
                count: 3,
                ..Others::default()
            }
        );
        assert_eq!(Others::of_statistics(&stats, 10), Others::default());
        let diffs = new.compare_to(&old, KeyType::Lineno, false).unwrap();
        // a.py +50, c.py +10, b.py -10 (20 now, 30 before).
        assert_eq!(
            Others::of_diffs(&diffs, 1),
            Others {
                rows: 2,
                size: 30,
                count: 3,
                size_diff: 0,
                count_diff: 2,
            }
        );
    }
}
