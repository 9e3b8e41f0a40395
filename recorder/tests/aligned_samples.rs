//! Sampled mode with `TracingAllocator::system()` on glibc and a mean of at
//! least 64 KiB: sampled blocks are allocated aligned to 1 KiB, so that a
//! free of a block at any other address skips the lookup. Every sampled
//! block is aligned (allocated, zeroed or reallocated), its contents
//! survive a realloc, a block that `track(0, ..)` traces at another
//! address is still forgotten at its free, and the totals come back to
//! zero. At smaller means, where the alignment would cost too much
//! memory, sampled blocks are not aligned.

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
        ("small_means_do_not_align", small_means_do_not_align),
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
    // A mean of 64 KiB, the smallest that aligns: a block of 640 KiB is
    // sampled with probability 1 - exp(-10), all but surely; one of 1 KiB
    // with probability 0.0154.
    tracemalloc::start_sampled(4, 64 << 10).unwrap();
    let before = tracemalloc::get_traced_memory().0;
    let mut large: Vec<Vec<u8>> = (0..200).map(|i| vec![(i % 251) as u8; 640 << 10]).collect();
    let zeroed: Vec<Vec<u8>> = (0..20).map(|_| vec![0u8; 640 << 10]).collect();
    let small: Vec<Box<[u8; 1024]>> = (0..20_000)
        .map(|i| Box::new([black_box(i as u8); 1024]))
        .collect();
    let traced_large = large.iter().filter(|v| traced(v.as_ptr())).count();
    assert!(traced_large >= 198, "{traced_large} of 200 sampled");
    let traced_small: Vec<&Box<[u8; 1024]>> = small.iter().filter(|b| traced(b.as_ptr())).collect();
    // About 310 expected (a standard deviation of 18); far fewer or all
    // would mean a wrong decision.
    assert!(
        (150..600).contains(&traced_small.len()),
        "{} of 20000 small blocks sampled",
        traced_small.len()
    );
    if aligned_here() {
        for v in large.iter().chain(&zeroed) {
            if traced(v.as_ptr()) {
                assert_eq!(v.as_ptr() as usize % 1024, 0, "{:p}", v.as_ptr());
            }
        }
        for b in &traced_small {
            assert_eq!(b.as_ptr() as usize % 1024, 0);
        }
    }
    assert!(zeroed.iter().all(|v| v.iter().all(|&x| x == 0)));
    // Reallocations: grow (a new aligned block and a copy when sampled),
    // then shrink.
    for v in large.iter_mut() {
        v.reserve_exact(64 << 10);
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
    // The snapshot's estimates add up to the traced memory exactly: in
    // sampled mode both count a block as its size over its chance to be
    // sampled, rounded to whole bytes per block.
    let snapshot = tracemalloc::take_snapshot().unwrap();
    let stats = snapshot
        .statistics(tracemalloc_format::KeyType::Filename, false)
        .unwrap();
    let estimated: u64 = stats.iter().map(|s| s.size).sum();
    let current = snapshot.metadata().traced_current.unwrap();
    assert_eq!(estimated, current);
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
    // A mean that aligns samples, and a size in `track` that is sampled
    // surely (with probability 1 - exp(-16384)): the tracked block is
    // traced at an address that is not aligned.
    tracemalloc::start_sampled(4, 64 << 10).unwrap();
    let before = tracemalloc::get_traced_memory().0;
    tracemalloc::track(0, ptr, 1 << 30).unwrap();
    assert!(tracemalloc::get_traced_memory().0 > before);
    assert!(traced(ptr as *const u8));
    drop(blocks);
    // Its free found the trace although the address is not aligned.
    assert_eq!(tracemalloc::get_traced_memory().0, before);
    assert!(!traced(ptr as *const u8));
    tracemalloc::stop();
}

fn small_means_do_not_align() {
    // A mean of 64 bytes: a 32-byte block is sampled with probability
    // 0.39. Aligning each of them would take up to a kilobyte apiece, many
    // times the program's memory, so frees consult the filter instead and
    // sampled blocks lie wherever `malloc` puts them: at a multiple of
    // 1 KiB only by chance, about 1 in 64. The sessions before this one
    // had a mean of 64 KiB: `start` draws this thread's countdown afresh,
    // or the first 64 KiB or so of the blocks below would go unsampled.
    tracemalloc::start_sampled(4, 64).unwrap();
    let before = tracemalloc::get_traced_memory().0;
    let small: Vec<Box<[u8; 32]>> = (0..4000)
        .map(|i| Box::new([black_box(i as u8); 32]))
        .collect();
    let traced_small: Vec<usize> = small
        .iter()
        .map(|b| b.as_ptr() as usize)
        .filter(|&p| traced(p as *const u8))
        .collect();
    assert!(
        (1200..2000).contains(&traced_small.len()),
        "{} of 4000 sampled",
        traced_small.len()
    );
    let aligned = traced_small
        .iter()
        .filter(|p| p.is_multiple_of(1024))
        .count();
    assert!(
        aligned * 8 < traced_small.len(),
        "{aligned} of {} sampled blocks aligned",
        traced_small.len()
    );
    // Frees through the filter forget every sampled block.
    drop((small, traced_small));
    assert_eq!(tracemalloc::get_traced_memory().0, before);
    tracemalloc::stop();
}
