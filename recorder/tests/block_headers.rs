//! Blocks with a header (`TracingAllocator::system()` on glibc, exact
//! mode): blocks with and without one are told apart at every free and
//! realloc, across `start`, `stop`, `clear_traces` and sampled mode, and
//! the accounting stays exact.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::hint::black_box;

use common::{assert_consistent, at_line};

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[
        ("blocks_cross_start_and_stop", blocks_cross_start_and_stop),
        ("realloc_across_modes", realloc_across_modes),
        ("clear_traces_forgets_headers", clear_traces_forgets_headers),
        ("alignment_and_zeroing", alignment_and_zeroing),
        ("arrays_shrink_and_stay_exact", arrays_shrink_and_stay_exact),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/block_headers.rs";

/// Blocks made before tracing (no header) and during it (a header) are
/// freed while tracing and after `stop`; the totals stay exact.
#[rustfmt::skip]
fn blocks_cross_start_and_stop() {
    let before: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([1u8; 100])).collect();
    common::start_with_headers(4);
    let (during, line): (Vec<Box<[u8; 200]>>, u32) = ((0..1000).map(|_| Box::new([2u8; 200])).collect(), line!());
    assert!(!cfg!(all(target_os = "linux", target_env = "gnu")) || headers_here_while_tracing());
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    // The boxes and the vector's buffer of their pointers.
    assert_eq!(at_line(&snapshot, FILE, line), (200 * 1000 + 8 * 1000, 1001));
    let (current, _) = tracemalloc::get_traced_memory();
    // Freeing the untraced blocks changes nothing.
    drop(before);
    assert_eq!(tracemalloc::get_traced_memory().0, current);
    // Freeing half the traced ones takes exactly their sizes out.
    let mut during = during;
    during.truncate(500);
    assert_eq!(tracemalloc::get_traced_memory().0, current - 200 * 500);
    assert!(during.iter().all(|b| b.iter().all(|&x| x == 2)), "the blocks kept their contents");
    tracemalloc::stop();
    // Blocks with a header are freed after tracing stopped.
    drop(during);
    // And tracing again starts from zero.
    common::start_with_headers(4);
    let (b, line) = (Box::new([3u8; 300]), line!());
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, line), (300, 1));
    drop(b);
    tracemalloc::stop();
}

/// Whether the blocks allocated now get a header.
fn headers_here_while_tracing() -> bool {
    let b = black_box(Box::new([0u8; 40]));
    let on = tracemalloc::get_tracemalloc_memory_usage().block_headers >= 16;
    drop(b);
    on
}

/// Reallocs of blocks with a header: while tracing (the trace moves), after
/// `stop` (the block keeps its contents), and in sampled mode.
#[rustfmt::skip]
fn realloc_across_modes() {
    common::start_with_headers(4);
    let mut v: Vec<u8> = Vec::with_capacity(16);
    v.extend_from_slice(b"0123456789abcdef");
    let grow_line = line!(); v.reserve_exact(black_box(10_000));
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, grow_line), (10_016, 1));
    assert_eq!(tracemalloc::get_traced_memory().0, 10_016);
    tracemalloc::stop();
    // Grown after tracing stopped: still the same contents.
    v.reserve_exact(black_box(100_000));
    assert_eq!(&v[..16], b"0123456789abcdef");
    tracemalloc::start_sampled(4, 4096).unwrap();
    v.shrink_to_fit();
    assert_eq!(&v[..], b"0123456789abcdef");
    v.reserve_exact(black_box(1000));
    drop(v);
    // The sampled blocks still add up.
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    tracemalloc::stop();
}

/// `clear_traces` forgets blocks with a header; freeing them afterwards
/// does not touch the new epoch's totals, nor do blocks made after it.
#[rustfmt::skip]
fn clear_traces_forgets_headers() {
    common::start_with_headers(4);
    let old: Vec<Box<[u8; 64]>> = (0..5000).map(|_| Box::new([0u8; 64])).collect();
    tracemalloc::clear_traces();
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    let (new, line): (Vec<Box<[u8; 48]>>, u32) = ((0..3000).map(|_| Box::new([0u8; 48])).collect(), line!());
    let vec_bytes = (3000 * size_of::<Box<[u8; 48]>>()) as u64;
    assert_eq!(tracemalloc::get_traced_memory().0, 48 * 3000 + vec_bytes);
    // The old blocks' slots now hold new blocks: freeing the old ones must
    // not take the new ones out.
    drop(old);
    assert_eq!(tracemalloc::get_traced_memory().0, 48 * 3000 + vec_bytes);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(at_line(&snapshot, FILE, line), (48 * 3000 + vec_bytes, 3001));
    drop(new);
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    tracemalloc::stop();
}

/// Alignments up to 16 get a header and keep their alignment; larger ones
/// go without; zeroed blocks are zero.
fn alignment_and_zeroing() {
    common::start_with_headers(4);
    for &(size, align) in &[(1usize, 1usize), (8, 8), (24, 16), (100, 32), (4096, 4096)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        assert!(!p.is_null());
        assert_eq!(p as usize % align, 0, "{size} bytes aligned to {align}");
        // SAFETY: `size` bytes were allocated at `p`.
        let bytes = unsafe { std::slice::from_raw_parts(p, size) };
        assert!(bytes.iter().all(|&b| b == 0));
        assert_eq!(tracemalloc::get_traced_memory().0, size as u64);
        // SAFETY: allocated above with this layout.
        unsafe { dealloc(p, layout) };
        assert_eq!(tracemalloc::get_traced_memory().0, 0);
        // SAFETY: as above.
        let q = unsafe { alloc(layout) };
        assert_eq!(q as usize % align, 0);
        // SAFETY: as above.
        unsafe { dealloc(q, layout) };
    }
    tracemalloc::stop();
}

/// Many blocks freed out of order, from the oldest: the thread's block
/// array shrinks (moving blocks and rewriting their headers) and every
/// remaining block is still found and freed exactly.
fn arrays_shrink_and_stay_exact() {
    common::start_with_headers(4);
    let mut blocks: Vec<Option<Box<[u8; 32]>>> =
        (0..100_000).map(|_| Some(Box::new([7u8; 32]))).collect();
    let vec_bytes = (100_000 * size_of::<Option<Box<[u8; 32]>>>()) as u64;
    // Free 95 % of them, every block whose index is not a multiple of 20.
    for (i, b) in blocks.iter_mut().enumerate() {
        if i % 20 != 0 {
            *b = None;
        }
    }
    assert_eq!(tracemalloc::get_traced_memory().0, 32 * 5000 + vec_bytes);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    let usage = tracemalloc::get_tracemalloc_memory_usage();
    // Shrunk: at most 32 bytes per live block for headers and arrays.
    assert!(
        usage.thread_tables + usage.block_headers <= 32 * 5100 + 64 * 1024,
        "{usage:?}"
    );
    drop(blocks);
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    tracemalloc::stop();
}
