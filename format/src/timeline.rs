//! Many snapshots over time: each snapshot's total, each group's series
//! (its size and count in every snapshot, matched by content as
//! [`Snapshot::compare_to`] matches them), and the groups ranked by how
//! steadily they grew, the usual signature of a leak.
//!
//! Each snapshot is grouped once ([`Grouping`], which a viewer can cache
//! per snapshot and also joins into the table's rows), then the groupings
//! are merged into a [`Timeline`]: adding a snapshot only groups that one.
//!
//! ```
//! use tracemalloc_format::{KeyType, Snapshot};
//! use tracemalloc_format::rows::Grouping;
//! use tracemalloc_format::timeline::Timeline;
//!
//! let snapshots: Vec<Snapshot> = (1..=4u64)
//!     .map(|n| {
//!         Snapshot::from_raw_traces(
//!             1,
//!             [
//!                 (0, 100 * n, &[("cache.py", 8)][..], None), // grows every time
//!                 (0, 500 - 90 * n, &[("startup.py", 3)][..], None),
//!             ],
//!         )
//!     })
//!     .collect::<Result<_, _>>()?;
//! let groups: Vec<Grouping> = snapshots
//!     .iter()
//!     .map(|s| Grouping::new(s, KeyType::Lineno, false))
//!     .collect::<Result<_, _>>()?;
//! let timeline = Timeline::new(&groups.iter().map(|g| (g, None)).collect::<Vec<_>>());
//! let leak = &timeline.ranking()[0];
//! assert_eq!(timeline.source_text(leak.group), "cache.py:8");
//! assert_eq!((leak.grew, leak.size_growth), (3, 300));
//! assert_eq!(timeline.ranking().len(), 1, "only growing groups are ranked");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Ordering;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::model::{Frame, Tables, Timestamp, Traceback};
use crate::rows::{FRAME_SEPARATOR, Grouping, RowKey};
use crate::stats::{KeyType, Metric, Totals};

/// "No function" in a frame's function slot.
const NO_FUNCTION: u32 = u32::MAX;

/// A group's key across snapshots, in the timeline's own ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// File and line (line 0 for `filename`); the function does not count,
    /// as in [`Snapshot::compare_to`].
    Location { file: u32, line: u32 },
    /// Every frame, most recent first.
    Frames(Box<[u32]>),
}

/// How a group grew from the first snapshot to the last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Growth {
    /// The group (see [`Timeline::source_text`]).
    pub group: u32,
    /// In how many intervals between consecutive snapshots its size grew.
    pub grew: u32,
    /// In how many it shrank.
    pub shrank: u32,
    /// Size in the last snapshot minus size in the first.
    pub size_growth: i64,
    /// Count in the last snapshot minus count in the first.
    pub count_growth: i64,
}

/// Snapshots' totals and groups over time (see the module documentation).
#[derive(Debug)]
pub struct Timeline {
    metric: Metric,
    key_type: KeyType,
    cumulative: bool,
    times: Vec<Option<Timestamp>>,
    totals: Vec<Totals>,
    strings: Vec<Arc<str>>,
    string_index: FxHashMap<Arc<str>, u32>,
    /// (file, line, function or [`NO_FUNCTION`]), as string ids.
    frames: Vec<(u32, u32, u32)>,
    frame_index: FxHashMap<(u32, u32, u32), u32>,
    keys: Vec<Key>,
    /// The function shown for a location group: the smallest name seen.
    functions: Vec<u32>,
    key_index: FxHashMap<Key, u32>,
    /// Group-major: `sizes[group * points + point]`.
    sizes: Vec<u64>,
    counts: Vec<u64>,
    ranking: Vec<Growth>,
}

