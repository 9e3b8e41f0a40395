//! A snapshot's traceback tree, for flame graphs: every traceback is a
//! path from the root (all memory) through its frames, oldest first, and
//! each node holds the bytes and blocks of the traces whose path goes
//! through it. Compared to an older snapshot, each node also holds the old
//! snapshot's amounts along the same path, matched by frame content, so
//! that a diff flame graph can take its widths from the new snapshot and
//! its colours from the growth.
//!
//! The nodes are stored in pre-order, children largest first, so that a
//! node's subtree is the contiguous range `node + 1 .. end`: drawing can
//! skip a subtree too narrow to see in one step ([`FlameTree::layout`]),
//! which keeps a frame's work proportional to what is visible, not to the
//! size of the tree.
//!
//! ```
//! use tracemalloc_format::Snapshot;
//! use tracemalloc_format::flame::{FlameTree, FlameWeight};
//!
//! let snapshot = Snapshot::from_raw_traces(
//!     5,
//!     [
//!         (0, 30, &[("leak.py", 9), ("main.py", 1)][..], None),
//!         (0, 10, &[("io.py", 4), ("main.py", 1)][..], None),
//!     ],
//! )?;
//! let tree = FlameTree::new(&snapshot, None, FlameWeight::Bytes)?;
//! // The root, main.py:1, then its children largest first.
//! let labels: Vec<String> = (0..tree.len()).map(|i| tree.label(i)).collect();
//! assert_eq!(labels, ["all", "main.py:1", "leak.py:9", "io.py:4"]);
//! assert_eq!(tree.value(1), 40);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::cmp::Ordering;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::model::{Frame, FrameId, FrameRef, Snapshot, StringId, Tables, Traceback};
use crate::stats::{AnalysisError, GroupKey, KeyType, Metric, Totals};

/// What a flame graph's widths measure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FlameWeight {
    /// Bytes (of the live blocks, or of the metric's).
    #[default]
    Bytes,
    /// Number of blocks (live, or the metric's).
    Blocks,
}

impl FlameWeight {
    /// The measure of `totals`.
    pub fn of(self, totals: Totals) -> u64 {
        match self {
            FlameWeight::Bytes => totals.size,
            FlameWeight::Blocks => totals.count,
        }
    }
}

/// One node of a [`FlameTree`]: a frame reached through its ancestors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlameNode {
    /// The frame, in the tree's (the new snapshot's) tables; `None` for the
    /// root.
    pub frame: Option<FrameId>,
    /// The parent's index (the root is its own parent).
    pub parent: u32,
    /// Distance from the root (the root is 0).
    pub depth: u32,
    /// One past the last node of this node's subtree.
    pub end: u32,
    /// Bytes and blocks of the traces whose path goes through this node.
    pub total: Totals,
    /// The same in the old snapshot, along the same frames (zero when not
    /// comparing).
    pub old_total: Totals,
}

/// The traceback tree of a snapshot (see the module documentation).
#[derive(Debug)]
pub struct FlameTree {
    tables: Arc<Tables>,
    nodes: Vec<FlameNode>,
    weight: FlameWeight,
    comparison: bool,
    max_depth: u32,
    max_abs_delta: u64,
}

/// Where a node is drawn: its row (its depth) and its horizontal extent,
/// as fractions of the drawing's width.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FlameSpan {
    /// The node.
    pub node: u32,
    /// Its depth: the row to draw it in.
    pub depth: u32,
    /// Left edge, from 0 to 1.
    pub x: f64,
    /// Width, from 0 to 1.
    pub width: f64,
}

/// The nodes whose frame matches a search, and how much memory they hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlameMatches {
    matched: Vec<bool>,
    /// The matching nodes' bytes and blocks, each trace counted once even
    /// when several frames of its path match.
    pub total: Totals,
    /// How many nodes match.
    pub nodes: usize,
}

impl FlameMatches {
    /// Whether node `index` matches.
    pub fn is_match(&self, index: usize) -> bool {
        self.matched.get(index).copied().unwrap_or(false)
    }
}

fn add(a: &mut Totals, b: Totals) {
    // Sums of one snapshot's traces: at most i64::MAX bytes (the builder
    // checks), so these cannot overflow.
    a.size += b.size;
    a.count += b.count;
}

