//! Grouping and comparing snapshots: CPython's `Snapshot.statistics` and
//! `Snapshot.compare_to`, with one deliberate difference (see
//! [`Snapshot::statistics`]).
//!
//! The work is done per traceback, not per trace: the traces' sizes are
//! first summed into their (interned) traceback, and only then are the
//! tracebacks grouped. A million traces over thirty thousand tracebacks thus
//! cost one pass of additions plus thirty thousand key lookups.

use std::cmp::Ordering;
use std::fmt;
use std::ops::AddAssign;
use std::str::FromStr;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::model::{
    Frame, FrameId, HistoryRow, Snapshot, StringId, Tables, Traceback, TracebackId,
};
use crate::size::format_size;

/// How traces are grouped into statistics (CPython's `key_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// By the most recent frame's file (lines reported as 0).
    Filename,
    /// By the most recent frame's file and line.
    Lineno,
    /// By the whole traceback.
    Traceback,
}

impl KeyType {
    /// The name CPython uses: `filename`, `lineno` or `traceback`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Filename => "filename",
            KeyType::Lineno => "lineno",
            KeyType::Traceback => "traceback",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = AnalysisError;

    fn from_str(s: &str) -> Result<KeyType, AnalysisError> {
        match s {
            "filename" => Ok(KeyType::Filename),
            "lineno" => Ok(KeyType::Lineno),
            "traceback" => Ok(KeyType::Traceback),
            other => Err(AnalysisError::UnknownKeyType(other.to_owned())),
        }
    }
}

/// What a statistic measures. [`Metric::Live`] is tracemalloc's: the blocks
/// alive when the snapshot was taken. The others come from the allocation
/// history, which only the tracemalloc-rs recorder writes.
///
/// Each metric has a size (bytes) and a count (blocks), as a statistic has.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Blocks alive at the snapshot, and their bytes.
    #[default]
    Live,
    /// Every block allocated since tracing started, freed or not.
    Allocated,
    /// Temporary blocks: freed by their thread before it allocated again.
    Temporary,
    /// Blocks alive at the peak of traced memory.
    Peak,
}

impl Metric {
    /// Every metric, in the order menus list them.
    pub const ALL: [Metric; 4] = [
        Metric::Live,
        Metric::Allocated,
        Metric::Temporary,
        Metric::Peak,
    ];

    /// The metric's name: `live`, `allocated`, `temporary` or `peak`.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Live => "live",
            Metric::Allocated => "allocated",
            Metric::Temporary => "temporary",
            Metric::Peak => "peak",
        }
    }

    /// Whether the metric needs the snapshot's allocation history.
    pub fn needs_history(self) -> bool {
        self != Metric::Live
    }

    /// The metric's (bytes, blocks) in a row of history; `None` for
    /// [`Metric::Live`], which comes from the traces.
    pub fn of_row(self, row: &HistoryRow) -> Option<(u64, u64)> {
        match self {
            Metric::Live => None,
            Metric::Allocated => Some((row.allocated_bytes, row.allocated_blocks)),
            Metric::Temporary => Some((row.temporary_bytes, row.temporary_blocks)),
            Metric::Peak => Some((row.peak_bytes, row.peak_blocks)),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Metric {
    type Err = AnalysisError;

    fn from_str(s: &str) -> Result<Metric, AnalysisError> {
        Metric::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| AnalysisError::UnknownMetric(s.to_owned()))
    }
}

/// Why an analysis request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnalysisError {
    /// Cumulative statistics need a per-frame key (as in CPython).
    #[error(
        "cumulative mode cannot be used with key type 'traceback' (use 'filename' or 'lineno')"
    )]
    CumulativeTraceback,
    /// Not one of `filename`, `lineno`, `traceback`.
    #[error("unknown key type {0:?} (expected 'filename', 'lineno' or 'traceback')")]
    UnknownKeyType(String),
    /// Not one of `live`, `allocated`, `temporary`, `peak`.
    #[error("unknown metric {0:?} (expected 'live', 'allocated', 'temporary' or 'peak')")]
    UnknownMetric(String),
    /// A history metric asked of a snapshot without allocation history.
    #[error(
        "the metric '{0}' needs an allocation history, which this snapshot does not have \
         (CPython's tracemalloc and .tmsnap version 1 record only the live blocks)"
    )]
    NoHistory(Metric),
}

