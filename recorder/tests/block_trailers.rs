//! Blocks with a trailer (`TracingAllocator::system()` on glibc, exact
//! mode): blocks with and without one are told apart at every free and
//! realloc, across `start`, `stop`, `clear_traces`, sampled mode and
//! threads, at the sizes where glibc's rounding changes, and the
//! accounting stays exact; stale and forged trailers are not trusted.

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
        (
            "clear_traces_forgets_trailers",
            clear_traces_forgets_trailers,
        ),
        ("alignment_and_zeroing", alignment_and_zeroing),
        (
            "arrays_reuse_slots_and_stay_exact",
            arrays_reuse_slots_and_stay_exact,
        ),
        ("sizes_at_the_edges", sizes_at_the_edges),
        ("realloc_in_place_and_moving", realloc_in_place_and_moving),
        (
            "thread_exit_and_other_threads",
            thread_exit_and_other_threads,
        ),
        ("stale_trailer_is_not_trusted", stale_trailer_is_not_trusted),
        (
            "forged_trailer_is_not_trusted",
            forged_trailer_is_not_trusted,
        ),
        (
            "c_measures_and_frees_trailed_blocks",
            c_measures_and_frees_trailed_blocks,
        ),
        ("block_headers_is_an_alias", block_headers_is_an_alias),
        (
            "one_frame_points_at_the_line_either_way",
            one_frame_points_at_the_line_either_way,
        ),
        // Last: the memory it frees would let glibc serve from its heap
        // the blocks `sizes_at_the_edges` expects it to map.
        (
            "an_emptied_array_shrinks_and_stays_exact",
            an_emptied_array_shrinks_and_stays_exact,
        ),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/block_trailers.rs";

/// Whether this platform gives trailers (glibc's `malloc`).
const GLIBC: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

/// Blocks made before tracing (no trailer) and during it (a trailer) are
/// freed while tracing and after `stop`; the totals stay exact.
#[rustfmt::skip]
fn blocks_cross_start_and_stop() {
    let before: Vec<Box<[u8; 100]>> = (0..1000).map(|_| Box::new([1u8; 100])).collect();
    common::start_with_trailers(4);
    let (during, line): (Vec<Box<[u8; 200]>>, u32) = ((0..1000).map(|_| Box::new([2u8; 200])).collect(), line!());
    assert!(!GLIBC || trailers_now());
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
    // Blocks with a trailer are freed after tracing stopped.
    drop(during);
    // And tracing again starts from zero.
    common::start_with_trailers(4);
    let (b, line) = (black_box(Box::new([3u8; 300])), line!());
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, line), (300, 1));
    drop(b);
    tracemalloc::stop();
}

/// Whether the blocks allocated now get a trailer.
fn trailers_now() -> bool {
    let before = trailers();
    let b = black_box(Box::new([0u8; 40]));
    let on = trailers() > before;
    drop(b);
    on
}

/// The recorder's bytes of trailers.
fn trailers() -> u64 {
    tracemalloc::get_tracemalloc_memory_usage().block_trailers
}