impl FlameTree {
    /// The tree of `snapshot`'s tracebacks, with `old`'s amounts along the
    /// same paths when comparing; children are ordered by `weight`, largest
    /// first, ties by frame (file, line, function).
    ///
    /// For sampled snapshots the amounts are the statistics' estimates,
    /// rounded per traceback.
    pub fn new(
        snapshot: &Snapshot,
        old: Option<&Snapshot>,
        weight: FlameWeight,
    ) -> Result<FlameTree, AnalysisError> {
        FlameTree::new_by(snapshot, old, Metric::Live, weight)
    }

    /// [`FlameTree::new`] of any metric: the tree of the tracebacks'
    /// allocated, temporary or peak blocks and bytes instead of their live
    /// ones (both snapshots need a history for a history metric).
    pub fn new_by(
        snapshot: &Snapshot,
        old: Option<&Snapshot>,
        metric: Metric,
        weight: FlameWeight,
    ) -> Result<FlameTree, AnalysisError> {
        let tables = Arc::clone(snapshot.shared_tables());
        let (keys, amounts) =
            snapshot.group_totals_unsorted_by(metric, KeyType::Traceback, false)?;
        // The trie, in insertion order: temporary ids.
        let mut frames: Vec<Option<FrameId>> = vec![None];
        let mut parents: Vec<u32> = vec![0];
        let mut totals: Vec<Totals> = vec![Totals::default()];
        let mut child_of: FxHashMap<(u32, FrameId), u32> = FxHashMap::default();
        for (key, amount) in keys.iter().zip(&amounts) {
            let GroupKey::Frames(tb) = *key else {
                continue;
            };
            let mut node = 0u32;
            add(&mut totals[0], *amount);
            for &frame in tables.traceback_frames(tb).iter().rev() {
                node = *child_of.entry((node, frame)).or_insert_with(|| {
                    frames.push(Some(frame));
                    parents.push(node);
                    totals.push(Totals::default());
                    (frames.len() - 1) as u32
                });
                add(&mut totals[node as usize], *amount);
            }
        }
        let mut old_totals = vec![Totals::default(); frames.len()];
        if let Some(old) = old {
            match_old(&tables, &child_of, old, metric, &mut old_totals)?;
        }
        // Children lists (compressed rows), each sorted.
        let n = frames.len();
        let mut offsets = vec![0u32; n + 1];
        for &p in &parents[1..] {
            offsets[p as usize + 1] += 1;
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut children = vec![0u32; n.saturating_sub(1)];
        for (child, &p) in parents.iter().enumerate().skip(1) {
            children[fill[p as usize] as usize] = child as u32;
            fill[p as usize] += 1;
        }
        for p in 0..n {
            let slice = &mut children[offsets[p] as usize..offsets[p + 1] as usize];
            slice.sort_unstable_by(|&a, &b| {
                let (a, b) = (a as usize, b as usize);
                weight
                    .of(totals[b])
                    .cmp(&weight.of(totals[a]))
                    .then_with(|| cmp_frames(&tables, frames[a], frames[b]))
            });
        }
        // Pre-order.
        let mut nodes = Vec::with_capacity(n);
        let mut new_index = vec![0u32; n];
        let mut stack = vec![(0u32, 0u32)];
        while let Some((temp, depth)) = stack.pop() {
            let t = temp as usize;
            new_index[t] = nodes.len() as u32;
            nodes.push(FlameNode {
                frame: frames[t],
                parent: if t == 0 {
                    0
                } else {
                    new_index[parents[t] as usize]
                },
                depth,
                end: 0,
                total: totals[t],
                old_total: old_totals[t],
            });
            for &c in children[offsets[t] as usize..offsets[t + 1] as usize]
                .iter()
                .rev()
            {
                stack.push((c, depth + 1));
            }
        }
        // A node's subtree ends at the next node no deeper than it.
        let mut open: Vec<usize> = Vec::new();
        for i in 0..nodes.len() {
            while let Some(&top) = open.last() {
                if nodes[top].depth >= nodes[i].depth {
                    nodes[top].end = i as u32;
                    open.pop();
                } else {
                    break;
                }
            }
            open.push(i);
        }
        for top in open {
            nodes[top].end = nodes.len() as u32;
        }
        let max_depth = nodes.iter().map(|n| n.depth).max().unwrap_or(0);
        let max_abs_delta = if old.is_some() {
            nodes
                .iter()
                .map(|n| weight.of(n.total).abs_diff(weight.of(n.old_total)))
                .max()
                .unwrap_or(0)
        } else {
            0
        };
        Ok(FlameTree {
            tables,
            nodes,
            weight,
            comparison: old.is_some(),
            max_depth,
            max_abs_delta,
        })
    }

    /// Number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree is only its root (the snapshot has no trace).
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// A node.
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn node(&self, index: usize) -> &FlameNode {
        &self.nodes[index]
    }

    /// What the widths measure.
    pub fn weight(&self) -> FlameWeight {
        self.weight
    }

    /// Whether the tree holds an old snapshot's amounts.
    pub fn is_comparison(&self) -> bool {
        self.comparison
    }

    /// The deepest node's depth.
    pub fn max_depth(&self) -> u32 {
        self.max_depth
    }

    /// The snapshot's total (the root's).
    pub fn total(&self) -> Totals {
        self.nodes[0].total
    }

    /// The old snapshot's total when comparing.
    pub fn old_total(&self) -> Option<Totals> {
        self.comparison.then_some(self.nodes[0].old_total)
    }

    /// A node's measure: bytes or blocks, as the tree was built.
    pub fn value(&self, index: usize) -> u64 {
        self.weight.of(self.nodes[index].total)
    }

    /// The old snapshot's measure along the same path (0 when not
    /// comparing).
    pub fn old_value(&self, index: usize) -> u64 {
        self.weight.of(self.nodes[index].old_total)
    }

    /// A node's growth relative to the largest change of any node, from -1
    /// (the largest shrinkage) to 1 (the largest growth); 0 when not
    /// comparing or when nothing changed.
    pub fn growth(&self, index: usize) -> f64 {
        if self.max_abs_delta == 0 {
            return 0.0;
        }
        let (new, old) = (self.value(index), self.old_value(index));
        let delta = new.abs_diff(old) as f64 / self.max_abs_delta as f64;
        if new >= old { delta } else { -delta }
    }

    /// A node's frame; `None` for the root.
    pub fn frame(&self, index: usize) -> Option<FrameRef<'_>> {
        self.nodes[index].frame.map(|f| self.tables.frame(f))
    }

