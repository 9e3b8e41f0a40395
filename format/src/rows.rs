//! The viewer's table as data: a snapshot's groups ([`Grouping`]), one
//! snapshot or two joined into rows ([`View`]), and everything the viewer
//! does with those rows: sorting by any column with explicit tie-breakers,
//! substring search over the source text, and the top groups for charts.
//!
//! It computes exactly what [`Snapshot::statistics`] and
//! [`Snapshot::compare_to`] compute (the tests check row for row), but keeps
//! each group's key as ids into the snapshot's tables instead of an owned
//! [`Traceback`], so that a million groups cost a few words each and text is
//! only made for the rows on screen.
//!
//! ```
//! use tracemalloc_format::{KeyType, Snapshot, rows::{Grouping, SortColumn, View}};
//!
//! let old = Snapshot::from_raw_traces(1, [(0, 10, &[("a.py", 1)][..], None)])?;
//! let new = Snapshot::from_raw_traces(
//!     1,
//!     [(0, 40, &[("a.py", 1)][..], None), (0, 5, &[("b.py", 2)][..], None)],
//! )?;
//! let view = View::compare(
//!     &Grouping::new(&new, KeyType::Lineno, false)?,
//!     &Grouping::new(&old, KeyType::Lineno, false)?,
//! );
//! let order = view.sorted(SortColumn::SizeDiff, true);
//! assert_eq!(view.source_text(order[0] as usize), "a.py:1");
//! assert_eq!(view.rows()[order[0] as usize].size_diff, 30);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::model::{Frame, FrameId, FrameRef, Snapshot, StringId, Tables, Traceback, TracebackId};
use crate::stats::{AnalysisError, GroupKey, KeyType, Metric, Totals};

/// The separator between frames in a traceback's one-line source text,
/// most recent frame first: `a.rs:3 ← b.rs:9`.
pub const FRAME_SEPARATOR: &str = " ← ";

/// A group's key, as ids into the tables of the snapshot it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowKey {
    /// A file (line 0) or a line, with the function shown for it (the
    /// smallest function name among the group's frames).
    Location {
        /// The file.
        filename: StringId,
        /// The line, 0 when grouping by file.
        lineno: u32,
        /// The function shown for the group, where known.
        function: Option<StringId>,
    },
    /// A whole traceback.
    Traceback(TracebackId),
}

impl From<GroupKey> for RowKey {
    fn from(key: GroupKey) -> RowKey {
        match key {
            GroupKey::Location {
                filename,
                lineno,
                function,
            } => RowKey::Location {
                filename,
                lineno,
                function,
            },
            GroupKey::Frames(tb) => RowKey::Traceback(tb),
        }
    }
}

/// One snapshot's groups for one key type: what [`Snapshot::statistics`]
/// returns, unsorted and with keys as ids. Joining two groupings into a
/// [`View`] needs no regrouping, so a viewer can cache groupings and only
/// rejoin when the compared snapshot changes.
#[derive(Debug)]
pub struct Grouping {
    tables: Arc<Tables>,
    metric: Metric,
    key_type: KeyType,
    cumulative: bool,
    keys: Vec<RowKey>,
    amounts: Vec<Totals>,
    total: Totals,
    trace_count: usize,
}

impl Grouping {
    /// Groups a snapshot as [`Snapshot::statistics`] does (live blocks).
    pub fn new(
        snapshot: &Snapshot,
        key_type: KeyType,
        cumulative: bool,
    ) -> Result<Grouping, AnalysisError> {
        Grouping::new_by(snapshot, Metric::Live, key_type, cumulative)
    }

    /// Groups a snapshot as [`Snapshot::statistics_by`] does: each group's
    /// size and count are `metric`'s bytes and blocks, and the total is
    /// [`Snapshot::totals_by`]. A history metric of a snapshot without
    /// history is [`AnalysisError::NoHistory`], never rows of zeros.
    pub fn new_by(
        snapshot: &Snapshot,
        metric: Metric,
        key_type: KeyType,
        cumulative: bool,
    ) -> Result<Grouping, AnalysisError> {
        let (keys, amounts) = snapshot.group_totals_unsorted_by(metric, key_type, cumulative)?;
        Ok(Grouping {
            tables: Arc::clone(snapshot.shared_tables()),
            metric,
            key_type,
            cumulative,
            keys: keys.into_iter().map(RowKey::from).collect(),
            amounts,
            total: snapshot.totals_by(metric)?,
            trace_count: snapshot.traces().len(),
        })
    }

