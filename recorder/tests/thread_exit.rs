//! Threads exiting while snapshots are taken and traces cleared: an exiting
//! thread moves its table's blocks to the shared table, and neither a
//! snapshot nor `clear_traces` may see them half moved. Blocks that
//! outlive their thread stay traced, and the totals stay exact.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{assert_consistent, at_line};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/thread_exit.rs";
/// Blocks each short-lived thread leaves behind: enough that its table
/// has been rebuilt a few times when it exits.
const LEFT: usize = 3_000;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`), and the end of this test checks process totals.
fn main() {
    common::run_tests(&[(
        "exiting_threads_hand_their_blocks_over_whole",
        exiting_threads_hand_their_blocks_over_whole,
    )]);
}

// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn exiting_threads_hand_their_blocks_over_whole() {
    tracemalloc::start(4).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    // The main thread snapshots and clears while threads come and go.
    let churn = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut rounds = 0u32;
            while !done.load(Ordering::Relaxed) || rounds < 20 {
                rounds += 1;
                let handles: Vec<_> = (0..4)
                    .map(|_| std::thread::spawn(|| (0..LEFT).map(|i| vec![0u8; 1 + i % 50]).collect::<Vec<_>>()))
                    .collect();
                for h in handles {
                    drop(h.join().unwrap());
                }
            }
        })
    };
    for i in 0..200 {
        if i % 3 == 0 {
            tracemalloc::clear_traces();
        } else {
            let snapshot = tracemalloc::take_snapshot().unwrap();
            assert_consistent(&snapshot);
        }
    }
    done.store(true, Ordering::Relaxed);
    churn.join().unwrap();

    // After the churn, exact totals: blocks made by a thread that exited
    // are traced, and freeing them here gives back exactly their sizes.
    tracemalloc::clear_traces();
    let (left, line) = std::thread::spawn(|| {
        let line = line!(); let left: Vec<Vec<u8>> = (0..LEFT).map(|i| vec![1u8; 1 + i % 50]).collect();
        (left, line)
    })
    .join()
    .unwrap();
    let expected: u64 = (0..LEFT).map(|i| 1 + (i % 50) as u64).sum::<u64>() + left.capacity() as u64 * 24;
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(at_line(&snapshot, FILE, line), (expected, LEFT as u64 + 1));
    let before = tracemalloc::get_traced_memory().0;
    drop(left);
    assert_eq!(tracemalloc::get_traced_memory().0, before - expected);
    tracemalloc::stop();
}
