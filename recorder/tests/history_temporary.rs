//! Temporary blocks (heaptrack's definition): freed by the thread that
//! allocated them with no other allocation by that thread in between.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use common::history_at_line;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[(
        "temporaries_are_counted_per_line",
        temporaries_are_counted_per_line,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/history_temporary.rs";

// The `line!()` markers must stay on the line of the allocation they name.
#[rustfmt::skip]
fn temporaries_are_counted_per_line() {
    tracemalloc::Config::new(4).history(true).start().unwrap();
    // A spike first, so that the peak is not in the loops below.
    let (spike, spike_line) = (black_box(vec![0u8; 1 << 20]), line!());
    drop(spike);

    // Allocated and freed at once: every block is temporary.
    let temp_line = line!(); for i in 0..100u8 { drop(black_box(vec![i; 64])); }

    // Two blocks alive at once: the first is freed after the thread
    // allocated the second, so only the second is temporary.
    let mut first_line = 0;
    let mut second_line = 0;
    for i in 0..30u8 {
        let (a, la) = (black_box(vec![i; 200]), line!());
        let (b, lb) = (black_box(vec![i; 300]), line!());
        drop(a);
        drop(b);
        (first_line, second_line) = (la, lb);
    }

    let snapshot = tracemalloc::take_snapshot().unwrap();
    let report = common::describe(&snapshot);
    // [allocated blocks, bytes, freed blocks, temporary blocks, bytes,
    //  peak blocks, bytes]
    assert_eq!(history_at_line(&snapshot, FILE, temp_line), [100, 6400, 100, 100, 6400, 0, 0], "{report}");
    assert_eq!(history_at_line(&snapshot, FILE, first_line), [30, 6000, 30, 0, 0, 0, 0], "{report}");
    assert_eq!(history_at_line(&snapshot, FILE, second_line), [30, 9000, 30, 30, 9000, 0, 0], "{report}");
    // The spike is temporary too, and it is the peak.
    assert_eq!(history_at_line(&snapshot, FILE, spike_line), [1, 1 << 20, 1, 1, 1 << 20, 1, 1 << 20], "{report}");
    tracemalloc::stop();
}
