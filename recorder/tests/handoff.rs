//! Blocks allocated by one thread and freed by another while both keep
//! allocating: each thread files its blocks in a table of its own, and a
//! free from another thread must find the block there even while the
//! owner adds blocks and rebuilds its table. Snapshots taken meanwhile add
//! up, and the accounting is exact at the end.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::mpsc;

use common::{assert_consistent, at_line};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/handoff.rs";
const PRODUCERS: usize = 2;
/// Blocks each producer hands over, in batches.
const HANDED: usize = 200_000;
const BATCH: usize = 100;
/// Blocks each producer keeps: enough to rebuild its table several times
/// while the consumer frees its other blocks.
const KEPT: usize = 60_000;

fn handed_size(i: usize) -> usize {
    8 + i % 120
}

fn kept_size(producer: usize, i: usize) -> usize {
    1 + (producer * 31 + i) % 90
}

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`), and the end of this test checks process totals.
fn main() {
    common::run_tests(&[(
        "blocks_freed_by_another_thread_leave_exact_totals",
        blocks_freed_by_another_thread_leave_exact_totals,
    )]);
}

// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn blocks_freed_by_another_thread_leave_exact_totals() {
    tracemalloc::start(4).unwrap();
    tracemalloc::clear_traces();
    let (sender, receiver) = mpsc::sync_channel::<Vec<Vec<u8>>>(8);
    let consumer = std::thread::spawn(move || {
        let mut freed = 0usize;
        for batch in receiver {
            freed += batch.len();
            // Every block of the batch, and the batch's vector, is freed
            // here, on a thread that allocated none of them.
            drop(batch);
        }
        freed
    });
    let (line_sender, line_receiver) = mpsc::channel();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let sender = sender.clone();
            let line_sender = line_sender.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::with_capacity(KEPT);
                let mut batch = Vec::with_capacity(BATCH);
                for i in 0..HANDED {
                    let line = line!(); batch.push(vec![p as u8; handed_size(i)]);
                    if i == 0 {
                        line_sender.send(line).unwrap();
                    }
                    if batch.len() == BATCH {
                        sender.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).unwrap();
                    }
                    if i % (HANDED / KEPT) == 0 && kept.len() < KEPT {
                        let line = line!(); kept.push(vec![1u8; kept_size(p, kept.len())].into_boxed_slice());
                        if kept.len() == 1 {
                            line_sender.send(line).unwrap();
                        }
                    }
                }
                sender.send(batch).unwrap();
                kept
            })
        })
        .collect();
    drop(sender);
    drop(line_sender);
    for _ in 0..20 {
        let snapshot = tracemalloc::take_snapshot().unwrap();
        assert_consistent(&snapshot);
        std::thread::yield_now();
    }
    // The producers' lists of kept blocks stay alive with them, their
    // handed blocks are all freed.
    let kept: Vec<Vec<Box<[u8]>>> = producers.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(consumer.join().unwrap(), PRODUCERS * HANDED);
    // Each producer sent the handed blocks' line and the kept ones' (which
    // comes later in this file).
    let lines: Vec<u32> = line_receiver.iter().collect();
    assert_eq!(lines.len(), 2 * PRODUCERS);
    let (handed_line, line) = (*lines.iter().min().unwrap(), *lines.iter().max().unwrap());
    assert!(handed_line < line);
    let expected: usize = (0..PRODUCERS)
        .flat_map(|p| (0..KEPT).map(move |i| kept_size(p, i)))
        .sum();
    assert!(kept.iter().all(|k| k.len() == KEPT));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(
        at_line(&snapshot, FILE, line),
        (expected as u64, (PRODUCERS * KEPT) as u64),
        "the kept blocks"
    );
    assert_eq!(at_line(&snapshot, FILE, handed_line), (0, 0), "the handed blocks were all freed");
    let before = tracemalloc::get_traced_memory().0;
    let lists: u64 = kept.iter().map(|k| k.capacity() as u64 * 16).sum::<u64>() + kept.capacity() as u64 * 24;
    drop(kept);
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        before - expected as u64 - lists,
        "freeing the kept blocks gives back exactly their sizes"
    );
    tracemalloc::stop();
    black_box(());
}
