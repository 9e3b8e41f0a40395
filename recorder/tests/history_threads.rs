//! Allocation history with two threads: counts add up exactly (no lost
//! updates), temporaries are told per thread, and a block freed by
//! another thread is freed but not temporary.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::Barrier;

use common::history_at_line;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[(
        "two_threads_count_every_event",
        two_threads_count_every_event,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/history_threads.rs";
const ROUNDS: u64 = 20_000;

/// The lines of [`churn`]'s allocations.
struct Lines {
    temporary: u32,
    kept: u32,
}

/// Run by both threads at once: a temporary and a kept block per round.
/// Each thread's temporaries are its own, so every one of them counts
/// however the two threads interleave.
#[rustfmt::skip]
#[inline(never)]
fn churn(barrier: &Barrier, kept: &mut Vec<Vec<u8>>) -> Lines {
    barrier.wait();
    let mut lines = Lines { temporary: 0, kept: 0 };
    for i in 0..ROUNDS {
        let (t, lt) = (black_box(vec![i as u8; 16]), line!());
        drop(t);
        let (k, lk) = (black_box(vec![i as u8; 8]), line!());
        kept.push(k);
        lines = Lines { temporary: lt, kept: lk };
    }
    lines
}

/// 100 blocks of 32 bytes at one line, to be freed by another thread.
#[rustfmt::skip]
#[inline(never)]
fn make_blocks() -> (Vec<Vec<u8>>, u32) {
    let mut out = Vec::with_capacity(100);
    let line = line!(); for i in 0..100u8 { out.push(black_box(vec![i; 32])); }
    (out, line)
}

#[rustfmt::skip]
fn two_threads_count_every_event() {
    tracemalloc::Config::new(4).history(true).start().unwrap();
    let barrier = Barrier::new(2);
    let mut kept_a = Vec::with_capacity(ROUNDS as usize);
    let mut kept_b = Vec::with_capacity(ROUNDS as usize);
    let (lines, _) = std::thread::scope(|s| {
        let a = s.spawn(|| churn(&barrier, &mut kept_a));
        let b = s.spawn(|| churn(&barrier, &mut kept_b));
        (a.join().unwrap(), b.join().unwrap())
    });
    // Blocks allocated on one thread, freed on another.
    let (handed, handed_line) = std::thread::spawn(make_blocks).join().unwrap();
    std::thread::spawn(move || drop(handed)).join().unwrap();

    let snapshot = tracemalloc::take_snapshot().unwrap();
    let report = common::describe(&snapshot);
    let [allocated, bytes, freed, temporary, temporary_bytes, ..] = history_at_line(&snapshot, FILE, lines.temporary);
    assert_eq!([allocated, bytes, freed, temporary, temporary_bytes], [2 * ROUNDS, 32 * ROUNDS, 2 * ROUNDS, 2 * ROUNDS, 32 * ROUNDS], "{report}");
    let [allocated, bytes, freed, temporary, ..] = history_at_line(&snapshot, FILE, lines.kept);
    assert_eq!([allocated, bytes, freed, temporary], [2 * ROUNDS, 16 * ROUNDS, 0, 0], "{report}");
    // All freed by the other thread, none temporary (not even the last,
    // which no allocation of its thread followed).
    let [allocated, bytes, freed, temporary, ..] = history_at_line(&snapshot, FILE, handed_line);
    assert_eq!([allocated, bytes, freed, temporary], [100, 3200, 100, 0], "{report}");
    drop((kept_a, kept_b));
    tracemalloc::stop();
}