/// One group of a snapshot: CPython's `tracemalloc.Statistic`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Statistic {
    /// The group's key as a traceback: one frame for `filename` and `lineno`
    /// (line 0 for `filename`), the whole traceback for `traceback`.
    pub traceback: Traceback,
    /// Total size of the group's blocks, in bytes.
    pub size: u64,
    /// Number of blocks.
    pub count: u64,
}

impl Statistic {
    /// Average block size, 0 for an empty group.
    pub fn average(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.size as f64 / self.count as f64
        }
    }

    /// CPython's order: by size, then count, then traceback, largest first.
    pub fn cmp_cpython(&self, other: &Statistic) -> Ordering {
        other
            .size
            .cmp(&self.size)
            .then(other.count.cmp(&self.count))
            .then_with(|| other.traceback.cmp_cpython(&self.traceback))
    }

    /// Most blocks first: by count, then size, then traceback, largest
    /// first. What "allocates most often" and "most temporaries" rank by.
    pub fn cmp_by_count(&self, other: &Statistic) -> Ordering {
        other
            .count
            .cmp(&self.count)
            .then(other.size.cmp(&self.size))
            .then_with(|| other.traceback.cmp_cpython(&self.traceback))
    }
}

impl fmt::Display for Statistic {
    /// As CPython's `Statistic.__str__`: `a.py:2: size=30 B, count=3, average=10 B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: size={}, count={}",
            self.traceback,
            format_size(self.size as f64, false),
            self.count
        )?;
        if self.count != 0 {
            write!(f, ", average={}", format_size(self.average(), false))?;
        }
        Ok(())
    }
}

/// One group compared between two snapshots: CPython's
/// `tracemalloc.StatisticDiff`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatisticDiff {
    /// The group's key, as in [`Statistic::traceback`].
    pub traceback: Traceback,
    /// Size in the new snapshot (0 if the group vanished).
    pub size: u64,
    /// New size minus old size.
    pub size_diff: i64,
    /// Block count in the new snapshot.
    pub count: u64,
    /// New count minus old count.
    pub count_diff: i64,
}

impl StatisticDiff {
    /// Average block size in the new snapshot, 0 for an empty group.
    pub fn average(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.size as f64 / self.count as f64
        }
    }

    /// CPython's order: by |size_diff|, size, |count_diff|, count, then
    /// traceback, largest first.
    pub fn cmp_cpython(&self, other: &StatisticDiff) -> Ordering {
        other
            .size_diff
            .unsigned_abs()
            .cmp(&self.size_diff.unsigned_abs())
            .then(other.size.cmp(&self.size))
            .then(
                other
                    .count_diff
                    .unsigned_abs()
                    .cmp(&self.count_diff.unsigned_abs()),
            )
            .then(other.count.cmp(&self.count))
            .then_with(|| other.traceback.cmp_cpython(&self.traceback))
    }

    /// Largest change in blocks first: by |count_diff|, count,
    /// |size_diff|, size, then traceback, largest first.
    pub fn cmp_by_count(&self, other: &StatisticDiff) -> Ordering {
        other
            .count_diff
            .unsigned_abs()
            .cmp(&self.count_diff.unsigned_abs())
            .then(other.count.cmp(&self.count))
            .then(
                other
                    .size_diff
                    .unsigned_abs()
                    .cmp(&self.size_diff.unsigned_abs()),
            )
            .then(other.size.cmp(&self.size))
            .then_with(|| other.traceback.cmp_cpython(&self.traceback))
    }
}

impl fmt::Display for StatisticDiff {
    /// As CPython's `StatisticDiff.__str__`:
    /// `a.py:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: size={} ({}), count={} ({:+})",
            self.traceback,
            format_size(self.size as f64, false),
            format_size(self.size_diff as f64, true),
            self.count,
            self.count_diff
        )?;
        if self.count != 0 {
            write!(f, ", average={}", format_size(self.average(), false))?;
        }
        Ok(())
    }
}

/// Total size and block count of a snapshot's traces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Totals {
    /// Bytes.
    pub size: u64,
    /// Blocks.
    pub count: u64,
}