impl Timeline {
    /// Merges snapshots' groups, in the order given (which should be the
    /// time order), each with the time it was taken, where known.
    ///
    /// # Panics
    /// If the groupings differ in metric, key type or cumulative mode.
    pub fn new(points: &[(&Grouping, Option<Timestamp>)]) -> Timeline {
        let (metric, key_type, cumulative) = points
            .first()
            .map_or((Metric::Live, KeyType::Lineno, false), |(g, _)| {
                (g.metric(), g.key_type(), g.cumulative())
            });
        assert!(
            points
                .iter()
                .all(|(g, _)| (g.metric(), g.key_type(), g.cumulative())
                    == (metric, key_type, cumulative)),
            "every snapshot must be grouped the same way"
        );
        let n = points.len();
        let mut t = Timeline {
            metric,
            key_type,
            cumulative,
            times: points.iter().map(|&(_, time)| time).collect(),
            totals: points.iter().map(|(g, _)| g.total()).collect(),
            strings: Vec::new(),
            string_index: FxHashMap::default(),
            frames: Vec::new(),
            frame_index: FxHashMap::default(),
            keys: Vec::new(),
            functions: Vec::new(),
            key_index: FxHashMap::default(),
            sizes: Vec::new(),
            counts: Vec::new(),
            ranking: Vec::new(),
        };
        let mut scratch = Vec::new();
        for (point, (groups, _)) in points.iter().enumerate() {
            let tables = groups.tables();
            // Each snapshot's strings and frames are translated once, on
            // first use.
            let mut strings: Vec<Option<u32>> = vec![None; tables.string_count()];
            let mut frames: Vec<Option<u32>> = vec![None; tables.frame_count()];
            for (key, amount) in groups.groups() {
                let (key, function) = match *key {
                    RowKey::Location {
                        filename,
                        lineno,
                        function,
                    } => {
                        let file = t.translate_string(tables, &mut strings, filename);
                        let function = function
                            .map_or(NO_FUNCTION, |f| t.translate_string(tables, &mut strings, f));
                        (Key::Location { file, line: lineno }, function)
                    }
                    RowKey::Traceback(tb) => {
                        scratch.clear();
                        for &frame in tables.traceback_frames(tb) {
                            let id = match frames[frame.index()] {
                                Some(id) => id,
                                None => {
                                    let f = tables.frame_record(frame);
                                    let file = t.translate_string(tables, &mut strings, f.filename);
                                    let function = f.function.map_or(NO_FUNCTION, |s| {
                                        t.translate_string(tables, &mut strings, s)
                                    });
                                    let id = t.intern_frame((file, f.lineno, function));
                                    frames[frame.index()] = Some(id);
                                    id
                                }
                            };
                            scratch.push(id);
                        }
                        (Key::Frames(scratch.as_slice().into()), NO_FUNCTION)
                    }
                };
                let group = t.intern_key(key, n);
                if function != NO_FUNCTION {
                    let shown = &mut t.functions[group as usize];
                    if *shown == NO_FUNCTION
                        || t.strings[function as usize] < t.strings[*shown as usize]
                    {
                        *shown = function;
                    }
                }
                let at = group as usize * n + point;
                t.sizes[at] = amount.size;
                t.counts[at] = amount.count;
            }
        }
        t.ranking = t.rank();
        t
    }

    fn translate_string(
        &mut self,
        tables: &Tables,
        cache: &mut [Option<u32>],
        id: crate::StringId,
    ) -> u32 {
        if let Some(global) = cache[id.index()] {
            return global;
        }
        let text = tables.string(id);
        let global = match self.string_index.get(text) {
            Some(&global) => global,
            None => {
                let global = self.strings.len() as u32;
                let shared: Arc<str> = Arc::from(text);
                self.strings.push(Arc::clone(&shared));
                self.string_index.insert(shared, global);
                global
            }
        };
        cache[id.index()] = Some(global);
        global
    }

    fn intern_frame(&mut self, frame: (u32, u32, u32)) -> u32 {
        let next = self.frames.len() as u32;
        let id = *self.frame_index.entry(frame).or_insert(next);
        if id == next {
            self.frames.push(frame);
        }
        id
    }

