//! A program built without frame pointers still gets correct tracebacks:
//! the recorder notices at `start()`, says so once on stderr, and uses the
//! DWARF unwinder.
//!
//! The program is compiled here with `rustc` directly, against the
//! `tracemalloc` rlib cargo built for this test (in the same `deps`
//! directory), with `-C force-frame-pointers=no`. That takes a second or
//! two, where a separate cargo build without the workspace's frame-pointer
//! flag would rebuild the recorder and all its dependencies. The same
//! program built with frame pointers is the control: no message, same
//! tracebacks.

// Test helpers: a panic is a failure with a message, which is what we want.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

const PROGRAM: &str = r#"
#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

#[inline(never)]
fn leaf() -> (Vec<u8>, u32) {
    (vec![0u8; 1000], line!())
}

#[inline(never)]
fn middle() -> (Vec<u8>, u32, u32) {
    let ((v, leaf_line), line) = (leaf(), line!());
    (std::hint::black_box(v), leaf_line, line)
}

fn main() {
    tracemalloc::start(3).unwrap();
    tracemalloc::start(3).unwrap(); // the message comes once, not per start
    let ((v, leaf_line, middle_line), main_line) = (middle(), line!());
    let tb = tracemalloc::get_object_traceback(v.as_ptr()).unwrap();
    let got: Vec<u32> = tb.frames.iter().map(|f| f.lineno).collect();
    assert_eq!(got, [leaf_line, middle_line, main_line], "{tb:?}");
    assert!(tb.frames.iter().all(|f| f.filename.ends_with("prog.rs")), "{tb:?}");
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(Some(snapshot.total_size()), snapshot.metadata().traced_current);
    println!("ok");
}
"#;

/// The newest `libtracemalloc-*.rlib` next to this test's executable.
fn recorder_rlib(deps: &Path) -> PathBuf {
    std::fs::read_dir(deps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("libtracemalloc-") && name.ends_with(".rlib")
        })
        .max_by_key(|p| p.metadata().unwrap().modified().unwrap())
        .expect("cargo builds the recorder's rlib for its tests")
}

fn build_and_run(frame_pointers: &str) -> (String, String) {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("prog.rs");
    std::fs::write(&source, PROGRAM).unwrap();
    let binary = dir.path().join("prog");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let compiled = Command::new(rustc)
        .args(["--edition", "2024", "-g", "-C"])
        .arg(format!("force-frame-pointers={frame_pointers}"))
        .arg("--extern")
        .arg(format!("tracemalloc={}", recorder_rlib(deps).display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("-o")
        .arg(&binary)
        .arg(&source)
        .output()
        .unwrap();
    assert!(
        compiled.status.success(),
        "rustc failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let run = Command::new(&binary)
        .env_remove("TRACEMALLOC")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(
        run.status.success(),
        "the program failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn without_frame_pointers_the_dwarf_unwinder_takes_over() {
    let (stdout, stderr) = build_and_run("no");
    assert_eq!(stdout.trim(), "ok");
    assert_eq!(
        stderr.matches("using the slower DWARF unwinder").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn with_frame_pointers_there_is_no_fallback() {
    let (stdout, stderr) = build_and_run("yes");
    assert_eq!(stdout.trim(), "ok");
    assert!(stderr.is_empty(), "{stderr}");
}
