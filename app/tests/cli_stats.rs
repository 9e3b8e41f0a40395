//! The CLI end to end: snapshot files written by the format crate, read and
//! analysed by `tracemalloc-viewer stats|info|convert` as parsed from a
//! command line. (Exit codes and stderr of the real binary are tested in
//! app/tests/cli_binary.rs.)

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tracemalloc_format::{Metadata, Snapshot, SnapshotBuilder};

mod support;

use support::cli::{arg, in_process_ok, run_in_process};

type RawTrace = (u32, u64, &'static [(&'static str, u32)], Option<u32>);

/// CPython's `create_snapshots()` (Lib/test/test_tracemalloc.py), written
/// as .tmsnap files: (old, new).
fn write_cpython_pair(dir: &Path) -> (PathBuf, PathBuf) {
    const A2_B4: &[(&str, u32)] = &[("a.py", 2), ("b.py", 4)];
    const A5_B4: &[(&str, u32)] = &[("a.py", 5), ("b.py", 4)];
    let old: &[RawTrace] = &[
        (0, 10, A2_B4, Some(3)),
        (0, 10, A2_B4, Some(3)),
        (0, 10, A2_B4, Some(3)),
        (1, 2, A5_B4, Some(3)),
        (2, 66, &[("b.py", 1)], Some(1)),
        (3, 7, &[("<unknown>", 0)], Some(1)),
    ];
    let new: &[RawTrace] = &[
        (0, 10, A2_B4, Some(3)),
        (0, 10, A2_B4, Some(3)),
        (0, 10, A2_B4, Some(3)),
        (2, 2, A5_B4, Some(3)),
        (2, 5000, A5_B4, Some(3)),
        (4, 400, &[("c.py", 578)], Some(1)),
    ];
    let old_path = dir.join("old.tmsnap");
    let new_path = dir.join("new.tmsnap");
    Snapshot::from_raw_traces(2, old.iter().copied())
        .unwrap()
        .dump(&old_path)
        .unwrap();
    Snapshot::from_raw_traces(2, new.iter().copied())
        .unwrap()
        .dump(&new_path)
        .unwrap();
    (old_path, new_path)
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&in_process_ok(args)).unwrap()
}

#[test]
fn stats_text_reads_like_tracemalloc() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_cpython_pair(dir.path());
    assert_eq!(
        in_process_ok(&["stats", arg(&old)]),
        "[ Top 4 lines ]\n\
         #1: b.py:1: size=66 B, count=1, average=66 B\n\
         #2: a.py:2: size=30 B, count=3, average=10 B\n\
         #3: <unknown>:0: size=7 B, count=1, average=7 B\n\
         #4: a.py:5: size=2 B, count=1, average=2 B\n\
         Total allocated size: 105 B in 6 blocks\n"
    );
    // --limit leaves the rest in one "other" line, as tracemalloc's
    // display_top recipe does.
    assert_eq!(
        in_process_ok(&["stats", arg(&old), "--limit", "2", "--group-by", "filename"]),
        "[ Top 2 files ]\n\
         #1: b.py:0: size=66 B, count=1, average=66 B\n\
         #2: a.py:0: size=32 B, count=4, average=8 B\n\
         1 other: size=7 B, count=1\n\
         Total allocated size: 105 B in 6 blocks\n"
    );
}