    /// What a node is called in the graph: its function, or `file:line`
    /// where the function is unknown (CPython); `all` for the root.
    pub fn label(&self, index: usize) -> String {
        match self.frame(index) {
            None => "all".to_owned(),
            Some(frame) => match frame.function {
                Some(function) => function.to_owned(),
                None => frame.to_string(),
            },
        }
    }

    /// A node's children, largest first.
    pub fn children(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let end = self.nodes[index].end as usize;
        let mut next = index + 1;
        std::iter::from_fn(move || {
            (next < end).then(|| {
                let child = next;
                next = self.nodes[child].end as usize;
                child
            })
        })
    }

    /// The bytes and blocks of the traces whose path ends at this node.
    pub fn self_totals(&self, index: usize) -> Totals {
        let mut own = self.nodes[index].total;
        for child in self.children(index) {
            let t = self.nodes[child].total;
            own.size -= t.size;
            own.count -= t.count;
        }
        own
    }

    /// Every node's measure of the traces whose path ends there, in node
    /// order (one pass, for exports).
    pub fn self_values(&self) -> Vec<u64> {
        let mut own: Vec<u64> = (0..self.nodes.len()).map(|i| self.value(i)).collect();
        for i in 1..self.nodes.len() {
            let parent = self.nodes[i].parent as usize;
            own[parent] -= self.value(i);
        }
        own
    }

    /// The path from the root to a node: the root first, the node last.
    pub fn path(&self, index: usize) -> Vec<usize> {
        let mut path = vec![index];
        let mut at = index;
        while at != 0 {
            at = self.nodes[at].parent as usize;
            path.push(at);
        }
        path.reverse();
        path
    }

    /// A node's frames as a traceback, most recent first (the node first):
    /// the traceback a table row of this path would have.
    pub fn traceback(&self, index: usize) -> Traceback {
        let frames = self
            .path(index)
            .into_iter()
            .rev()
            .filter_map(|i| self.nodes[i].frame)
            .map(|f| self.tables.owned_frame(f))
            .collect();
        Traceback {
            frames,
            total_nframe: None,
        }
    }

    /// The node reached from the root through `frames` (oldest first),
    /// matched by file, line and function, e.g. to find a zoomed node again
    /// in a recomputed tree.
    pub fn find(&self, frames: &[Frame]) -> Option<usize> {
        let mut at = 0;
        for wanted in frames {
            at = self.children(at).find(|&c| {
                self.frame(c).is_some_and(|f| {
                    f.filename == &*wanted.filename
                        && f.lineno == wanted.lineno
                        && f.function == wanted.function.as_deref()
                })
            })?;
        }
        Some(at)
    }

