//! End to end: the README's quick start, as a test. A program traces its
//! allocations, dumps a snapshot, and the snapshot read back from the file
//! groups the allocations under the program's own line.

use std::hint::black_box;

use tracemalloc_format::{KeyType, Snapshot};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

// `line!()` must stay on the line of the `format!` it names.
#[rustfmt::skip]
fn run() -> (Vec<String>, u32) {
    ((0..10_000).map(|i| format!("item number {i}")).collect(), line!())
}

#[test]
fn quick_start() {
    tracemalloc::start(16).unwrap();
    let (kept, line) = run();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("after.tmsnap");
    tracemalloc::take_snapshot().unwrap().dump(&path).unwrap();

    let snapshot = Snapshot::load(&path).unwrap();
    let top = snapshot.statistics(KeyType::Lineno, false).unwrap();
    let first = &top[0];
    let frame = &first.traceback.frames[0];
    assert!(
        frame.filename.ends_with("tests/recorder_quickstart.rs"),
        "{first}"
    );
    assert_eq!(frame.lineno, line, "{first}");
    // 10 000 strings plus the vector that holds them.
    assert!(
        first.count >= 10_000 && first.size >= 10_000 * 15,
        "{first}"
    );
    // The standard library's and the recorder's frames are not there.
    for stat in snapshot.statistics(KeyType::Traceback, false).unwrap() {
        for f in &stat.traceback.frames {
            assert!(
                !f.filename.starts_with("/rustc/")
                    || stat
                        .traceback
                        .frames
                        .iter()
                        .all(|f| !f.filename.ends_with("recorder_quickstart.rs")),
                "{f:?}"
            );
            assert!(!f.filename.contains("recorder/src/"), "{f:?}");
        }
    }
    tracemalloc::stop();
    black_box(kept);
}
