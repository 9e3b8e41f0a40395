//! End to end: a traced program writes numbered snapshots into a directory
//! (the recorder's `PeriodicSnapshots`), and the format crate reads them
//! back and compares them, as the viewer's timeline does.

use std::hint::black_box;

use tracemalloc_format::{KeyType, Snapshot};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/recorder_periodic.rs";

/// The recorder is process-wide: the tests of this file take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn numbered_snapshots_show_growth_at_the_right_line() {
    let _serial = SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    tracemalloc::start(8).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snapshots = tracemalloc::PeriodicSnapshots::builder(dir.path())
        .prefix("app")
        .digits(2)
        .start()
        .unwrap();
    // Room for every string, so that the loop's line allocates only them.
    let mut cache: Vec<String> = Vec::with_capacity(3000);
    let mut lines = Vec::new();
    let mut paths = Vec::new();
    for round in 0..3 {
        let line = line!(); for i in 0..1000 { cache.push(format!("{round}-{i:08}")); }
        lines.push(line);
        paths.push(snapshots.write_now().unwrap());
    }
    snapshots.stop().unwrap();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["app-01.tmsnap", "app-02.tmsnap", "app-03.tmsnap"]);

    let loaded: Vec<Snapshot> = paths.iter().map(|p| Snapshot::load(p).unwrap()).collect();
    let times: Vec<_> = loaded.iter().map(|s| s.metadata().timestamp.unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    for s in &loaded {
        assert_eq!(Some(s.total_size()), s.metadata().traced_current);
        assert_eq!(s.metadata().pid, Some(std::process::id()));
    }

    // Between the first and the last snapshot, the loop's line grew by the
    // strings of rounds 1 and 2: 2000 blocks.
    let diff = loaded[2].compare_to(&loaded[0], KeyType::Lineno, false).unwrap();
    let grown = diff
        .iter()
        .find(|d| {
            let f = &d.traceback.frames[0];
            f.filename.ends_with(FILE) && f.lineno == lines[0]
        })
        .expect("the loop's line is in the comparison");
    let strings: usize = cache[1000..].iter().map(String::capacity).sum();
    assert_eq!(grown.count_diff, 2000);
    assert_eq!(grown.size_diff, strings as i64);
    tracemalloc::stop();
    black_box(cache);
}

#[test]
fn a_background_thread_writes_snapshots_on_its_own() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tracemalloc::start(4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snapshots =
        tracemalloc::PeriodicSnapshots::start(dir.path(), std::time::Duration::from_millis(20))
            .unwrap();
    // Wait (without a time limit on the outcome) until two are written.
    let mut written = 0;
    for _ in 0..500 {
        written = std::fs::read_dir(dir.path()).unwrap().count();
        if written >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    snapshots.stop().unwrap();
    assert!(written >= 2, "{written} snapshots written");
    let first = dir.path().join("snapshot-0001.tmsnap");
    let snapshot = Snapshot::load(&first).unwrap();
    assert_eq!(snapshot.traceback_limit(), 4);
    tracemalloc::stop();
}
