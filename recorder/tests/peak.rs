//! The peak follows the largest traced size; `reset_peak()` brings it down
//! to the current size.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[("peak_and_reset_peak", peak_and_reset_peak)]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

fn peak_and_reset_peak() {
    tracemalloc::start(1).unwrap();
    tracemalloc::clear_traces();
    let base = vec![0u8; 1000];
    assert_eq!(tracemalloc::get_traced_memory(), (1000, 1000));

    let big = vec![0u8; 1 << 20];
    drop(black_box(big));
    assert_eq!(tracemalloc::get_traced_memory(), (1000, 1000 + (1 << 20)));

    // Many small steps up and down: the peak is the highest point.
    let mut blocks = Vec::new();
    for _ in 0..100 {
        blocks.push(vec![0u8; 10_000]);
    }
    let high = tracemalloc::get_traced_memory().0;
    assert_eq!(high, 1000 + 1_000_000 + blocks.capacity() as u64 * 24);
    blocks.clear();
    let (current, peak) = tracemalloc::get_traced_memory();
    assert_eq!(peak, 1000 + (1 << 20));
    assert!(current < peak);

    tracemalloc::reset_peak();
    let (current, peak) = tracemalloc::get_traced_memory();
    assert_eq!(peak, current);

    let mid = vec![0u8; 5000];
    drop(black_box(mid));
    assert_eq!(tracemalloc::get_traced_memory(), (current, current + 5000));

    // Above the old peak after a reset.
    let bigger = vec![0u8; 2 << 20];
    let (now, peak) = tracemalloc::get_traced_memory();
    assert_eq!(now, current + (2 << 20));
    assert_eq!(peak, now);
    drop((base, bigger, blocks));

    // clear_traces() resets the peak too (CPython).
    tracemalloc::clear_traces();
    assert_eq!(tracemalloc::get_traced_memory(), (0, 0));
    tracemalloc::stop();
    tracemalloc::reset_peak(); // not tracing: nothing to do
    assert_eq!(tracemalloc::get_traced_memory(), (0, 0));
}