impl Totals {
    /// The change from `old` to these totals: (bytes, blocks). Exact: a
    /// snapshot's sizes add up to at most 2^63 - 1 bytes.
    pub fn diff(&self, old: &Totals) -> (i64, i64) {
        (
            self.size as i64 - old.size as i64,
            self.count as i64 - old.count as i64,
        )
    }
}

/// What a group (or a traceback) adds up: bytes and blocks, as integers.
/// Sampled snapshots' estimates are integers too (see
/// [`sampled_amount`]), so every sum is exact and independent of order.
#[derive(Clone, Copy, Default)]
pub(crate) struct Amount {
    size: u64,
    count: u64,
}

impl AddAssign for Amount {
    fn add_assign(&mut self, rhs: Amount) {
        // Snapshots hold at most i64::MAX bytes in all, and history columns
        // add up to at most that (the builder checks), so exact sums cannot
        // overflow; sampled estimates of absurd files could, and saturate
        // rather than wrap.
        self.size = self.size.saturating_add(rhs.size);
        self.count = self.count.saturating_add(rhs.count);
    }
}

impl Amount {
    /// A history row's bytes and blocks by `metric`. Tracebacks whose
    /// blocks the metric does not count (no temporary, none at the peak)
    /// stay empty and so make no group.
    fn of_row(metric: Metric, row: &HistoryRow) -> Amount {
        let (size, count) = metric.of_row(row).unwrap_or_default();
        Amount { size, count }
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub(crate) fn totals(&self) -> Totals {
        Totals {
            size: self.size,
            count: self.count,
        }
    }
}

/// Sampled estimates count blocks in units of `1 / SAMPLED_BLOCK_UNIT`
/// block, so that the fractions of a traceback's blocks add up before they
/// are rounded. The recorder's history counters count in these units too:
/// it calls [`sampled_amount`] and [`blocks_of_units`], so that a snapshot's
/// live estimates and its history round alike.
pub const SAMPLED_BLOCK_UNIT: u64 = 1 << 12;

/// What one sampled block of `size` bytes stands for, in a snapshot
/// sampled with mean `rate`: `(bytes, block units)`.
///
/// Under Poisson sampling by bytes the block was sampled with probability
/// `p = 1 - exp(-size / rate)`, so it stands for `1 / p` blocks and
/// `size / p` bytes (the Horvitz-Thompson estimator, unbiased). The bytes
/// are rounded per block and the blocks to [`SAMPLED_BLOCK_UNIT`]s, exactly
/// as the recorder rounds each sampled event into its traced memory and its
/// history: a traceback's live estimate is then never above what its
/// history says was allocated, and the snapshot's total is the recorder's
/// traced memory (the recorder computes both with this function).
#[inline]
pub fn sampled_amount(size: u64, rate: u64) -> (u64, u64) {
    if size == 0 || rate == 0 {
        return (size, SAMPLED_BLOCK_UNIT);
    }
    let p = -(-(size as f64) / rate as f64).exp_m1();
    if p <= 0.0 {
        return (size, SAMPLED_BLOCK_UNIT);
    }
    // Saturating casts: a weight past u64::MAX cannot come from a real
    // block and mean, and the sums are checked by the caller.
    (
        (size as f64 / p).round() as u64,
        (SAMPLED_BLOCK_UNIT as f64 / p).round() as u64,
    )
}

/// Whole blocks from [`SAMPLED_BLOCK_UNIT`]s, rounded to the nearest (half
/// up): a sampled snapshot's live estimates per traceback, and the
/// recorder's history block counts.
#[inline]
pub fn blocks_of_units(units: u64) -> u64 {
    units / SAMPLED_BLOCK_UNIT + u64::from(units % SAMPLED_BLOCK_UNIT >= SAMPLED_BLOCK_UNIT / 2)
}

/// The key of one group, in the ids of the snapshot it came from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum GroupKey {
    /// `filename` (lineno 0) and `lineno` keys, with the function shown for
    /// the group: the smallest function name among the group's frames, so
    /// the choice does not depend on table order.
    Location {
        filename: StringId,
        lineno: u32,
        function: Option<StringId>,
    },
    /// The first traceback seen with these frames.
    Frames(TracebackId),
}

struct Groups {
    keys: Vec<GroupKey>,
    amounts: Vec<Amount>,
}