    fn intern_key(&mut self, key: Key, points: usize) -> u32 {
        if let Some(&group) = self.key_index.get(&key) {
            return group;
        }
        let group = self.keys.len() as u32;
        self.keys.push(key.clone());
        self.functions.push(NO_FUNCTION);
        self.key_index.insert(key, group);
        self.sizes.resize(self.sizes.len() + points, 0);
        self.counts.resize(self.counts.len() + points, 0);
        group
    }

    /// The growing groups, most steadily growing first: by the number of
    /// intervals in which they grew, then the fewest in which they shrank,
    /// then by size growth, count growth, and last by source (file, line,
    /// function), so the order is total.
    fn rank(&self) -> Vec<Growth> {
        let n = self.times.len();
        if n < 2 {
            return Vec::new();
        }
        let mut ranking: Vec<Growth> = (0..self.keys.len() as u32)
            .filter_map(|group| {
                let sizes = self.size_series(group);
                let counts = self.count_series(group);
                let size_growth = signed_diff(sizes[n - 1], sizes[0]);
                if size_growth <= 0 {
                    return None;
                }
                let grew = sizes.windows(2).filter(|w| w[1] > w[0]).count() as u32;
                let shrank = sizes.windows(2).filter(|w| w[1] < w[0]).count() as u32;
                Some(Growth {
                    group,
                    grew,
                    shrank,
                    size_growth,
                    count_growth: signed_diff(counts[n - 1], counts[0]),
                })
            })
            .collect();
        ranking.sort_by(|a, b| {
            b.grew
                .cmp(&a.grew)
                .then(a.shrank.cmp(&b.shrank))
                .then(b.size_growth.cmp(&a.size_growth))
                .then(b.count_growth.cmp(&a.count_growth))
                .then_with(|| self.cmp_groups(a.group, b.group))
        });
        ranking
    }

    /// Groups by their source text's parts: frames most recent first, each
    /// by file, line, then function.
    fn cmp_groups(&self, a: u32, b: u32) -> Ordering {
        let frames = |g: u32| -> Vec<(&str, u32, &str)> {
            let text = |id: u32| {
                if id == NO_FUNCTION {
                    ""
                } else {
                    &*self.strings[id as usize]
                }
            };
            match &self.keys[g as usize] {
                Key::Location { file, line } => {
                    vec![(text(*file), *line, text(self.functions[g as usize]))]
                }
                Key::Frames(frames) => frames
                    .iter()
                    .map(|&f| {
                        let (file, line, function) = self.frames[f as usize];
                        (text(file), line, text(function))
                    })
                    .collect(),
            }
        };
        frames(a).cmp(&frames(b))
    }

    /// What the series and totals measure.
    pub fn metric(&self) -> Metric {
        self.metric
    }

    /// How the snapshots were grouped.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Whether the grouping is cumulative.
    pub fn cumulative(&self) -> bool {
        self.cumulative
    }

    /// Number of snapshots.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether there is no snapshot.
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Number of distinct groups over all snapshots.
    pub fn group_count(&self) -> usize {
        self.keys.len()
    }

    /// Each snapshot's total size and blocks.
    pub fn totals(&self) -> &[Totals] {
        &self.totals
    }

    /// Each snapshot's time, where known.
    pub fn times(&self) -> &[Option<Timestamp>] {
        &self.times
    }

    /// Each snapshot's time in seconds after the first snapshot's, when
    /// every snapshot's time is known.
    pub fn seconds(&self) -> Option<Vec<f64>> {
        let first = self.times.first().copied().flatten()?.unix_micros;
        self.times
            .iter()
            .map(|t| t.map(|t| (t.unix_micros - first) as f64 / 1e6))
            .collect()
    }

