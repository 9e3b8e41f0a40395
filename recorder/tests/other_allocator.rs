//! The recorder wraps any allocator: here mimalloc.

mod common;

use std::hint::black_box;

use common::{assert_consistent, at_line};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator<mimalloc::MiMalloc> =
    tracemalloc::TracingAllocator::new(mimalloc::MiMalloc);

const FILE: &str = "tests/other_allocator.rs";

#[test]
// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn tracing_mimalloc() {
    let _serial = common::serial();
    tracemalloc::start(4).unwrap();
    tracemalloc::clear_traces();
    let line = line!(); let blocks: Vec<Vec<u64>> = (0..500).map(|i| vec![i; 10]).collect();
    let (zeroed, zeroed_line) = (vec![0u8; 70_000], line!());
    let (mut grown, grown_line) = (Vec::<u8>::with_capacity(8), line!());
    let realloc_line = line!(); grown.reserve_exact(black_box(100_000));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(at_line(&snapshot, FILE, line), (500 * 80 + 500 * 24, 501));
    assert_eq!(at_line(&snapshot, FILE, zeroed_line), (70_000, 1));
    assert_eq!(at_line(&snapshot, FILE, grown_line), (0, 0));
    assert_eq!(at_line(&snapshot, FILE, realloc_line), (100_000, 1));
    let tb = tracemalloc::get_object_traceback(grown.as_ptr()).unwrap();
    assert_eq!(tb.frames[0].lineno, realloc_line);
    // Blocks freed by another thread than the one that allocated them.
    let handle = std::thread::spawn(move || drop(blocks));
    handle.join().unwrap();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, line), (0, 0));
    tracemalloc::stop();
    black_box((zeroed, grown));
}