impl Snapshot {
    /// Total size and count of the traces (sampling estimates for sampled
    /// snapshots, as the statistics).
    pub fn totals(&self) -> Totals {
        let mut total = Amount::default();
        self.for_each_live(|_, _, amount| total += amount);
        total.totals()
    }

    /// [`Snapshot::totals`] per domain, sorted by domain: estimates for
    /// sampled snapshots, as the totals are.
    pub fn totals_by_domain(&self) -> Vec<(u32, Totals)> {
        let mut domains: std::collections::BTreeMap<u32, Amount> =
            std::collections::BTreeMap::new();
        self.for_each_live(|domain, _, amount| *domains.entry(domain).or_default() += amount);
        domains
            .into_iter()
            .map(|(domain, amount)| (domain, amount.totals()))
            .collect()
    }

    /// Calls `f` with the live amounts every total, statistic and export
    /// adds up: each trace (one block of its size) in an exact snapshot,
    /// each (domain, traceback)'s rounded estimate ([`Snapshot::sampled_rows`])
    /// in a sampled one.
    pub(crate) fn for_each_live(&self, mut f: impl FnMut(u32, TracebackId, Amount)) {
        if self.metadata.sampling_rate.is_some() {
            for ((domain, tb), amount) in self.sampled_rows() {
                f(domain, tb, amount);
            }
        } else {
            for t in &self.traces {
                let amount = Amount {
                    size: t.size,
                    count: 1,
                };
                f(t.domain, t.traceback, amount);
            }
        }
    }

    /// The live estimate of each (domain, traceback) of a sampled snapshot,
    /// sorted by domain then traceback: the sum of its traces'
    /// [`sampled_amount`]s, its blocks rounded to whole blocks. The
    /// recorder's history rows are rounded per (domain, traceback) the same
    /// way, so grouping either gives consistent numbers.
    fn sampled_rows(&self) -> Vec<((u32, TracebackId), Amount)> {
        let rate = self.metadata.sampling_rate.unwrap_or(0);
        let mut sums: FxHashMap<(u32, TracebackId), (u64, u64)> = FxHashMap::default();
        for t in &self.traces {
            let (bytes, units) = sampled_amount(t.size, rate);
            let sum = sums.entry((t.domain, t.traceback)).or_default();
            // Estimates past u64 cannot come from a real recording: saturate
            // rather than wrap.
            sum.0 = sum.0.saturating_add(bytes);
            sum.1 = sum.1.saturating_add(units);
        }
        let mut rows: Vec<((u32, TracebackId), Amount)> = sums
            .into_iter()
            .map(|(key, (bytes, units))| {
                let amount = Amount {
                    size: bytes,
                    count: blocks_of_units(units),
                };
                (key, amount)
            })
            .collect();
        rows.sort_unstable_by_key(|&(key, _)| key);
        rows
    }

    /// Total size and count by `metric`: [`Snapshot::totals`] for
    /// [`Metric::Live`], the history's column sums for the others.
    pub fn totals_by(&self, metric: Metric) -> Result<Totals, AnalysisError> {
        let Some(rows) = self.history_rows(metric)? else {
            return Ok(self.totals());
        };
        let mut total = Amount::default();
        for row in rows {
            total += Amount::of_row(metric, row);
        }
        Ok(total.totals())
    }

    /// The history rows a metric reads: `None` for [`Metric::Live`], an
    /// error when the metric needs a history this snapshot lacks.
    fn history_rows(&self, metric: Metric) -> Result<Option<&[HistoryRow]>, AnalysisError> {
        if !metric.needs_history() {
            return Ok(None);
        }
        match &self.history {
            Some(history) => Ok(Some(&history.rows)),
            None => Err(AnalysisError::NoHistory(metric)),
        }
    }

    /// Statistics grouped by `key_type`, sorted as CPython sorts them
    /// (largest size first; see [`Statistic::cmp_cpython`]).
    ///
    /// `cumulative` counts each block in every frame of its traceback, not
    /// just the most recent one (only with `filename` or `lineno`, as in
    /// CPython).
    ///
    /// Deliberate difference from CPython: in cumulative mode a block counts
    /// **once** per group even when its traceback passes through the same
    /// line (or file) several times, as in recursion. CPython adds it once
    /// per occurrence, which pushes a group past 100% of the total; that is
    /// the bug CPython fixed in its sampling profiler (gh-142374).
    ///
    /// For sampled snapshots sizes and counts are unbiased estimates.
    pub fn statistics(
        &self,
        key_type: KeyType,
        cumulative: bool,
    ) -> Result<Vec<Statistic>, AnalysisError> {
        self.statistics_by(Metric::Live, key_type, cumulative)
    }

