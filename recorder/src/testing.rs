//! Heap assertions for tests, what dhat-rs's testing mode is used for:
//! measure a piece of code (the blocks and bytes it allocated, its peak,
//! what it left live) and assert on it, with the allocating lines in the
//! failure message.
//!
//! ```no_run
//! // tests/heap.rs: a test binary of its own, with the allocator installed.
//! #[global_allocator]
//! static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();
//!
//! #[test]
//! fn parsing_allocates_little() {
//!     let heap = tracemalloc::testing::measure(|| {
//!         let words: Vec<String> = "a b c".split(' ').map(str::to_owned).collect();
//!         words.len()
//!     })
//!     .unwrap();
//!     assert_eq!(heap.value, 3);
//!     heap.assert_allocations_at_most(4);
//!     heap.assert_peak_at_most(1024);
//!     heap.assert_nothing_left_live();
//! }
//! ```
//!
//! A measurement is a tracing session of its own: [`measure`] starts
//! tracing with history, runs the code, takes a snapshot and stops. Every
//! thread's allocations during the code count, so a test binary that
//! measures should hold one test, or run its tests with
//! `--test-threads=1`, as dhat-rs asks too.

use std::fmt::Write as _;

use tracemalloc_format::{KeyType, Metric, Snapshot, Statistic, format_size};

use crate::Error;

/// How many allocating lines a failure message lists.
const TOP_LINES: usize = 5;

/// What a measured piece of code did to the heap (see [`measure`]).
#[derive(Debug)]
pub struct HeapMeasurement<R> {
    /// What the code returned.
    pub value: R,
    /// Blocks allocated while it ran (a realloc counts as one more, as
    /// the allocation history counts it).
    pub allocations: u64,
    /// Bytes allocated while it ran.
    pub allocated_bytes: u64,
    /// The highest traced memory while it ran, in bytes.
    pub peak_bytes: u64,
    /// Blocks it allocated that were still live when it returned (the
    /// returned value's own blocks among them).
    pub live_blocks: u64,
    /// Their bytes.
    pub live_bytes: u64,
    /// The snapshot taken when the code returned, with its allocation
    /// history: the source of the failure messages, and of any other
    /// question (`snapshot.statistics_by(..)`).
    pub snapshot: Snapshot,
}

/// Runs `code` in a tracing session of its own (16 frames, allocation
/// history on) and measures what it allocated.
///
/// Fails with [`Error::AlreadyTracing`] if tracing is on already: the
/// measurement would clear the running session's traces.
pub fn measure<R>(code: impl FnOnce() -> R) -> Result<HeapMeasurement<R>, Error> {
    if crate::is_tracing() {
        return Err(Error::AlreadyTracing);
    }
    crate::Config::new(16).history(true).start()?;
    let value = code();
    let (_, peak_bytes) = crate::get_traced_memory();
    let snapshot = crate::take_snapshot();
    crate::stop();
    let snapshot = snapshot?;
    let live = snapshot.totals();
    let allocated = snapshot.totals_by(Metric::Allocated)?;
    Ok(HeapMeasurement {
        value,
        allocations: allocated.count,
        allocated_bytes: allocated.size,
        peak_bytes,
        live_blocks: live.count,
        live_bytes: live.size,
        snapshot,
    })
}

impl<R> HeapMeasurement<R> {
    /// # Panics
    /// If the code allocated more than `max` blocks; the message lists the
    /// lines that allocated most often.
    #[track_caller]
    pub fn assert_allocations_at_most(&self, max: u64) {
        if self.allocations > max {
            panic!(
                "{} allocations, expected at most {max}\n{}",
                self.allocations,
                self.top_lines(Metric::Allocated, true)
            );
        }
    }

    /// # Panics
    /// If the code allocated more than `max` bytes; the message lists the
    /// lines that allocated the most bytes.
    #[track_caller]
    pub fn assert_allocated_bytes_at_most(&self, max: u64) {
        if self.allocated_bytes > max {
            panic!(
                "{} allocated, expected at most {}\n{}",
                size(self.allocated_bytes),
                size(max),
                self.top_lines(Metric::Allocated, false)
            );
        }
    }

    /// # Panics
    /// If the heap's peak while the code ran passed `max` bytes; the
    /// message lists what was live at the peak.
    #[track_caller]
    pub fn assert_peak_at_most(&self, max: u64) {
        if self.peak_bytes > max {
            panic!(
                "the peak was {}, expected at most {}\n{}",
                size(self.peak_bytes),
                size(max),
                self.top_lines(Metric::Peak, false)
            );
        }
    }

    /// # Panics
    /// If more than `max` bytes the code allocated were live when it
    /// returned; the message lists where they were allocated.
    #[track_caller]
    pub fn assert_live_at_most(&self, max: u64) {
        if self.live_bytes > max {
            panic!(
                "{} in {} blocks stayed live, expected at most {}\n{}",
                size(self.live_bytes),
                self.live_blocks,
                size(max),
                self.top_lines(Metric::Live, false)
            );
        }
    }

    /// # Panics
    /// If any block the code allocated was live when it returned (a value
    /// that owns heap memory counts: drop it inside the code to measure
    /// leaks only).
    #[track_caller]
    pub fn assert_nothing_left_live(&self) {
        self.assert_live_at_most(0);
    }

    /// The top lines by `metric`, ranked by blocks or by bytes, one per
    /// line of text, under a title.
    fn top_lines(&self, metric: Metric, by_count: bool) -> String {
        let mut out = match metric {
            Metric::Live => "Where the live blocks were allocated:\n".to_owned(),
            Metric::Peak => "What was live at the peak:\n".to_owned(),
            _ if by_count => "The lines that allocated most often:\n".to_owned(),
            _ => "The lines that allocated the most bytes:\n".to_owned(),
        };
        let stats = self.snapshot.statistics_by(metric, KeyType::Lineno, false);
        let mut stats = match stats {
            Ok(stats) => stats,
            Err(e) => return format!("{out}  ({e})\n"),
        };
        if by_count {
            stats.sort_by(Statistic::cmp_by_count);
        }
        for (i, stat) in stats.iter().take(TOP_LINES).enumerate() {
            let function = stat
                .traceback
                .most_recent()
                .and_then(|f| f.function.as_deref())
                .map_or(String::new(), |f| format!(" ({f})"));
            // Writing to a String cannot fail.
            let _ = writeln!(out, "  #{}: {stat}{function}", i + 1);
        }
        if stats.len() > TOP_LINES {
            let _ = writeln!(out, "  ... {} more lines", stats.len() - TOP_LINES);
        }
        out
    }
}

fn size(bytes: u64) -> String {
    format_size(bytes as f64, false)
}
