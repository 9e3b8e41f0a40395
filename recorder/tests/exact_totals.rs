//! Totals are exact: known allocations show up with their exact sizes,
//! and a snapshot adds up to the traced memory it records.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use common::{assert_consistent, at_line};

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[(
        "known_allocations_add_up_exactly",
        known_allocations_add_up_exactly,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/exact_totals.rs";

// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn known_allocations_add_up_exactly() {
    tracemalloc::start(4).unwrap();
    tracemalloc::clear_traces();
    assert_eq!(tracemalloc::get_traced_memory(), (0, 0));

    let mut blocks = Vec::with_capacity(1000);
    let (before, _) = tracemalloc::get_traced_memory();
    assert_eq!(before, 24 * 1000, "only the Vec of blocks is live");
    let line = line!(); for i in 0..1000 { blocks.push(vec![0u8; 100 + i % 7]); }
    let expected: u64 = (0..1000).map(|i| 100 + i % 7).sum();
    let (current, peak) = tracemalloc::get_traced_memory();
    assert_eq!(current, 24_000 + expected);
    assert_eq!(peak, current);

    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(
        at_line(&snapshot, FILE, line),
        (expected, 1000),
        "{}",
        common::describe(&snapshot)
    );
    assert_eq!(snapshot.total_size(), 24_000 + expected);
    assert_eq!(snapshot.traces().len(), 1001);
    assert_eq!(snapshot.traceback_limit(), 4);
    let meta = snapshot.metadata();
    assert_eq!(meta.traced_peak, Some(24_000 + expected));
    assert_eq!(meta.pid, Some(std::process::id()));
    assert!(meta.timestamp.is_some() && meta.sampling_rate.is_none());
    assert!(
        meta.producer
            .as_deref()
            .unwrap()
            .starts_with("tracemalloc-rs")
    );
    assert!(meta.tracemalloc_memory.unwrap() > 0);

    // Taking the snapshot traced nothing: the totals did not move.
    assert_eq!(tracemalloc::get_traced_memory().0, current);

    // Freeing half gives back exactly their sizes.
    let freed: u64 = blocks.drain(..500).map(|b| b.len() as u64).sum();
    assert_eq!(tracemalloc::get_traced_memory().0, current - freed);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(at_line(&snapshot, FILE, line), (expected - freed, 500));

    // The snapshot survives being written and read back.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exact.tmsnap");
    snapshot.dump(&path).unwrap();
    let back = tracemalloc::Snapshot::load(&path).unwrap();
    assert_eq!(at_line(&back, FILE, line), (expected - freed, 500));
    assert_eq!(
        back.metadata().traced_current,
        snapshot.metadata().traced_current
    );

    drop((blocks, back, path, dir));
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    black_box(&snapshot);
    tracemalloc::stop();
}
