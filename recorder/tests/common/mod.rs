//! Helpers shared by the integration tests. Each test file is its own
//! program with its own `#[global_allocator]` (as dhat-rs tests do), and
//! includes this module.

#![allow(dead_code)]
// Test code: a panic is a failure with a message, which is what we want.
#![allow(clippy::unwrap_used)]

use std::sync::{Mutex, MutexGuard, PoisonError};

use tracemalloc::Snapshot;
use tracemalloc_format::KeyType;

/// The recorder is process-wide: tests of one file that use it run one at
/// a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `(size, count)` of the blocks whose most recent frame is `file:line`
/// (`file` is matched as a suffix of the recorded path).
pub fn at_line(snapshot: &Snapshot, file: &str, line: u32) -> (u64, u64) {
    let stats = snapshot.statistics(KeyType::Lineno, false).unwrap();
    stats
        .iter()
        .filter(|s| {
            let f = &s.traceback.frames[0];
            f.filename.ends_with(file) && f.lineno == line
        })
        .fold((0, 0), |(size, count), s| (size + s.size, count + s.count))
}

/// Every `file:line` group of the snapshot, for failure messages.
pub fn describe(snapshot: &Snapshot) -> String {
    let stats = snapshot.statistics(KeyType::Traceback, false).unwrap();
    let mut out = String::new();
    for s in stats.iter().take(40) {
        out.push_str(&format!("{} B x{}:\n", s.size, s.count));
        for f in &s.traceback.frames {
            out.push_str(&format!(
                "    {}:{} {}\n",
                f.filename,
                f.lineno,
                f.function.as_deref().unwrap_or("?")
            ));
        }
    }
    out
}

/// Asserts that a snapshot's sizes add up to its recorded traced memory.
pub fn assert_consistent(snapshot: &Snapshot) {
    assert_eq!(
        Some(snapshot.total_size()),
        snapshot.metadata().traced_current,
        "the snapshot's traces must add up to the traced memory it records"
    );
}

/// Runs the tests of a `harness = false` test file, printing what libtest
/// prints. Files that check process-wide totals use it: libtest's own
/// threads allocate while tests run, which would make those totals racy.
/// A failing test panics, which fails the process.
pub fn run_tests(tests: &[(&str, fn())]) {
    let plural = if tests.len() == 1 { "" } else { "s" };
    println!("\nrunning {} test{plural}", tests.len());
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    println!(
        "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
        tests.len()
    );
}
