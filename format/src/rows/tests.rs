//! A view must have exactly CPython's statistics as rows, in CPython's
//! order; sorting, searching and ranking are checked on small cases.

use super::*;
use crate::model::{Metadata, SnapshotBuilder};

/// A deterministic pseudo-random snapshot: `traces` traces over a few
/// files, lines and functions, tracebacks of one to four frames, some
/// repeated (recursion) so that cumulative mode matters.
fn random_snapshot(seed: u64, traces: usize) -> Snapshot {
    let mut state = seed;
    let mut next = move |n: u64| {
        // xorshift64*: good enough to vary the data, and reproducible.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    };
    let mut b = SnapshotBuilder::new(4);
    for _ in 0..traces {
        let depth = 1 + next(4) as usize;
        let mut frames = Vec::new();
        for _ in 0..depth {
            let file = format!("src/f{}.rs", next(5));
            let function = match next(3) {
                0 => None,
                n => Some(format!("fn{n}")),
            };
            let lineno = 1 + next(12) as u32;
            frames.push(b.intern_frame(&file, lineno, function.as_deref()).unwrap());
        }
        let tb = b.intern_traceback(&frames, Some(depth as u32)).unwrap();
        b.push_trace(next(2) as u32, 1 + next(100), tb).unwrap();
    }
    b.finish(Metadata::default())
}

/// The rows as CPython-style tuples: (traceback, size, count, size_diff,
/// count_diff).
type Tuple = (Traceback, u64, u64, i64, i64);

fn view_tuples(view: &View) -> Vec<Tuple> {
    (0..view.len())
        .map(|i| {
            let r = view.rows()[i];
            (
                view.traceback(i),
                r.size,
                r.count,
                r.size_diff,
                r.count_diff,
            )
        })
        .collect()
}

fn check_against_cpython_semantics(new: &Snapshot, old: &Snapshot) {
    for key_type in [KeyType::Filename, KeyType::Lineno, KeyType::Traceback] {
        for cumulative in [false, true] {
            if cumulative && key_type == KeyType::Traceback {
                assert_eq!(
                    Grouping::new(new, key_type, cumulative).unwrap_err(),
                    AnalysisError::CumulativeTraceback
                );
                continue;
            }
            let g_new = Grouping::new(new, key_type, cumulative).unwrap();
            let g_old = Grouping::new(old, key_type, cumulative).unwrap();

            let plain = View::plain(&g_new);
            let expected: Vec<Tuple> = new
                .statistics(key_type, cumulative)
                .unwrap()
                .into_iter()
                .map(|s| (s.traceback, s.size, s.count, 0, 0))
                .collect();
            assert_eq!(view_tuples(&plain), expected, "{key_type} {cumulative}");

            let diff = View::compare(&g_new, &g_old);
            let expected: Vec<Tuple> = new
                .compare_to(old, key_type, cumulative)
                .unwrap()
                .into_iter()
                .map(|d| (d.traceback, d.size, d.count, d.size_diff, d.count_diff))
                .collect();
            assert_eq!(view_tuples(&diff), expected, "{key_type} {cumulative} diff");
            assert_eq!(diff.total(), new.totals());
            assert_eq!(diff.old_total(), Some(old.totals()));
        }
    }
}

#[test]
fn rows_of_every_metric_are_its_statistics() {
    use crate::filter::Filter;
    use crate::stats::Metric;
    use crate::stats::tests::snapshot_with_history;

    let new = snapshot_with_history();
    // The old snapshot keeps a.py:2's history only.
    let old = new.filter_traces(&[Filter::new(true, "a.py").with_lineno(2).into()]);
    for metric in Metric::ALL {
        for (key_type, cumulative) in [
            (KeyType::Filename, false),
            (KeyType::Lineno, false),
            (KeyType::Lineno, true),
            (KeyType::Traceback, false),
        ] {
            let g_new = Grouping::new_by(&new, metric, key_type, cumulative).unwrap();
            let g_old = Grouping::new_by(&old, metric, key_type, cumulative).unwrap();
            assert_eq!(g_new.metric(), metric);
            let plain = View::plain(&g_new);
            assert_eq!(plain.metric(), metric);
            let expected: Vec<Tuple> = new
                .statistics_by(metric, key_type, cumulative)
                .unwrap()
                .into_iter()
                .map(|s| (s.traceback, s.size, s.count, 0, 0))
                .collect();
            assert_eq!(
                view_tuples(&plain),
                expected,
                "{metric} {key_type} {cumulative}"
            );
            assert_eq!(plain.total(), new.totals_by(metric).unwrap());

            let diff = View::compare(&g_new, &g_old);
            let expected: Vec<Tuple> = new
                .compare_to_by(&old, metric, key_type, cumulative)
                .unwrap()
                .into_iter()
                .map(|d| (d.traceback, d.size, d.count, d.size_diff, d.count_diff))
                .collect();
            assert_eq!(
                view_tuples(&diff),
                expected,
                "{metric} {key_type} {cumulative}"
            );
            assert_eq!(diff.old_total(), Some(old.totals_by(metric).unwrap()));
        }
    }
    // The allocated view's top row is the line of a hundred temporaries,
    // which holds nothing live.
    let allocated =
        View::plain(&Grouping::new_by(&new, Metric::Allocated, KeyType::Lineno, false).unwrap());
    assert_eq!(allocated.source_text(0), "a.py:5");
    assert_eq!(
        (allocated.rows()[0].size, allocated.rows()[0].count),
        (6400, 100)
    );
}

#[test]
fn history_metrics_without_history_are_an_error_not_zeros() {
    use crate::stats::Metric;

    let snapshot = random_snapshot(7, 50);
    assert!(snapshot.history().is_none());
    for metric in [Metric::Allocated, Metric::Temporary, Metric::Peak] {
        assert_eq!(
            Grouping::new_by(&snapshot, metric, KeyType::Lineno, false).unwrap_err(),
            AnalysisError::NoHistory(metric)
        );
    }
    let live = Grouping::new_by(&snapshot, Metric::Live, KeyType::Lineno, false).unwrap();
    assert_eq!(
        view_tuples(&View::plain(&live)),
        view_tuples(&View::plain(
            &Grouping::new(&snapshot, KeyType::Lineno, false).unwrap()
        ))
    );
}

#[test]
fn rows_are_cpython_statistics_in_cpython_order() {
    for seed in 1..6 {
        let new = random_snapshot(seed, 400);
        let old = random_snapshot(seed + 100, 300);
        check_against_cpython_semantics(&new, &old);
    }
}

#[test]
fn rows_match_when_a_snapshot_is_empty() {
    let empty = SnapshotBuilder::new(1).finish(Metadata::default());
    let full = random_snapshot(7, 50);
    check_against_cpython_semantics(&full, &empty);
    check_against_cpython_semantics(&empty, &full);
}

/// A trace as (size, frames most recent first).
type SizedFrames<'a> = (u64, &'a [(&'a str, u32)]);

fn lineno_view(new: &[SizedFrames<'_>], old: Option<&[SizedFrames<'_>]>) -> View {
    let snap = |traces: &[SizedFrames<'_>]| {
        Snapshot::from_raw_traces(5, traces.iter().map(|&(size, f)| (0, size, f, None))).unwrap()
    };
    let new = Grouping::new(&snap(new), KeyType::Lineno, false).unwrap();
    match old {
        None => View::plain(&new),
        Some(old) => View::compare(
            &new,
            &Grouping::new(&snap(old), KeyType::Lineno, false).unwrap(),
        ),
    }
}

fn texts(view: &View, order: &[u32]) -> Vec<String> {
    order
        .iter()
        .map(|&i| view.source_text(i as usize))
        .collect()
}

#[test]
fn sorting_by_each_column_with_ties_in_cpython_order() {
    let view = lineno_view(
        &[
            (10, &[("b.rs", 10)]),
            (10, &[("b.rs", 9)]),
            (30, &[("a.rs", 1)]),
            (5, &[("c.rs", 2)]),
            (5, &[("c.rs", 2)]),
        ],
        Some(&[(40, &[("a.rs", 1)]), (3, &[("gone.rs", 7)])]),
    );
    let check = |column, descending, expected: &[&str]| {
        assert_eq!(
            texts(&view, &view.sorted(column, descending)),
            expected,
            "{column:?} descending={descending}"
        );
    };
    // Sizes: a=30, b.rs:10=10, b.rs:9=10, c=10 (two blocks), gone=0.
    // CPython's order breaks the ties: among the groups that grew by 10
    // bytes, c.rs:2 grew by more blocks, then the larger traceback
    // (b.rs:10) comes first.
    check(
        SortColumn::Size,
        true,
        &["a.rs:1", "c.rs:2", "b.rs:10", "b.rs:9", "gone.rs:7"],
    );
    // Ascending keeps the ties in CPython's order.
    check(
        SortColumn::Size,
        false,
        &["gone.rs:7", "c.rs:2", "b.rs:10", "b.rs:9", "a.rs:1"],
    );
    // Signed differences: growth first, shrinkage last.
    check(
        SortColumn::SizeDiff,
        true,
        &["c.rs:2", "b.rs:10", "b.rs:9", "gone.rs:7", "a.rs:1"],
    );
    check(
        SortColumn::CountDiff,
        true,
        &["c.rs:2", "b.rs:10", "b.rs:9", "a.rs:1", "gone.rs:7"],
    );
    // Lines compare as numbers, not as text.
    check(
        SortColumn::Source,
        false,
        &["a.rs:1", "b.rs:9", "b.rs:10", "c.rs:2", "gone.rs:7"],
    );
    check(
        SortColumn::Source,
        true,
        &["gone.rs:7", "c.rs:2", "b.rs:10", "b.rs:9", "a.rs:1"],
    );
    // Averages: a=30, b=10, b=10, c=5, gone=0.
    check(
        SortColumn::AverageSize,
        true,
        &["a.rs:1", "b.rs:10", "b.rs:9", "c.rs:2", "gone.rs:7"],
    );
    assert_eq!(
        view.sorted(SortColumn::PercentOfTotal, true),
        view.sorted(SortColumn::Size, true)
    );
}

#[test]
fn traceback_rows_read_most_recent_first() {
    let snap = Snapshot::from_raw_traces(
        5,
        [
            (0, 8, &[("a.rs", 3), ("b.rs", 9), ("main.rs", 1)][..], None),
            (0, 4, &[("a.rs", 3), ("main.rs", 2)][..], None),
        ],
    )
    .unwrap();
    let view = View::plain(&Grouping::new(&snap, KeyType::Traceback, false).unwrap());
    assert_eq!(view.source_text(0), "a.rs:3 ← b.rs:9 ← main.rs:1");
    assert_eq!(view.source_text(1), "a.rs:3 ← main.rs:2");
    assert_eq!(view.frames(0).len(), 3);
    // Sorting by source compares the most recent frames first.
    assert_eq!(
        texts(&view, &view.sorted(SortColumn::Source, false)),
        ["a.rs:3 ← b.rs:9 ← main.rs:1", "a.rs:3 ← main.rs:2"]
    );
    // Searching inside one frame and across frames.
    let all = view.sorted(SortColumn::Size, true);
    assert_eq!(view.search(&all, "b.rs:9"), [0]);
    assert_eq!(view.search(&all, "MAIN"), Vec::<u32>::new());
    assert_eq!(view.search(&all, "main.rs:"), [0, 1]);
    assert_eq!(view.search(&all, "3 ← main"), [1]);
    assert_eq!(view.search(&all, "rs:9 "), [0]);
    let file_view = View::plain(&Grouping::new(&snap, KeyType::Filename, false).unwrap());
    assert_eq!(file_view.source_text(0), "a.rs");
}

#[test]
fn search_is_a_smart_case_substring_match() {
    let view = lineno_view(
        &[
            (3, &[("src/Alloc.rs", 1)]),
            (2, &[("src/alloc.rs", 2)]),
            (1, &[("src/main.rs", 12)]),
        ],
        None,
    );
    let all = view.sorted(SortColumn::Size, true);
    let found = |needle| texts(&view, &view.search(&all, needle));
    assert_eq!(found("alloc"), ["src/Alloc.rs:1", "src/alloc.rs:2"]);
    assert_eq!(found("Alloc"), ["src/Alloc.rs:1"]);
    assert_eq!(found("rs:12"), ["src/main.rs:12"]);
    assert_eq!(found("  "), texts(&view, &all));
    assert!(found("nothing").is_empty());
}

#[test]
fn top_ranks_by_absolute_difference_and_leaves_out_zeros() {
    let view = lineno_view(
        &[
            (100, &[("grow.rs", 1)]),
            (5, &[("same.rs", 1)]),
            (1, &[("small.rs", 1)]),
        ],
        Some(&[
            (5, &[("same.rs", 1)]),
            (500, &[("shrink.rs", 1)]),
            (1, &[("small.rs", 1)]),
            (1, &[("small.rs", 1)]),
        ]),
    );
    let top = |metric, n| texts(&view, &view.top(metric, n));
    assert_eq!(
        top(ChartMetric::SizeDiff, 10),
        ["shrink.rs:1", "grow.rs:1", "small.rs:1"]
    );
    assert_eq!(top(ChartMetric::SizeDiff, 1), ["shrink.rs:1"]);
    // shrink.rs, grow.rs and small.rs all changed by one block: ties in
    // CPython's order.
    assert_eq!(top(ChartMetric::CountDiff, 2), ["shrink.rs:1", "grow.rs:1"]);
    assert_eq!(
        top(ChartMetric::Size, 10),
        ["grow.rs:1", "same.rs:1", "small.rs:1"]
    );
    assert!(top(ChartMetric::Size, 0).is_empty());
}

#[test]
fn position_of_finds_a_row_by_its_key() {
    let view = lineno_view(&[(3, &[("a.rs", 1)]), (2, &[("b.rs", 2)])], None);
    let tb = view.traceback(1);
    assert_eq!(view.position_of(&tb), Some(1));
    let other = Traceback {
        frames: vec![Frame::new("b.rs", 3)],
        total_nframe: None,
    };
    assert_eq!(view.position_of(&other), None);
    assert!((view.fraction_of_total(0) - 0.6).abs() < 1e-9);
}
