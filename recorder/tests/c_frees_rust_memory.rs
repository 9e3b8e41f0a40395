//! C code that frees, reallocates or measures blocks the Rust program
//! allocated (issue 12, defect 7): undefined behaviour by Rust's rules, but
//! common in FFI code. The traced program behaves as the untraced one:
//! with block trailers (the default, on glibc) as without them, every
//! block pointer is glibc's own. The recorder does not see C's `free`: a
//! block handed to C stays traced unless the program calls
//! `untrack(0, ptr)` first. (Block headers, which earlier versions had,
//! made glibc abort here.)

#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::CString;
use std::hint::black_box;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

fn main() {
    common::run_tests(&[
        (
            "c_frees_and_reallocates_rust_blocks",
            c_frees_and_reallocates_rust_blocks,
        ),
        (
            "untrack_before_handing_a_block_to_c",
            untrack_before_handing_a_block_to_c,
        ),
        (
            "without_trailers_as_with_them",
            without_trailers_as_with_them,
        ),
    ]);
}

/// Whether blocks allocated now get a trailer (glibc's `malloc`).
fn trailers_now() -> bool {
    let before = tracemalloc::get_tracemalloc_memory_usage().block_trailers;
    let b = black_box(Box::new([0u8; 40]));
    let on = tracemalloc::get_tracemalloc_memory_usage().block_trailers > before;
    drop(b);
    on
}

/// Gives C a `CString`, a `Vec`'s buffer and a `Box`, as FFI code does.
/// Returns the traced bytes the blocks had, and runs `before_c` on each
/// block's address first.
fn hand_blocks_to_c(before_c: impl Fn(usize)) -> u64 {
    let s = black_box(CString::new("x".repeat(99)).unwrap()); // 100 bytes
    let mut v: Vec<u8> = black_box(Vec::with_capacity(200));
    v.extend(std::iter::repeat_n(7u8, 200));
    let b = black_box(Box::new([5u64; 8])); // 64 bytes
    let s = s.into_raw();
    let mut v = std::mem::ManuallyDrop::new(v);
    let (v_ptr, v_len) = (v.as_mut_ptr(), v.len());
    let b = Box::into_raw(b);
    before_c(s as usize);
    before_c(v_ptr as usize);
    before_c(b as usize);
    // SAFETY: each pointer is a live block of the system allocator (glibc's
    // malloc, no header), handed over to C, which owns it from here.
    unsafe {
        assert_eq!(libc::strlen(s), 99);
        libc::free(s.cast());
        let grown = libc::realloc(v_ptr.cast(), 100_000).cast::<u8>();
        assert!(!grown.is_null());
        assert_eq!(
            std::slice::from_raw_parts(grown, v_len),
            &[7u8; 200][..],
            "realloc kept the contents"
        );
        libc::free(grown.cast());
        assert!(libc::malloc_usable_size(b.cast()) >= 64);
        assert_eq!((*b)[7], 5);
        libc::free(b.cast());
    }
    100 + 200 + 64
}

fn c_frees_and_reallocates_rust_blocks() {
    tracemalloc::start(4).unwrap();
    // The default gives trailers on glibc: the case this test is for.
    assert!(!cfg!(all(target_os = "linux", target_env = "gnu")) || trailers_now());
    let (baseline, _) = tracemalloc::get_traced_memory();
    let sizes = hand_blocks_to_c(|_| {});
    // C's frees are not seen: the blocks stay traced.
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + sizes);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    common::assert_consistent(&snapshot);
    // The addresses C freed come back to Rust blocks, whose frees remove
    // their own traces (and only them). (The snapshot's untraced blocks
    // may have taken out the stale traces of the blocks C freed, if glibc
    // gave one of them the same address and size: see `trailer.rs`.)
    let (before, _) = tracemalloc::get_traced_memory();
    assert!(before >= baseline && before <= baseline + sizes);
    let again: Vec<Box<[u8; 64]>> = (0..100)
        .map(|i| black_box(Box::new([i as u8; 64])))
        .collect();
    assert_eq!(tracemalloc::get_traced_memory().0, before + 6400 + 800);
    drop(again);
    assert_eq!(tracemalloc::get_traced_memory().0, before);
    tracemalloc::stop();
}

fn untrack_before_handing_a_block_to_c() {
    tracemalloc::start(4).unwrap();
    let (baseline, _) = tracemalloc::get_traced_memory();
    hand_blocks_to_c(|ptr| tracemalloc::untrack(0, ptr).unwrap());
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        baseline,
        "untracked blocks leave no trace"
    );
    tracemalloc::stop();
}

/// With trailers turned off, the same: C frees Rust blocks, and
/// `untrack` takes their traces out.
fn without_trailers_as_with_them() {
    tracemalloc::Config::new(4)
        .block_trailers(false)
        .start()
        .unwrap();
    assert!(!trailers_now());
    let (baseline, _) = tracemalloc::get_traced_memory();
    hand_blocks_to_c(|ptr| tracemalloc::untrack(0, ptr).unwrap());
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    tracemalloc::stop();
}