    /// A group's size in every snapshot (0 where it had no trace).
    ///
    /// # Panics
    /// If `group` is out of range.
    pub fn size_series(&self, group: u32) -> &[u64] {
        let n = self.times.len();
        &self.sizes[group as usize * n..(group as usize + 1) * n]
    }

    /// A group's block count in every snapshot.
    ///
    /// # Panics
    /// If `group` is out of range.
    pub fn count_series(&self, group: u32) -> &[u64] {
        let n = self.times.len();
        &self.counts[group as usize * n..(group as usize + 1) * n]
    }

    /// The growing groups, most steadily growing first (see [`Growth`]):
    /// every group whose size in the last snapshot exceeds its size in the
    /// first, ranked by the number of intervals in which it grew, then
    /// the fewest in which it shrank, then its size growth, count growth
    /// and source.
    pub fn ranking(&self) -> &[Growth] {
        &self.ranking
    }

    /// A growth's rate in bytes per second from the first snapshot to the
    /// last, when both times are known and differ.
    pub fn rate_per_second(&self, growth: &Growth) -> Option<f64> {
        let first = self.times.first().copied().flatten()?;
        let last = self.times.last().copied().flatten()?;
        let seconds = (last.unix_micros - first.unix_micros) as f64 / 1e6;
        (seconds > 0.0).then(|| growth.size_growth as f64 / seconds)
    }

    /// The group of a table row's key (a traceback, one frame for
    /// `filename` and `lineno` groups), matched as [`Snapshot::compare_to`]
    /// matches groups: by file and line, or by every frame.
    pub fn find(&self, key: &Traceback) -> Option<u32> {
        let string = |s: &str| self.string_index.get(s).copied();
        let key = match self.key_type {
            KeyType::Filename | KeyType::Lineno => {
                let frame = key.frames.first()?;
                let line = if self.key_type == KeyType::Filename {
                    0
                } else {
                    frame.lineno
                };
                Key::Location {
                    file: string(&frame.filename)?,
                    line,
                }
            }
            KeyType::Traceback => {
                let mut ids = Vec::with_capacity(key.frames.len());
                for f in &key.frames {
                    let function = match &f.function {
                        Some(name) => string(name)?,
                        None => NO_FUNCTION,
                    };
                    let frame = (string(&f.filename)?, f.lineno, function);
                    ids.push(*self.frame_index.get(&frame)?);
                }
                Key::Frames(ids.into())
            }
        };
        self.key_index.get(&key).copied()
    }

    /// A group's key as a table row's traceback (one frame for `filename`
    /// and `lineno` groups, with the function shown for the group).
    ///
    /// # Panics
    /// If `group` is out of range.
    pub fn traceback(&self, group: u32) -> Traceback {
        let string = |id: u32| Arc::clone(&self.strings[id as usize]);
        let function = |id: u32| (id != NO_FUNCTION).then(|| string(id));
        let frames = match &self.keys[group as usize] {
            Key::Location { file, line } => vec![Frame {
                filename: string(*file),
                lineno: *line,
                function: function(self.functions[group as usize]),
            }],
            Key::Frames(frames) => frames
                .iter()
                .map(|&f| {
                    let (file, line, func) = self.frames[f as usize];
                    Frame {
                        filename: string(file),
                        lineno: line,
                        function: function(func),
                    }
                })
                .collect(),
        };
        Traceback {
            frames,
            total_nframe: None,
        }
    }

    /// A group's source text, as the table writes it
    /// ([`crate::rows::View::write_source`]): the file, `file:line`, or
    /// every frame's `file:line` joined by [`FRAME_SEPARATOR`].
    pub fn source_text(&self, group: u32) -> String {
        let tb = self.traceback(group);
        let parts: Vec<String> = tb
            .frames
            .iter()
            .map(|f| {
                if self.key_type == KeyType::Filename {
                    f.filename.to_string()
                } else {
                    f.to_string()
                }
            })
            .collect();
        parts.join(FRAME_SEPARATOR)
    }
}

