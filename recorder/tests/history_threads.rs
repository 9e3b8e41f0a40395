//! Allocation history with two threads: counts add up exactly (no lost
//! updates), temporaries are told per thread, and a block freed by
//! another thread is freed but not temporary.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use common::history_at_line;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[
        (
            "two_threads_count_every_event",
            two_threads_count_every_event,
        ),
        (
            "control_calls_race_the_counting_threads",
            control_calls_race_the_counting_threads,
        ),
    ]);
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

/// Snapshots, `reset_peak` and `clear_traces` while two threads allocate
/// and free: every snapshot is consistent and its history sane, and once
/// the threads stop, a cleared history counts exactly again.
#[rustfmt::skip]
fn control_calls_race_the_counting_threads() {
    tracemalloc::Config::new(4).history(true).start().unwrap();
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut keep = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    for i in 0..200 {
                        keep.push(black_box(vec![0u8; 16 + i]));
                        drop(black_box(vec![1u8; 8]));
                    }
                    keep.clear();
                }
            });
        }
        for round in 0..60 {
            let snapshot = tracemalloc::take_snapshot().unwrap();
            common::assert_consistent(&snapshot);
            let history = snapshot.history().unwrap();
            for row in history.rows() {
                assert!(row.freed_blocks <= row.allocated_blocks, "{row:?}");
                assert!(row.allocated_blocks > 0, "{row:?}");
            }
            match round % 3 {
                0 => tracemalloc::clear_traces(),
                1 => tracemalloc::reset_peak(),
                _ => {}
            }
        }
        done.store(true, Ordering::Relaxed);
    });
    tracemalloc::clear_traces();
    let (kept, line) = (black_box(vec![7u8; 777]), line!());
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(history_at_line(&snapshot, FILE, line), [1, 777, 0, 0, 0, 1, 777]);
    drop(kept);
    tracemalloc::stop();
}
