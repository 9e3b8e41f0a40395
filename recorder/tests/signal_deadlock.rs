//! A signal handler that allocates, interrupting its thread inside
//! `get_traced_memory`, `get_tracemalloc_memory_usage` or `reset_peak`
//! (issue 12, defect 4): those calls hold every table still, and a handler
//! that then traced its allocation would wait for its own thread forever.
//! The inner allocator is async-signal-safe, so the handler may allocate.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator<common::Bump> =
    tracemalloc::TracingAllocator::new(common::Bump);

static HANDLED: AtomicU64 = AtomicU64::new(0);

extern "C" fn allocate(_: libc::c_int) {
    let v: Vec<u64> = black_box(vec![1, 2, 3, 4]);
    drop(black_box(v));
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn main() {
    common::watchdog(60, "signal handlers allocating during get_traced_memory");
    common::on_signal(libc::SIGUSR1, allocate);
    tracemalloc::start(4).unwrap();
    // The thread has a table of its own from here on.
    let keep: Vec<Box<[u8; 32]>> = (0..100).map(|_| Box::new([0u8; 32])).collect();
    // SAFETY: the calling thread's id.
    let me = unsafe { libc::pthread_self() };
    let (stop, sender) = common::signal_sender(me, libc::SIGUSR1, Duration::from_micros(20));
    let mut calls = 0u64;
    while HANDLED.load(Ordering::Relaxed) < 3000 {
        black_box(tracemalloc::get_traced_memory());
        black_box(tracemalloc::get_tracemalloc_memory_usage());
        tracemalloc::reset_peak();
        calls += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    drop(stop);
    let (current, _) = tracemalloc::get_traced_memory();
    println!(
        "{calls} rounds of calls, {sent} signals sent, {} handled",
        HANDLED.load(Ordering::Relaxed)
    );
    // The handlers' blocks are freed: what is traced is what `keep` holds
    // (its boxes and its buffer), nothing more.
    assert_eq!(
        current,
        100 * 32 + 100 * 8,
        "traced memory after the signals"
    );
    drop(keep);
    tracemalloc::stop();
    println!("test signal_handlers_during_recorder_calls ... ok");
}
