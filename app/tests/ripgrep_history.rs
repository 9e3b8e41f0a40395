//! The recording of ripgrep in app/demo (scripts/make_ripgrep_history.sh)
//! against what the README says of it: the commands in its ripgrep
//! section print what the README shows, and the sentences beside the
//! metric screenshots name the lines the file ranks first. A new
//! recording, or a change to the statistics, fails here until the README
//! is brought up to date.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::cli::{arg, in_process_ok};
use tracemalloc_format::Snapshot;

/// The recording, as the README names it (from the repository root).
const RECORDING: &str = "app/demo/ripgrep-history.tmsnap";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The README's text between `start` and the next `end`.
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("the README has {start:?}"));
    let rest = &text[from..];
    let to = rest
        .find(end)
        .unwrap_or_else(|| panic!("{end:?} after {start:?}"));
    &rest[..to]
}

/// A statistics line with the directory cargo unpacked the crates in
/// shortened to `…/`, as the README prints it (the file holds the
/// recording machine's paths).
fn shorten(line: &str) -> String {
    let Some(at) = line.find("/registry/src/") else {
        return line.to_owned();
    };
    let after = at + "/registry/src/".len();
    // The index's own directory (`index.crates.io-…/`) ends the prefix.
    let Some(slash) = line[after..].find('/') else {
        return line.to_owned();
    };
    let Some(start) = line.find(": ").map(|i| i + 2) else {
        return line.to_owned();
    };
    format!("{}…/{}", &line[..start], &line[after + slash + 1..])
}

