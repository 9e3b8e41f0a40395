//! Allocation history of a realloc: a free of the old block (never
//! temporary) and an allocation of the new size under the realloc's
//! traceback, as the live trace is.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use common::{at_line, history_at_line};

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[
        (
            "a_realloc_frees_the_old_block_and_allocates_the_new",
            a_realloc_frees_the_old_block_and_allocates_the_new,
        ),
        (
            "a_block_with_a_trailer_from_an_earlier_session",
            a_block_with_a_trailer_from_an_earlier_session,
        ),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/history_realloc.rs";

// The `line!()` markers must stay on the line of the allocation they name.
#[rustfmt::skip]
fn a_realloc_frees_the_old_block_and_allocates_the_new() {
    tracemalloc::Config::new(4).history(true).start().unwrap();
    let (mut v, alloc_line) = (black_box(Vec::<u8>::with_capacity(100)), line!());
    let grow_line = line!(); v.reserve_exact(black_box(1000));
    let shrink_line = line!(); v.shrink_to(black_box(10));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    let report = common::describe(&snapshot);
    // [allocated blocks, bytes, freed blocks, temporary blocks, bytes,
    //  peak blocks, bytes]
    // The first block was this thread's latest allocation when the realloc
    // freed it, and still is not temporary.
    assert_eq!(history_at_line(&snapshot, FILE, alloc_line), [1, 100, 1, 0, 0, 0, 0], "{report}");
    // The grown block was the peak: the shrinking realloc freed it.
    assert_eq!(history_at_line(&snapshot, FILE, grow_line), [1, 1000, 1, 0, 0, 1, 1000], "{report}");
    assert_eq!(history_at_line(&snapshot, FILE, shrink_line), [1, 10, 0, 0, 0, 0, 0], "{report}");
    assert_eq!(at_line(&snapshot, FILE, shrink_line), (10, 1));
    drop(v);
    tracemalloc::stop();
}

/// A block that got a trailer in an earlier session (where glibc's
/// `malloc` allows them) may be reallocated and freed in a session with
/// history: its stale trailer is not trusted, and the new block counts as
/// any other.
#[rustfmt::skip]
fn a_block_with_a_trailer_from_an_earlier_session() {
    tracemalloc::Config::new(4).block_trailers(true).start().unwrap();
    let mut v = black_box(Vec::<u8>::with_capacity(100));
    tracemalloc::stop();
    tracemalloc::Config::new(4).history(true).start().unwrap();
    let grow_line = line!(); v.reserve_exact(black_box(1000));
    drop(v);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    let report = common::describe(&snapshot);
    // The old block was not traced in this session: no free for it. The
    // new one is freed with no allocation in between: temporary, and it
    // was the peak.
    assert_eq!(history_at_line(&snapshot, FILE, grow_line), [1, 1000, 1, 1, 1000, 1, 1000], "{report}");
    tracemalloc::stop();
}