/// Reallocs of blocks with a trailer: while tracing (the trace moves), after
/// `stop` (the block keeps its contents), and in sampled mode.
#[rustfmt::skip]
fn realloc_across_modes() {
    common::start_with_trailers(4);
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

/// `clear_traces` forgets blocks with a trailer; freeing them afterwards
/// does not touch the new epoch's totals, nor do blocks made after it.
#[rustfmt::skip]
fn clear_traces_forgets_trailers() {
    common::start_with_trailers(4);
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

/// Alignments up to 16 get a trailer and keep their alignment; larger ones
/// go without; zeroed blocks are zero.
fn alignment_and_zeroing() {
    common::start_with_trailers(4);
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

/// Many blocks freed out of order: the block array keeps every block at
/// its slot, reuses the freed slots for new blocks instead of growing, and
/// every remaining block is still found and freed exactly.
fn arrays_reuse_slots_and_stay_exact() {
    common::start_with_trailers(4);
    let mut blocks: Vec<Option<Box<[u8; 32]>>> =
        (0..100_000).map(|_| Some(Box::new([7u8; 32]))).collect();
    let vec_bytes = (100_000 * size_of::<Option<Box<[u8; 32]>>>()) as u64;
    // Free 80 % of them, every block whose index is not a multiple of 5
    // (an array shrinks only below one block in 8 slots).
    for (i, b) in blocks.iter_mut().enumerate() {
        if i % 5 != 0 {
            *b = None;
        }
    }
    assert_eq!(tracemalloc::get_traced_memory().0, 32 * 20_000 + vec_bytes);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    let usage = tracemalloc::get_tracemalloc_memory_usage();
    if GLIBC {
        // The vector of 800 KB is above 128 KiB: no trailer.
        assert_eq!(usage.block_trailers, 8 * 20_000, "{usage:?}");
    }
    // New blocks take the freed slots: the arrays do not grow.
    for (i, b) in blocks.iter_mut().enumerate() {
        if i % 5 != 0 {
            *b = Some(Box::new([8u8; 32]));
        }
    }
    let refilled = tracemalloc::get_tracemalloc_memory_usage();
    assert_eq!(refilled.thread_tables, usage.thread_tables, "{refilled:?}");
    assert_eq!(tracemalloc::get_traced_memory().0, 32 * 100_000 + vec_bytes);
    for (i, b) in blocks.iter().enumerate() {
        let expected = if i % 5 == 0 { 7 } else { 8 };
        assert!(
            b.as_ref().unwrap().iter().all(|&x| x == expected),
            "block {i}"
        );
    }
    drop(blocks);
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    tracemalloc::stop();
}

/// A burst of blocks freed but for one in 100, then temporaries: the
/// block array gives its memory back (its last blocks move to the hash
/// table), and every block that stayed is still traced and found at its
/// free (by its owner, by another thread, and by a realloc), whatever
/// slot its trailer names.
fn an_emptied_array_shrinks_and_stays_exact() {
    common::start_with_trailers(4);
    let line = line!() + 1;
    let make = |i: usize| Some(vec![(i % 251) as u8; 32]);
    let mut blocks: Vec<Option<Vec<u8>>> = (0..100_000).map(make).collect();
    let vec_bytes = (100_000 * size_of::<Option<Vec<u8>>>()) as u64;
    assert_eq!(tracemalloc::get_traced_memory().0, 32 * 100_000 + vec_bytes);
    let full = tracemalloc::get_tracemalloc_memory_usage();
    for (i, b) in blocks.iter_mut().enumerate() {
        if i % 100 != 0 {
            *b = None;
        }
    }
    assert_eq!(tracemalloc::get_traced_memory().0, 32 * 1000 + vec_bytes);
    // The program goes on with temporaries (no table shrinks before it
    // has been sparse over as many frees as it has slots).
    for i in 0..400_000u32 {
        black_box(Box::new(i));
    }
    assert_eq!(tracemalloc::get_traced_memory().0, 32 * 1000 + vec_bytes);
    let emptied = tracemalloc::get_tracemalloc_memory_usage();
    // 100,000 blocks took at least 1.6 MB of array (or 2 MB of hash
    // table); 1,000 take a few tens of KiB once the tables shrank.
    assert!(
        full.thread_tables > 1_500_000 && emptied.thread_tables < 200_000,
        "{full:?} then {emptied:?}"
    );
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(at_line(&snapshot, FILE, line), (32 * 1000, 1000));

    // New blocks while the moved ones live: the array starts again at
    // slot 0, which some moved blocks' trailers name.
    let fresh: Vec<Vec<u8>> = (0..2000).map(|i| vec![i as u8; 48]).collect();
    let fresh_bytes = 48 * 2000 + (2000 * size_of::<Vec<u8>>()) as u64;
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        32 * 1000 + fresh_bytes + vec_bytes
    );
    // A third of the kept blocks grow (a realloc), a third go to another
    // thread that frees them, and the owner frees the others.
    let mut kept: Vec<Vec<u8>> = blocks.iter_mut().filter_map(Option::take).collect();
    for (j, b) in kept.iter().enumerate() {
        assert!(b.iter().all(|&x| x == ((j * 100) % 251) as u8), "block {j}");
    }
    for b in kept.iter_mut().step_by(3) {
        b.reserve_exact(1000);
    }
    let grown = kept
        .iter()
        .step_by(3)
        .map(|b| b.capacity() as u64)
        .sum::<u64>();
    let kept_bytes = kept.capacity() as u64 * size_of::<Vec<u8>>() as u64;
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        grown + 32 * (1000 - 334) + fresh_bytes + vec_bytes + kept_bytes
    );
    let mut others = Vec::new();
    for (j, b) in kept.drain(..).enumerate() {
        if j % 3 == 1 {
            others.push(b);
        }
        // The others are freed here, by their owner.
    }
    std::thread::spawn(move || drop(others)).join().unwrap();
    drop(fresh);
    drop(kept);
    assert_eq!(tracemalloc::get_traced_memory().0, vec_bytes);
    drop(blocks);
    assert_eq!(tracemalloc::get_traced_memory().0, 0);
    tracemalloc::stop();
}

/// Allocates `size` bytes aligned to 8 and checks the traced total, that
/// glibc's usable area leaves room for the trailer, and whether the block
/// got one; then frees it.
fn alloc_and_free(size: usize, expect_trailer: bool) {
    let layout = Layout::from_size_align(size, 8).unwrap();
    let (before, _) = tracemalloc::get_traced_memory();
    let trailers_before = trailers();
    // SAFETY: a non-zero size.
    let p = unsafe { alloc(layout) };
    assert!(!p.is_null());
    // SAFETY: `size` bytes were allocated at `p`.
    unsafe { std::ptr::write_bytes(p, 0xAB, size) };
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        before + size as u64,
        "{size} bytes"
    );
    if GLIBC {
        let got = trailers() - trailers_before;
        assert_eq!(
            got,
            if expect_trailer { 8 } else { 0 },
            "{size} bytes: trailer"
        );
        // SAFETY: a live block of glibc's `malloc`.
        let usable = unsafe { libc::malloc_usable_size(p.cast()) };
        if expect_trailer {
            assert!(usable >= size + 8, "{size} bytes: {usable} usable");
        }
    }
    // SAFETY: as above; the trailer is past the bytes written.
    let bytes = unsafe { std::slice::from_raw_parts(p, size) };
    assert!(bytes.iter().all(|&b| b == 0xAB), "{size} bytes: contents");
    // SAFETY: allocated above with this layout.
    unsafe { dealloc(p, layout) };
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        before,
        "{size} bytes freed"
    );
}

