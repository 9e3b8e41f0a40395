//! Allocation history with two threads: counts add up exactly (no lost
//! updates), temporaries are told per thread, and a block freed by
//! another thread is freed but not temporary. A thread counts in its own
//! counters (`history::Local`): they are read while it lives, forgotten by
//! `clear_traces` even if it makes no event after it, summed into the
//! peak set, and kept when it exits.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, OnceLock};

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
        (
            "live_threads_counters_are_read",
            live_threads_counters_are_read,
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

/// `count` blocks of `size` bytes, all from one line; its number.
#[rustfmt::skip]
#[inline(never)]
fn keep_blocks(count: usize, size: usize) -> (Vec<Vec<u8>>, u32) {
    let mut out = Vec::with_capacity(count);
    let line = line!(); for i in 0..count { out.push(black_box(vec![i as u8; size])); }
    (out, line)
}

/// 8 blocks of 4 KiB from one line (not [`keep_blocks`]'s); its number.
#[rustfmt::skip]
#[inline(never)]
fn spike_blocks() -> (Vec<Vec<u8>>, u32) {
    let mut out = Vec::with_capacity(8);
    let line = line!(); for i in 0..8u8 { out.push(black_box(vec![i; 4096])); }
    (out, line)
}

/// `count` blocks of `size` bytes, each freed before the next is made;
/// the line that makes them.
#[rustfmt::skip]
#[inline(never)]
fn temporaries(count: usize, size: usize) -> u32 {
    let mut line = 0;
    for i in 0..count { let (t, l) = (black_box(vec![i as u8; size]), line!()); drop(t); line = l; }
    line
}

/// Both threads count at the same lines (one frame: the same traceback
/// id in both threads' own counters), and the main thread reads the
/// counts while they are alive, at each of four steps.
#[rustfmt::skip]
fn live_threads_counters_are_read() {
    tracemalloc::Config::new(1).history(true).start().unwrap();
    let step = Barrier::new(3);
    let keep_line = OnceLock::new();
    let temporary_line = OnceLock::new();
    let spike_line = OnceLock::new();
    let worker = |first: usize, second: usize, spike: bool| {
        // Step 1: kept blocks and temporaries.
        let (kept, line) = keep_blocks(first, 100);
        let _ = keep_line.set(line);
        let _ = temporary_line.set(temporaries(50, 24));
        step.wait(); // 1: counted
        step.wait(); // 2: cleared
        // Step 2: after `clear_traces`, kept blocks again (none for
        // `second == 0`: that thread makes no event in the new epoch).
        drop(kept);
        let kept = if second > 0 { keep_blocks(second, 100).0 } else { Vec::new() };
        step.wait(); // 3: kept again
        step.wait(); // 4: counted again
        // Step 3: a spike, freed at once: memory falls from its maximum
        // on this thread, which copies the peak set from every thread's
        // counters.
        if spike {
            let (blocks, line) = spike_blocks();
            let _ = spike_line.set(line);
            drop(blocks);
        }
        step.wait(); // 5: spiked
        kept
    };
    std::thread::scope(|s| {
        let a = s.spawn(|| worker(10, 5, true));
        let b = s.spawn(|| worker(20, 0, false));
        step.wait(); // 1
        let line = *keep_line.get().unwrap();
        let temporary = *temporary_line.get().unwrap();
        let snapshot = tracemalloc::take_snapshot().unwrap();
        let report = common::describe(&snapshot);
        assert_eq!(history_at_line(&snapshot, FILE, line)[..3], [30, 3000, 0], "{report}");
        assert_eq!(history_at_line(&snapshot, FILE, temporary)[..5], [100, 2400, 100, 100, 2400], "{report}");
        // Both threads are waiting at step 2 (b's counters hold 20 blocks
        // of the epoch that ends, and b makes no event after it).
        tracemalloc::clear_traces();
        step.wait(); // 2
        step.wait(); // 3
        let snapshot = tracemalloc::take_snapshot().unwrap();
        let report = common::describe(&snapshot);
        assert_eq!(history_at_line(&snapshot, FILE, line)[..3], [5, 500, 0], "{report}");
        assert_eq!(history_at_line(&snapshot, FILE, temporary), [0; 7], "{report}");
        step.wait(); // 4
        step.wait(); // 5
        let spike = *spike_line.get().unwrap();
        let snapshot = tracemalloc::take_snapshot().unwrap();
        let report = common::describe(&snapshot);
        let at_spike = history_at_line(&snapshot, FILE, spike);
        assert_eq!([at_spike[0], at_spike[1], at_spike[2]], [8, 8 * 4096, 8], "{report}");
        // The peak set: the spike and the 5 kept blocks, summed from a's
        // counters while a lives.
        assert_eq!(at_spike[5..], [8, 8 * 4096], "{report}");
        assert_eq!(history_at_line(&snapshot, FILE, line)[5..], [5, 500], "{report}");
        let kept = (a.join().unwrap(), b.join().unwrap());
        // The threads exited: their counts moved to the shared counters.
        let after = tracemalloc::take_snapshot().unwrap();
        let report = common::describe(&after);
        assert_eq!(history_at_line(&after, FILE, line), history_at_line(&snapshot, FILE, line), "{report}");
        assert_eq!(history_at_line(&after, FILE, spike), at_spike, "{report}");
        drop(kept);
    });
    tracemalloc::stop();
}
