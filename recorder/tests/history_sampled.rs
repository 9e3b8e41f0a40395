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
    common::run_tests(&[
        (
            "sampled_history_estimates_the_counts",
            sampled_history_estimates_the_counts,
        ),
        (
            "a_small_block_after_a_sample_is_not_over_counted",
            a_small_block_after_a_sample_is_not_over_counted,
        ),
        (
            "what_stayed_live_is_what_was_allocated",
            what_stayed_live_is_what_was_allocated,
        ),
    ]);
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

// The `line!()` markers must stay on the line of the allocation they name.
#[rustfmt::skip]
fn a_small_block_after_a_sample_is_not_over_counted() {
    // Every 1-byte block follows a 64 KiB one, which is always sampled, so
    // each 1-byte block is decided against a freshly drawn distance. At a
    // mean of 64 it is sampled with a chance of 1 - e^(-1/64), 1.55 %:
    // about 3,100 of 200,000, a relative standard error of 1.8 % (the
    // tolerance is five times that). A draw truncated to whole bytes
    // sampled it twice as often and estimated twice as many blocks.
    tracemalloc::Config::new(1).sampled(64).history(true).start().unwrap();
    let mut kept = Vec::with_capacity(SMALL as usize);
    let mut tiny_line = 0;
    for _ in 0..SMALL {
        drop(black_box(vec![0u8; 64 << 10]));
        let (tiny, line) = (black_box(vec![1u8; 1]), line!());
        kept.push(tiny);
        tiny_line = line;
    }
    let snapshot = tracemalloc::take_snapshot().unwrap();
    let report = common::describe(&snapshot);
    let [allocated, bytes, freed, ..] = history_at_line(&snapshot, FILE, tiny_line);
    assert!(near(allocated, SMALL, 0.09), "{allocated} blocks of {SMALL}: {report}");
    assert!(near(bytes, SMALL, 0.09), "{bytes} bytes of {SMALL}: {report}");
    assert_eq!(freed, 0);
    let (live_bytes, live_blocks) = common::at_line(&snapshot, FILE, tiny_line);
    assert!(near(live_blocks, SMALL, 0.09), "{live_blocks} live blocks of {SMALL}: {report}");
    assert!(near(live_bytes, SMALL, 0.09), "{live_bytes} live bytes of {SMALL}: {report}");
    tracemalloc::stop();
    drop(kept);
}

/// One line that allocates, reached from many call sites: one traceback
/// per site, all ending on the line `MAKE_LINE` names (the line after it).
const MAKE_LINE: u32 = line!() + 1;
#[rustfmt::skip] #[inline(never)] fn make(size: usize) -> Vec<u8> { black_box(vec![7u8; size]) }

fn what_stayed_live_is_what_was_allocated() {
    // Nothing allocated on `make`'s line is freed before the snapshot, so
    // its live estimate and what its history says was allocated stand for
    // the same sampled blocks and must be equal, in bytes and in blocks,
    // however many tracebacks the line has. The live estimate is rounded
    // per traceback and per block exactly as the history's counters are;
    // summing a line's estimates unrounded while its history rows were
    // rounded per raw traceback made the live count exceed the allocated
    // one.
    tracemalloc::Config::new(4)
        .sampled(64)
        .history(true)
        .start()
        .unwrap();
    let mut kept = Vec::with_capacity(16_000);
    // Eight loops written out, not one loop over the sizes: each call of
    // `make` is a call site of its own, so each loop is a traceback of its
    // own, which is what the rounding per traceback needs to be tested on.
    for _ in 0..2000 {
        kept.push(make(24));
    }
    for _ in 0..2000 {
        kept.push(make(40));
    }
    for _ in 0..2000 {
        kept.push(make(8));
    }
    for _ in 0..2000 {
        kept.push(make(100));
    }
    for _ in 0..2000 {
        kept.push(make(24));
    }
    for _ in 0..2000 {
        kept.push(make(3));
    }
    for _ in 0..2000 {
        kept.push(make(64));
    }
    for _ in 0..2000 {
        kept.push(make(17));
    }
    let snapshot = tracemalloc::take_snapshot().unwrap();
    let report = common::describe(&snapshot);
    let tracebacks = snapshot
        .traces()
        .iter()
        .filter(|t| {
            let frames = &snapshot.traceback(t.traceback).frames;
            frames
                .first()
                .is_some_and(|f| f.filename.ends_with(FILE) && f.lineno == MAKE_LINE)
        })
        .map(|t| t.traceback)
        .collect::<std::collections::BTreeSet<_>>();
    assert!(
        tracebacks.len() >= 8,
        "{} tracebacks: {report}",
        tracebacks.len()
    );
    let (live_bytes, live_blocks) = common::at_line(&snapshot, FILE, MAKE_LINE);
    let [allocated, bytes, freed, ..] = history_at_line(&snapshot, FILE, MAKE_LINE);
    assert_eq!(freed, 0, "{report}");
    assert_eq!((live_bytes, live_blocks), (bytes, allocated), "{report}");
    // About the 16,000 blocks and 560,000 bytes allocated.
    assert!(near(allocated, 16_000, 0.1), "{allocated}: {report}");
    assert!(near(bytes, 560_000, 0.1), "{bytes}: {report}");
    tracemalloc::stop();
    drop(kept);
}