/// Sizes where glibc's usable area is exactly the size asked (24, 40, 56,
/// ...: `n % 16 == 8`), has 8 spare bytes (`n % 16 == 0`), or more, and
/// the 128 KiB edge (above it, no trailer).
fn sizes_at_the_edges() {
    common::start_with_trailers(4);
    for n in [
        1, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32, 40, 48, 56, 1000, 4096, 4104,
    ] {
        alloc_and_free(n, true);
    }
    // A block of 128 KiB gets a trailer if glibc serves it from its heap;
    // at its default threshold it maps it instead, and the free finds the
    // block in the hash table. Either way the totals are exact.
    let layout = Layout::from_size_align(128 * 1024, 8).unwrap();
    let (before, _) = tracemalloc::get_traced_memory();
    // SAFETY: a non-zero size. (`black_box`: an optimized build may leave
    // out an allocation that nothing uses.)
    let p = black_box(unsafe { alloc(layout) });
    assert_eq!(tracemalloc::get_traced_memory().0, before + 128 * 1024);
    // SAFETY: allocated above with this layout.
    unsafe { dealloc(p, layout) };
    assert_eq!(tracemalloc::get_traced_memory().0, before);
    alloc_and_free(128 * 1024 + 1, false);
    alloc_and_free(1 << 20, false);
    if GLIBC {
        // With glibc's threshold lowered, blocks that would get a trailer
        // are mapped: no room for one, and the hash table takes them.
        // SAFETY: `mallopt` only changes glibc's tuning.
        let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 16 * 1024) };
        assert_eq!(set, 1);
        // (glibc maps only when its heap has no room: many blocks fill it.)
        let layout = Layout::from_size_align(100_000, 8).unwrap();
        let (before, _) = tracemalloc::get_traced_memory();
        let trailers_before = trailers();
        // SAFETY: a non-zero size.
        let blocks: Vec<*mut u8> = (0..64).map(|_| unsafe { alloc(layout) }).collect();
        assert!(blocks.iter().all(|p| !p.is_null()));
        // The blocks and the vector of their 64 pointers.
        assert_eq!(
            tracemalloc::get_traced_memory().0,
            before + 64 * 100_000 + 512
        );
        let with_trailer = (trailers() - trailers_before) / 8 - 1;
        assert!(
            with_trailer < 64,
            "{with_trailer} of 64 blocks have a trailer"
        );
        for p in blocks {
            // SAFETY: allocated above with this layout.
            unsafe { dealloc(p, layout) };
        }
        assert_eq!(tracemalloc::get_traced_memory().0, before);
        assert_eq!(trailers(), trailers_before);
        // SAFETY: as above; glibc's default threshold.
        let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
        assert_eq!(set, 1);
    }
    tracemalloc::stop();
}

