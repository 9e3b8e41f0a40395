//! A realloc moves the trace to the new block, with the new size and the
//! traceback of the realloc, as CPython does.

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
        "the_trace_moves_with_the_block",
        the_trace_moves_with_the_block,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/realloc.rs";

// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn the_trace_moves_with_the_block() {
    tracemalloc::start(4).unwrap();
    tracemalloc::clear_traces();

    let (mut v, first_line) = (Vec::<u8>::with_capacity(10), line!());
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, first_line), (10, 1));

    let grow_line = line!(); v.reserve_exact(black_box(5000));
    assert_eq!(tracemalloc::get_traced_memory(), (5000, 5000));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(
        at_line(&snapshot, FILE, first_line),
        (0, 0),
        "the old trace is gone"
    );
    assert_eq!(at_line(&snapshot, FILE, grow_line), (5000, 1));
    assert_eq!(tracemalloc::get_traced_memory().0, 5000);

    let shrink_line = line!(); v.shrink_to(black_box(100));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, grow_line), (0, 0));
    assert_eq!(at_line(&snapshot, FILE, shrink_line), (100, 1));
    assert_eq!(tracemalloc::get_traced_memory().0, 100);

    // The traceback follows the block to its new address.
    let tb = tracemalloc::get_object_traceback(v.as_ptr()).unwrap();
    assert_eq!(tb.frames[0].lineno, shrink_line);

    // Growing a block allocated before tracing started traces it from
    // the realloc on.
    tracemalloc::stop();
    let mut old = Vec::<u64>::with_capacity(4);
    old.push(1);
    tracemalloc::start(4).unwrap();
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    let late_line = line!(); old.reserve_exact(black_box(1000));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, late_line), (8 * 1001, 1));
    drop((v, old));
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    tracemalloc::stop();
}
