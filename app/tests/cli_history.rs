//! `stats --metric` and `info` on snapshots with an allocation history
//! (`.tmsnap` version 2), and the message for snapshots without one.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use serde_json::{Value, json};

mod support;

use support::cli::{arg, in_process_ok, run_in_process};
use support::write_history_snapshot;

fn stats(path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["stats", arg(path)];
    args.extend_from_slice(extra);
    in_process_ok(&args)
}

#[test]
fn every_metric_ranks_its_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_history_snapshot(dir.path());
    assert_eq!(
        stats(&path, &[]),
        "[ Top 1 lines ]\n\
         #1: src/keep.rs:3: size=100 B, count=1, average=100 B\n\
         Total allocated size: 100 B in 1 blocks\n"
    );
    assert_eq!(
        stats(&path, &["--metric", "allocated"]),
        "[ Top 3 lines by allocated ]\n\
         #1: src/parse.rs:9: size=15.6 KiB, count=1000, average=16 B\n\
         #2: src/spike.rs:5: size=4096 B, count=1, average=4096 B\n\
         #3: src/keep.rs:3: size=200 B, count=2, average=100 B\n\
         Total allocated since start: 19.8 KiB in 1003 blocks\n"
    );
    // Ranked by count, the keep.rs line (2 blocks) passes spike.rs (1).
    assert_eq!(
        stats(&path, &["--metric", "allocations"]),
        "[ Top 3 lines by allocations ]\n\
         #1: src/parse.rs:9: size=15.6 KiB, count=1000, average=16 B\n\
         #2: src/keep.rs:3: size=200 B, count=2, average=100 B\n\
         #3: src/spike.rs:5: size=4096 B, count=1, average=4096 B\n\
         Total allocated since start: 19.8 KiB in 1003 blocks\n"
    );
    assert_eq!(
        stats(&path, &["--metric", "temporary"]),
        "[ Top 1 lines by temporary ]\n\
         #1: src/parse.rs:9: size=15.6 KiB, count=1000, average=16 B\n\
         Total of temporary blocks: 15.6 KiB in 1000 blocks\n"
    );
    // The spike is gone from the live set but is the largest at the peak.
    assert_eq!(
        stats(&path, &["--metric", "peak", "--limit", "1"]),
        "[ Top 1 lines by peak ]\n\
         #1: src/spike.rs:5: size=4096 B, count=1, average=4096 B\n\
         2 other: size=216 B, count=3\n\
         Total live at the peak: 4312 B in 4 blocks\n"
    );
}

#[test]
fn json_csv_and_folded_follow_the_metric() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_history_snapshot(dir.path());
    let doc: Value = serde_json::from_str(&stats(
        &path,
        &["--metric", "temporary", "--format", "json"],
    ))
    .unwrap();
    assert_eq!(doc["metric"], "temporary");
    assert_eq!(doc["total"], json!({"size": 16000, "count": 1000}));
    assert_eq!(doc["stats"].as_array().unwrap().len(), 1);
    assert_eq!(doc["stats"][0]["frames"][0]["filename"], "src/parse.rs");
    assert_eq!(
        stats(
            &path,
            &[
                "--metric",
                "peak",
                "--format",
                "csv",
                "--group-by",
                "filename"
            ]
        ),
        "source,filename,lineno,function,size,count,average\n\
         src/spike.rs:0,src/spike.rs,0,,4096,1,4096.0\n\
         src/keep.rs:0,src/keep.rs,0,,200,2,100.0\n\
         src/parse.rs:0,src/parse.rs,0,,16,1,16.0\n"
    );
    // Folded stacks weigh blocks for the metrics ranked by count, bytes
    // for the others.
    let folded = |metric: &str| {
        let mut lines: Vec<String> = stats(&path, &["--metric", metric, "--format", "folded"])
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    };
    let stack = |leaf: &str, weight: u64| format!("main (src/main.rs:1);{leaf} {weight}");
    assert_eq!(
        folded("allocations"),
        [
            stack("keep (src/keep.rs:3)", 2),
            stack("parse (src/parse.rs:9)", 1000),
            stack("spike (src/spike.rs:5)", 1)
        ]
    );
    assert_eq!(
        folded("allocated"),
        [
            stack("keep (src/keep.rs:3)", 200),
            stack("parse (src/parse.rs:9)", 16000),
            stack("spike (src/spike.rs:5)", 4096)
        ]
    );
    assert_eq!(folded("live"), [stack("keep (src/keep.rs:3)", 100)]);
}

