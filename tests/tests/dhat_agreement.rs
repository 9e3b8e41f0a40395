//! dhat-rs and the recorder, on the same programs (`src/dhat_examples.rs`,
//! modelled on dhat-rs's examples and heap test), count the same blocks
//! and bytes per allocation site: allocated in all, live at the global
//! peak (t-gmax) and live at the end (t-end). Where they differ by design,
//! the relation between the two is asserted instead:
//!
//! - a realloc of a block allocated while profiling: dhat-rs counts the new
//!   block under the block's allocation site (its program point stays the
//!   block's), the recorder under the line that reallocated;
//! - two equal peaks: dhat-rs's t-gmax is the later one, the recorder's
//!   the first.
//!
//! Each profiler runs in its own process (`src/bin/dhat_examples_*.rs`),
//! since a process has one `#[global_allocator]`.

// Test code, helpers included: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

use tracemalloc_format::Snapshot;
use tracemalloc_tests::dhat_compare::{SiteCounts, Sites, dhat_sites, our_sites, table};
use tracemalloc_tests::dhat_shim::{DHAT_FILE, OUR_FILE};

/// The programs' file, whose `// site: NAME` comments name the lines.
const PROGRAMS: &str = include_str!("../src/dhat_examples.rs");

/// The site (`dhat_examples.rs:LINE`) of each `// site: NAME` comment.
fn marked_sites() -> BTreeMap<&'static str, String> {
    PROGRAMS
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let name = line.split_once("// site: ")?.1.trim();
            Some((name, format!("dhat_examples.rs:{}", i + 1)))
        })
        .collect()
}

/// Runs `program` under both profilers; their sites, dhat-rs's first.
fn run(program: &str) -> (Sites, Sites) {
    let dir = tempfile::tempdir().unwrap();
    for exe in [
        env!("CARGO_BIN_EXE_dhat_examples_dhat"),
        env!("CARGO_BIN_EXE_dhat_examples_ours"),
    ] {
        let out = Command::new(exe)
            .arg(program)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{exe} {program}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dhat = dhat_sites(&std::fs::read(dir.path().join(DHAT_FILE)).unwrap()).unwrap();
    let ours = our_sites(&Snapshot::load(dir.path().join(OUR_FILE)).unwrap()).unwrap();
    (dhat, ours)
}

/// The sites named, in order.
fn named(names: &[&str]) -> Vec<String> {
    let marked = marked_sites();
    names.iter().map(|n| marked[n].clone()).collect()
}

/// The sites with counts, sorted.
fn keys(sites: &Sites) -> Vec<String> {
    sites
        .iter()
        .filter(|(_, c)| !c.is_empty())
        .map(|(k, _)| k.clone())
        .collect()
}

/// Both profilers found exactly the `expected` sites, with the same counts.
fn assert_same(program: &str, expected: &[&str]) {
    let (dhat, ours) = run(program);
    let report = table(&dhat, &ours);
    let mut want = named(expected);
    want.sort();
    assert_eq!(keys(&dhat), want, "{program}, dhat-rs's sites:\n{report}");
    assert_eq!(dhat, ours, "{program}:\n{report}");
}

#[test]
fn examples_heap_one_line_prints() {
    // stdout's buffer, allocated by the first print and live at the end.
    assert_same("heap", &["print"]);
    let (dhat, _) = run("heap");
    let print = &named(&["print"])[0];
    assert_eq!(dhat[print].end.0, 1);
    assert_eq!(dhat[print].end, dhat[print].total);
}

#[test]
fn examples_heap_testing_two_vectors() {
    assert_same("heap_testing", &["first", "second"]);
}

#[test]
fn a_realloc_counts_under_the_allocation_for_dhat_and_the_realloc_for_us() {
    let (dhat, ours) = run("heap_realloc");
    let report = table(&dhat, &ours);
    let lines = named(&["grown-alloc", "grown-realloc"]);
    let (alloc, realloc) = (&lines[0], &lines[1]);

    // Everywhere else the same, the block grown before the profile
    // included: both count its realloc as a new block where it grew.
    let others = |sites: &Sites| -> Sites {
        sites
            .iter()
            .filter(|(k, c)| *k != alloc && *k != realloc && !c.is_empty())
            .map(|(k, c)| (k.clone(), *c))
            .collect()
    };
    let mut want = named(&["before-grown", "big", "loop"]);
    want.sort();
    assert_eq!(keys(&others(&dhat)), want, "{report}");
    assert_eq!(others(&dhat), others(&ours), "{report}");

    // dhat-rs: both blocks under the allocating line, none under the
    // realloc's. The recorder: the first block under the allocating line,
    // the grown one under the realloc's; together what dhat-rs counted.
    let none = SiteCounts::default();
    assert_eq!(
        dhat.get(realloc).copied().unwrap_or_default(),
        none,
        "{report}"
    );
    let (a, r) = (ours[alloc], ours[realloc]);
    let sum = |x: (u64, u64), y: (u64, u64)| (x.0 + y.0, x.1 + y.1);
    assert_eq!(
        dhat[alloc],
        SiteCounts {
            total: sum(a.total, r.total),
            peak: sum(a.peak, r.peak),
            end: sum(a.end, r.end),
        },
        "{report}"
    );
    assert_eq!(a.total, (1, 200), "{report}");
    assert_eq!(
        r,
        SiteCounts {
            total: (1, 400),
            peak: (1, 400),
            end: (1, 400)
        },
        "{report}"
    );
}

#[test]
fn of_two_equal_peaks_dhat_keeps_the_later_and_we_the_first() {
    let (dhat, ours) = run("equal_peaks");
    let report = table(&dhat, &ours);
    let lines = named(&["first-peak", "second-peak"]);
    let (first, second) = (&lines[0], &lines[1]);
    for site in [first, second] {
        assert_eq!(dhat[site].total, (1, 4096), "{report}");
        assert_eq!(dhat[site].total, ours[site].total, "{report}");
        assert_eq!(dhat[site].end, ours[site].end, "{report}");
    }
    assert_eq!(
        (dhat[first].peak, dhat[second].peak),
        ((0, 0), (1, 4096)),
        "{report}"
    );
    assert_eq!(
        (ours[first].peak, ours[second].peak),
        ((1, 4096), (0, 0)),
        "{report}"
    );
}