    /// What the groups' sizes and counts measure.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// Number of groups.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no group (the snapshot has no trace).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How the snapshot was grouped.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Whether the grouping is cumulative.
    pub fn cumulative(&self) -> bool {
        self.cumulative
    }

    /// The snapshot's total size and block count (summed over traces, so a
    /// block counts once even when cumulative groups count it several times).
    pub fn total(&self) -> Totals {
        self.total
    }

    /// Number of traces in the grouped snapshot.
    pub fn trace_count(&self) -> usize {
        self.trace_count
    }

    /// The grouped snapshot's tables, which the keys are ids into.
    pub(crate) fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The groups' keys and amounts, in the same order.
    pub(crate) fn groups(&self) -> impl Iterator<Item = (&RowKey, &Totals)> {
        self.keys.iter().zip(&self.amounts)
    }
}

/// One row of a [`View`]: a group with its size and count, and its
/// differences to the old snapshot when comparing (zero otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewRow {
    /// The group's key.
    pub key: RowKey,
    /// Whether `key` is in the old snapshot's tables: the group exists only
    /// in the old snapshot (it vanished, its size is 0).
    pub from_old: bool,
    /// Size in the (new) snapshot, in bytes.
    pub size: u64,
    /// Blocks in the (new) snapshot.
    pub count: u64,
    /// New size minus old size; 0 when not comparing.
    pub size_diff: i64,
    /// New count minus old count; 0 when not comparing.
    pub count_diff: i64,
}

impl ViewRow {
    /// Average block size, 0 for an empty group.
    pub fn average(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.size as f64 / self.count as f64
        }
    }
}

/// A column of the viewer's table, for [`View::sorted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SortColumn {
    /// The group's source: file, `file:line` or traceback, compared frame
    /// by frame (most recent first) by file name, then line number
    /// (numerically), then function name.
    Source,
    /// Size in bytes.
    Size,
    /// Size difference (signed: growth above shrinkage).
    SizeDiff,
    /// Block count.
    Count,
    /// Block count difference (signed).
    CountDiff,
    /// Average block size.
    AverageSize,
    /// Share of the total size: the same order as [`SortColumn::Size`].
    PercentOfTotal,
}

/// What a chart ranks groups by, for [`View::top`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ChartMetric {
    /// Largest size first.
    Size,
    /// Most blocks first.
    Count,
    /// Largest size difference first, growth or shrinkage (by absolute
    /// value); groups that did not change are left out.
    SizeDiff,
    /// Largest count difference first, by absolute value; groups that did
    /// not change are left out.
    CountDiff,
}

/// A snapshot's groups, or two snapshots' groups joined, as table rows.
///
/// [`View::rows`] are in CPython's order ([`Snapshot::statistics`] or
/// [`Snapshot::compare_to`]); [`View::sorted`] orders them by any column,
/// ties broken by that order, which is itself total (no two groups have
/// the same key).
#[derive(Debug)]
pub struct View {
    metric: Metric,
    key_type: KeyType,
    cumulative: bool,
    new_tables: Arc<Tables>,
    old_tables: Option<Arc<Tables>>,
    rows: Vec<ViewRow>,
    total: Totals,
    old_total: Option<Totals>,
    trace_count: usize,
    old_trace_count: Option<usize>,
    ranks: Ranks,
}

/// The rank of every string of both tables in the merged sorted order of
/// all of them (equal strings get equal ranks), so that keys from either
/// snapshot compare as their text would, with integer comparisons.
#[derive(Debug, Default)]
struct Ranks {
    new: Vec<u32>,
    old: Vec<u32>,
}

