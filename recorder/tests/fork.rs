//! After `fork()`, the child keeps tracing with the parent's traces, even
//! when another thread of the parent was allocating (and holding the
//! recorder's locks) at the moment of the fork.

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::at_line;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/fork.rs";

/// What the child checks; its exit status says which check failed.
fn child(parent_line: u32) -> i32 {
    if !tracemalloc::is_tracing() {
        return 10;
    }
    let (block, line) = (black_box(vec![0u8; 3333]), line!());
    let Ok(snapshot) = tracemalloc::take_snapshot() else {
        return 11;
    };
    if at_line(&snapshot, FILE, line) != (3333, 1) {
        return 12;
    }
    if at_line(&snapshot, FILE, parent_line) != (7777, 1) {
        return 13;
    }
    if Some(snapshot.total_size()) != snapshot.metadata().traced_current {
        return 14;
    }
    drop(block);
    0
}

#[test]
fn the_child_keeps_tracing() {
    let _serial = common::serial();
    tracemalloc::start(4).unwrap();
    let (inherited, parent_line) = (black_box(vec![1u8; 7777]), line!());
    // Symbolizing once here leaves the symbol cache warm for the children
    // (loading debug info is what takes time).
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, parent_line), (7777, 1));
    // A thread that allocates all the time, so that forks land while it
    // holds the recorder's locks.
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v: Vec<String> = (0..16).map(|i| (i + n).to_string()).collect();
                n += black_box(v).len() as u64;
            }
        })
    };
    for _ in 0..10 {
        // SAFETY: the child only runs `child` (which uses the allocator,
        // made fork-safe by the recorder and glibc) and then `_exit`s.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = child(parent_line);
            // SAFETY: ends the child without running the parent's exit
            // handlers or test harness.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for the child just created.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(libc::WIFEXITED(status), "the child died: status {status}");
        assert_eq!(libc::WEXITSTATUS(status), 0, "a check of the child failed");
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    // The parent goes on as before.
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, parent_line), (7777, 1));
    tracemalloc::stop();
    black_box(inherited);
}