    /// [`Snapshot::statistics`] of any metric: the groups' sizes and counts
    /// are the metric's bytes and blocks (allocated, temporary or at the
    /// peak), grouped and sorted exactly as the live blocks are.
    pub fn statistics_by(
        &self,
        metric: Metric,
        key_type: KeyType,
        cumulative: bool,
    ) -> Result<Vec<Statistic>, AnalysisError> {
        check_key(key_type, cumulative)?;
        let per_tb = match self.history_rows(metric)? {
            Some(rows) => self.per_traceback_history(metric, rows),
            None => self.per_traceback(),
        };
        let mut stats = self.materialize(self.group(per_tb, key_type, cumulative));
        stats.sort_by(Statistic::cmp_cpython);
        Ok(stats)
    }

    /// The difference against an older snapshot, grouped by `key_type`:
    /// every group of either snapshot, those that vanished with size 0 and
    /// negative diffs; sorted as CPython sorts them (largest |size_diff|
    /// first; see [`StatisticDiff::cmp_cpython`]).
    ///
    /// Groups are matched by file and line for `filename` and `lineno`, by
    /// every frame (function included) for `traceback`.
    pub fn compare_to(
        &self,
        old: &Snapshot,
        key_type: KeyType,
        cumulative: bool,
    ) -> Result<Vec<StatisticDiff>, AnalysisError> {
        self.compare_to_by(old, Metric::Live, key_type, cumulative)
    }

    /// [`Snapshot::compare_to`] of any metric (see
    /// [`Snapshot::statistics_by`]); both snapshots need a history for a
    /// history metric.
    pub fn compare_to_by(
        &self,
        old: &Snapshot,
        metric: Metric,
        key_type: KeyType,
        cumulative: bool,
    ) -> Result<Vec<StatisticDiff>, AnalysisError> {
        check_key(key_type, cumulative)?;
        self.history_rows(metric)?;
        old.history_rows(metric)?;
        let (new_stats, old_stats) = if self.traces.len() + old.traces.len() >= PARALLEL_MIN_TRACES
        {
            statistics_side_by_side(self, old, metric, key_type, cumulative)?
        } else {
            (
                self.statistics_by(metric, key_type, cumulative)?,
                old.statistics_by(metric, key_type, cumulative)?,
            )
        };
        let mut diffs = diff_statistics(key_type, new_stats, old_stats);
        diffs.sort_by(StatisticDiff::cmp_cpython);
        Ok(diffs)
    }

    /// The groups of [`Snapshot::statistics_by`] before they are
    /// materialized and sorted: each group's key (in this snapshot's ids)
    /// and `metric`'s totals, in table order. The viewer's analysis
    /// (`crate::rows`), the timeline and the flame graph build on this so
    /// that their groups are exactly the statistics' groups.
    pub(crate) fn group_totals_unsorted_by(
        &self,
        metric: Metric,
        key_type: KeyType,
        cumulative: bool,
    ) -> Result<(Vec<GroupKey>, Vec<Totals>), AnalysisError> {
        check_key(key_type, cumulative)?;
        let per_tb = match self.history_rows(metric)? {
            Some(rows) => self.per_traceback_history(metric, rows),
            None => self.per_traceback(),
        };
        let groups = self.group(per_tb, key_type, cumulative);
        let totals = groups.amounts.iter().map(Amount::totals).collect();
        Ok((groups.keys, totals))
    }

    /// Each traceback's summed traces (in a sampled snapshot, its
    /// [`Snapshot::sampled_rows`] estimates).
    fn per_traceback(&self) -> Vec<Amount> {
        let mut per_tb = vec![Amount::default(); self.tables.traceback_count()];
        self.for_each_live(|_, tb, amount| per_tb[tb.index()] += amount);
        per_tb
    }