#[test]
fn stats_compare_text_and_traceback_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = write_cpython_pair(dir.path());
    assert_eq!(
        in_process_ok(&["stats", arg(&new), "--compare", arg(&old)]),
        "[ Top 5 differences ]\n\
         #1: a.py:5: size=5002 B (+5000 B), count=2 (+1), average=2501 B\n\
         #2: c.py:578: size=400 B (+400 B), count=1 (+1), average=400 B\n\
         #3: b.py:1: size=0 B (-66 B), count=0 (-1)\n\
         #4: <unknown>:0: size=0 B (-7 B), count=0 (-1)\n\
         #5: a.py:2: size=30 B (+0 B), count=3 (+0), average=10 B\n\
         Total allocated size: 5432 B (+5327 B) in 6 blocks (+0)\n"
    );
    // Traceback groups print their frames as CPython's Traceback.format()
    // does, oldest first. (The files do not exist, so no source lines.)
    let text = in_process_ok(&[
        "stats",
        arg(&new),
        "--group-by",
        "traceback",
        "--limit",
        "1",
    ]);
    assert_eq!(
        text,
        "[ Top 1 tracebacks ]\n\
         #1: b.py:4: size=5002 B, count=2, average=2501 B\n  \
         File \"b.py\", line 4\n  \
         File \"a.py\", line 5\n\
         2 other: size=430 B, count=4\n\
         Total allocated size: 5432 B in 6 blocks\n"
    );
}

#[test]
fn stats_json_matches_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = write_cpython_pair(dir.path());
    let doc = json(&[
        "stats",
        arg(&new),
        "--compare",
        arg(&old),
        "--format",
        "json",
    ]);
    assert_eq!(doc["group_by"], "lineno");
    assert_eq!(doc["cumulative"], false);
    assert_eq!(
        doc["total"],
        json!({"size": 5432, "count": 6, "size_diff": 5327, "count_diff": 0})
    );
    let stats = doc["stats"].as_array().unwrap();
    // JSON has no default limit: all five rows.
    assert_eq!(stats.len(), 5);
    assert_eq!(
        stats[0],
        json!({"frames": [{"filename": "a.py", "lineno": 5, "function": null}],
               "size": 5002, "count": 2, "size_diff": 5000, "count_diff": 1})
    );
    assert_eq!(
        stats[3],
        json!({"frames": [{"filename": "<unknown>", "lineno": 0, "function": null}],
               "size": 0, "count": 0, "size_diff": -7, "count_diff": -1})
    );
    // Without --compare there are no diff fields at all.
    let plain = json(&[
        "stats",
        arg(&new),
        "--format",
        "json",
        "--group-by",
        "traceback",
    ]);
    assert_eq!(plain["total"], json!({"size": 5432, "count": 6}));
    assert_eq!(
        plain["stats"][0],
        json!({"frames": [{"filename": "a.py", "lineno": 5, "function": null},
                          {"filename": "b.py", "lineno": 4, "function": null}],
               "size": 5002, "count": 2})
    );
}

#[test]
fn cumulative_total_counts_each_block_once() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_cpython_pair(dir.path());
    let doc = json(&["stats", arg(&old), "--format", "json", "--cumulative"]);
    assert_eq!(doc["cumulative"], true);
    // The rows add up to more than the total (b.py:4 and a.py:2 hold the
    // same blocks); the total is the snapshot's.
    assert_eq!(doc["total"], json!({"size": 105, "count": 6}));
    let sizes: Vec<u64> = doc["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![66, 32, 30, 7, 2]);
}