/// `new - old` as i64, saturating (sizes fit i64 in practice: a snapshot
/// holds at most i64::MAX bytes).
fn signed_diff(new: u64, old: u64) -> i64 {
    let diff = i128::from(new) - i128::from(old);
    i64::try_from(diff).unwrap_or(if diff < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Snapshot;
    use crate::stats::AnalysisError;
    use crate::{Metadata, SnapshotBuilder};

    /// A snapshot of `(size, frames most recent first)` traces, with its
    /// strings interned in the order `order` gives, so that ids differ
    /// between snapshots.
    fn snap(traces: &[(u64, &[(&str, u32)])], reversed: bool) -> Snapshot {
        let mut b = SnapshotBuilder::new(10);
        let mut all: Vec<(u64, &[(&str, u32)])> = traces.to_vec();
        if reversed {
            all.reverse();
        }
        for (size, frames) in all {
            let ids: Vec<_> = frames
                .iter()
                .map(|&(file, line)| {
                    b.intern_frame(file, line, Some(&format!("f{line}")))
                        .unwrap()
                })
                .collect();
            let tb = b.intern_traceback(&ids, None).unwrap();
            b.push_trace(0, size, tb).unwrap();
        }
        b.finish(Metadata::default())
    }

    const MAIN: (&str, u32) = ("main.rs", 1);

    /// Six snapshots: a steady leak of 10 bytes each time, a noisy group
    /// that grows by much more overall but shrank once, a stable group,
    /// and a group that appears halfway.
    fn series(key_type: KeyType) -> Timeline {
        let noisy = [0u64, 500, 300, 900, 1200, 1500];
        let snapshots: Vec<Snapshot> = (0..6u64)
            .map(|i| {
                let mut traces: Vec<(u64, &[(&str, u32)])> = vec![
                    (10 + 10 * i, &[("leak.rs", 8), MAIN]),
                    (100, &[("stable.rs", 2), MAIN]),
                ];
                if noisy[i as usize] > 0 {
                    traces.push((noisy[i as usize], &[("noisy.rs", 3), MAIN]));
                }
                if i >= 3 {
                    traces.push((7, &[("late.rs", 4), MAIN]));
                }
                snap(&traces, i % 2 == 1)
            })
            .collect();
        let groups: Vec<Grouping> = snapshots
            .iter()
            .map(|s| Grouping::new(s, key_type, false).unwrap())
            .collect();
        let points: Vec<(&Grouping, Option<Timestamp>)> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                (
                    g,
                    Some(Timestamp {
                        unix_micros: 1_000_000 + i as i64 * 2_000_000,
                    }),
                )
            })
            .collect();
        Timeline::new(&points)
    }

    #[test]
    fn groups_and_totals_follow_the_metric() {
        use crate::stats::tests::snapshot_with_history;

        let a5_key = Traceback {
            frames: vec![Frame::new("a.py", 5)],
            total_nframe: None,
        };
        let s = snapshot_with_history();
        let live = Grouping::new_by(&s, Metric::Live, KeyType::Lineno, false).unwrap();
        let temporary = Grouping::new_by(&s, Metric::Temporary, KeyType::Lineno, false).unwrap();
        assert_eq!(live.total(), s.totals());
        assert_eq!(temporary.total(), s.totals_by(Metric::Temporary).unwrap());
        assert_eq!(temporary.metric(), Metric::Temporary);
        let t = Timeline::new(&[(&temporary, None), (&temporary, None)]);
        assert_eq!(t.metric(), Metric::Temporary);
        let a5 = t.find(&a5_key).unwrap();
        assert_eq!(t.size_series(a5), [6400, 6400]);
        assert_eq!(t.count_series(a5), [100, 100]);
        // a.py:5 holds nothing live: it is no group of the live timeline.
        let t = Timeline::new(&[(&live, None)]);
        assert_eq!(t.find(&a5_key), None);
        let bare = snap(&[(1, &[MAIN])], false);
        assert_eq!(
            Grouping::new_by(&bare, Metric::Peak, KeyType::Lineno, false).unwrap_err(),
            AnalysisError::NoHistory(Metric::Peak)
        );
    }

    #[test]
    #[should_panic(expected = "grouped the same way")]
    fn metrics_are_not_merged() {
        use crate::stats::tests::snapshot_with_history;

        let s = snapshot_with_history();
        let live = Grouping::new_by(&s, Metric::Live, KeyType::Lineno, false).unwrap();
        let peak = Grouping::new_by(&s, Metric::Peak, KeyType::Lineno, false).unwrap();
        Timeline::new(&[(&live, None), (&peak, None)]);
    }

    #[test]
    fn a_steady_leak_ranks_first() {
        let t = series(KeyType::Lineno);
        assert_eq!(t.len(), 6);
        assert_eq!(t.group_count(), 4);
        let ranked: Vec<(String, u32, u32, i64)> = t
            .ranking()
            .iter()
            .map(|g| (t.source_text(g.group), g.grew, g.shrank, g.size_growth))
            .collect();
        assert_eq!(
            ranked,
            [
                ("leak.rs:8".to_owned(), 5, 0, 50),
                ("noisy.rs:3".to_owned(), 4, 1, 1500),
                ("late.rs:4".to_owned(), 1, 0, 7),
            ]
        );
        let leak = t.ranking()[0];
        assert_eq!(t.size_series(leak.group), [10, 20, 30, 40, 50, 60]);
        assert_eq!(t.count_series(leak.group), [1; 6]);
        assert_eq!(leak.count_growth, 0);
        assert_eq!(t.rate_per_second(&leak), Some(5.0));
        let late = t.ranking()[2].group;
        assert_eq!(t.size_series(late), [0, 0, 0, 7, 7, 7]);
        assert_eq!(t.totals()[0].size, 110);
        assert_eq!(t.totals()[5].size, 1500 + 60 + 100 + 7);
        assert_eq!(t.seconds(), Some(vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]));
    }

    #[test]
    fn groups_are_found_from_table_rows() {
        let t = series(KeyType::Lineno);
        let leak = t.ranking()[0].group;
        let tb = t.traceback(leak);
        assert_eq!(tb.frames[0].function.as_deref(), Some("f8"));
        assert_eq!(t.find(&tb), Some(leak));
        // The function does not matter for a line.
        let mut other = tb.clone();
        other.frames[0].function = None;
        assert_eq!(t.find(&other), Some(leak));
        assert_eq!(t.find(&Traceback::default_for_tests()), None);

        let t = series(KeyType::Traceback);
        let leak = t.ranking()[0].group;
        assert_eq!(t.source_text(leak), "leak.rs:8 ← main.rs:1");
        assert_eq!(t.find(&t.traceback(leak)), Some(leak));

        let t = series(KeyType::Filename);
        let first = t.ranking()[0].group;
        assert_eq!(t.source_text(first), "leak.rs");
        assert_eq!(t.traceback(first).frames[0].lineno, 0);
        assert_eq!(t.find(&t.traceback(first)), Some(first));
    }

    #[test]
    fn fewer_than_two_snapshots_rank_nothing() {
        let s = snap(&[(5, &[MAIN])], false);
        let g = Grouping::new(&s, KeyType::Lineno, false).unwrap();
        let t = Timeline::new(&[(&g, None)]);
        assert!(t.ranking().is_empty());
        assert_eq!(t.seconds(), None);
        assert!(Timeline::new(&[]).is_empty());
    }

    impl Traceback {
        fn default_for_tests() -> Traceback {
            Traceback {
                frames: vec![Frame::new("nowhere.rs", 1)],
                total_nframe: None,
            }
        }
    }
}
