//! pprof export checked by a real pprof reader: the real binary converts a
//! snapshot to a `.pb.gz` file, Go's `go tool pprof -top` reads it, and its
//! totals and top lines must be the same as `tracemalloc-viewer stats` on
//! the same snapshot.
//!
//! `go` comes from Debian's `golang-go` (installed by `.ci/run`); without it
//! these tests fail, they do not skip. pprof runs offline on a local file:
//! HOME and GOCACHE point into a temporary folder, the toolchain may not be
//! downloaded (`GOTOOLCHAIN=local`), modules may not be fetched
//! (`GOPROXY=off`) and symbolization is off.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Runs the viewer binary, which must succeed; returns its stdout.
fn viewer(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tracemalloc-viewer"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tracemalloc-viewer {args:?}: {stderr}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// One row of a top list: (file, line) of the most recent frame, the
/// amount, and the function names shown for it.
type Rows = BTreeMap<(String, u32), (u64, Vec<String>)>;

/// `go tool pprof -top` of `sample_index`, per line: (total, rows). Rows
/// of one line with several functions are added up, as `stats` groups by
/// file and line.
fn go_pprof_top(profile: &Path, sample_index: &str, home: &Path) -> (u64, Rows) {
    let output = Command::new("go")
        .args([
            "tool",
            "pprof",
            "-top",
            "-lines",
            &format!("-sample_index={sample_index}"),
            "-nodefraction=0",
            "-symbolize=none",
        ])
        // Units as plain numbers: bytes for space, counts for objects.
        .args(if sample_index.ends_with("space") {
            &["-unit=B"][..]
        } else {
            &[][..]
        })
        .arg(profile)
        .env("HOME", home)
        .env("GOCACHE", home.join("gocache"))
        .env("GOPATH", home.join("gopath"))
        .env("PPROF_TMPDIR", home.join("pprof"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOFLAGS", "")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `go tool pprof` ({e}): install Go, e.g. `apt-get install golang-go` \
                 (.ci/run does)"
            )
        });
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "go tool pprof failed: {stderr}");
    assert!(!stdout.contains("Dropped"), "pprof dropped rows:\n{stdout}");
    let number = |s: &str| -> u64 { s.trim_end_matches('B').parse().unwrap() };
    // "Showing nodes accounting for 6898669B, 100% of 6898669B total"
    let showing = stdout
        .lines()
        .find(|l| l.starts_with("Showing nodes accounting for"))
        .unwrap_or_else(|| panic!("no total in pprof's output:\n{stdout}"));
    let total = number(
        showing
            .rsplit_once(" of ")
            .unwrap()
            .1
            .trim_end_matches(" total"),
    );
    let mut rows = Rows::new();
    let header = stdout
        .lines()
        .position(|l| l.trim_start().starts_with("flat"))
        .unwrap();
    for line in stdout.lines().skip(header + 1) {
        // flat flat% sum% cum cum% function file:line
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() >= 7, "unexpected pprof row {line:?}");
        let flat = number(fields[0]);
        let location = fields[fields.len() - 1];
        let function = fields[5..fields.len() - 1].join(" ");
        let (file, line) = match location.rsplit_once(':') {
            Some((file, line)) if line.bytes().all(|b| b.is_ascii_digit()) => {
                (file.to_owned(), line.parse().unwrap())
            }
            // pprof leaves out line 0.
            _ => (location.to_owned(), 0),
        };
        if flat > 0 {
            let row = rows.entry((file, line)).or_default();
            row.0 += flat;
            row.1.push(function);
        }
    }
    (total, rows)
}

/// `tracemalloc-viewer stats --format json` per line: (total size, total
/// count, rows by size, rows by count).
fn stats(snapshot: &Path) -> (u64, u64, Rows, Rows) {
    stats_of(snapshot, "live")
}

