//! Allocation history of a kept set: every block allocated at a line is
//! still live, so allocated equals live and nothing is freed; a session
//! without history carries none.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use common::{at_line, history_at_line};

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[
        (
            "a_kept_set_is_allocated_and_live",
            a_kept_set_is_allocated_and_live,
        ),
        ("history_is_off_by_default", history_is_off_by_default),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/history_kept.rs";

#[rustfmt::skip]
fn a_kept_set_is_allocated_and_live() {
    tracemalloc::Config::new(4).history(true).start().unwrap();
    let mut kept: Vec<Box<[u8; 100]>> = Vec::with_capacity(50);
    let line = line!(); for _ in 0..50 { kept.push(Box::new(black_box([1u8; 100]))); }

    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, line), (5000, 50));
    // Memory never fell while the set was built: the peak set is the live
    // set at the snapshot, which holds every block of the line.
    assert_eq!(
        history_at_line(&snapshot, FILE, line),
        [50, 5000, 0, 0, 0, 50, 5000],
        "{}",
        common::describe(&snapshot)
    );
    // The history's totals agree with the live traces: the blocks
    // allocated since `start` and not freed are the traced ones.
    let total = snapshot.history().unwrap().total();
    assert_eq!(
        total.allocated_blocks - total.freed_blocks,
        snapshot.traces().len() as u64
    );
    drop(black_box(kept));
    tracemalloc::stop();
}

fn history_is_off_by_default() {
    tracemalloc::start(4).unwrap();
    let kept = black_box(vec![0u8; 300]);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert!(snapshot.history().is_none());
    drop(kept);
    tracemalloc::stop();
}