    /// The frames from the root to a node, oldest first, as
    /// [`FlameTree::find`] takes them.
    pub fn frames_to(&self, index: usize) -> Vec<Frame> {
        self.path(index)
            .into_iter()
            .filter_map(|i| self.nodes[i].frame)
            .map(|f| self.tables.owned_frame(f))
            .collect()
    }

    /// Where each visible node is drawn when `focus` fills the width (a
    /// zoom): `focus`'s ancestors and `focus` span the whole width, its
    /// descendants share it in proportion to their measure. Nodes narrower
    /// than `min_width` (a fraction of the width, e.g. one pixel's) are
    /// left out with their whole subtree, so the work is proportional to
    /// what is drawn. Spans come in pre-order.
    ///
    /// # Panics
    /// If `focus` is out of range.
    pub fn layout(&self, focus: usize, min_width: f64) -> Vec<FlameSpan> {
        let mut spans: Vec<FlameSpan> = self
            .path(focus)
            .into_iter()
            .map(|i| FlameSpan {
                node: i as u32,
                depth: self.nodes[i].depth,
                x: 0.0,
                width: 1.0,
            })
            .collect();
        let whole = self.value(focus) as f64;
        if whole <= 0.0 {
            return spans;
        }
        // The next free position in each row.
        let mut cursor = vec![0.0f64; self.max_depth as usize + 2];
        let end = self.nodes[focus].end as usize;
        let mut i = focus + 1;
        while i < end {
            let node = &self.nodes[i];
            let depth = node.depth as usize;
            let width = self.weight.of(node.total) as f64 / whole;
            let x = cursor[depth];
            cursor[depth] += width;
            if width < min_width || width <= 0.0 {
                // Its children are narrower still.
                i = node.end as usize;
                continue;
            }
            spans.push(FlameSpan {
                node: i as u32,
                depth: node.depth,
                x,
                width,
            });
            cursor[depth + 1] = x;
            i += 1;
        }
        spans
    }

    /// The nodes whose function or `file:line` contains `needle`. Smart
    /// case, as the table's search: the match ignores ASCII case unless
    /// `needle` has an upper-case letter. An empty needle matches nothing.
    pub fn search(&self, needle: &str) -> FlameMatches {
        let needle = needle.trim();
        let mut matched = vec![false; self.nodes.len()];
        if needle.is_empty() {
            return FlameMatches {
                matched,
                total: Totals::default(),
                nodes: 0,
            };
        }
        let ignore_case = !needle.chars().any(char::is_uppercase);
        const UNKNOWN: u8 = 2;
        let mut by_frame = vec![UNKNOWN; self.tables.frame_count()];
        let mut text = String::new();
        for (node, m) in self.nodes.iter().zip(matched.iter_mut()) {
            let Some(frame) = node.frame else {
                continue;
            };
            let cached = &mut by_frame[frame.index()];
            if *cached == UNKNOWN {
                let f = self.tables.frame(frame);
                text.clear();
                text.push_str(f.function.unwrap_or(""));
                text.push('\n');
                text.push_str(&f.to_string());
                if ignore_case {
                    text.make_ascii_lowercase();
                }
                *cached = u8::from(text.contains(needle));
            }
            *m = *cached == 1;
        }
        // Each trace once: a match's subtree is not counted again.
        let mut total = Totals::default();
        let mut i = 0;
        while i < self.nodes.len() {
            if matched[i] {
                add(&mut total, self.nodes[i].total);
                i = self.nodes[i].end as usize;
            } else {
                i += 1;
            }
        }
        let nodes = matched.iter().filter(|&&m| m).count();
        FlameMatches {
            matched,
            total,
            nodes,
        }
    }
}

