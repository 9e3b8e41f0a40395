//! The recorder reallocating a block the program allocated, under its
//! re-entrancy guard (issue 12: the headers' realloc ignored the guard, traced
//! the new block and left the guard off, so that the recorder's following
//! work was traced; a block without a header kept its old trace forever;
//! the headers are trailers now).
//! The new block is the recorder's, untraced; the old one's trace goes.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

fn main() {
    common::run_tests(&[
        (
            "realloc_under_the_guard_with_a_trailer",
            realloc_under_the_guard_with_a_trailer,
        ),
        (
            "realloc_under_the_guard_without_a_trailer",
            realloc_under_the_guard_without_a_trailer,
        ),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

/// An alignment above 16: no trailer.
#[derive(Clone, Copy)]
#[repr(align(32))]
struct Aligned([u8; 32]);

fn realloc_under_the_guard_with_a_trailer() {
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let mut v: Vec<u8> = black_box(Vec::with_capacity(100));
    v.extend_from_slice(&[3; 100]);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + 100);
    let b = tracemalloc::__untraced(|| {
        v.reserve_exact(10_000);
        // Allocated under the guard: not traced.
        black_box(Box::new([0u8; 1000]))
    });
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        baseline,
        "the old block's trace went, the new block and the box are not traced"
    );
    assert_eq!(&v[..], &[3; 100][..]);
    drop(v);
    drop(b);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    tracemalloc::stop();
}

fn realloc_under_the_guard_without_a_trailer() {
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let mut v: Vec<Aligned> = black_box(Vec::with_capacity(4));
    v.push(Aligned([4; 32]));
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + 128);
    tracemalloc::__untraced(|| v.reserve_exact(1000));
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        baseline,
        "the old block's trace went"
    );
    assert_eq!(v[0].0, [4; 32]);
    drop(v);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    tracemalloc::stop();
}