#[test]
fn info_shows_the_history_or_says_there_is_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_history_snapshot(dir.path());
    let text = in_process_ok(&["info", arg(&path)]);
    assert!(
        text.contains("Allocated:          19.8 KiB in 1003 blocks (1002 freed)\n"),
        "{text}"
    );
    assert!(
        text.contains("Temporary:          15.6 KiB in 1000 blocks\n"),
        "{text}"
    );
    assert!(
        text.contains("At the peak:        4312 B in 4 blocks\n"),
        "{text}"
    );
    let doc: Value = serde_json::from_str(&in_process_ok(&["info", arg(&path), "--json"])).unwrap();
    assert_eq!(
        doc["history"]["allocated"],
        json!({"size": 20296, "count": 1003})
    );
    assert_eq!(doc["history"]["freed_blocks"], 1002);

    let pickle =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../format/tests/data/cpython/basic_old.pickle");
    let text = in_process_ok(&["info", arg(&pickle)]);
    assert!(
        text.contains("History:            none (only the live blocks were recorded)\n"),
        "{text}"
    );
    let doc: Value =
        serde_json::from_str(&in_process_ok(&["info", arg(&pickle), "--json"])).unwrap();
    assert_eq!(doc["history"], Value::Null);
}

#[test]
fn history_metrics_of_a_pickle_say_why_instead_of_showing_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let with_history = write_history_snapshot(dir.path());
    let pickle =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../format/tests/data/cpython/basic_old.pickle");
    for metric in ["allocated", "allocations", "temporary", "peak"] {
        let err = run_in_process(&["stats", arg(&pickle), "--metric", metric]).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{}: --metric {metric} needs an allocation history, which this snapshot does not \
                 have (CPython's tracemalloc, DHAT files and .tmsnap version 1 record only the live \
                 blocks)",
                pickle.display()
            )
        );
        // The old snapshot of a comparison is checked too.
        let err = run_in_process(&[
            "stats",
            arg(&with_history),
            "--compare",
            arg(&pickle),
            "--metric",
            metric,
        ])
        .unwrap_err();
        assert!(
            err.starts_with(&format!("{}: --metric", pickle.display())),
            "{err}"
        );
    }
    assert!(run_in_process(&["stats", arg(&pickle), "--metric", "live"]).is_ok());
}

#[test]
fn comparing_by_allocations_ranks_by_the_change_in_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let new = write_history_snapshot(dir.path());
    let old = dir.path().join("old.tmsnap");
    // The old snapshot: only keep.rs's row.
    in_process_ok(&["convert", arg(&new), arg(&old)]);
    let snapshot = tracemalloc_format::Snapshot::load(&old).unwrap();
    snapshot
        .filter_traces(&[tracemalloc_format::Filter::new(true, "src/keep.rs").into()])
        .dump(&old)
        .unwrap();
    assert_eq!(
        stats(&new, &["--compare", arg(&old), "--metric", "allocations"]),
        "[ Top 3 differences by allocations ]\n\
         #1: src/parse.rs:9: size=15.6 KiB (+15.6 KiB), count=1000 (+1000), average=16 B\n\
         #2: src/spike.rs:5: size=4096 B (+4096 B), count=1 (+1), average=4096 B\n\
         #3: src/keep.rs:3: size=200 B (+0 B), count=2 (+0), average=100 B\n\
         Total allocated since start: 19.8 KiB (+19.6 KiB) in 1003 blocks (+1001)\n"
    );
}
