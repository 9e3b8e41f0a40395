//! The facts of CPython's Lib/test/test_tracemalloc.py (`TestSnapshot`),
//! ported as data: each case is a snapshot, a request and the expected rows.

use super::*;
use crate::filter::{DomainFilter, Filter, TraceFilter};
use crate::model::{HistoryRow, Metadata};

type RawTrace = (u32, u64, &'static [(&'static str, u32)], Option<u32>);
/// Frames as CPython's raw tuples: (filename, lineno), most recent first.
type RawFrames<'a> = &'a [(&'a str, u32)];

const A2_B4: &[(&str, u32)] = &[("a.py", 2), ("b.py", 4)];
const A5_B4: &[(&str, u32)] = &[("a.py", 5), ("b.py", 4)];
const B1: &[(&str, u32)] = &[("b.py", 1)];
const UNKNOWN: &[(&str, u32)] = &[("<unknown>", 0)];
const C578: &[(&str, u32)] = &[("c.py", 578)];

/// `create_snapshots()` of test_tracemalloc.py.
fn create_snapshots() -> (Snapshot, Snapshot) {
    let raw1: &[RawTrace] = &[
        (0, 10, A2_B4, Some(3)),
        (0, 10, A2_B4, Some(3)),
        (0, 10, A2_B4, Some(3)),
        (1, 2, A5_B4, Some(3)),
        (2, 66, B1, Some(1)),
        (3, 7, UNKNOWN, Some(1)),
    ];
    let raw2: &[RawTrace] = &[
        (0, 10, A2_B4, Some(3)),
        (0, 10, A2_B4, Some(3)),
        (0, 10, A2_B4, Some(3)),
        (2, 2, A5_B4, Some(3)),
        (2, 5000, A5_B4, Some(3)),
        (4, 400, C578, Some(1)),
    ];
    (
        Snapshot::from_raw_traces(2, raw1.iter().copied()).unwrap(),
        Snapshot::from_raw_traces(2, raw2.iter().copied()).unwrap(),
    )
}

/// The traces of a snapshot as CPython's raw tuples, to compare with the
/// expectations of the filter tests.
/// A trace as an owned CPython raw tuple.
type OwnedRawTrace = (u32, u64, Vec<(String, u32)>, Option<u32>);

fn raw(snapshot: &Snapshot) -> Vec<OwnedRawTrace> {
    snapshot
        .traces()
        .iter()
        .map(|t| {
            let tb = snapshot.traceback(t.traceback);
            let frames = tb
                .frames
                .iter()
                .map(|f| (f.filename.to_string(), f.lineno))
                .collect();
            (t.domain, t.size, frames, tb.total_nframe)
        })
        .collect()
}

fn to_raw(traces: &[RawTrace]) -> Vec<OwnedRawTrace> {
    traces
        .iter()
        .map(|&(d, s, frames, n)| {
            let frames = frames.iter().map(|&(f, l)| (f.to_owned(), l)).collect();
            (d, s, frames, n)
        })
        .collect()
}

fn tb(frames: &[(&str, u32)]) -> Traceback {
    Traceback {
        frames: frames.iter().map(|&(f, l)| Frame::new(f, l)).collect(),
        total_nframe: None,
    }
}

/// Checks `statistics()` against rows of (key frames, size, count).
fn check_stats(
    snapshot: &Snapshot,
    key: KeyType,
    cumulative: bool,
    expected: &[(RawFrames<'_>, u64, u64)],
) {
    let got = snapshot.statistics(key, cumulative).unwrap();
    let expected: Vec<Statistic> = expected
        .iter()
        .map(|&(frames, size, count)| Statistic {
            traceback: tb(frames),
            size,
            count,
        })
        .collect();
    assert_eq!(got, expected, "statistics({key}, cumulative={cumulative})");
}

/// Checks `compare_to()` against rows of (key frames, size, size_diff,
/// count, count_diff).
fn check_diff(
    new: &Snapshot,
    old: &Snapshot,
    key: KeyType,
    cumulative: bool,
    expected: &[(RawFrames<'_>, u64, i64, u64, i64)],
) {
    let got = new.compare_to(old, key, cumulative).unwrap();
    let expected: Vec<StatisticDiff> = expected
        .iter()
        .map(
            |&(frames, size, size_diff, count, count_diff)| StatisticDiff {
                traceback: tb(frames),
                size,
                size_diff,
                count,
                count_diff,
            },
        )
        .collect();
    assert_eq!(got, expected, "compare_to({key}, cumulative={cumulative})");
}

#[test]
fn create_snapshot() {
    let raw: &[RawTrace] = &[(0, 5, &[("a.py", 2)], Some(10))];
    let snapshot = Snapshot::from_raw_traces(5, raw.iter().copied()).unwrap();
    assert_eq!(snapshot.traceback_limit(), 5);
    assert_eq!(snapshot.traces().len(), 1);
    let trace = snapshot.traces()[0];
    assert_eq!(trace.size, 5);
    let traceback = snapshot.traceback(trace.traceback);
    assert_eq!(traceback.total_nframe, Some(10));
    assert_eq!(traceback.frames, vec![Frame::new("a.py", 2)]);
}

#[test]
fn filter_traces() {
    let (snapshot, _) = create_snapshots();
    let filter1: TraceFilter = Filter::new(false, "b.py").into();
    let filter2: TraceFilter = Filter::new(true, "a.py").with_lineno(2).into();
    let filter3: TraceFilter = Filter::new(true, "a.py").with_lineno(5).into();
    let original = raw(&snapshot);

    // exclude b.py
    let snapshot3 = snapshot.filter_traces(std::slice::from_ref(&filter1));
    assert_eq!(
        raw(&snapshot3),
        to_raw(&[
            (0, 10, A2_B4, Some(3)),
            (0, 10, A2_B4, Some(3)),
            (0, 10, A2_B4, Some(3)),
            (1, 2, A5_B4, Some(3)),
            (3, 7, UNKNOWN, Some(1)),
        ])
    );
    // filter_traces() must not touch the original snapshot
    assert_eq!(raw(&snapshot), original);

    // only include two lines of a.py
    let snapshot4 = snapshot3.filter_traces(&[filter2, filter3]);
    assert_eq!(
        raw(&snapshot4),
        to_raw(&[
            (0, 10, A2_B4, Some(3)),
            (0, 10, A2_B4, Some(3)),
            (0, 10, A2_B4, Some(3)),
            (1, 2, A5_B4, Some(3)),
        ])
    );

    // No filter: just duplicate the snapshot, sharing its tables.
    let snapshot5 = snapshot.filter_traces(&[]);
    assert_eq!(raw(&snapshot5), original);
    assert!(Arc::ptr_eq(
        snapshot5.shared_tables(),
        snapshot.shared_tables()
    ));
}

#[test]
fn filter_traces_domain() {
    let (snapshot, _) = create_snapshots();
    let exclude_a_in_1: TraceFilter = Filter::new(false, "a.py").with_domain(1).into();
    let include_a_in_1: TraceFilter = Filter::new(true, "a.py").with_domain(1).into();

    // exclude a.py of domain 1
    assert_eq!(
        raw(&snapshot.filter_traces(&[exclude_a_in_1])),
        to_raw(&[
            (0, 10, A2_B4, Some(3)),
            (0, 10, A2_B4, Some(3)),
            (0, 10, A2_B4, Some(3)),
            (2, 66, B1, Some(1)),
            (3, 7, UNKNOWN, Some(1)),
        ])
    );
    // include a.py of domain 1 (CPython's test repeats filter1 here; this is
    // the case its comment names).
    assert_eq!(
        raw(&snapshot.filter_traces(&[include_a_in_1])),
        to_raw(&[(1, 2, A5_B4, Some(3))])
    );
}

#[test]
fn filter_traces_domain_filter() {
    let (snapshot, _) = create_snapshots();
    let exclude3: TraceFilter = DomainFilter {
        inclusive: false,
        domain: 3,
    }
    .into();
    let include3: TraceFilter = DomainFilter {
        inclusive: true,
        domain: 3,
    }
    .into();
    assert_eq!(
        raw(&snapshot.filter_traces(&[exclude3])),
        to_raw(&[
            (0, 10, A2_B4, Some(3)),
            (0, 10, A2_B4, Some(3)),
            (0, 10, A2_B4, Some(3)),
            (1, 2, A5_B4, Some(3)),
            (2, 66, B1, Some(1)),
        ])
    );
    assert_eq!(
        raw(&snapshot.filter_traces(&[include3])),
        to_raw(&[(3, 7, UNKNOWN, Some(1))])
    );
}

#[test]
fn group_by_line() {
    let (snapshot, snapshot2) = create_snapshots();
    check_stats(
        &snapshot,
        KeyType::Lineno,
        false,
        &[
            (&[("b.py", 1)], 66, 1),
            (&[("a.py", 2)], 30, 3),
            (UNKNOWN, 7, 1),
            (&[("a.py", 5)], 2, 1),
        ],
    );
    check_stats(
        &snapshot2,
        KeyType::Lineno,
        false,
        &[
            (&[("a.py", 5)], 5002, 2),
            (C578, 400, 1),
            (&[("a.py", 2)], 30, 3),
        ],
    );
    check_diff(
        &snapshot2,
        &snapshot,
        KeyType::Lineno,
        false,
        &[
            (&[("a.py", 5)], 5002, 5000, 2, 1),
            (C578, 400, 400, 1, 1),
            (&[("b.py", 1)], 0, -66, 0, -1),
            (UNKNOWN, 0, -7, 0, -1),
            (&[("a.py", 2)], 30, 0, 3, 0),
        ],
    );
}

#[test]
fn group_by_file() {
    let (snapshot, snapshot2) = create_snapshots();
    check_stats(
        &snapshot,
        KeyType::Filename,
        false,
        &[
            (&[("b.py", 0)], 66, 1),
            (&[("a.py", 0)], 32, 4),
            (UNKNOWN, 7, 1),
        ],
    );
    check_stats(
        &snapshot2,
        KeyType::Filename,
        false,
        &[(&[("a.py", 0)], 5032, 5), (&[("c.py", 0)], 400, 1)],
    );
    check_diff(
        &snapshot2,
        &snapshot,
        KeyType::Filename,
        false,
        &[
            (&[("a.py", 0)], 5032, 5000, 5, 1),
            (&[("c.py", 0)], 400, 400, 1, 1),
            (&[("b.py", 0)], 0, -66, 0, -1),
            (UNKNOWN, 0, -7, 0, -1),
        ],
    );
}

#[test]
fn group_by_traceback() {
    let (snapshot, snapshot2) = create_snapshots();
    check_stats(
        &snapshot,
        KeyType::Traceback,
        false,
        &[(B1, 66, 1), (A2_B4, 30, 3), (UNKNOWN, 7, 1), (A5_B4, 2, 1)],
    );
    check_stats(
        &snapshot2,
        KeyType::Traceback,
        false,
        &[(A5_B4, 5002, 2), (C578, 400, 1), (A2_B4, 30, 3)],
    );
    check_diff(
        &snapshot2,
        &snapshot,
        KeyType::Traceback,
        false,
        &[
            (A5_B4, 5002, 5000, 2, 1),
            (C578, 400, 400, 1, 1),
            (B1, 0, -66, 0, -1),
            (UNKNOWN, 0, -7, 0, -1),
            (A2_B4, 30, 0, 3, 0),
        ],
    );
    assert_eq!(
        snapshot.statistics(KeyType::Traceback, true),
        Err(AnalysisError::CumulativeTraceback)
    );
    assert_eq!(
        snapshot.compare_to(&snapshot2, KeyType::Traceback, true),
        Err(AnalysisError::CumulativeTraceback)
    );
}

#[test]
fn group_by_cumulative() {
    let (snapshot, _) = create_snapshots();
    check_stats(
        &snapshot,
        KeyType::Filename,
        true,
        &[
            (&[("b.py", 0)], 98, 5),
            (&[("a.py", 0)], 32, 4),
            (UNKNOWN, 7, 1),
        ],
    );
    check_stats(
        &snapshot,
        KeyType::Lineno,
        true,
        &[
            (&[("b.py", 1)], 66, 1),
            (&[("b.py", 4)], 32, 4),
            (&[("a.py", 2)], 30, 3),
            (UNKNOWN, 7, 1),
            (&[("a.py", 5)], 2, 1),
        ],
    );
}

#[test]
fn cumulative_counts_a_recursive_block_once_per_group() {
    // f.py:1 calls itself through f.py:2 three times. CPython would report
    // f.py:2 at 300 bytes (three occurrences) and f.py at 400, over a total
    // of 100: we report each block once per group.
    let raw: &[RawTrace] = &[(
        0,
        100,
        &[("f.py", 1), ("f.py", 2), ("f.py", 2), ("f.py", 2)],
        Some(4),
    )];
    let snapshot = Snapshot::from_raw_traces(4, raw.iter().copied()).unwrap();
    check_stats(
        &snapshot,
        KeyType::Lineno,
        true,
        &[(&[("f.py", 2)], 100, 1), (&[("f.py", 1)], 100, 1)],
    );
    check_stats(
        &snapshot,
        KeyType::Filename,
        true,
        &[(&[("f.py", 0)], 100, 1)],
    );
    assert_eq!(
        snapshot.totals(),
        Totals {
            size: 100,
            count: 1
        }
    );
}

#[test]
fn trace_statistic_and_diff_format() {
    let (snapshot, snapshot2) = create_snapshots();
    let trace = snapshot.traces()[0];
    let traceback = snapshot.traceback(trace.traceback);
    // test_trace_format: str(trace) is "<traceback>: <size>".
    assert_eq!(
        format!("{traceback}: {}", crate::size::format_bytes(trace.size)),
        "b.py:4: 10 B"
    );
    assert_eq!(traceback.to_string(), "b.py:4");
    assert_eq!(traceback.frames[1].to_string(), "b.py:4");

    let stats = snapshot.statistics(KeyType::Lineno, false).unwrap();
    assert_eq!(
        stats[0].to_string(),
        "b.py:1: size=66 B, count=1, average=66 B"
    );

    let diffs = snapshot2
        .compare_to(&snapshot, KeyType::Lineno, false)
        .unwrap();
    assert_eq!(
        diffs[0].to_string(),
        "a.py:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B"
    );
    // A vanished group has no average, as in CPython.
    assert_eq!(
        diffs[2].to_string(),
        "b.py:1: size=0 B (-66 B), count=0 (-1)"
    );
}

#[test]
fn format_traceback() {
    let (snapshot, _) = create_snapshots();
    let tb = snapshot.traceback(snapshot.traces()[0].traceback);
    let getline = |f: &str, l: u32| Some(format!("  <{f}, {l}>"));
    let lines = |limit, most_recent_first| tb.format(limit, most_recent_first, getline);
    let b = ["  File \"b.py\", line 4", "    <b.py, 4>"];
    let a = ["  File \"a.py\", line 2", "    <a.py, 2>"];
    assert_eq!(lines(None, false), [b, a].concat());
    assert_eq!(lines(Some(1), false), a);
    assert_eq!(lines(Some(-1), false), b);
    assert_eq!(lines(None, true), [a, b].concat());
    assert_eq!(lines(Some(1), true), a);
    assert_eq!(lines(Some(-1), true), b);
}

#[test]
fn ties_are_broken_by_traceback_like_cpython() {
    // Equal sizes and counts: CPython orders by traceback, largest first,
    // comparing (filename, lineno) of the oldest frame first.
    let raw: &[RawTrace] = &[
        (0, 8, &[("a.py", 1)], None),
        (0, 8, &[("c.py", 1)], None),
        (0, 8, &[("b.py", 2)], None),
        (0, 8, &[("b.py", 10)], None),
    ];
    let snapshot = Snapshot::from_raw_traces(1, raw.iter().copied()).unwrap();
    check_stats(
        &snapshot,
        KeyType::Lineno,
        false,
        &[
            (&[("c.py", 1)], 8, 1),
            (&[("b.py", 10)], 8, 1),
            (&[("b.py", 2)], 8, 1),
            (&[("a.py", 1)], 8, 1),
        ],
    );
}

#[test]
fn lineno_groups_show_the_smallest_function_name() {
    let mut b = crate::SnapshotBuilder::new(1);
    for function in ["zeta", "alpha", "mid"] {
        let f = b.intern_frame("x.rs", 3, Some(function)).unwrap();
        let t = b.intern_traceback(&[f], None).unwrap();
        b.push_trace(0, 1, t).unwrap();
    }
    let snapshot = b.finish(Metadata::default());
    let stats = snapshot.statistics(KeyType::Lineno, false).unwrap();
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].count, 3);
    assert_eq!(
        stats[0].traceback.frames[0].function.as_deref(),
        Some("alpha")
    );
}

#[test]
fn sampled_snapshots_are_scaled_to_unbiased_estimates() {
    let mut b = crate::SnapshotBuilder::new(1);
    let f = b.intern_frame("x.rs", 1, None).unwrap();
    let t = b.intern_traceback(&[f], None).unwrap();
    // A block as large as the sampling rate was sampled with probability
    // 1 - 1/e, so it stands for 1 / (1 - 1/e) = 1.582 blocks.
    b.push_trace(0, 1000, t).unwrap();
    let snapshot = b.finish(Metadata {
        sampling_rate: Some(1000),
        ..Metadata::default()
    });
    let stats = snapshot.statistics(KeyType::Lineno, false).unwrap();
    let p = 1.0 - (-1.0f64).exp();
    assert_eq!(stats[0].size, (1000.0 / p).round() as u64);
    assert_eq!(stats[0].count, (1.0 / p).round() as u64);
    assert_eq!(snapshot.totals().size, 1582);
}

/// Above `PARALLEL_MIN_TRACES`, `compare_to` groups the two snapshots on
/// two threads; the rows must be exactly those of grouping them one after
/// the other.
#[test]
fn compare_to_on_two_threads_gives_the_sequential_rows() {
    let files: Vec<String> = (0..50).map(|i| format!("f{i}.py")).collect();
    let frames: Vec<Vec<(&str, u32)>> = (0..500u32)
        .map(|i| {
            (0..1 + i % 4)
                .map(|depth| {
                    (
                        files[((i + depth * 7) % 50) as usize].as_str(),
                        1 + (i * 3 + depth) % 40,
                    )
                })
                .collect()
        })
        .collect();
    let snapshot = |seed: u64, n: usize| {
        let traces = (0..n).map(|i| {
            let pick = (i as u64).wrapping_mul(2_654_435_761).wrapping_add(seed) % 500;
            (0, 1 + pick * seed % 97, &frames[pick as usize][..], None)
        });
        Snapshot::from_raw_traces(8, traces).unwrap()
    };
    let (new, old) = (snapshot(3, 40_000), snapshot(5, 30_000));
    assert!(new.traces().len() + old.traces().len() >= PARALLEL_MIN_TRACES);
    for (key_type, cumulative) in [
        (KeyType::Filename, false),
        (KeyType::Filename, true),
        (KeyType::Lineno, false),
        (KeyType::Lineno, true),
        (KeyType::Traceback, false),
    ] {
        let mut expected = diff_statistics(
            key_type,
            new.statistics(key_type, cumulative).unwrap(),
            old.statistics(key_type, cumulative).unwrap(),
        );
        expected.sort_by(StatisticDiff::cmp_cpython);
        let rows = new.compare_to(&old, key_type, cumulative).unwrap();
        assert!(!rows.is_empty());
        assert_eq!(rows, expected, "{key_type:?} cumulative={cumulative}");
    }
    assert!(matches!(
        new.compare_to(&old, KeyType::Traceback, true),
        Err(AnalysisError::CumulativeTraceback)
    ));
}

/// A snapshot with an allocation history: `a.py:2` keeps one of its five
/// blocks; `a.py:5` allocated a hundred temporaries, all freed; `c.py:1`
/// (domain 1) allocated one block that is still live. The peak held two
/// blocks of `a.py:2` and the one of `c.py:1`.
pub(crate) fn snapshot_with_history() -> Snapshot {
    let mut b = crate::SnapshotBuilder::new(2);
    let a2 = b.intern_frame("a.py", 2, None).unwrap();
    let a5 = b.intern_frame("a.py", 5, None).unwrap();
    let b4 = b.intern_frame("b.py", 4, None).unwrap();
    let c1 = b.intern_frame("c.py", 1, None).unwrap();
    let kept = b.intern_traceback(&[a2, b4], Some(2)).unwrap();
    let temporary = b.intern_traceback(&[a5, b4], Some(2)).unwrap();
    let other = b.intern_traceback(&[c1], Some(1)).unwrap();
    b.push_trace(0, 10, kept).unwrap();
    b.push_trace(1, 400, other).unwrap();
    let rows = [
        HistoryRow {
            allocated_blocks: 5,
            allocated_bytes: 50,
            freed_blocks: 4,
            temporary_blocks: 3,
            temporary_bytes: 30,
            peak_blocks: 2,
            peak_bytes: 20,
            ..HistoryRow::new(0, kept)
        },
        HistoryRow {
            allocated_blocks: 100,
            allocated_bytes: 6400,
            freed_blocks: 100,
            temporary_blocks: 100,
            temporary_bytes: 6400,
            ..HistoryRow::new(0, temporary)
        },
        HistoryRow {
            allocated_blocks: 1,
            allocated_bytes: 400,
            peak_blocks: 1,
            peak_bytes: 400,
            ..HistoryRow::new(1, other)
        },
    ];
    for row in rows {
        b.push_history(row).unwrap();
    }
    b.finish(Metadata::default())
}

/// Checks `statistics_by()` against rows of (key frames, size, count).
fn check_metric(
    snapshot: &Snapshot,
    metric: Metric,
    key: KeyType,
    cumulative: bool,
    expected: &[(RawFrames<'_>, u64, u64)],
) {
    let got: Vec<(Traceback, u64, u64)> = snapshot
        .statistics_by(metric, key, cumulative)
        .unwrap()
        .into_iter()
        .map(|s| (s.traceback, s.size, s.count))
        .collect();
    let expected: Vec<(Traceback, u64, u64)> = expected
        .iter()
        .map(|&(frames, size, count)| (tb(frames), size, count))
        .collect();
    assert_eq!(got, expected, "{metric} {key} cumulative={cumulative}");
}

#[test]
fn statistics_by_every_metric() {
    let s = snapshot_with_history();
    let (a2, a5, b4, c1) = (
        &[("a.py", 2)],
        &[("a.py", 5)],
        &[("b.py", 4)],
        &[("c.py", 1)],
    );
    check_metric(
        &s,
        Metric::Live,
        KeyType::Lineno,
        false,
        &[(c1, 400, 1), (a2, 10, 1)],
    );
    check_metric(
        &s,
        Metric::Allocated,
        KeyType::Lineno,
        false,
        &[(a5, 6400, 100), (c1, 400, 1), (a2, 50, 5)],
    );
    // c.py:1 made no temporary and a.py:5 had nothing live at the peak:
    // they make no group rather than a row of zeros.
    check_metric(
        &s,
        Metric::Temporary,
        KeyType::Lineno,
        false,
        &[(a5, 6400, 100), (a2, 30, 3)],
    );
    check_metric(
        &s,
        Metric::Peak,
        KeyType::Lineno,
        false,
        &[(c1, 400, 1), (a2, 20, 2)],
    );
    check_metric(
        &s,
        Metric::Allocated,
        KeyType::Filename,
        false,
        &[(&[("a.py", 0)], 6450, 105), (&[("c.py", 0)], 400, 1)],
    );
    check_metric(
        &s,
        Metric::Allocated,
        KeyType::Lineno,
        true,
        &[(b4, 6450, 105), (a5, 6400, 100), (c1, 400, 1), (a2, 50, 5)],
    );
    assert_eq!(
        s.totals_by(Metric::Temporary).unwrap(),
        Totals {
            size: 6430,
            count: 103
        }
    );
    assert_eq!(s.totals_by(Metric::Live).unwrap(), s.totals());
}

#[test]
fn compare_by_a_history_metric() {
    let new = snapshot_with_history();
    // The old snapshot: only a.py:2's history, with one block allocated.
    let old = new.filter_traces(&[Filter::new(true, "a.py").with_lineno(2).into()]);
    let got: Vec<(String, u64, i64, u64, i64)> = new
        .compare_to_by(&old, Metric::Allocated, KeyType::Lineno, false)
        .unwrap()
        .into_iter()
        .map(|d| {
            (
                d.traceback.to_string(),
                d.size,
                d.size_diff,
                d.count,
                d.count_diff,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a.py:5".to_owned(), 6400, 6400, 100, 100),
            ("c.py:1".to_owned(), 400, 400, 1, 1),
            ("a.py:2".to_owned(), 50, 0, 5, 0),
        ]
    );
}

#[test]
fn filters_and_trimming_carry_the_history() {
    let s = snapshot_with_history();
    let only_a = s.filter_traces(&[Filter::new(true, "a.py").into()]);
    assert_eq!(only_a.history().unwrap().rows().len(), 2);
    assert_eq!(only_a.totals_by(Metric::Allocated).unwrap().count, 105);
    let not_domain_1 = s.filter_traces(&[DomainFilter {
        inclusive: false,
        domain: 1,
    }
    .into()]);
    assert_eq!(not_domain_1.totals_by(Metric::Peak).unwrap().size, 20);
    let trimmed = s.with_default_trim().unwrap();
    assert_eq!(
        trimmed
            .statistics_by(Metric::Temporary, KeyType::Traceback, false)
            .unwrap(),
        s.statistics_by(Metric::Temporary, KeyType::Traceback, false)
            .unwrap()
    );
}

#[test]
fn history_metrics_of_a_snapshot_without_history_are_refused() {
    let (snapshot, _) = create_snapshots();
    assert!(snapshot.history().is_none());
    for metric in [Metric::Allocated, Metric::Temporary, Metric::Peak] {
        let err = snapshot
            .statistics_by(metric, KeyType::Lineno, false)
            .unwrap_err();
        assert_eq!(err, AnalysisError::NoHistory(metric));
        assert!(
            err.to_string().contains("needs an allocation history"),
            "{err}"
        );
        assert!(snapshot.totals_by(metric).is_err());
        let with = snapshot_with_history();
        assert!(
            with.compare_to_by(&snapshot, metric, KeyType::Lineno, false)
                .is_err()
        );
        assert!(
            snapshot
                .compare_to_by(&with, metric, KeyType::Lineno, false)
                .is_err()
        );
    }
    assert!(
        snapshot
            .statistics_by(Metric::Live, KeyType::Lineno, false)
            .is_ok()
    );
}

#[test]
fn metric_names_round_trip() {
    for metric in Metric::ALL {
        assert_eq!(metric.as_str().parse::<Metric>().unwrap(), metric);
    }
    assert_eq!(
        "churn".parse::<Metric>().unwrap_err().to_string(),
        "unknown metric \"churn\" (expected 'live', 'allocated', 'temporary' or 'peak')"
    );
}
