//! The peak set (DHAT's t-gmax): what was live when traced memory was
//! highest, per line; `reset_peak()` starts a new one and
//! `clear_traces()` forgets the whole history.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use common::{at_line, history_at_line};

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[(
        "a_freed_spike_is_in_the_peak_not_in_the_live_set",
        a_freed_spike_is_in_the_peak_not_in_the_live_set,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/history_peak.rs";

// The `line!()` markers must stay on the line of the allocation they name.
#[rustfmt::skip]
fn a_freed_spike_is_in_the_peak_not_in_the_live_set() {
    tracemalloc::Config::new(4).history(true).start().unwrap();
    let (kept, kept_line) = (black_box(vec![1u8; 1000]), line!());
    let (mut spike, vec_line) = (Vec::with_capacity(100), line!());
    let spike_line = line!(); for _ in 0..100 { spike.push(Box::new(black_box([0u8; 1024]))); }
    let top = tracemalloc::get_traced_memory().0;
    drop(spike);
    let (after, after_line) = (black_box(vec![2u8; 10]), line!());

    // Every snapshot is taken before any check: the checks allocate.
    let first = tracemalloc::take_snapshot().unwrap();
    let (_, peak) = tracemalloc::get_traced_memory();

    // A new peak from the current size: nothing was freed since, so the
    // snapshot's peak set is the live set.
    tracemalloc::reset_peak();
    let after_reset = tracemalloc::take_snapshot().unwrap();

    // A second, smaller spike above the reset peak.
    let mut small = Vec::with_capacity(10);
    let small_line = line!(); for _ in 0..10 { small.push(Box::new(black_box([0u8; 100]))); }
    drop(small);
    let second = tracemalloc::take_snapshot().unwrap();

    // Everything forgotten; the kept block, allocated before, is not
    // counted when it is freed.
    tracemalloc::clear_traces();
    let (new, new_line) = (black_box(vec![3u8; 500]), line!());
    drop(kept);
    let cleared = tracemalloc::take_snapshot().unwrap();

    let report = common::describe(&first);
    assert_eq!(peak, top, "the peak is the top of the spike");
    // [allocated blocks, bytes, freed blocks, temporary blocks, bytes,
    //  peak blocks, bytes]
    assert_eq!(history_at_line(&first, FILE, kept_line), [1, 1000, 0, 0, 0, 1, 1000], "{report}");
    assert_eq!(history_at_line(&first, FILE, vec_line), [1, 800, 1, 0, 0, 1, 800], "{report}");
    // The boxes are freed in order: only the last one allocated, freed
    // with no allocation in between, is temporary.
    assert_eq!(history_at_line(&first, FILE, spike_line), [100, 102_400, 100, 1, 1024, 100, 102_400], "{report}");
    assert_eq!(at_line(&first, FILE, spike_line), (0, 0), "the spike is not live");
    assert_eq!(history_at_line(&first, FILE, after_line), [1, 10, 0, 0, 0, 0, 0], "{report}");
    assert_eq!(at_line(&first, FILE, after_line), (10, 1));

    let report = common::describe(&after_reset);
    assert_eq!(history_at_line(&after_reset, FILE, spike_line), [100, 102_400, 100, 1, 1024, 0, 0], "{report}");
    assert_eq!(history_at_line(&after_reset, FILE, after_line), [1, 10, 0, 0, 0, 1, 10], "{report}");
    assert_eq!(history_at_line(&after_reset, FILE, kept_line), [1, 1000, 0, 0, 0, 1, 1000], "{report}");

    let report = common::describe(&second);
    assert_eq!(history_at_line(&second, FILE, small_line), [10, 1000, 10, 1, 100, 10, 1000], "{report}");
    assert_eq!(history_at_line(&second, FILE, after_line), [1, 10, 0, 0, 0, 1, 10], "{report}");
    assert_eq!(history_at_line(&second, FILE, spike_line), [100, 102_400, 100, 1, 1024, 0, 0], "{report}");

    let report = common::describe(&cleared);
    for line in [kept_line, vec_line, spike_line, after_line, small_line] {
        assert_eq!(history_at_line(&cleared, FILE, line), [0; 7], "line {line}: {report}");
    }
    assert_eq!(history_at_line(&cleared, FILE, new_line), [1, 500, 0, 0, 0, 1, 500], "{report}");
    drop((new, after));
    tracemalloc::stop();
}