/// [`stats`] of a `--metric`.
fn stats_of(snapshot: &Path, metric: &str) -> (u64, u64, Rows, Rows) {
    let json: Value = serde_json::from_str(&viewer(&[
        "stats",
        snapshot.to_str().unwrap(),
        "--metric",
        metric,
        "--format",
        "json",
    ]))
    .unwrap();
    let mut by_size = Rows::new();
    let mut by_count = Rows::new();
    for row in json["stats"].as_array().unwrap() {
        let frame = &row["frames"][0];
        let key = (
            frame["filename"].as_str().unwrap().to_owned(),
            frame["lineno"].as_u64().unwrap() as u32,
        );
        let function = frame["function"].as_str().unwrap_or("").to_owned();
        by_size.insert(
            key.clone(),
            (row["size"].as_u64().unwrap(), vec![function.clone()]),
        );
        by_count.insert(key, (row["count"].as_u64().unwrap(), vec![function]));
    }
    let total = &json["total"];
    (
        total["size"].as_u64().unwrap(),
        total["count"].as_u64().unwrap(),
        by_size,
        by_count,
    )
}

/// The rows largest first, ties by file and line: the top list.
fn top(rows: &Rows) -> Vec<((String, u32), u64)> {
    let mut top: Vec<_> = rows.iter().map(|(k, v)| (k.clone(), v.0)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top
}

/// Converts `snapshot` to pprof with the CLI and checks that pprof's top
/// lists and totals, by bytes and by blocks, are `stats`'s.
fn check(snapshot: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("heap.pb.gz");
    let said = viewer(&[
        "convert",
        snapshot.to_str().unwrap(),
        profile.to_str().unwrap(),
    ]);
    assert!(
        said.starts_with("wrote ") && said.contains("pprof"),
        "{said}"
    );
    let (size, count, by_size, by_count) = stats(snapshot);
    assert!(by_size.len() >= 3, "a snapshot with a few lines to rank");

    let (pprof_size, pprof_by_size) = go_pprof_top(&profile, "inuse_space", dir.path());
    let (pprof_count, pprof_by_count) = go_pprof_top(&profile, "inuse_objects", dir.path());
    assert_eq!(pprof_size, size, "total bytes");
    assert_eq!(pprof_count, count, "total blocks");
    // The top ten lines (or all of them), then every line.
    let n = by_size.len().min(10);
    assert_eq!(top(&pprof_by_size)[..n], top(&by_size)[..n]);
    assert_eq!(top(&pprof_by_size), top(&by_size));
    assert_eq!(top(&pprof_by_count), top(&by_count));
    // Each line's function, as pprof shows it: the name, or (Rust) its
    // last path segments; a frame without a function is named by its line.
    for ((file, line), (_, functions)) in &by_size {
        let stats_function = &functions[0];
        let shown = &pprof_by_size[&(file.clone(), *line)].1;
        let expected = if stats_function.is_empty() {
            format!("{file}:{line}")
        } else {
            stats_function.clone()
        };
        assert!(
            shown.iter().any(|name| expected.ends_with(name.as_str())),
            "{file}:{line}: pprof shows {shown:?}, stats {expected:?}"
        );
    }
}

#[test]
fn demo_snapshot_in_go_pprof_matches_stats() {
    check(&repo_file("app/demo/leaky_service-05.tmsnap"));
}

#[test]
fn cpython_pickle_in_go_pprof_matches_stats() {
    check(&repo_file("format/tests/data/cpython/real_workload.pickle"));
}

#[test]
fn cpython_pickle_with_domains_in_go_pprof_matches_stats() {
    check(&repo_file("format/tests/data/cpython/domains.pickle"));
}

/// A sampled snapshot: pprof holds the same estimates as `stats`. Each
/// sample (traceback) is the statistics' integer estimate for it, so the
/// totals and every line are equal.
#[test]
fn sampled_snapshot_in_go_pprof_is_scaled_like_stats() {
    let dir = tempfile::tempdir().unwrap();
    let mut snapshot =
        tracemalloc_format::Snapshot::load(repo_file("app/demo/leaky_service-05.tmsnap")).unwrap();
    snapshot.metadata_mut().sampling_rate = Some(64 * 1024);
    let sampled = dir.path().join("sampled.tmsnap");
    snapshot.dump(&sampled).unwrap();
    let profile = dir.path().join("sampled.pb.gz");
    viewer(&[
        "convert",
        sampled.to_str().unwrap(),
        profile.to_str().unwrap(),
    ]);
    let (size, count, by_size, by_count) = stats(&sampled);
    assert!(
        size > snapshot.traces().iter().map(|t| t.size).sum::<u64>(),
        "estimates are larger than the sampled bytes"
    );
    let (pprof_size, pprof_by_size) = go_pprof_top(&profile, "inuse_space", dir.path());
    let (pprof_count, pprof_by_count) = go_pprof_top(&profile, "inuse_objects", dir.path());
    assert_eq!((pprof_size, pprof_count), (size, count), "totals");
    for (ours, theirs) in [(&by_size, &pprof_by_size), (&by_count, &pprof_by_count)] {
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>()
        );
        for (key, (value, _)) in ours {
            assert_eq!(*value, theirs[key].0, "{key:?}");
        }
    }
}