    /// Each traceback's summed history rows, by `metric`. The rows of a
    /// sampled recording are already estimates, so they add up exactly.
    fn per_traceback_history(&self, metric: Metric, rows: &[HistoryRow]) -> Vec<Amount> {
        let mut per_tb = vec![Amount::default(); self.tables.traceback_count()];
        for row in rows {
            per_tb[row.traceback.index()] += Amount::of_row(metric, row);
        }
        per_tb
    }

    /// Groups per-traceback amounts (indexed by traceback id) by key.
    fn group(&self, per_tb: Vec<Amount>, key_type: KeyType, cumulative: bool) -> Groups {
        let tables = &*self.tables;
        let mut groups = Groups {
            keys: Vec::new(),
            amounts: Vec::new(),
        };
        let used = || {
            tables
                .traceback_ids()
                .filter(|tb| !per_tb[tb.index()].is_empty())
        };
        match key_type {
            KeyType::Traceback => {
                let mut index: FxHashMap<&[FrameId], usize> = FxHashMap::default();
                for tb in used() {
                    let g = *index.entry(tables.traceback_frames(tb)).or_insert_with(|| {
                        groups.keys.push(GroupKey::Frames(tb));
                        groups.amounts.push(Amount::default());
                        groups.keys.len() - 1
                    });
                    groups.amounts[g] += per_tb[tb.index()];
                }
            }
            KeyType::Filename | KeyType::Lineno => {
                let mut locations = LocationKeys::new(tables, key_type);
                // In cumulative mode, `stamp[g]` is the last traceback that
                // added to group g, so a traceback adds to each group once.
                let mut stamp: Vec<u32> = Vec::new();
                for tb in used() {
                    let amount = per_tb[tb.index()];
                    let frames = tables.traceback_frames(tb);
                    let frames = if cumulative {
                        frames
                    } else {
                        &frames[..frames.len().min(1)]
                    };
                    for &frame in frames {
                        let g = locations.group_of(frame, &mut groups);
                        if stamp.len() < groups.keys.len() {
                            stamp.resize(groups.keys.len(), u32::MAX);
                        }
                        if stamp[g] != tb.0 {
                            stamp[g] = tb.0;
                            groups.amounts[g] += amount;
                        }
                    }
                }
            }
        }
        groups
    }

    fn materialize(&self, groups: Groups) -> Vec<Statistic> {
        let tables = &*self.tables;
        groups
            .keys
            .iter()
            .zip(&groups.amounts)
            .map(|(key, amount)| {
                let totals = amount.totals();
                let traceback = match *key {
                    GroupKey::Location {
                        filename,
                        lineno,
                        function,
                    } => Traceback {
                        frames: vec![Frame {
                            filename: tables.arc_string(filename),
                            lineno,
                            function: function.map(|f| tables.arc_string(f)),
                        }],
                        total_nframe: None,
                    },
                    GroupKey::Frames(tb) => Traceback {
                        total_nframe: None,
                        ..tables.owned_traceback(tb)
                    },
                };
                Statistic {
                    traceback,
                    size: totals.size,
                    count: totals.count,
                }
            })
            .collect()
    }
}

fn check_key(key_type: KeyType, cumulative: bool) -> Result<(), AnalysisError> {
    if cumulative && key_type == KeyType::Traceback {
        Err(AnalysisError::CumulativeTraceback)
    } else {
        Ok(())
    }
}

/// Maps frames to `filename` or `lineno` groups, once per distinct frame.
struct LocationKeys<'t> {
    tables: &'t Tables,
    key_type: KeyType,
    /// Group of each frame id, `u32::MAX` until first seen.
    by_frame: Vec<u32>,
    by_location: FxHashMap<(StringId, u32), u32>,
}