impl Ranks {
    fn new(new: &Tables, old: Option<&Tables>) -> Ranks {
        let mut all: Vec<(&str, bool, u32)> = new
            .string_ids()
            .map(|id| (new.string(id), false, id.0))
            .collect();
        if let Some(old) = old {
            all.extend(old.string_ids().map(|id| (old.string(id), true, id.0)));
        }
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut ranks = Ranks {
            new: vec![0; new.string_count()],
            old: vec![0; old.map_or(0, Tables::string_count)],
        };
        let mut rank = 0u32;
        let mut previous: Option<&str> = None;
        for (s, is_old, id) in all {
            if previous.is_some_and(|p| p != s) {
                rank += 1;
            }
            previous = Some(s);
            if is_old {
                ranks.old[id as usize] = rank;
            } else {
                ranks.new[id as usize] = rank;
            }
        }
        ranks
    }
}

/// A frame as comparable integers: file rank, line, function rank (0 for
/// none, rank + 1 otherwise).
type FrameKey = (u32, u32, u32);

impl View {
    /// The rows of one snapshot: [`Snapshot::statistics`] as a view.
    pub fn plain(grouping: &Grouping) -> View {
        let rows = grouping
            .keys
            .iter()
            .zip(&grouping.amounts)
            .map(|(&key, amount)| ViewRow {
                key,
                from_old: false,
                size: amount.size,
                count: amount.count,
                size_diff: 0,
                count_diff: 0,
            })
            .collect();
        let mut view = View {
            metric: grouping.metric,
            key_type: grouping.key_type,
            cumulative: grouping.cumulative,
            new_tables: Arc::clone(&grouping.tables),
            old_tables: None,
            rows,
            total: grouping.total,
            old_total: None,
            trace_count: grouping.trace_count,
            old_trace_count: None,
            ranks: Ranks::new(&grouping.tables, None),
        };
        view.sort_cpython();
        view
    }

    /// The difference of `new` against `old`: [`Snapshot::compare_to`] as a
    /// view. Groups are matched by file and line for `filename` and
    /// `lineno` groupings, by every frame (function included) for
    /// `traceback`.
    ///
    /// # Panics
    /// If the two groupings differ in metric, key type or cumulative mode.
    pub fn compare(new: &Grouping, old: &Grouping) -> View {
        assert_eq!(
            (new.metric, new.key_type, new.cumulative),
            (old.metric, old.key_type, old.cumulative),
            "both snapshots must be grouped the same way"
        );
        let rows = join(new, old);
        let mut view = View {
            metric: new.metric,
            key_type: new.key_type,
            cumulative: new.cumulative,
            new_tables: Arc::clone(&new.tables),
            old_tables: Some(Arc::clone(&old.tables)),
            rows,
            total: new.total,
            old_total: Some(old.total),
            trace_count: new.trace_count,
            old_trace_count: Some(old.trace_count),
            ranks: Ranks::new(&new.tables, Some(&old.tables)),
        };
        view.sort_cpython();
        view
    }

    /// What the rows' sizes and counts measure.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// How the rows are grouped.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Whether the grouping is cumulative.
    pub fn cumulative(&self) -> bool {
        self.cumulative
    }

    /// Whether the view compares two snapshots.
    pub fn is_comparison(&self) -> bool {
        self.old_total.is_some()
    }

    /// The rows, in CPython's order.
    pub fn rows(&self) -> &[ViewRow] {
        &self.rows
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The (new) snapshot's total size and blocks.
    pub fn total(&self) -> Totals {
        self.total
    }

    /// The old snapshot's total when comparing.
    pub fn old_total(&self) -> Option<Totals> {
        self.old_total
    }

    /// Number of traces in the (new) snapshot.
    pub fn trace_count(&self) -> usize {
        self.trace_count
    }

    /// Number of traces in the old snapshot when comparing.
    pub fn old_trace_count(&self) -> Option<usize> {
        self.old_trace_count
    }

    /// A row's share of the total size, from 0 to 1 (0 for an empty
    /// snapshot). Cumulative groups can add up to more than 1 together, but
    /// each is at most 1.
    pub fn fraction_of_total(&self, index: usize) -> f64 {
        if self.total.size == 0 {
            0.0
        } else {
            self.rows[index].size as f64 / self.total.size as f64
        }
    }

    fn tables_of(&self, row: &ViewRow) -> &Tables {
        match (&self.old_tables, row.from_old) {
            (Some(old), true) => old,
            _ => &self.new_tables,
        }
    }

    fn string_ranks_of(&self, row: &ViewRow) -> &[u32] {
        if row.from_old {
            &self.ranks.old
        } else {
            &self.ranks.new
        }
    }

    /// A row's frames, most recent first: the group's one frame for
    /// `filename` (line 0) and `lineno`, every frame for `traceback`.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn frames(&self, index: usize) -> RowFrames<'_> {
        let row = &self.rows[index];
        let tables = self.tables_of(row);
        match row.key {
            RowKey::Location {
                filename,
                lineno,
                function,
            } => RowFrames::Single(Some(FrameRef {
                filename: tables.string(filename),
                lineno,
                function: function.map(|f| tables.string(f)),
            })),
            RowKey::Traceback(tb) => RowFrames::Many {
                tables,
                ids: tables.traceback_frames(tb).iter(),
            },
        }
    }