/// Siblings' last tie-breaker: file, line, then function (none first).
fn cmp_frames(tables: &Tables, a: Option<FrameId>, b: Option<FrameId>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => {
            let (fa, fb) = (tables.frame(a), tables.frame(b));
            (fa.filename, fa.lineno, fa.function).cmp(&(fb.filename, fb.lineno, fb.function))
        }
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

/// Adds the old snapshot's amounts along every path of the new trie (temporary
/// ids) that its tracebacks share, matching frames by content; an old path
/// stops where it leaves the new tree.
fn match_old(
    tables: &Tables,
    child_of: &FxHashMap<(u32, FrameId), u32>,
    old: &Snapshot,
    metric: Metric,
    old_totals: &mut [Totals],
) -> Result<(), AnalysisError> {
    let (keys, amounts) = old.group_totals_unsorted_by(metric, KeyType::Traceback, false)?;
    let old_tables = old.tables();
    let by_text: FxHashMap<&str, StringId> = tables
        .string_ids()
        .map(|id| (tables.string(id), id))
        .collect();
    let string_to_new: Vec<Option<StringId>> = old_tables
        .string_ids()
        .map(|id| by_text.get(old_tables.string(id)).copied())
        .collect();
    let by_record: FxHashMap<(StringId, u32, Option<StringId>), FrameId> = tables
        .frame_ids()
        .map(|id| {
            let f = tables.frame_record(id);
            ((f.filename, f.lineno, f.function), id)
        })
        .collect();
    let mut translated: Vec<Option<Option<FrameId>>> = vec![None; old_tables.frame_count()];
    for (key, amount) in keys.iter().zip(&amounts) {
        let GroupKey::Frames(tb) = *key else {
            continue;
        };
        add(&mut old_totals[0], *amount);
        let mut node = 0u32;
        for &frame in old_tables.traceback_frames(tb).iter().rev() {
            let new_frame = *translated[frame.index()].get_or_insert_with(|| {
                let f = old_tables.frame_record(frame);
                let filename = string_to_new[f.filename.index()]?;
                let function = match f.function {
                    Some(func) => Some(string_to_new[func.index()]?),
                    None => None,
                };
                by_record.get(&(filename, f.lineno, function)).copied()
            });
            let Some(child) = new_frame.and_then(|f| child_of.get(&(node, f))) else {
                break;
            };
            node = *child;
            add(&mut old_totals[node as usize], *amount);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Metadata, SnapshotBuilder};

    /// A frame as `(file, line, function)`.
    type RawFrame<'a> = (&'a str, u32, &'a str);

    /// A snapshot of `(size, frames most recent first)` traces.
    fn snap(traces: &[(u64, &[RawFrame<'_>])]) -> Snapshot {
        let mut b = SnapshotBuilder::new(10);
        for &(size, frames) in traces {
            let ids: Vec<FrameId> = frames
                .iter()
                .map(|&(file, line, func)| b.intern_frame(file, line, Some(func)).unwrap())
                .collect();
            let tb = b.intern_traceback(&ids, None).unwrap();
            b.push_trace(0, size, tb).unwrap();
        }
        b.finish(Metadata::default())
    }

    const MAIN: (&str, u32, &str) = ("main.rs", 9, "main");
    const LEAK: (&str, u32, &str) = ("cache.rs", 8, "put");
    const IO: (&str, u32, &str) = ("io.rs", 3, "read");
    const PARSE: (&str, u32, &str) = ("parse.rs", 5, "parse");

    fn sample() -> Snapshot {
        snap(&[
            (100, &[LEAK, MAIN]),
            (100, &[LEAK, MAIN]),
            (30, &[IO, MAIN]),
            (5, &[MAIN]),
            (20, &[PARSE, IO, MAIN]),
        ])
    }

    /// Each node as `depth label value self end`, in tree order.
    fn dump(tree: &FlameTree) -> Vec<String> {
        (0..tree.len())
            .map(|i| {
                format!(
                    "{} {} {} {} {}",
                    tree.node(i).depth,
                    tree.label(i),
                    tree.value(i),
                    tree.self_totals(i).size,
                    tree.node(i).end
                )
            })
            .collect()
    }

    #[test]
    fn the_tree_sums_paths_largest_first() {
        let tree = FlameTree::new(&sample(), None, FlameWeight::Bytes).unwrap();
        assert_eq!(
            dump(&tree),
            [
                "0 all 255 0 5",
                "1 main 255 5 5",
                "2 put 200 200 3",
                "2 read 50 30 5",
                "3 parse 20 20 5",
            ]
        );
        assert_eq!(tree.total().count, 5);
        assert_eq!(tree.max_depth(), 3);
        assert_eq!(tree.children(1).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(tree.self_values(), [0, 5, 200, 30, 20]);
        assert!(!tree.is_comparison());
        assert_eq!(tree.growth(2), 0.0);
        // By blocks, `read` (2 blocks) and `put` (2) tie: the file decides.
        let by_count = FlameTree::new(&sample(), None, FlameWeight::Blocks).unwrap();
        let labels: Vec<String> = (0..by_count.len()).map(|i| by_count.label(i)).collect();
        assert_eq!(labels, ["all", "main", "put", "read", "parse"]);
        assert_eq!(by_count.value(1), 5);
    }

    #[test]
    fn paths_and_tracebacks_go_both_ways() {
        let tree = FlameTree::new(&sample(), None, FlameWeight::Bytes).unwrap();
        assert_eq!(tree.path(4), [0, 1, 3, 4]);
        let tb = tree.traceback(4);
        assert_eq!(tb.to_string(), "main.rs:9");
        assert_eq!(tb.frames[0].to_string(), "parse.rs:5");
        let frames = tree.frames_to(4);
        assert_eq!(tree.find(&frames), Some(4));
        assert_eq!(tree.find(&[]), Some(0));
        assert_eq!(tree.find(&frames[1..]), None);
    }

    #[test]
    fn layout_zooms_and_skips_narrow_subtrees() {
        let tree = FlameTree::new(&sample(), None, FlameWeight::Bytes).unwrap();
        let spans = |focus, min| -> Vec<(u32, u32, String, String)> {
            tree.layout(focus, min)
                .iter()
                .map(|s| {
                    (
                        s.node,
                        s.depth,
                        format!("{:.3}", s.x),
                        format!("{:.3}", s.width),
                    )
                })
                .collect()
        };
        let all = spans(0, 0.0);
        assert_eq!(all.len(), 5);
        assert_eq!(all[2], (2, 2, "0.000".into(), "0.784".into()));
        assert_eq!(all[3], (3, 2, "0.784".into(), "0.196".into()));
        assert_eq!(all[4], (4, 3, "0.784".into(), "0.078".into()));
        // Narrower than 10 %: `parse` goes.
        assert_eq!(spans(0, 0.1).len(), 4);
        // Zoomed on `read`: its ancestors and itself span the width.
        assert_eq!(
            spans(3, 0.0),
            [
                (0, 0, "0.000".into(), "1.000".into()),
                (1, 1, "0.000".into(), "1.000".into()),
                (3, 2, "0.000".into(), "1.000".into()),
                (4, 3, "0.000".into(), "0.400".into()),
            ]
        );
    }

    #[test]
    fn comparing_matches_paths_by_content() {
        // The old snapshot has other tables (another intern order), a
        // vanished path, and a path that leaves the new tree midway.
        let old = snap(&[
            (50, &[("gone.rs", 1, "gone"), MAIN]),
            (40, &[IO, MAIN]),
            (100, &[LEAK, MAIN]),
            (7, &[("other.rs", 2, "other"), PARSE, IO, MAIN]),
        ]);
        let tree = FlameTree::new(&sample(), Some(&old), FlameWeight::Bytes).unwrap();
        assert!(tree.is_comparison());
        assert_eq!(tree.old_total().map(|t| t.size), Some(197));
        let old_values: Vec<u64> = (0..tree.len()).map(|i| tree.old_value(i)).collect();
        // all, main, put, read, parse.
        assert_eq!(old_values, [197, 197, 100, 47, 7]);
        // The largest change is main's and the root's: +58; put grew 100.
        assert_eq!(tree.growth(2), 1.0);
        assert!((tree.growth(3) - (3.0 / 100.0)).abs() < 1e-9);
        assert!(tree.growth(0) > 0.5);
        let shrunk = snap(&[(10, &[LEAK, MAIN])]);
        let tree = FlameTree::new(&shrunk, Some(&sample()), FlameWeight::Bytes).unwrap();
        assert_eq!(tree.growth(2), -190.0 / 245.0);
    }

    #[test]
    fn search_counts_each_trace_once() {
        let tree = FlameTree::new(&sample(), None, FlameWeight::Bytes).unwrap();
        let m = tree.search("r");
        // main, read and parse match "r" in a function or file name; main
        // holds everything, so the total is the whole snapshot, once.
        assert_eq!(m.total.size, 255);
        assert_eq!(m.nodes, 4);
        let m = tree.search("IO.rs");
        assert_eq!(m.nodes, 0, "smart case: an upper-case needle is exact");
        let m = tree.search("io.rs:3");
        assert!(m.is_match(3) && !m.is_match(4));
        assert_eq!(m.total.size, 50);
        assert_eq!(tree.search("  ").nodes, 0);
        assert!(!m.is_match(99));
    }

    #[test]
    fn an_empty_snapshot_is_a_root() {
        let tree = FlameTree::new(&snap(&[]), None, FlameWeight::Bytes).unwrap();
        assert!(tree.is_empty());
        assert_eq!(tree.layout(0, 0.0).len(), 1);
        assert_eq!(tree.label(0), "all");
    }
}