/// A snapshot with an allocation history: `alloc_space` and
/// `alloc_objects` in pprof are `stats --metric allocated`, line by line,
/// including lines whose blocks were all freed.
#[test]
fn allocation_history_in_go_pprof_matches_stats() {
    use tracemalloc_format::{HistoryRow, Metadata, SnapshotBuilder};
    let dir = tempfile::tempdir().unwrap();
    let mut b = SnapshotBuilder::new(4);
    let main = b.intern_frame("src/main.rs", 1, Some("app::main")).unwrap();
    for line in 1..=6u32 {
        let leaf = b
            .intern_frame("src/work.rs", line * 10, Some(&format!("app::step{line}")))
            .unwrap();
        let tb = b.intern_traceback(&[leaf, main], None).unwrap();
        // Lines 1 to 3 keep a block; 4 to 6 freed all of theirs.
        if line <= 3 {
            b.push_trace(0, u64::from(line) * 100, tb).unwrap();
        }
        let blocks = u64::from(7 - line) * 1000;
        b.push_history(HistoryRow {
            allocated_blocks: blocks,
            allocated_bytes: blocks * u64::from(line) * 8,
            freed_blocks: blocks - u64::from(line <= 3),
            ..HistoryRow::new(0, tb)
        })
        .unwrap();
    }
    let snapshot = dir.path().join("history.tmsnap");
    b.finish(Metadata::default()).dump(&snapshot).unwrap();
    let profile = dir.path().join("history.pb.gz");
    viewer(&[
        "convert",
        snapshot.to_str().unwrap(),
        profile.to_str().unwrap(),
    ]);
    let (size, count, by_size, by_count) = stats_of(&snapshot, "allocated");
    assert_eq!(by_size.len(), 6);
    let (pprof_size, pprof_by_size) = go_pprof_top(&profile, "alloc_space", dir.path());
    let (pprof_count, pprof_by_count) = go_pprof_top(&profile, "alloc_objects", dir.path());
    assert_eq!((pprof_size, pprof_count), (size, count), "totals");
    assert_eq!(top(&pprof_by_size), top(&by_size));
    assert_eq!(top(&pprof_by_count), top(&by_count));
    // The live sample types are still the live blocks.
    let (live_size, _, live_rows, _) = stats(&snapshot);
    let (pprof_live, pprof_live_rows) = go_pprof_top(&profile, "inuse_space", dir.path());
    assert_eq!(pprof_live, live_size);
    assert_eq!(top(&pprof_live_rows), top(&live_rows));
}

#[test]
fn comments_and_time_reach_pprof() {
    let dir = tempfile::tempdir().unwrap();
    // Any name, with --to pprof.
    let profile = dir.path().join("heap.profile");
    let demo = repo_file("app/demo/leaky_service-01.tmsnap");
    let said = viewer(&[
        "convert",
        demo.to_str().unwrap(),
        profile.to_str().unwrap(),
        "--to",
        "pprof",
    ]);
    assert!(said.contains("(pprof, gzipped;"), "{said}");
    let output = Command::new("go")
        .args(["tool", "pprof", "-comments"])
        .arg(&profile)
        .env("HOME", dir.path())
        .env("GOCACHE", dir.path().join("gocache"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .output()
        .unwrap();
    assert!(output.status.success());
    let comments = String::from_utf8(output.stdout).unwrap();
    let info: Value =
        serde_json::from_str(&viewer(&["info", demo.to_str().unwrap(), "--json"])).unwrap();
    let command_line: Vec<&str> = info["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        comments.contains(&format!("command line: {}\n", command_line.join(" "))),
        "{comments}"
    );
    assert!(
        comments.contains(&format!(
            "taken at: {}\n",
            info["timestamp"].as_str().unwrap()
        )),
        "{comments}"
    );
}
