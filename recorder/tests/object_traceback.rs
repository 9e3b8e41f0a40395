//! `get_object_traceback()` finds the traceback of a live block by its
//! address.

use std::hint::black_box;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/object_traceback.rs";

#[inline(never)]
fn make_box() -> (Box<[u64; 16]>, u32) {
    (Box::new(black_box([3; 16])), line!())
}

#[test]
fn traceback_of_a_live_block() {
    tracemalloc::start(3).unwrap();
    let ((b, box_line), call_line) = (make_box(), line!());
    let tb = tracemalloc::get_object_traceback(&*b as *const [u64; 16]).unwrap();
    assert!(tb.frames[0].filename.ends_with(FILE), "{tb:?}");
    assert_eq!(tb.frames[0].lineno, box_line, "{tb:?}");
    assert!(
        tb.frames[0]
            .function
            .as_deref()
            .unwrap()
            .contains("make_box")
    );
    assert_eq!(tb.frames[1].lineno, call_line);
    assert!(tb.frames.len() <= 3);

    // An address inside the block, or one never allocated, has none.
    assert!(tracemalloc::get_object_traceback(b[1..].as_ptr()).is_none());
    let on_stack = 5u64;
    assert!(tracemalloc::get_object_traceback(&on_stack as *const u64).is_none());

    let ptr = &*b as *const [u64; 16];
    drop(b);
    assert!(tracemalloc::get_object_traceback(ptr).is_none());
    tracemalloc::stop();
}
