//! C code that frees, reallocates or measures blocks the Rust program
//! allocated (issue 12, defect 7): undefined behaviour by Rust's rules, but
//! common in FFI code. With the default settings the traced program behaves
//! as the untraced one: blocks carry no header, so they are glibc's own.
//! The recorder does not see C's `free`: a block handed to C stays traced
//! unless the program calls `untrack(0, ptr)` first. Block headers
//! (`Config::block_headers(true)`) are for programs that never do this: a
//! child process shows that glibc then aborts.

#![allow(clippy::unwrap_used)]

mod common;

use std::ffi::CString;
use std::hint::black_box;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const CHILD: &str = "TRACEMALLOC_TEST_C_FREE_WITH_HEADERS";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        // The child: headers asked for, then a C free of a Rust block.
        common::start_with_headers(4);
        let s = CString::new("handed to C").unwrap();
        // SAFETY: (not safe: the point of the child) a block with a header
        // given to glibc's free.
        unsafe { libc::free(s.into_raw().cast()) };
        println!("the child was not stopped");
        return;
    }
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
            "with_block_headers_glibc_aborts",
            with_block_headers_glibc_aborts,
        ),
    ]);
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
    let (baseline, _) = tracemalloc::get_traced_memory();
    let sizes = hand_blocks_to_c(|_| {});
    // C's frees are not seen: the blocks stay traced.
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + sizes);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    common::assert_consistent(&snapshot);
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

fn with_block_headers_glibc_aborts() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("the child with headers: {}", output.status);
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(output.status.signal(), Some(libc::SIGABRT), "{output:?}");
        assert!(!stdout.contains("not stopped"));
    } else {
        // No headers elsewhere: nothing breaks.
        assert!(output.status.success(), "{output:?}");
    }
}