    /// A row's key as an owned traceback (one frame for `filename` and
    /// `lineno` rows), as the `traceback` of CPython's statistics.
    pub fn traceback(&self, index: usize) -> Traceback {
        Traceback {
            frames: self
                .frames(index)
                .map(|f| Frame {
                    filename: Arc::from(f.filename),
                    lineno: f.lineno,
                    function: f.function.map(Arc::from),
                })
                .collect(),
            total_nframe: None,
        }
    }

    /// Appends a row's source text to `out`: the file for `filename` rows,
    /// `file:line` for `lineno` rows, and every frame's `file:line`, most
    /// recent first, joined by [`FRAME_SEPARATOR`] for `traceback` rows.
    pub fn write_source(&self, index: usize, out: &mut String) {
        for (i, frame) in self.frames(index).enumerate() {
            if i > 0 {
                out.push_str(FRAME_SEPARATOR);
            }
            out.push_str(frame.filename);
            if self.key_type != KeyType::Filename {
                // Writing to a String cannot fail.
                let _ = write!(out, ":{}", frame.lineno);
            }
        }
    }

    /// A row's source text (see [`View::write_source`]).
    pub fn source_text(&self, index: usize) -> String {
        let mut out = String::new();
        self.write_source(index, &mut out);
        out
    }

    /// The row whose key is `traceback` (frames, lines and function names
    /// equal), to find a selected group again after a recomputation.
    pub fn position_of(&self, traceback: &Traceback) -> Option<usize> {
        (0..self.rows.len()).find(|&i| {
            let mut frames = self.frames(i);
            frames.len() == traceback.frames.len()
                && frames.by_ref().zip(&traceback.frames).all(|(a, b)| {
                    a.filename == &*b.filename
                        && a.lineno == b.lineno
                        && a.function == b.function.as_deref()
                })
        })
    }

    /// A row's frames as comparable keys, most recent first.
    fn frame_keys<'s>(&'s self, row: &'s ViewRow) -> FrameKeys<'s> {
        let ranks = self.string_ranks_of(row);
        match row.key {
            RowKey::Location {
                filename,
                lineno,
                function,
            } => FrameKeys::Single(Some((
                ranks[filename.index()],
                lineno,
                function.map_or(0, |f| ranks[f.index()] + 1),
            ))),
            RowKey::Traceback(tb) => {
                let tables = self.tables_of(row);
                FrameKeys::Many {
                    tables,
                    ranks,
                    ids: tables.traceback_frames(tb).iter(),
                }
            }
        }
    }

    /// CPython's order of two rows' keys (`Traceback.__lt__`): frames
    /// compared oldest first by file and line (a prefix first), then by
    /// function names.
    fn cmp_keys_cpython(&self, a: &ViewRow, b: &ViewRow) -> Ordering {
        if let (RowKey::Traceback(ta), RowKey::Traceback(tb)) = (a.key, b.key) {
            // Fast path: tracebacks of one snapshot often share their oldest
            // frames, and equal frame ids need no lookup.
            let (fa, fb) = (
                self.tables_of(a).traceback_frames(ta),
                self.tables_of(b).traceback_frames(tb),
            );
            if a.from_old == b.from_old {
                let shared = fa
                    .iter()
                    .rev()
                    .zip(fb.iter().rev())
                    .take_while(|(x, y)| x == y)
                    .count();
                if shared == fa.len() && shared == fb.len() {
                    return Ordering::Equal;
                }
                // Equal oldest frames compare equal in both passes (file and
                // line, then function), so only the newer frames matter.
                let (fa, fb) = (&fa[..fa.len() - shared], &fb[..fb.len() - shared]);
                return self.cmp_frame_lists(a, fa, b, fb);
            }
            return self.cmp_frame_lists(a, fa, b, fb);
        }
        let (ka, kb) = (self.frame_keys(a), self.frame_keys(b));
        ka.clone()
            .rev()
            .map(|k| (k.0, k.1))
            .cmp(kb.clone().rev().map(|k| (k.0, k.1)))
            .then_with(|| ka.rev().map(|k| k.2).cmp(kb.rev().map(|k| k.2)))
    }