impl<'t> LocationKeys<'t> {
    fn new(tables: &'t Tables, key_type: KeyType) -> LocationKeys<'t> {
        LocationKeys {
            tables,
            key_type,
            by_frame: vec![u32::MAX; tables.frame_count()],
            by_location: FxHashMap::default(),
        }
    }

    fn group_of(&mut self, frame: FrameId, groups: &mut Groups) -> usize {
        let cached = self.by_frame[frame.index()];
        if cached != u32::MAX {
            return cached as usize;
        }
        let rec = self.tables.frame_record(frame);
        let (lineno, function) = match self.key_type {
            KeyType::Filename => (0, None),
            _ => (rec.lineno, rec.function),
        };
        let g = *self
            .by_location
            .entry((rec.filename, lineno))
            .or_insert_with(|| {
                groups.keys.push(GroupKey::Location {
                    filename: rec.filename,
                    lineno,
                    function,
                });
                groups.amounts.push(Amount::default());
                (groups.keys.len() - 1) as u32
            });
        // Several frames (different functions) may share a location; show
        // the smallest function name so the result is order-independent.
        if let GroupKey::Location {
            function: shown, ..
        } = &mut groups.keys[g as usize]
        {
            let better = match (*shown, function) {
                (None, Some(_)) => true,
                (Some(a), Some(b)) => self.tables.string(b) < self.tables.string(a),
                _ => false,
            };
            if better {
                *shown = function;
            }
        }
        self.by_frame[frame.index()] = g;
        g as usize
    }
}

/// What matches groups of two snapshots: their file and line, or all frames.
#[derive(PartialEq, Eq, Hash)]
enum JoinKey {
    Location(Arc<str>, u32),
    Frames(Vec<Frame>),
}

fn join_key(key_type: KeyType, tb: &Traceback) -> JoinKey {
    match (key_type, tb.frames.first()) {
        (KeyType::Filename | KeyType::Lineno, Some(f)) => {
            JoinKey::Location(Arc::clone(&f.filename), f.lineno)
        }
        _ => JoinKey::Frames(tb.frames.clone()),
    }
}

/// From this many traces in the two snapshots together, `compare_to` groups
/// them on two threads: below it a thread costs more than it saves.
const PARALLEL_MIN_TRACES: usize = 1 << 16;

/// Both snapshots' statistics, the old one's on a second thread. The two
/// groupings are independent and each takes milliseconds on a million
/// traces; side by side they take the time of one. If no thread can be
/// started, the old snapshot is grouped here after the new one.
fn statistics_side_by_side(
    new: &Snapshot,
    old: &Snapshot,
    metric: Metric,
    key_type: KeyType,
    cumulative: bool,
) -> Result<(Vec<Statistic>, Vec<Statistic>), AnalysisError> {
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("compare_to".into())
            .spawn_scoped(scope, || old.statistics_by(metric, key_type, cumulative));
        let new_stats = new.statistics_by(metric, key_type, cumulative)?;
        let old_stats = match handle {
            // A panic in the grouping is a bug, not bad input: pass it on
            // unchanged, as the sequential path would.
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?,
            Err(_) => old.statistics_by(metric, key_type, cumulative)?,
        };
        Ok((new_stats, old_stats))
    })
}

/// CPython's `_compare_grouped_stats`: every new group with its difference
/// to the old one (or to nothing), then every old group that vanished.
fn diff_statistics(
    key_type: KeyType,
    new: Vec<Statistic>,
    old: Vec<Statistic>,
) -> Vec<StatisticDiff> {
    let mut old_index: FxHashMap<JoinKey, usize> = old
        .iter()
        .enumerate()
        .map(|(i, s)| (join_key(key_type, &s.traceback), i))
        .collect();
    let mut matched = vec![false; old.len()];
    let mut diffs = Vec::with_capacity(new.len() + old.len());
    for stat in new {
        let previous = old_index.remove(&join_key(key_type, &stat.traceback));
        let (old_size, old_count) = match previous {
            Some(i) => {
                matched[i] = true;
                (old[i].size, old[i].count)
            }
            None => (0, 0),
        };
        diffs.push(StatisticDiff {
            size_diff: signed_diff(stat.size, old_size),
            count_diff: signed_diff(stat.count, old_count),
            size: stat.size,
            count: stat.count,
            traceback: stat.traceback,
        });
    }
    for (stat, matched) in old.into_iter().zip(matched) {
        if !matched {
            diffs.push(StatisticDiff {
                size_diff: signed_diff(0, stat.size),
                count_diff: signed_diff(0, stat.count),
                size: 0,
                count: 0,
                traceback: stat.traceback,
            });
        }
    }
    diffs
}

/// `new - old` as i64. Snapshots hold at most i64::MAX bytes in all, so the
/// difference of two group sizes always fits; saturate rather than wrap
/// should that ever be broken.
fn signed_diff(new: u64, old: u64) -> i64 {
    let diff = i128::from(new) - i128::from(old);
    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
pub(crate) mod tests;