/// Runs a README command line (`tracemalloc-viewer ARGS`) in process, on
/// the recording.
fn run_readme_command(command: &str) -> String {
    let recording = root().join(RECORDING);
    let args: Vec<&str> = command
        .split_whitespace()
        .skip(1)
        .map(|a| if a == RECORDING { arg(&recording) } else { a })
        .collect();
    in_process_ok(&args)
        .lines()
        .map(shorten)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The statistics by `metric` as JSON rows: (file name, line, bytes,
/// blocks).
fn rows(metric: &str) -> Vec<(String, u64, u64, u64)> {
    let recording = root().join(RECORDING);
    let out = in_process_ok(&[
        "stats",
        arg(&recording),
        "--metric",
        metric,
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["stats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let frame = &s["frames"][0];
            let file = frame["filename"].as_str().unwrap();
            let name = file.rsplit('/').next().unwrap().to_owned();
            (
                name,
                frame["lineno"].as_u64().unwrap(),
                s["size"].as_u64().unwrap(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_recording_has_an_allocation_history() {
    let snapshot = Snapshot::load(root().join(RECORDING)).unwrap();
    let history = snapshot
        .history()
        .expect("recorded with TRACEMALLOC_HISTORY=1");
    assert!(
        history.rows().len() > 100,
        "{} history rows",
        history.rows().len()
    );
    // Far more went through the allocator than is live at exit.
    let live: u64 = snapshot.traces().iter().map(|t| t.size).sum();
    let allocated: u64 = history.rows().iter().map(|r| r.allocated_bytes).sum();
    let peak: u64 = history.rows().iter().map(|r| r.peak_bytes).sum();
    assert!(peak > 10 * live, "peak {peak}, live {live}");
    assert!(allocated > 100 * live, "allocated {allocated}, live {live}");
}

#[test]
fn the_readme_commands_print_what_the_readme_shows() {
    let readme = readme();
    let block = section(&readme, "On a real program: ripgrep", "```\n\n");
    let block = &block[block.find("```text\n").unwrap() + "```text\n".len()..];
    let mut commands = 0;
    for part in block.split("$ ").skip(1) {
        let (command, expected) = part.split_once('\n').unwrap();
        assert_eq!(run_readme_command(command), expected, "{command}");
        commands += 1;
    }
    assert_eq!(commands, 3, "allocations, temporary and peak");
}

#[test]
fn the_readme_totals_are_the_recordings() {
    let readme = readme();
    let prose = section(&readme, "On a real program: ripgrep", "```text");
    let info = in_process_ok(&["info", arg(&root().join(RECORDING))]);
    // (what `info` prints, what the README says of it)
    for (printed, said) in [
        (
            "Total:              86.1 KiB in 344 blocks",
            "86.1 KiB in 344 blocks",
        ),
        (
            "Allocated:          78.6 MiB in 554735 blocks",
            "78.6 MiB allocated in 554,735 blocks",
        ),
        (
            "Temporary:          7483 KiB in 97095 blocks",
            "7483 KiB of them temporary in 97,095 blocks",
        ),
        (
            "At the peak:        1921 KiB in 5538 blocks",
            "1921 KiB in 5538 blocks live\nat the peak",
        ),
    ] {
        assert!(info.contains(printed), "info lacks {printed:?}:\n{info}");
        assert!(prose.contains(said), "the README lacks {said:?}");
    }
    assert!(info.contains("Traced peak:        1921 KiB"), "{info}");
    assert!(readme.contains("here\nboth are 1921 KiB"));
}

#[test]
fn the_screenshot_sentences_name_the_top_lines() {
    let readme = readme();
    let pictures = section(
        &readme,
        "With an allocation history, *Show*",
        "(screenshots/metric-peak.png)",
    );
    // Allocated, by allocations: dir.rs:413 most often (the line the
    // picture selects: `matched_ignore`'s `fn`, where the recorder puts
    // its calls the line table gives line 0), then walk.rs:361.
    let mut by_count = rows("allocations");
    by_count.sort_by_key(|r| std::cmp::Reverse(r.3));
    assert_eq!(
        (by_count[0].0.as_str(), by_count[0].1, by_count[0].3),
        ("dir.rs", 413, 78_893)
    );
    assert_eq!(
        (by_count[1].0.as_str(), by_count[1].1, by_count[1].3),
        ("walk.rs", 361, 73_671)
    );
    assert!(pictures.contains("`ignore-0.4.23/src/dir.rs:413`"));
    assert!(pictures.contains("(78,893 times, selected and annotated"));
    assert!(pictures.contains("73,671 times"));

    // Temporary, by bytes (the viewer's order): dir.rs:796, about half.
    let temporary = rows("temporary");
    let total: u64 = temporary.iter().map(|r| r.2).sum();
    let top = temporary.iter().max_by_key(|r| r.2).unwrap();
    assert_eq!((top.0.as_str(), top.1, top.3), ("dir.rs", 796, 20_502));
    assert!(2 * top.2 >= total * 9 / 10 && 2 * top.2 <= total * 11 / 10);
    assert!(pictures.contains("half of the temporary bytes (3827 KiB in 20,502 blocks)"));
    assert!(pictures.contains("`dir.rs:796`"));

    // Peak: the work-stealing queues, then the queued entries and the
    // line buffer, which is not live at exit.
    let mut peak = rows("peak");
    peak.sort_by_key(|r| std::cmp::Reverse(r.2));
    let top: Vec<(&str, u64, u64, u64)> = peak
        .iter()
        .take(3)
        .map(|r| (r.0.as_str(), r.1, r.2, r.3))
        .collect();
    assert_eq!(
        top,
        [
            ("deque.rs", 44, 852_992, 3),
            ("walk.rs", 361, 355_682, 2192),
            ("line_buffer.rs", 519, 192 * 1024, 1)
        ]
    );
    let live = rows("live");
    assert!(
        !live.iter().any(|r| r.0 == "line_buffer.rs" && r.1 == 519),
        "the line buffer is freed before exit"
    );
    let left = live
        .iter()
        .find(|r| r.0 == "deque.rs" && r.1 == 44)
        .unwrap();
    assert_eq!(left.2 / 1024, 17, "17 KiB of the queues left at exit");
    assert!(pictures.contains("`deque.rs:44`, 833 KiB in 3 blocks, 17 KiB of it left at exit"));
    assert!(pictures.contains("(`walk.rs:361`, 347 KiB)"));
    assert!(pictures.contains("192 KiB line buffer (`line_buffer.rs:519`)"));
    assert!(pictures.contains("1921 KiB in 5538 blocks"));
    assert!(pictures.contains("86.1 KiB in 344 blocks"));
}