    /// [`View::cmp_keys_cpython`] of two lists of frame ids, most recent
    /// first, of rows `a` and `b`.
    fn cmp_frame_lists(
        &self,
        a: &ViewRow,
        fa: &[FrameId],
        b: &ViewRow,
        fb: &[FrameId],
    ) -> Ordering {
        let (ta, tb) = (self.tables_of(a), self.tables_of(b));
        let (ra, rb) = (self.string_ranks_of(a), self.string_ranks_of(b));
        let key = |tables: &Tables, ranks: &[u32], id: FrameId| FrameKeys::key(tables, ranks, id);
        let location = fa
            .iter()
            .rev()
            .map(|&f| {
                let k = key(ta, ra, f);
                (k.0, k.1)
            })
            .cmp(fb.iter().rev().map(|&f| {
                let k = key(tb, rb, f);
                (k.0, k.1)
            }));
        location.then_with(|| {
            fa.iter()
                .rev()
                .map(|&f| key(ta, ra, f).2)
                .cmp(fb.iter().rev().map(|&f| key(tb, rb, f).2))
        })
    }

    /// Sorts the rows in CPython's order. The numbers and the three oldest
    /// frames' files and lines make an integer key that decides almost
    /// every comparison; the full key comparison only breaks the remaining
    /// ties.
    fn sort_cpython(&mut self) {
        let comparison = self.is_comparison();
        let coarse = |i: u32| -> [u64; 7] {
            let r = &self.rows[i as usize];
            // The three oldest frames' file and line, oldest first; a
            // missing frame is 0, below any frame (a prefix sorts first).
            let mut oldest = [0u64; 3];
            for (slot, k) in oldest.iter_mut().zip(self.frame_keys(r).rev()) {
                *slot = ((u64::from(k.0) + 1) << 32) | u64::from(k.1);
            }
            // Largest first: every part is complemented.
            let numbers = if comparison {
                [
                    r.size_diff.unsigned_abs(),
                    r.size,
                    r.count_diff.unsigned_abs(),
                    r.count,
                ]
            } else {
                [r.size, r.count, 0, 0]
            };
            let [a, b, c, d] = numbers;
            [a, b, c, d, oldest[0], oldest[1], oldest[2]].map(|k| !k)
        };
        let mut order: Vec<u32> = (0..self.rows.len() as u32).collect();
        // CPython sorts with reverse=True: the larger traceback first.
        sort_two_phase(&mut order, coarse, |&a, &b| {
            self.cmp_keys_cpython(&self.rows[b as usize], &self.rows[a as usize])
        });
        self.rows = order.iter().map(|&i| self.rows[i as usize]).collect();
    }

