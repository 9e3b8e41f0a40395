//! The real `tracemalloc-viewer` binary on bad input: exit code 2 and one
//! clear line on stderr, never a panic message; a closed stdout is fine.

use std::io::Read;
use std::process::Stdio;

mod support;

use support::cli::{binary, run_binary};

fn assert_one_clear_line(stderr: &str, expected_start: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(expected_start), "{stderr}");
}

#[test]
fn a_missing_file_exits_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.tmsnap");
    let (code, stdout, stderr) = run_binary(&["stats", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert_one_clear_line(
        &stderr,
        &format!("tracemalloc-viewer: {}: cannot read: ", missing.display()),
    );
}

#[test]
fn corrupt_and_foreign_files_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "truncated.tmsnap",
            b"\x89TMS\r\n\x1a\n\x01\0",
            "truncated .tmsnap header",
        ),
        (
            "future.tmsnap",
            b"\x89TMS\r\n\x1a\n\x09\0\0\0\x80",
            "format version 9 is newer",
        ),
        ("text.tmsnap", b"hello", "not a snapshot file"),
        (
            "empty.pickle",
            b"",
            "not a snapshot file: the file is empty",
        ),
    ];
    for (name, bytes, problem) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        for command in ["stats", "info"] {
            let (code, _, stderr) = run_binary(&[command, path.to_str().unwrap()]);
            assert_eq!(code, 2, "{command} {name}");
            assert_one_clear_line(
                &stderr,
                &format!("tracemalloc-viewer: {}: ", path.display()),
            );
            assert!(stderr.contains(problem), "{command} {name}: {stderr}");
        }
    }
}

#[test]
fn bad_arguments_exit_2() {
    let (code, _, stderr) = run_binary(&["stats"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("SNAPSHOT"), "{stderr}");
    let (code, _, stderr) = run_binary(&["stats", "x.tmsnap", "--limit", "many"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid value 'many'"), "{stderr}");
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.tmsnap");
    // 20,000 one-frame traces over 5,000 files: enough CSV output to fill
    // the pipe.
    let names: Vec<String> = (0..5000).map(|i| format!("file_{i}.py")).collect();
    let frames: Vec<[(&str, u32); 1]> = (0..20_000u32)
        .map(|i| [(names[i as usize % 5000].as_str(), i)])
        .collect();
    let traces = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (0, 8 + i as u64, &f[..], None));
    tracemalloc_format::Snapshot::from_raw_traces(1, traces)
        .unwrap()
        .dump(&path)
        .unwrap();
    let mut child = binary()
        .args(["stats", path.to_str().unwrap(), "--format", "csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one chunk, then close the pipe, as `| head -1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 64];
    let n = stdout.read(&mut first).unwrap();
    assert!(n > 0);
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "");
}
