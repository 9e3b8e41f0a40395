//! Allocation history in sampled mode: each sampled event counts with its
//! unbiased weight (`1 / p` blocks, `size / p` bytes), as the live
//! statistics are scaled, so the estimates come close to the real counts.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

use common::history_at_line;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[(
        "sampled_history_estimates_the_counts",
        sampled_history_estimates_the_counts,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/history_sampled.rs";
const SMALL: u64 = 200_000;

/// Within `tolerance` (a fraction) of `expected`.
fn near(value: u64, expected: u64, tolerance: f64) -> bool {
    (value as f64 - expected as f64).abs() <= expected as f64 * tolerance
}

// The `line!()` markers must stay on the line of the allocation they name.
#[rustfmt::skip]
fn sampled_history_estimates_the_counts() {
    // A mean of 4 KiB: a 64-byte block is sampled with a chance of 1.6 %,
    // about 3,100 of the 200,000 below (a relative standard error of 2 %;
    // the tolerance is five times that). A 1 MiB block always is (its
    // chance is 1 - e^-256, 1.0 in a double), and counts exactly.
    tracemalloc::Config::new(4).sampled(4096).history(true).start().unwrap();
    let mut big = Vec::with_capacity(10);
    let big_line = line!(); for _ in 0..10 { big.push(black_box(vec![1u8; 1 << 20])); }
    // Every small block is freed at once: all temporary.
    let small_line = line!(); for _ in 0..SMALL { drop(black_box(vec![0u8; 64])); }

    // Pairs: the first block of each is freed after the second was
    // allocated, sampled or not, so it is never temporary; the second is.
    let mut first_line = 0;
    let mut second_line = 0;
    for _ in 0..SMALL / 2 {
        let (a, la) = (black_box(vec![0u8; 64]), line!());
        let (b, lb) = (black_box(vec![0u8; 64]), line!());
        drop(a);
        drop(b);
        (first_line, second_line) = (la, lb);
    }

    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(snapshot.metadata().sampling_rate, Some(4096));
    let report = common::describe(&snapshot);
    // [allocated blocks, bytes, freed blocks, temporary blocks, bytes,
    //  peak blocks, bytes]
    assert_eq!(history_at_line(&snapshot, FILE, big_line), [10, 10 << 20, 0, 0, 0, 10, 10 << 20], "{report}");
    let [allocated, bytes, freed, temporary, temporary_bytes, ..] = history_at_line(&snapshot, FILE, small_line);
    assert!(near(allocated, SMALL, 0.1), "{allocated} of {SMALL}");
    assert!(near(bytes, SMALL * 64, 0.1), "{bytes} of {}", SMALL * 64);
    // Each sampled block was freed, temporary, with the same weight.
    assert_eq!((freed, temporary, temporary_bytes), (allocated, allocated, bytes));
    let [allocated, _, freed, temporary, ..] = history_at_line(&snapshot, FILE, first_line);
    assert!(near(allocated, SMALL / 2, 0.15), "{allocated} of {}", SMALL / 2);
    assert_eq!((freed, temporary), (allocated, 0));
    let [allocated, _, freed, temporary, ..] = history_at_line(&snapshot, FILE, second_line);
    assert!(near(allocated, SMALL / 2, 0.15), "{allocated} of {}", SMALL / 2);
    assert_eq!((freed, temporary), (allocated, allocated));
    drop(big);
    tracemalloc::stop();
}
