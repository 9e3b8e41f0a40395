//! `track()` / `untrack()`: memory that does not come from the global
//! allocator, in domains of its own (CPython's `PyTraceMalloc_Track`).

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use common::{assert_consistent, at_line};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/domains.rs";

/// Pretend GPU buffers: addresses that are not heap memory at all.
const GPU: u32 = 7;
const MMAP: u32 = 3;

// Without libtest: its threads allocate while tests run (see
// `common::run_tests`).
fn main() {
    common::run_tests(&[("track_and_untrack_in_domains", track_and_untrack_in_domains)]);
}

// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn track_and_untrack_in_domains() {
    assert!(matches!(
        tracemalloc::track(GPU, 0x1000, 10),
        Err(tracemalloc::Error::NotTracing)
    ));
    assert!(tracemalloc::untrack(GPU, 0x1000).is_err());

    tracemalloc::start(4).unwrap();
    let (before, _) = tracemalloc::get_traced_memory();
    let gpu_line = line!(); tracemalloc::track(GPU, 0x1000, 1 << 20).unwrap();
    let mmap_line = line!(); tracemalloc::track(MMAP, 0x1000, 4096).unwrap();
    // The same address in another domain is another block.
    assert_eq!(
        tracemalloc::get_traced_memory().0,
        before + (1 << 20) + 4096
    );

    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    let mut domains: Vec<(u32, u64)> = snapshot
        .traces()
        .iter()
        .filter(|t| t.domain != 0)
        .map(|t| (t.domain, t.size))
        .collect();
    domains.sort();
    assert_eq!(domains, [(MMAP, 4096), (GPU, 1 << 20)]);
    drop(domains);
    assert_eq!(at_line(&snapshot, FILE, gpu_line), (1 << 20, 1));
    assert_eq!(at_line(&snapshot, FILE, mmap_line), (4096, 1));
    // The format crate's domain filter sees them.
    let only_gpu = snapshot.filter_traces(&[tracemalloc_format::DomainFilter {
        inclusive: true,
        domain: GPU,
    }
    .into()]);
    assert_eq!(only_gpu.total_size(), 1 << 20);
    drop(only_gpu);

    // Tracking again replaces (new size, new traceback).
    let again_line = line!(); tracemalloc::track(GPU, 0x1000, 5000).unwrap();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, gpu_line), (0, 0));
    assert_eq!(at_line(&snapshot, FILE, again_line), (5000, 1));
    assert_eq!(tracemalloc::get_traced_memory().0, before + 5000 + 4096);

    // A heap free of the same address does not touch other domains.
    tracemalloc::untrack(0, 0x1000).unwrap();
    assert_eq!(tracemalloc::get_traced_memory().0, before + 5000 + 4096);

    tracemalloc::untrack(GPU, 0x1000).unwrap();
    tracemalloc::untrack(GPU, 0x1000).unwrap(); // already gone: fine
    tracemalloc::untrack(MMAP, 0x1000).unwrap();
    assert_eq!(tracemalloc::get_traced_memory().0, before);

    // Huge regions (4 GiB and more) are counted exactly too.
    let huge = 6usize << 30;
    tracemalloc::track(MMAP, 0x7000_0000, huge).unwrap();
    assert_eq!(tracemalloc::get_traced_memory().0, before + huge as u64);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert!(
        snapshot
            .traces()
            .iter()
            .any(|t| t.size == huge as u64 && t.domain == MMAP)
    );
    tracemalloc::untrack(MMAP, 0x7000_0000).unwrap();
    assert_eq!(tracemalloc::get_traced_memory().0, before);
    tracemalloc::stop();
}