/// Reallocs that glibc makes in place (shrinking, or growing into free
/// space behind) and that move the block; between sizes with and without
/// a trailer.
fn realloc_in_place_and_moving() {
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let layout = Layout::from_size_align(4000, 8).unwrap();
    // SAFETY: a non-zero size.
    let p = unsafe { alloc(layout) };
    // SAFETY: 4000 bytes at `p`.
    unsafe { std::ptr::write_bytes(p, 1, 4000) };
    let mut size = 4000;
    let mut ptr = p;
    let mut moved = 0;
    for new_size in [3000, 100, 24, 25, 5000, 200_000, 64, 8, 130_000, 40] {
        // SAFETY: `ptr` is a live block of `size` bytes with this alignment.
        let q = unsafe {
            std::alloc::realloc(ptr, Layout::from_size_align(size, 8).unwrap(), new_size)
        };
        assert!(!q.is_null());
        if q != ptr {
            moved += 1;
        }
        // SAFETY: the common prefix was all ones and stays so.
        let kept = unsafe { std::slice::from_raw_parts(q, size.min(new_size)) };
        assert!(
            kept.iter().all(|&b| b == 1),
            "{size} -> {new_size}: contents"
        );
        // SAFETY: `new_size` bytes at `q`.
        unsafe { std::ptr::write_bytes(q, 1, new_size) };
        assert_eq!(
            tracemalloc::get_traced_memory().0,
            baseline + new_size as u64,
            "{size} -> {new_size}"
        );
        ptr = q;
        size = new_size;
    }
    assert!(
        (1..10).contains(&moved),
        "{moved} of 10 reallocs moved the block"
    );
    // SAFETY: live, with this layout.
    unsafe { dealloc(ptr, Layout::from_size_align(size, 8).unwrap()) };
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    tracemalloc::stop();
}

/// Blocks freed by another thread (taken out of the owner's array at the
/// trailer's slot), and blocks of a thread that exited (moved to the
/// shared table), freed and reallocated by the main thread.
fn thread_exit_and_other_threads() {
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let (send, receive) = std::sync::mpsc::channel::<Vec<Box<[u8; 48]>>>();
    let consumer = std::thread::spawn(move || {
        for batch in receive {
            drop(black_box(batch));
        }
    });
    let (blocks, grown) = std::thread::spawn(move || {
        for _ in 0..50 {
            let batch: Vec<Box<[u8; 48]>> = (0..200).map(|_| Box::new([9u8; 48])).collect();
            send.send(batch).unwrap();
        }
        let kept: Vec<Box<[u8; 48]>> = (0..1000).map(|_| Box::new([5u8; 48])).collect();
        let mut grown: Vec<u8> = Vec::with_capacity(100);
        grown.extend_from_slice(&[6u8; 100]);
        (kept, grown)
    })
    .join()
    .unwrap();
    consumer.join().unwrap();
    let vec_bytes = (1000 * size_of::<Box<[u8; 48]>>()) as u64;
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        baseline + 48 * 1000 + vec_bytes + 100
    );
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    let mut grown = grown;
    grown.reserve_exact(black_box(900));
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        baseline + 48 * 1000 + vec_bytes + 1000
    );
    assert!(grown.iter().all(|&b| b == 6));
    drop(blocks);
    drop(grown);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    tracemalloc::stop();
}

/// A traced block freed leaves its trailer in glibc's memory. An untraced
/// block that glibc then puts at the same address, with the same size,
/// finds that trailer, check word and all; its slot now holds another
/// block, which its free must not take out.
fn stale_trailer_is_not_trusted() {
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let a = black_box(Box::new([1u8; 64]));
    let a_addr = &*a as *const [u8; 64] as usize;
    drop(a);
    // Under the guard: not traced, no trailer written; glibc's cache hands
    // the same chunk back.
    let b = tracemalloc::__untraced(|| black_box(Box::new([2u8; 64])));
    let b_addr = &*b as *const [u8; 64] as usize;
    // The freed slot goes to the next traced block.
    let c = black_box(Box::new([3u8; 48]));
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + 48);
    drop(b);
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        baseline + 48,
        "the untraced block's free took another block's trace (same address as before: {})",
        a_addr == b_addr
    );
    drop(c);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    tracemalloc::stop();
}

