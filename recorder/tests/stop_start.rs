//! `stop()` forgets every trace and `start()` begins afresh; blocks of an
//! earlier session can be freed at any time.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[(
        "stop_clears_and_start_begins_afresh",
        stop_clears_and_start_begins_afresh,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

fn stop_clears_and_start_begins_afresh() {
    assert!(!tracemalloc::is_tracing());
    assert_eq!(tracemalloc::get_traced_memory(), (0, 0));
    assert!(matches!(
        tracemalloc::take_snapshot(),
        Err(tracemalloc::Error::NotTracing)
    ));
    assert!(matches!(
        tracemalloc::start(0),
        Err(tracemalloc::Error::InvalidNframe(0))
    ));
    assert!(tracemalloc::start(tracemalloc::MAX_NFRAME + 1).is_err());
    assert!(!tracemalloc::is_tracing());

    tracemalloc::start(3).unwrap();
    assert!(tracemalloc::is_tracing());
    assert_eq!(tracemalloc::get_traceback_limit(), 3);
    let first = vec![1u8; 1000];
    assert_eq!(tracemalloc::get_traced_memory().0, 1000);

    // Starting again while tracing only changes the limit (CPython).
    tracemalloc::start(5).unwrap();
    assert_eq!(tracemalloc::get_traceback_limit(), 5);
    assert_eq!(tracemalloc::get_traced_memory().0, 1000);
    // But not the sampling mode.
    assert!(matches!(
        tracemalloc::start_sampled(5, 1024),
        Err(tracemalloc::Error::SamplingChange)
    ));

    tracemalloc::stop();
    assert!(!tracemalloc::is_tracing());
    assert_eq!(tracemalloc::get_traced_memory(), (0, 0));
    assert!(tracemalloc::take_snapshot().is_err());
    assert!(tracemalloc::get_object_traceback(first.as_ptr()).is_none());
    // The limit is still reported, as CPython does.
    assert_eq!(tracemalloc::get_traceback_limit(), 5);
    let untraced = vec![2u8; 500];

    tracemalloc::start(2).unwrap();
    assert_eq!(tracemalloc::get_traced_memory(), (0, 0));
    // Freeing blocks of before is harmless.
    drop(first);
    drop(untraced);
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    let second = vec![3u8; 300];
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(snapshot.total_size(), 300);
    assert_eq!(snapshot.traceback_limit(), 2);
    stop_repeatedly();
    black_box(second);
}

/// Many sessions in a row keep working (tables and the traceback store are
/// reused).
fn stop_repeatedly() {
    for round in 0..20 {
        tracemalloc::stop();
        tracemalloc::start(1 + round % 4).unwrap();
        let v: Vec<Vec<u8>> = (0..100).map(|i| vec![0u8; i + 1]).collect();
        let snapshot = tracemalloc::take_snapshot().unwrap();
        assert_eq!(snapshot.total_size(), (1..=100).sum::<u64>() + 100 * 24);
        drop(v);
    }
    tracemalloc::stop();
}