    /// The row indices ordered by `column`, descending (largest first, or
    /// Z to A for [`SortColumn::Source`]) when `descending`. Ties are broken
    /// by CPython's order, whatever the direction, so the order is total
    /// and stable across recomputations.
    pub fn sorted(&self, column: SortColumn, descending: bool) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.rows.len() as u32).collect();
        let rows = &self.rows;
        // Numbers as order-preserving u64 keys, complemented for descending;
        // the row index (CPython's order) breaks ties.
        let flip = |k: u64| if descending { !k } else { k };
        let signed = |v: i64| (v as u64) ^ (1 << 63);
        let numeric = |key: &dyn Fn(&ViewRow) -> u64| -> Vec<u32> {
            let mut keyed: Vec<(u64, u32)> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (flip(key(r)), i as u32))
                .collect();
            keyed.sort_unstable();
            keyed.into_iter().map(|(_, i)| i).collect()
        };
        match column {
            SortColumn::Size | SortColumn::PercentOfTotal => numeric(&|r| r.size),
            SortColumn::SizeDiff => numeric(&|r| signed(r.size_diff)),
            SortColumn::Count => numeric(&|r| r.count),
            SortColumn::CountDiff => numeric(&|r| signed(r.count_diff)),
            // Averages are finite and non-negative, so their bits sort as
            // the numbers do.
            SortColumn::AverageSize => numeric(&|r| r.average().to_bits()),
            SortColumn::Source => {
                // Most rows differ in their two most recent frames: those are
                // the integer key, the following frames break its ties.
                let coarse = |i: u32| {
                    // The two most recent frames; a missing frame is 0,
                    // below any frame (a prefix sorts first).
                    let mut key = [0u64; 6];
                    for (slot, k) in key.chunks_mut(3).zip(self.frame_keys(&rows[i as usize])) {
                        slot.copy_from_slice(&[u64::from(k.0) + 1, u64::from(k.1), u64::from(k.2)]);
                    }
                    key.map(flip)
                };
                sort_two_phase(&mut order, coarse, |&a, &b| {
                    let rest = |i: u32| self.frame_keys(&rows[i as usize]).skip(2);
                    let by_source = rest(a).cmp(rest(b));
                    if descending {
                        by_source.reverse()
                    } else {
                        by_source
                    }
                });
                order
            }
        }
    }

    /// The entries of `order` whose source text (see [`View::write_source`])
    /// contains `needle`, in the same order. Smart case: the match ignores
    /// ASCII case unless `needle` has an upper-case letter. An empty needle
    /// keeps every row.
    pub fn search(&self, order: &[u32], needle: &str) -> Vec<u32> {
        let needle = needle.trim();
        if needle.is_empty() {
            return order.to_vec();
        }
        let ignore_case = !needle.chars().any(char::is_uppercase);
        let matches = |text: &mut String| {
            if ignore_case {
                text.make_ascii_lowercase();
            }
            text.contains(needle)
        };
        let mut text = String::new();
        let within_one_frame = !needle.contains(|c| FRAME_SEPARATOR.contains(c));
        if self.key_type == KeyType::Traceback && within_one_frame {
            // A needle without the separator's characters matches a
            // traceback's text only inside one frame's `file:line`, so each
            // distinct frame is matched once, not once per traceback.
            const UNKNOWN: u8 = 2;
            let mut new_cache = vec![UNKNOWN; self.new_tables.frame_count()];
            let mut old_cache =
                vec![UNKNOWN; self.old_tables.as_ref().map_or(0, |t| t.frame_count())];
            return order
                .iter()
                .copied()
                .filter(|&i| {
                    let row = &self.rows[i as usize];
                    let RowKey::Traceback(tb) = row.key else {
                        return false;
                    };
                    let tables = self.tables_of(row);
                    let cache = if row.from_old {
                        &mut old_cache
                    } else {
                        &mut new_cache
                    };
                    tables.traceback_frames(tb).iter().any(|&id| {
                        let cached = &mut cache[id.index()];
                        if *cached == UNKNOWN {
                            let frame = tables.frame(id);
                            text.clear();
                            // Writing to a String cannot fail.
                            let _ = write!(text, "{}:{}", frame.filename, frame.lineno);
                            *cached = u8::from(matches(&mut text));
                        }
                        *cached == 1
                    })
                })
                .collect();
        }
        order
            .iter()
            .copied()
            .filter(|&i| {
                text.clear();
                self.write_source(i as usize, &mut text);
                matches(&mut text)
            })
            .collect()
    }

    /// The `n` rows with the largest `metric`, largest first, ties broken
    /// by CPython's order. Rows whose metric is zero are left out (an empty
    /// group has no size; an unchanged group has no difference).
    pub fn top(&self, metric: ChartMetric, n: usize) -> Vec<u32> {
        let value = |r: &ViewRow| -> u64 {
            match metric {
                ChartMetric::Size => r.size,
                ChartMetric::Count => r.count,
                ChartMetric::SizeDiff => r.size_diff.unsigned_abs(),
                ChartMetric::CountDiff => r.count_diff.unsigned_abs(),
            }
        };
        let mut candidates: Vec<(u64, u32)> = self
            .rows
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let v = value(r);
                (v > 0).then_some((v, i as u32))
            })
            .collect();
        let by_rank = |a: &(u64, u32), b: &(u64, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if candidates.len() > n && n > 0 {
            candidates.select_nth_unstable_by(n - 1, by_rank);
        }
        candidates.truncate(n);
        candidates.sort_unstable_by(by_rank);
        candidates.into_iter().map(|(_, i)| i).collect()
    }
}

