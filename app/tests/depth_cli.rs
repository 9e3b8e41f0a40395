//! The real `tracemalloc-viewer` binary on the depth features: DHAT
//! profiles through `stats`, `info` and `convert` (either point), folded
//! stacks (plain and differential), and the viewer's CSV export matching
//! the CLI's CSV byte for byte.

// Helpers outside #[test] functions unwrap too: a panic there is a test
// failure with a message, which is what we want.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use tracemalloc_format::export::write_csv;
use tracemalloc_format::rows::{Grouping, View};
use tracemalloc_format::{KeyType, Snapshot};

mod support;

use support::cli::{arg, binary_ok, run_binary};

/// A fixture of the format crate's DHAT tests.
fn dhat_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../format/tests/data/dhat")
        .join(name)
}

#[test]
fn stats_reads_dhat_profiles_at_either_point() {
    let valgrind = dhat_fixture("valgrind-dhat.json");
    let peak = binary_ok(&["stats", arg(&valgrind)]);
    assert_eq!(
        peak,
        "[ Top 2 lines ]\n\
         #1: valgrind_prog.c:12: size=34.9 KiB, count=11, average=3252 B\n\
         #2: valgrind_prog.c:22: size=1024 B, count=1, average=1024 B\n\
         Total allocated size: 35.9 KiB in 12 blocks\n"
    );
    let end = binary_ok(&["stats", arg(&valgrind), "--dhat-point", "end"]);
    assert!(
        end.ends_with("Total allocated size: 3000 B in 3 blocks\n"),
        "{end}"
    );
    // The peak compared to the end: what was freed after the peak.
    let diff = binary_ok(&[
        "stats",
        arg(&valgrind),
        "--compare",
        arg(&valgrind),
        "--dhat-point",
        "gmax",
    ]);
    assert!(diff.contains("(+0 B) in 12 blocks (+0)"), "{diff}");
}

#[test]
fn info_and_convert_know_dhat() {
    let dhat_rs = dhat_fixture("dhat-rs-heap.json");
    let info = binary_ok(&["info", arg(&dhat_rs), "--dhat-point", "end"]);
    assert!(info.contains("Format:             DHAT JSON\n"), "{info}");
    assert!(
        info.contains("Producer:           dhat-rs heap profile, t-end: the end at "),
        "{info}"
    );
    assert!(
        info.contains("Command line:       ./target/debug/make_dhat_rs dhat-rs-heap.json\n"),
        "{info}"
    );
    assert!(
        info.contains("Total:              3048 B in 4 blocks\n"),
        "{info}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&binary_ok(&["info", arg(&dhat_rs), "--json"])).unwrap();
    assert_eq!(json["kind"], "DHAT JSON");
    assert_eq!(json["total"]["size"], 37_032);
    assert_eq!(json["traced_peak"], 37_032);

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("end.tmsnap");
    binary_ok(&["convert", arg(&dhat_rs), arg(&out), "--dhat-point", "end"]);
    let converted = Snapshot::load(&out).unwrap();
    assert_eq!(
        (converted.totals().size, converted.totals().count),
        (3048, 4)
    );
    assert!(
        converted
            .metadata()
            .producer
            .as_deref()
            .unwrap()
            .starts_with("dhat-rs heap profile, t-end")
    );
}

#[test]
fn folded_stacks_feed_flamegraph_pl() {
    let valgrind = dhat_fixture("valgrind-dhat.json");
    let folded = binary_ok(&["stats", arg(&valgrind), "--format", "folded"]);
    assert_eq!(
        folded,
        "main (valgrind_prog.c:36);leak (valgrind_prog.c:31);buffer (valgrind_prog.c:12) 3000\n\
         main (valgrind_prog.c:37);build_peak (valgrind_prog.c:21);buffer (valgrind_prog.c:12) 32768\n\
         main (valgrind_prog.c:37);build_peak (valgrind_prog.c:22) 1024\n"
    );
    // Filters apply; a comparison gives two columns, old then new.
    let diff = binary_ok(&[
        "stats",
        arg(&valgrind),
        "--compare",
        arg(&valgrind),
        "--format",
        "folded",
        "--exclude",
        "valgrind_prog.c:22",
    ]);
    assert_eq!(
        diff,
        "main (valgrind_prog.c:36);leak (valgrind_prog.c:31);buffer (valgrind_prog.c:12) 3000 3000\n\
         main (valgrind_prog.c:37);build_peak (valgrind_prog.c:21);buffer (valgrind_prog.c:12) 32768 32768\n"
    );
}

#[test]
fn a_malformed_dhat_profile_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("dhat-heap.json");
    std::fs::write(
        &bad,
        b"{\"dhatFileVersion\":2,\"mode\":\"heap\",\"pps\":[{\"eb\":1}",
    )
    .unwrap();
    let (code, stdout, stderr) = run_binary(&["stats", arg(&bad)]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "tracemalloc-viewer: {}: not a valid DHAT profile: ",
            bad.display()
        )),
        "{stderr}"
    );
    // Said once: the error's cause is in its message, not repeated by the
    // chain.
    assert_eq!(
        stderr.matches("not a valid DHAT profile").count(),
        1,
        "{stderr}"
    );
    let adhoc = dir.path().join("adhoc.json");
    std::fs::write(
        &adhoc,
        b"{\"dhatFileVersion\":2,\"mode\":\"rust-ad-hoc\",\"pps\":[],\"ftbl\":[]}",
    )
    .unwrap();
    let (code, _, stderr) = run_binary(&["stats", arg(&adhoc)]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("only heap profiles can be opened"),
        "{stderr}"
    );
}

#[test]
fn the_viewers_csv_is_the_clis_csv() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = |leak: u64| {
        Snapshot::from_raw_traces(
            5,
            [
                (0, leak, &[("a,b.py", 3), ("main.py", 1)][..], None),
                (0, 64, &[("io.py", 7), ("main.py", 1)][..], None),
                (0, 32, &[("io.py", 7), ("other.py", 2)][..], None),
            ],
        )
        .unwrap()
    };
    let (new, old) = (snapshot(4096), snapshot(100));
    let new_path = dir.path().join("new.tmsnap");
    let old_path = dir.path().join("old.tmsnap");
    new.dump(&new_path).unwrap();
    old.dump(&old_path).unwrap();
    for key_type in [KeyType::Filename, KeyType::Lineno, KeyType::Traceback] {
        for compare in [false, true] {
            let mut args = vec![
                "stats",
                arg(&new_path),
                "--format",
                "csv",
                "--group-by",
                key_type.as_str(),
            ];
            if compare {
                args.extend(["--compare", arg(&old_path)]);
            }
            let cli = binary_ok(&args);
            let grouping = Grouping::new(&new, key_type, false).unwrap();
            let view = if compare {
                View::compare(&grouping, &Grouping::new(&old, key_type, false).unwrap())
            } else {
                View::plain(&grouping)
            };
            // The viewer's table in CPython's order, as the CLI prints it.
            let order: Vec<u32> = (0..view.len() as u32).collect();
            let mut exported = Vec::new();
            write_csv(&view, &order, &mut exported).unwrap();
            assert_eq!(
                String::from_utf8(exported).unwrap(),
                cli,
                "{key_type}, compare: {compare}"
            );
        }
    }
}