#[test]
fn filters_apply_to_both_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = write_cpython_pair(dir.path());
    let rows = |doc: &Value| -> Vec<(String, i64)> {
        doc["stats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let f = &r["frames"][0];
                (
                    format!("{}:{}", f["filename"].as_str().unwrap(), f["lineno"]),
                    r["size_diff"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let doc = json(&[
        "stats",
        arg(&new),
        "--compare",
        arg(&old),
        "--format",
        "json",
        "--include",
        "a.py",
    ]);
    assert_eq!(
        rows(&doc),
        vec![("a.py:5".to_owned(), 5000), ("a.py:2".to_owned(), 0)]
    );
    // The old snapshot was filtered too: its total lost b.py and <unknown>.
    assert_eq!(doc["total"]["size_diff"], 5000);

    let doc = json(&[
        "stats",
        arg(&new),
        "--compare",
        arg(&old),
        "--format",
        "json",
        "--include",
        "a.py:2",
    ]);
    assert_eq!(rows(&doc), vec![("a.py:2".to_owned(), 0)]);

    // --exclude with --all-frames drops every trace passing through b.py.
    let doc = json(&[
        "stats",
        arg(&new),
        "--compare",
        arg(&old),
        "--format",
        "json",
        "--exclude",
        "b.py",
        "--all-frames",
    ]);
    assert_eq!(
        rows(&doc),
        vec![("c.py:578".to_owned(), 400), ("<unknown>:0".to_owned(), -7)]
    );

    let filters = dir.path().join("filters.json");
    std::fs::write(
        &filters,
        r#"[{"inclusive": true, "filename_pattern": "*.py", "domain": 2},
            {"inclusive": false, "domain": 4}]"#,
    )
    .unwrap();
    let doc = json(&[
        "stats",
        arg(&new),
        "--compare",
        arg(&old),
        "--format",
        "json",
        "--filters",
        arg(&filters),
    ]);
    assert_eq!(
        rows(&doc),
        vec![("a.py:5".to_owned(), 5002), ("b.py:1".to_owned(), -66)]
    );
}

#[test]
fn csv_has_a_header_and_quotes_what_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = SnapshotBuilder::new(4);
    let odd = b
        .intern_frame("dir, with \"quotes\".rs", 3, Some("f"))
        .unwrap();
    let main = b.intern_frame("main.rs", 9, None).unwrap();
    let tb = b.intern_traceback(&[odd, main], Some(2)).unwrap();
    b.push_trace(0, 30, tb).unwrap();
    b.push_trace(0, 10, tb).unwrap();
    let path = dir.path().join("odd.tmsnap");
    b.finish(Metadata::default()).dump(&path).unwrap();
    assert_eq!(
        in_process_ok(&[
            "stats",
            arg(&path),
            "--format",
            "csv",
            "--group-by",
            "traceback"
        ]),
        "source,filename,lineno,function,size,count,average\n\
         \"dir, with \"\"quotes\"\".rs:3 in f <- main.rs:9\",\"dir, with \"\"quotes\"\".rs\",3,f,40,2,20.0\n"
    );
    let (old, new) = write_cpython_pair(dir.path());
    let csv = in_process_ok(&[
        "stats",
        arg(&new),
        "--compare",
        arg(&old),
        "--format",
        "csv",
        "--limit",
        "1",
    ]);
    assert_eq!(
        csv,
        "source,filename,lineno,function,size,count,average,size_diff,count_diff\n\
         a.py:5,a.py,5,,5002,2,2501.0,5000,1\n"
    );
}

#[test]
fn info_lists_metadata_totals_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_cpython_pair(dir.path());
    let doc = json(&["info", arg(&old), "--json"]);
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["traceback_limit"], 2);
    assert_eq!(doc["total"], json!({"size": 105, "count": 6}));
    assert_eq!(doc["traces"], 6);
    assert_eq!(doc["tracebacks"], 4);
    assert_eq!(doc["frames"], 5);
    assert_eq!(doc["strings"], 3);
    assert_eq!(
        doc["domains"],
        json!([{"domain": 0, "size": 30, "count": 3}, {"domain": 1, "size": 2, "count": 1},
               {"domain": 2, "size": 66, "count": 1}, {"domain": 3, "size": 7, "count": 1}])
    );
    let text = in_process_ok(&["info", arg(&old)]);
    assert!(
        text.contains("Format:             .tmsnap version 2\n"),
        "{text}"
    );
    assert!(
        text.contains("Total:              105 B in 6 blocks\n"),
        "{text}"
    );
    assert!(
        text.contains("Domain 2:           66 B in 1 blocks\n"),
        "{text}"
    );
}