/// Sorts `items` by `coarse`, a cheap key computed once per item, then
/// each run of items with equal coarse keys by `fine`, then by the items
/// themselves (row indices: CPython's order), so the order is total.
fn sort_two_phase<K: Ord + Copy>(
    items: &mut [u32],
    coarse: impl Fn(u32) -> K,
    mut fine: impl FnMut(&u32, &u32) -> Ordering,
) {
    // Sorting a contiguous array of keys rather than indices into the rows
    // keeps the comparisons in cache.
    let mut keyed: Vec<(K, u32)> = items.iter().map(|&i| (coarse(i), i)).collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut start = 0;
    while start < keyed.len() {
        let end = start
            + keyed[start..]
                .iter()
                .position(|k| k.0 != keyed[start].0)
                .unwrap_or(keyed.len() - start);
        for (item, k) in items[start..end].iter_mut().zip(&keyed[start..end]) {
            *item = k.1;
        }
        if end - start > 1 {
            items[start..end].sort_unstable_by(|a, b| fine(a, b).then(a.cmp(b)));
        }
        start = end;
    }
}

/// A row's frames as comparable keys (see [`FrameKey`]).
#[derive(Clone)]
enum FrameKeys<'a> {
    Single(Option<FrameKey>),
    Many {
        tables: &'a Tables,
        ranks: &'a [u32],
        ids: std::slice::Iter<'a, FrameId>,
    },
}

impl FrameKeys<'_> {
    fn key(tables: &Tables, ranks: &[u32], id: FrameId) -> FrameKey {
        let frame = tables.frame_record(id);
        (
            ranks[frame.filename.index()],
            frame.lineno,
            frame.function.map_or(0, |f| ranks[f.index()] + 1),
        )
    }
}

impl Iterator for FrameKeys<'_> {
    type Item = FrameKey;

    fn next(&mut self) -> Option<FrameKey> {
        match self {
            FrameKeys::Single(key) => key.take(),
            FrameKeys::Many { tables, ranks, ids } => {
                ids.next().map(|&id| FrameKeys::key(tables, ranks, id))
            }
        }
    }
}

impl DoubleEndedIterator for FrameKeys<'_> {
    fn next_back(&mut self) -> Option<FrameKey> {
        match self {
            FrameKeys::Single(key) => key.take(),
            FrameKeys::Many { tables, ranks, ids } => {
                ids.next_back().map(|&id| FrameKeys::key(tables, ranks, id))
            }
        }
    }
}

/// The frames of a [`View`] row, most recent first.
#[derive(Clone, Debug)]
pub enum RowFrames<'a> {
    /// The one frame of a `filename` or `lineno` group.
    Single(Option<FrameRef<'a>>),
    /// The frames of a traceback.
    Many {
        /// The tables the ids are in.
        tables: &'a Tables,
        /// The remaining frame ids.
        ids: std::slice::Iter<'a, FrameId>,
    },
}

impl<'a> Iterator for RowFrames<'a> {
    type Item = FrameRef<'a>;

