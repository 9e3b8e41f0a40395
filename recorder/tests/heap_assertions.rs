//! Heap assertions (`tracemalloc::testing`), as the README shows them:
//! one test in its own binary with the allocator installed, since a
//! measurement counts every thread's allocations.

use std::panic::{AssertUnwindSafe, catch_unwind};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the assertion fails");
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload
            .downcast::<&str>()
            .map_or_else(|_| "<not a string>".to_owned(), |s| s.to_string()),
    }
}

#[test]
fn measure_and_assert() {
    // The README's example.
    let heap = tracemalloc::testing::measure(|| {
        let words: Vec<String> = "a b c".split(' ').map(str::to_owned).collect();
        words.len()
    })
    .unwrap();
    assert_eq!(heap.value, 3);
    heap.assert_allocations_at_most(4);
    heap.assert_peak_at_most(1024);
    heap.assert_nothing_left_live();

    // Exact numbers: 1,000 boxes of 64 bytes allocated one by one, 10 of
    // them kept (returned), the rest dropped at once.
    let heap = tracemalloc::testing::measure(|| {
        let mut all: Vec<Box<[u8; 64]>> = Vec::with_capacity(1000);
        for _ in 0..1000 {
            all.push(Box::new([0u8; 64]));
        }
        all.truncate(10);
        all.shrink_to_fit();
        all
    })
    .unwrap();
    // The boxes, the vector, and the vector's shrinking realloc.
    assert_eq!(heap.allocations, 1002);
    assert_eq!(heap.allocated_bytes, 1000 * 64 + 1000 * 8 + 10 * 8);
    assert_eq!(heap.live_blocks, 11);
    assert_eq!(heap.live_bytes, 10 * 64 + 10 * 8);
    assert!(
        heap.peak_bytes >= 1000 * 64 + 1000 * 8,
        "{}",
        heap.peak_bytes
    );
    assert_eq!(heap.value.len(), 10);

    // A failing assertion names the lines, this file's among them.
    let message = panic_message(|| heap.assert_allocations_at_most(100));
    assert!(
        message.starts_with("1002 allocations, expected at most 100\n"),
        "{message}"
    );
    assert!(
        message.contains("The lines that allocated most often:\n  #1: ")
            && message.contains("heap_assertions.rs:")
            && message.contains("count=1000"),
        "{message}"
    );
    let message = panic_message(|| heap.assert_nothing_left_live());
    assert!(
        message.starts_with("720 B in 11 blocks stayed live, expected at most 0 B\n"),
        "{message}"
    );
    let message = panic_message(|| heap.assert_peak_at_most(1000));
    assert!(
        message.contains("What was live at the peak:\n"),
        "{message}"
    );
    drop(heap);

    // A measurement inside a running session would clear it.
    tracemalloc::start(1).unwrap();
    let err = tracemalloc::testing::measure(|| ()).unwrap_err();
    assert!(matches!(err, tracemalloc::Error::AlreadyTracing), "{err}");
    tracemalloc::stop();
}
