//! `clear_traces()` forgets traces and the peak but goes on tracing.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use common::at_line;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[(
        "clear_forgets_traces_and_keeps_tracing",
        clear_forgets_traces_and_keeps_tracing,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/clear_traces.rs";

fn clear_forgets_traces_and_keeps_tracing() {
    tracemalloc::start(4).unwrap();
    let (before, before_line) = (black_box(vec![0u8; 2000]), line!());
    assert!(tracemalloc::get_traced_memory().0 >= 2000);

    tracemalloc::clear_traces();
    assert!(tracemalloc::is_tracing());
    assert_eq!(tracemalloc::get_traced_memory(), (0, 0));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(snapshot.traces().len(), 0);
    assert!(tracemalloc::get_object_traceback(before.as_ptr()).is_none());

    let (after, after_line) = (black_box(vec![0u8; 700]), line!());
    assert_eq!(tracemalloc::get_traced_memory(), (700, 700));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, after_line), (700, 1));
    assert_eq!(at_line(&snapshot, FILE, before_line), (0, 0));

    // Freeing a block traced before the clear changes nothing.
    drop(before);
    assert_eq!(tracemalloc::get_traced_memory().0, 700);
    drop(after);
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    tracemalloc::stop();
    black_box(snapshot);
}