/// The trailer of a traced block copied into an untraced block of the same
/// size (C code writing its usable area could do so): its check word is
/// for another address, so the untraced block's free takes nothing out.
fn forged_trailer_is_not_trusted() {
    let untraced = black_box(Box::new([0u8; 96]));
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let traced = black_box(Box::new([0u8; 96]));
    if GLIBC {
        let at = |b: &[u8; 96]| {
            let p = b.as_ptr().cast_mut();
            // SAFETY: a live block of glibc's `malloc`.
            let usable = unsafe { libc::malloc_usable_size(p.cast()) };
            // SAFETY: the last 8 bytes of its usable area.
            unsafe { p.add(usable - 8).cast::<u64>() }
        };
        // SAFETY: both places are inside live blocks' usable areas, past
        // their 96 bytes.
        unsafe { at(&untraced).write_unaligned(at(&traced).read_unaligned()) };
    }
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + 96);
    drop(untraced);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline + 96);
    drop(traced);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    tracemalloc::stop();
}

/// C measures, reallocates and frees blocks with a trailer, and the
/// program untracks them first: their traces go, glibc accepts them.
fn c_measures_and_frees_trailed_blocks() {
    common::start_with_trailers(4);
    let (baseline, _) = tracemalloc::get_traced_memory();
    let blocks: Vec<*mut u8> = (1..200)
        .map(|n| Box::into_raw(vec![n as u8; n].into_boxed_slice()).cast::<u8>())
        .collect();
    assert!(tracemalloc::get_traced_memory().0 > baseline);
    for (i, &p) in blocks.iter().enumerate() {
        let n = i + 1;
        tracemalloc::untrack(0, p as usize).unwrap();
        // SAFETY: a live block of `n` bytes from glibc's `malloc`, handed
        // to C, which owns it from here.
        unsafe {
            assert!(libc::malloc_usable_size(p.cast()) >= n);
            if n % 2 == 0 {
                let q = libc::realloc(p.cast(), 3 * n).cast::<u8>();
                assert!(!q.is_null());
                assert!(
                    std::slice::from_raw_parts(q, n)
                        .iter()
                        .all(|&b| b == n as u8)
                );
                libc::free(q.cast());
            } else {
                libc::free(p.cast());
            }
        }
    }
    // The vector of pointers is all that is left.
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        baseline + (blocks.capacity() * 8) as u64
    );
    drop(blocks);
    assert_eq!(tracemalloc::get_traced_memory().0, baseline);
    tracemalloc::stop();
}

/// `Config::block_headers`, deprecated, turns trailers on and off; the
/// default has them.
#[allow(deprecated)]
fn block_headers_is_an_alias() {
    for (config, on) in [
        (tracemalloc::Config::new(4).block_headers(false), false),
        (tracemalloc::Config::new(4).block_headers(true), GLIBC),
        (tracemalloc::Config::new(4), GLIBC),
        (tracemalloc::Config::new(4).history(true), GLIBC),
    ] {
        config.start().unwrap();
        assert_eq!(trailers_now(), on);
        tracemalloc::stop();
    }
}

/// The leading frames are calibrated once, in the first session (with
/// trailers here); with one frame kept, sessions with and without trailers
/// still attribute a block to the line that allocated it.
#[rustfmt::skip]
fn one_frame_points_at_the_line_either_way() {
    for trailers in [true, false, true] {
        tracemalloc::Config::new(1).block_trailers(trailers).start().unwrap();
        let (b, line) = (black_box(Box::new([0u8; 100])), line!());
        let (v, v_line) = (black_box(vec![0u8; 200_000]), line!());
        let snapshot = tracemalloc::take_snapshot().unwrap();
        assert_eq!(at_line(&snapshot, FILE, line), (100, 1), "trailers: {trailers}");
        assert_eq!(at_line(&snapshot, FILE, v_line), (200_000, 1), "trailers: {trailers}");
        drop((b, v));
        tracemalloc::stop();
    }
}
