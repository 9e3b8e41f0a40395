//! Threads allocating and freeing while the main thread takes snapshots:
//! every snapshot adds up exactly, and the accounting is exact at the end.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{assert_consistent, at_line};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/threads.rs";
const THREADS: usize = 4;
const KEPT: usize = 200;

fn kept_size(thread: usize, i: usize) -> usize {
    16 + (thread * 7 + i) % 300
}

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`), and the end of this test checks process totals.
fn main() {
    common::run_tests(&[(
        "snapshots_stay_consistent_under_concurrent_allocation",
        snapshots_stay_consistent_under_concurrent_allocation,
    )]);
}

// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn snapshots_stay_consistent_under_concurrent_allocation() {
    tracemalloc::start(6).unwrap();
    tracemalloc::clear_traces();
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let keep_line = Arc::new(std::sync::atomic::AtomicU32::new(0));
    for t in 0..THREADS {
        let stop = Arc::clone(&stop);
        let keep_line = Arc::clone(&keep_line);
        handles.push(
            std::thread::Builder::new()
                .name(format!("churn-{t}"))
                .spawn(move || {
                    let mut live: VecDeque<Vec<u8>> = VecDeque::new();
                    let mut seed = t as u64 + 1;
                    let mut rounds = 0u64;
                    while !stop.load(Ordering::Relaxed) || rounds < 2000 {
                        rounds += 1;
                        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                        let size = (seed >> 40) as usize % 2000 + 1;
                        let mut v = vec![0u8; size];
                        if seed & 1 == 0 {
                            v.reserve(black_box(100));
                        }
                        live.push_back(v);
                        if live.len() > 64 {
                            live.pop_front();
                        }
                        if rounds.is_multiple_of(64) {
                            let s: String = (0..8).map(|i| char::from(b'a' + i)).collect();
                            black_box(s);
                        }
                    }
                    drop(live);
                    // A known set of blocks outlives the thread.
                    let line = line!(); let kept: Vec<Vec<u8>> = (0..KEPT).map(|i| vec![1u8; kept_size(t, i)]).collect();
                    keep_line.store(line, Ordering::Relaxed);
                    kept
                })
                .unwrap(),
        );
    }
    for _ in 0..30 {
        let snapshot = tracemalloc::take_snapshot().unwrap();
        assert_consistent(&snapshot);
        // The counters agree with the snapshot's copy of them.
        assert!(snapshot.metadata().traced_peak >= snapshot.metadata().traced_current);
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let kept: Vec<Vec<Vec<u8>>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let line = keep_line.load(Ordering::Relaxed);
    let expected: usize = (0..THREADS)
        .flat_map(|t| (0..KEPT).map(move |i| kept_size(t, i)))
        .sum();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    // The kept blocks and, on the same line, the vectors holding them.
    let outer: u64 = kept.iter().map(|k| k.capacity() as u64 * 24).sum();
    assert_eq!(
        at_line(&snapshot, FILE, line),
        (expected as u64 + outer, (THREADS * KEPT + THREADS) as u64)
    );
    let before = tracemalloc::get_traced_memory().0;
    let kept_capacity = kept.capacity() as u64;
    drop(kept);
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        before - expected as u64 - outer - kept_capacity * 24,
        "freeing the kept blocks gives back exactly their sizes"
    );
    tracemalloc::stop();
}