/// In a sampled snapshot, each domain's line is an estimate scaled as the
/// total is (a block of `s` bytes stands for `1 / p` blocks,
/// `p = 1 - exp(-s / mean)`), not the sampled blocks' raw sum beside a
/// scaled total.
#[test]
fn info_scales_the_domains_of_a_sampled_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_cpython_pair(dir.path());
    let mut snapshot = Snapshot::load(&old).unwrap();
    snapshot.metadata_mut().sampling_rate = Some(64);
    let sampled = dir.path().join("sampled.tmsnap");
    snapshot.dump(&sampled).unwrap();
    let weight = |size: f64| 1.0 / -(-size / 64.0).exp_m1();
    // Domain 0: three blocks of 10 bytes; domain 2: one of 66.
    let (count0, count2) = (3.0 * weight(10.0), weight(66.0));
    let doc = json(&["info", arg(&sampled), "--json"]);
    let domains = doc["domains"].as_array().unwrap();
    assert_eq!(domains.len(), 4, "{doc}");
    assert_eq!(domains[0]["count"], (count0.round() as u64), "{doc}");
    assert_eq!(
        domains[0]["size"],
        ((10.0 * count0).round() as u64),
        "{doc}"
    );
    assert_eq!(domains[2]["count"], (count2.round() as u64), "{doc}");
    assert_eq!(
        domains[2]["size"],
        ((66.0 * count2).round() as u64),
        "{doc}"
    );
    // The domains add up to the total, within a unit of rounding each.
    for field in ["size", "count"] {
        let sum: u64 = domains.iter().map(|d| d[field].as_u64().unwrap()).sum();
        let total = doc["total"][field].as_u64().unwrap();
        assert!(sum.abs_diff(total) <= 4, "{field}: {sum} against {total}");
    }
    let text = in_process_ok(&["info", arg(&sampled)]);
    let line = format!(
        "Domain 0:           {} B in {} blocks\n",
        (10.0 * count0).round(),
        count0.round()
    );
    assert!(text.contains(&line), "{line} in {text}");
}

#[test]
fn convert_writes_a_tmsnap_that_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_cpython_pair(dir.path());
    let out = dir.path().join("converted.tmsnap");
    let msg = in_process_ok(&["convert", arg(&old), arg(&out)]);
    assert_eq!(
        msg,
        format!("wrote {} (6 traces, 4 tracebacks)\n", out.display())
    );
    assert_eq!(
        in_process_ok(&["stats", arg(&out)]),
        in_process_ok(&["stats", arg(&old)])
    );
}

#[test]
fn bad_input_gives_one_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (old, _) = write_cpython_pair(dir.path());
    let missing = dir.path().join("missing.tmsnap");
    let err = run_in_process(&["stats", arg(&missing)]).unwrap_err();
    assert!(
        err.starts_with(&format!("{}: cannot read:", missing.display())),
        "{err}"
    );

    let garbage = dir.path().join("garbage.tmsnap");
    std::fs::write(&garbage, b"\x89TMS\r\n\x1a\n\x01\0\0\0\x92").unwrap();
    let err = run_in_process(&["stats", arg(&old), "--compare", arg(&garbage)]).unwrap_err();
    assert!(
        err.starts_with(&format!(
            "{}: corrupt .tmsnap body at byte",
            garbage.display()
        )),
        "{err}"
    );

    let err = run_in_process(&[
        "stats",
        arg(&old),
        "--group-by",
        "traceback",
        "--cumulative",
    ])
    .unwrap_err();
    assert_eq!(
        err,
        "--cumulative works with --group-by filename or lineno, not traceback"
    );

    let filters = dir.path().join("bad.json");
    std::fs::write(&filters, r#"[{"inclusive": true, "pattern": "x"}]"#).unwrap();
    let err = run_in_process(&["stats", arg(&old), "--filters", arg(&filters)]).unwrap_err();
    assert!(err.contains("filter 0 is neither"), "{err}");

    let err = run_in_process(&["stats", arg(&old), "--group-by", "module"]).unwrap_err();
    assert!(err.contains("invalid value 'module'"), "{err}");
}
