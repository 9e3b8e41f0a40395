//! The peak follows the largest traced size; `reset_peak()` brings it down
//! to the current size.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::mpsc;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[
        ("peak_and_reset_peak", peak_and_reset_peak),
        (
            "another_threads_frees_do_not_raise_the_peak",
            another_threads_frees_do_not_raise_the_peak,
        ),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

fn peak_and_reset_peak() {
    tracemalloc::start(1).unwrap();
    tracemalloc::clear_traces();
    let base = black_box(vec![0u8; 1000]);
    assert_eq!(tracemalloc::get_traced_memory(), (1000, 1000));

    let big = black_box(vec![0u8; 1 << 20]);
    drop(black_box(big));
    assert_eq!(tracemalloc::get_traced_memory(), (1000, 1000 + (1 << 20)));

    // Many small steps up and down: the peak is the highest point.
    let mut blocks = Vec::new();
    for _ in 0..100 {
        blocks.push(black_box(vec![0u8; 10_000]));
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

    let mid = black_box(vec![0u8; 5000]);
    drop(black_box(mid));
    assert_eq!(tracemalloc::get_traced_memory(), (current, current + 5000));

    // Above the old peak after a reset.
    let bigger = black_box(vec![0u8; 2 << 20]);
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

const FILE: &str = "tests/peak.rs";

/// A thread that freed 200 KiB has not told the shared estimate of traced
/// memory yet (each thread adds its changes to it in batches,
/// `state::note_change`); another thread's smaller allocation must not
/// make a new peak from the stale estimate. With a batch of 256 KiB it
/// did (the peak came out at 300 KiB where memory never passed 200 KiB);
/// the batch is 16 KiB, which bounds the error by that much per thread.
/// The peak set copied at the fall is the other thread's 200 KiB.
// The `line!()` marker must stay on the line of the allocation it names.
#[rustfmt::skip]
fn another_threads_frees_do_not_raise_the_peak() {
    tracemalloc::Config::new(4).history(true).start().unwrap();
    tracemalloc::clear_traces();
    let (to_worker, from_main) = mpsc::channel::<()>();
    let (to_main, from_worker) = mpsc::channel::<u32>();
    let worker = std::thread::spawn(move || {
        let mut blocks = Vec::with_capacity(20);
        let line = line!(); for _ in 0..20 { blocks.push(black_box(vec![1u8; 10_000])); }
        to_main.send(line).unwrap();
        from_main.recv().unwrap();
        drop(blocks);
        to_main.send(0).unwrap();
        // Alive (its changes not flushed at exit) until the main thread
        // has allocated and read the peak.
        from_main.recv().unwrap();
    });
    let worker_line = from_worker.recv().unwrap();
    let (_, before) = tracemalloc::get_traced_memory();
    to_worker.send(()).unwrap();
    from_worker.recv().unwrap();
    let half = black_box(vec![2u8; 100_000]);
    let (current, after) = tracemalloc::get_traced_memory();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    to_worker.send(()).unwrap();
    worker.join().unwrap();

    assert!(before >= 200_000, "the worker's blocks made the peak: {before}");
    assert!(current < before, "memory is below the peak: {current} < {before}");
    // The channels' own blocks may add a little; the stale estimate
    // would add about the 100 KB just allocated.
    assert!(
        after < before + 4096,
        "the worker's frees raised the peak: {after} from {before}"
    );
    // [allocated blocks, bytes, freed blocks, temporary blocks, bytes,
    //  peak blocks, bytes]
    let report = common::describe(&snapshot);
    assert_eq!(
        common::history_at_line(&snapshot, FILE, worker_line),
        [20, 200_000, 20, 0, 0, 20, 200_000],
        "{report}"
    );
    drop(half);
    tracemalloc::stop();
}
