//! `track(0, ptr, size)` on a heap block that is already traced replaces
//! its trace, as the documentation says, and the block's free removes the
//! new trace; `untrack(0, ptr)` forgets a heap block (issue 12, defect 6).
//! With `TracingAllocator::system()`, blocks with a trailer (on glibc) and
//! without one (an alignment above 16) are both checked.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use common::{assert_consistent, at_line};

fn main() {
    common::run_tests(&[
        (
            "track_replaces_the_trace_of_a_heap_block",
            track_replaces_the_trace_of_a_heap_block,
        ),
        ("untrack_forgets_a_heap_block", untrack_forgets_a_heap_block),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/track_heap.rs";

/// An alignment above 16: no trailer.
#[repr(align(32))]
struct Aligned([u8; 96]);

#[rustfmt::skip]
fn track_replaces_the_trace_of_a_heap_block() {
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let (plain, plain_line) = (black_box(Box::new([1u8; 100])), line!());
    let (aligned, aligned_line) = (black_box(Box::new(Aligned([2u8; 96]))), line!());
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + 100 + 96);
    let plain_addr = &*plain as *const [u8; 100] as usize;
    let aligned_addr = &*aligned as *const Aligned as usize;
    let track_line = line!(); tracemalloc::track(0, plain_addr, 1000).unwrap(); tracemalloc::track(0, aligned_addr, 2000).unwrap();
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + 3000, "each trace replaced, not added to");
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(at_line(&snapshot, FILE, plain_line), (0, 0));
    assert_eq!(at_line(&snapshot, FILE, aligned_line), (0, 0));
    assert_eq!(at_line(&snapshot, FILE, track_line), (3000, 2));
    // Tracking again replaces again.
    tracemalloc::track(0, plain_addr, 500).unwrap();
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + 2500);
    assert!(plain[99] == 1 && aligned.0[95] == 2, "tracking leaves the memory alone");
    // Freeing the blocks removes the traces that replaced theirs.
    drop(plain);
    drop(aligned);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline, "the tracked traces went with their blocks");
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, track_line), (0, 0));
    tracemalloc::stop();
}

fn untrack_forgets_a_heap_block() {
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let plain = black_box(Box::new([1u8; 100]));
    let aligned = black_box(Box::new(Aligned([2u8; 96])));
    tracemalloc::untrack(0, &*plain as *const [u8; 100] as usize).unwrap();
    tracemalloc::untrack(0, &*aligned as *const Aligned as usize).unwrap();
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        baseline,
        "both blocks forgotten"
    );
    drop(plain);
    drop(aligned);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    tracemalloc::stop();
}
