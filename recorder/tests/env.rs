//! The environment variables, in child processes of this test:
//! `TRACEMALLOC=N` starts tracing at the first allocation,
//! `TRACEMALLOC_SAMPLE` makes it sampled, `TRACEMALLOC_HISTORY=1` records
//! allocation history, `TRACEMALLOC_SNAPSHOT` writes a
//! snapshot at exit, and an invalid value is reported once and ignored.
//!
//! A `harness = false` test: the same binary is the parent (no variable
//! set) and the children (`TM_ENV_CHILD` names the scenario).

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::process::Command;

use common::at_line;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/env.rs";

fn main() {
    match std::env::var("TM_ENV_CHILD").as_deref() {
        Ok("start") => child_start(),
        Ok("invalid") => child_invalid(),
        _ => common::run_tests(&[
            (
                "tracemalloc_starts_tracing_and_dumps_at_exit",
                starts_and_dumps,
            ),
            ("sampling_from_the_environment", sampled),
            ("history_from_the_environment", history),
            ("an_invalid_value_is_reported_once", invalid),
        ]),
    }
}

fn child_start() {
    // The very first thing this code does is allocate: the recorder reads
    // TRACEMALLOC there, so this block is traced.
    let (first, line) = (vec![5u8; 4321], line!());
    let tb = tracemalloc::get_object_traceback(first.as_ptr())
        .expect("traced from the first allocation");
    assert_eq!(tb.frames[0].lineno, line);
    assert!(tracemalloc::is_tracing());
    assert_eq!(tracemalloc::get_traceback_limit(), 5);
    println!("line={line}");
    // Kept until exit: the exit snapshot must contain it.
    std::mem::forget(first);
}

fn child_invalid() {
    let v = vec![0u8; 100];
    assert!(!tracemalloc::is_tracing());
    assert!(tracemalloc::take_snapshot().is_err());
    black_box(v);
}

fn run_child(scenario: &str, env: &[(&str, &str)]) -> std::process::Output {
    let exe = std::env::current_exe().unwrap();
    let mut command = Command::new(exe);
    command
        .env("TM_ENV_CHILD", scenario)
        .env_remove("TRACEMALLOC")
        .env_remove("TRACEMALLOC_SAMPLE")
        .env_remove("TRACEMALLOC_HISTORY")
        .env_remove("TRACEMALLOC_SNAPSHOT");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "child {scenario} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn child_line(output: &std::process::Output) -> u32 {
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("line="))
        .unwrap()
        .parse()
        .unwrap()
}

fn starts_and_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("exit-{pid}.tmsnap");
    let output = run_child(
        "start",
        &[
            ("TRACEMALLOC", "5"),
            ("TRACEMALLOC_SNAPSHOT", pattern.to_str().unwrap()),
        ],
    );
    let line = child_line(&output);
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.starts_with("exit-") && !name.contains("{pid}"),
        "{name}"
    );
    let snapshot = tracemalloc::Snapshot::load(&files[0]).unwrap();
    assert_eq!(at_line(&snapshot, FILE, line), (4321, 1));
    assert_eq!(snapshot.traceback_limit(), 5);
    assert_eq!(snapshot.metadata().sampling_rate, None);
    assert!(snapshot.history().is_none(), "history is off by default");
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn sampled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sampled.tmsnap");
    run_child(
        "start",
        &[
            ("TRACEMALLOC", "5"),
            ("TRACEMALLOC_SAMPLE", "1"),
            ("TRACEMALLOC_SNAPSHOT", path.to_str().unwrap()),
        ],
    );
    let snapshot = tracemalloc::Snapshot::load(&path).unwrap();
    assert_eq!(snapshot.metadata().sampling_rate, Some(1));
}

fn history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.tmsnap");
    let output = run_child(
        "start",
        &[
            ("TRACEMALLOC", "5"),
            ("TRACEMALLOC_HISTORY", "1"),
            ("TRACEMALLOC_SNAPSHOT", path.to_str().unwrap()),
        ],
    );
    let line = child_line(&output);
    let snapshot = tracemalloc::Snapshot::load(&path).unwrap();
    // Allocated once, never freed: live at any peak.
    assert_eq!(
        common::history_at_line(&snapshot, FILE, line),
        [1, 4321, 0, 0, 0, 1, 4321]
    );
}

fn invalid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("never.tmsnap");
    let output = run_child(
        "invalid",
        &[
            ("TRACEMALLOC", "lots"),
            ("TRACEMALLOC_SNAPSHOT", path.to_str().unwrap()),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("ignoring TRACEMALLOC=\"lots\"").count(),
        1,
        "{stderr}"
    );
    // Not tracing at exit: no snapshot.
    assert!(!path.exists());
}