    fn next(&mut self) -> Option<FrameRef<'a>> {
        match self {
            RowFrames::Single(frame) => frame.take(),
            RowFrames::Many { tables, ids } => ids.next().map(|&id| tables.frame(id)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            RowFrames::Single(frame) => usize::from(frame.is_some()),
            RowFrames::Many { ids, .. } => ids.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for RowFrames<'_> {}

/// Joins two groupings as CPython's `_compare_grouped_stats`: every new
/// group with its difference to the matching old one (or to nothing), then
/// every old group that vanished.
fn join(new: &Grouping, old: &Grouping) -> Vec<ViewRow> {
    let mut rows: Vec<ViewRow> = new
        .keys
        .iter()
        .zip(&new.amounts)
        .map(|(&key, amount)| ViewRow {
            key,
            from_old: false,
            size: amount.size,
            count: amount.count,
            size_diff: signed_diff(amount.size, 0),
            count_diff: signed_diff(amount.count, 0),
        })
        .collect();
    // Strings are translated by content once each; keys are then matched
    // as integers.
    let by_text: FxHashMap<&str, StringId> = new
        .tables
        .string_ids()
        .map(|id| (new.tables.string(id), id))
        .collect();
    let string_to_new: Vec<Option<StringId>> = old
        .tables
        .string_ids()
        .map(|id| by_text.get(old.tables.string(id)).copied())
        .collect();
    // Each old group: the new row it matches, if any.
    let matches: Vec<Option<usize>> = match new.key_type {
        KeyType::Filename | KeyType::Lineno => {
            let index: FxHashMap<(StringId, u32), usize> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, row)| match row.key {
                    RowKey::Location {
                        filename, lineno, ..
                    } => Some(((filename, lineno), i)),
                    RowKey::Traceback(_) => None,
                })
                .collect();
            old.keys
                .iter()
                .map(|key| match *key {
                    RowKey::Location {
                        filename, lineno, ..
                    } => string_to_new[filename.index()]
                        .and_then(|f| index.get(&(f, lineno)).copied()),
                    RowKey::Traceback(_) => None,
                })
                .collect()
        }
        KeyType::Traceback => {
            let new_tables = &*new.tables;
            let old_tables = &*old.tables;
            // Frames as (file, line, function) in new string ids; a frame
            // with a string the new snapshot lacks matches nothing.
            let by_ids: FxHashMap<(StringId, u32, Option<StringId>), FrameId> = new_tables
                .frame_ids()
                .map(|id| {
                    let f = new_tables.frame_record(id);
                    ((f.filename, f.lineno, f.function), id)
                })
                .collect();
            // Translated on first use: only the old groups' frames matter.
            let mut frame_to_new: Vec<Option<Option<FrameId>>> =
                vec![None; old_tables.frame_count()];
            let mut translate = |id: FrameId| -> Option<FrameId> {
                *frame_to_new[id.index()].get_or_insert_with(|| {
                    let f = old_tables.frame_record(id);
                    let filename = string_to_new[f.filename.index()]?;
                    let function = match f.function {
                        Some(func) => Some(string_to_new[func.index()]?),
                        None => None,
                    };
                    by_ids.get(&(filename, f.lineno, function)).copied()
                })
            };
            let index: FxHashMap<&[FrameId], usize> = rows
                .iter()
                .enumerate()
                .filter_map(|(i, row)| match row.key {
                    RowKey::Traceback(tb) => Some((new_tables.traceback_frames(tb), i)),
                    RowKey::Location { .. } => None,
                })
                .collect();
            let mut scratch: Vec<FrameId> = Vec::new();
            old.keys
                .iter()
                .map(|key| {
                    let RowKey::Traceback(tb) = *key else {
                        return None;
                    };
                    scratch.clear();
                    for &f in old_tables.traceback_frames(tb) {
                        scratch.push(translate(f)?);
                    }
                    index.get(&scratch[..]).copied()
                })
                .collect()
        }
    };
    for ((key, amount), matched) in old.keys.iter().zip(&old.amounts).zip(matches) {
        match matched {
            Some(i) => {
                let row = &mut rows[i];
                row.size_diff = signed_diff(row.size, amount.size);
                row.count_diff = signed_diff(row.count, amount.count);
            }
            None => rows.push(ViewRow {
                key: *key,
                from_old: true,
                size: 0,
                count: 0,
                size_diff: signed_diff(0, amount.size),
                count_diff: signed_diff(0, amount.count),
            }),
        }
    }
    rows
}

/// `new - old` as i64, saturating (snapshots hold at most i64::MAX bytes,
/// so it never saturates in practice).
fn signed_diff(new: u64, old: u64) -> i64 {
    let diff = i128::from(new) - i128::from(old);
    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests;
