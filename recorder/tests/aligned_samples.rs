//! Sampled mode with `TracingAllocator::system()` on glibc: sampled blocks
//! are allocated aligned to 1 KiB, so that a free of a block at any other
//! address skips the lookup. Every sampled block is aligned (allocated,
//! zeroed or reallocated), its contents survive a realloc, a block that
//! `track(0, ..)` traces at another address is still forgotten at its
//! free, and the totals come back to zero.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[
        (
            "sampled_blocks_are_aligned_and_exact",
            sampled_blocks_are_aligned_and_exact,
        ),
        (
            "a_tracked_heap_block_is_still_forgotten",
            a_tracked_heap_block_is_still_forgotten,
        ),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

/// Where sampled blocks are aligned: glibc's `malloc`, not under valgrind
/// (which replaces it).
fn aligned_here() -> bool {
    cfg!(all(target_os = "linux", target_env = "gnu"))
        && std::env::var_os("TRACEMALLOC_TEST_UNDER_VALGRIND").is_none()
}

fn traced(ptr: *const u8) -> bool {
    tracemalloc::get_object_traceback(ptr).is_some()
}

fn sampled_blocks_are_aligned_and_exact() {
    // A mean of 64 bytes: a block of 1,000 bytes is sampled with
    // probability 1 - exp(-1000 / 64), all but surely; one of 8 bytes
    // with probability 0.12.
    tracemalloc::start_sampled(4, 64).unwrap();
    let before = tracemalloc::get_traced_memory().0;
    let mut large: Vec<Vec<u8>> = (0..2000).map(|i| vec![(i % 251) as u8; 1000]).collect();
    let zeroed: Vec<Vec<u8>> = (0..200).map(|_| vec![0u8; 1000]).collect();
    let small: Vec<Box<u64>> = (0..4000).map(|i| Box::new(black_box(i))).collect();
    let traced_large = large.iter().filter(|v| traced(v.as_ptr())).count();
    assert!(traced_large >= 1990, "{traced_large} of 2000 sampled");
    let traced_small: Vec<&Box<u64>> = small
        .iter()
        .filter(|b| traced((&***b as *const u64).cast()))
        .collect();
    // About 480 expected; far fewer or all would mean a wrong decision.
    assert!(
        (200..1000).contains(&traced_small.len()),
        "{} of 4000 small blocks sampled",
        traced_small.len()
    );
    if aligned_here() {
        for v in large.iter().chain(&zeroed) {
            if traced(v.as_ptr()) {
                assert_eq!(v.as_ptr() as usize % 1024, 0, "{:p}", v.as_ptr());
            }
        }
        for b in &traced_small {
            assert_eq!((&***b as *const u64) as usize % 1024, 0);
        }
    }
    assert!(zeroed.iter().all(|v| v.iter().all(|&x| x == 0)));
    // Reallocations: grow (a new aligned block and a copy when sampled),
    // then shrink.
    for v in large.iter_mut() {
        v.reserve_exact(3000);
    }
    for (i, v) in large.iter().enumerate() {
        assert!(v.iter().all(|&x| x == (i % 251) as u8), "vector {i}");
        if aligned_here() && traced(v.as_ptr()) {
            assert_eq!(v.as_ptr() as usize % 1024, 0, "vector {i}");
        }
    }
    for v in large.iter_mut().step_by(2) {
        v.shrink_to_fit();
    }
    for (i, v) in large.iter().enumerate() {
        assert!(v.iter().all(|&x| x == (i % 251) as u8), "vector {i}");
    }
    // The snapshot's estimates add up to the traced memory (in sampled
    // mode both count a block as its size over its chance to be sampled;
    // they round differently, by under a byte per block).
    let snapshot = tracemalloc::take_snapshot().unwrap();
    let stats = snapshot
        .statistics(tracemalloc_format::KeyType::Filename, false)
        .unwrap();
    let estimated: u64 = stats.iter().map(|s| s.size).sum();
    let current = snapshot.metadata().traced_current.unwrap();
    assert!(
        estimated.abs_diff(current) * 10_000 <= current,
        "{estimated} against {current}"
    );
    drop(traced_small);
    drop((stats, snapshot, large, zeroed, small));
    assert_eq!(tracemalloc::get_traced_memory().0, before);
    tracemalloc::stop();
}

fn a_tracked_heap_block_is_still_forgotten() {
    // Allocated before tracing: at any address.
    let blocks: Vec<Box<[u8; 24]>> = (0..64).map(|_| Box::new([1u8; 24])).collect();
    // One of them not at a multiple of 1 KiB (at most 1 in 64 is).
    let b = blocks
        .iter()
        .find(|b| !(b.as_ptr() as usize).is_multiple_of(1024))
        .unwrap();
    let ptr = b.as_ptr() as usize;
    // A mean of one byte: every block is sampled, the tracked one too.
    tracemalloc::start_sampled(4, 1).unwrap();
    // A block of a megabyte ends the countdown left from an earlier
    // session: the next sample point is about a byte away.
    drop(black_box(vec![0u8; 1 << 20]));
    let before = tracemalloc::get_traced_memory().0;
    tracemalloc::track(0, ptr, 24).unwrap();
    assert!(tracemalloc::get_traced_memory().0 > before);
    assert!(traced(ptr as *const u8));
    drop(blocks);
    // Its free found the trace although the address is not aligned.
    assert_eq!(tracemalloc::get_traced_memory().0, before);
    assert!(!traced(ptr as *const u8));
    tracemalloc::stop();
}
