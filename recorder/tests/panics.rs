//! Panics and unwinding through traced code free what they own, and the
//! accounting follows.

mod common;

use std::hint::black_box;
use std::panic;

use common::at_line;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/panics.rs";

#[inline(never)]
fn fails(n: usize) -> Vec<u8> {
    let _guard: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let buffer = vec![0u8; 5000];
    if n > 3 {
        panic!("{n} is too many (buffer of {})", buffer.len());
    }
    buffer
}

#[test]
// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn unwinding_frees_and_the_books_balance() {
    let _serial = common::serial();
    tracemalloc::start(8).unwrap();
    tracemalloc::clear_traces();
    let keep_line = line!(); let kept = fails(2);
    panic::set_hook(Box::new(|_| {}));
    for n in 4..50 {
        let result = panic::catch_unwind(|| fails(n));
        let payload = result.unwrap_err();
        assert!(
            payload
                .downcast_ref::<String>()
                .unwrap()
                .contains("too many")
        );
    }
    let _ = panic::take_hook();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    common::assert_consistent(&snapshot);
    // Only the block that was returned is left of `fails`.
    let from_fails: u64 = snapshot
        .traces()
        .iter()
        .filter(|t| {
            snapshot
                .traceback(t.traceback)
                .frames
                .iter()
                .any(|f| f.function.as_deref().is_some_and(|f| f.contains("fails")))
        })
        .map(|t| t.size)
        .sum();
    assert_eq!(from_fails, 5000, "{}", common::describe(&snapshot));
    let tb = tracemalloc::get_object_traceback(kept.as_ptr()).unwrap();
    assert!(
        tb.frames
            .iter()
            .any(|f| f.filename.ends_with(FILE) && f.lineno == keep_line)
    );
    assert_eq!(
        at_line(&snapshot, FILE, keep_line).1,
        0,
        "the block was allocated in fails()"
    );
    tracemalloc::stop();
    black_box(kept);
}
