//! Tracing sessions at the edge of the epoch counter's range (issue 12,
//! defect 3): `stop`/`start` and `clear_traces` advance a counter kept
//! beside a flag (blocks get trailers; block headers and their second
//! flag then). Past 2^30 sessions a 30-bit counter carried into the flags:
//! new blocks lost their headers, and a later free of an old block with a
//! header aborted. The counter is set near the old edges through a test
//! hook, and blocks with and without a trailer cross those edges.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;

fn main() {
    common::run_tests(&[(
        "sessions_cross_the_counter_edges",
        sessions_cross_the_counter_edges,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

/// Whether a block allocated now gets a trailer.
fn trailers_now() -> bool {
    let before = tracemalloc::get_tracemalloc_memory_usage().block_trailers;
    let b = black_box(Box::new([0u8; 40]));
    let on = tracemalloc::get_tracemalloc_memory_usage().block_trailers > before;
    drop(b);
    on
}

fn sessions_cross_the_counter_edges() {
    common::start_with_trailers(4);
    let trailers = trailers_now();
    // Glibc gives trailers; elsewhere the test still checks the counting.
    assert!(!cfg!(all(target_os = "linux", target_env = "gnu")) || trailers);
    tracemalloc::stop();
    for edge in [1u64 << 29, 1 << 30, 1 << 31, 1 << 32] {
        assert!(tracemalloc::__set_epoch_counter(edge - 6));
        // Blocks of every session live across the edge.
        let mut kept: Vec<Box<[u8; 64]>> = Vec::new();
        for round in 0..6 {
            common::start_with_trailers(4);
            assert_eq!(
                trailers_now(),
                trailers,
                "edge {edge}, round {round}: trailers"
            );
            let (baseline, _) = tracemalloc::get_traced_memory();
            let b = black_box(Box::new([round as u8; 64]));
            assert_eq!(
                tracemalloc::get_traced_memory().0,
                baseline + 64,
                "edge {edge}, round {round}"
            );
            drop(b);
            assert_eq!(
                tracemalloc::get_traced_memory().0,
                baseline,
                "edge {edge}, round {round}"
            );
            kept.push(black_box(Box::new([round as u8; 64])));
            tracemalloc::clear_traces();
            kept.push(black_box(Box::new([round as u8; 64])));
            tracemalloc::stop();
        }
        for (i, b) in kept.iter().enumerate() {
            assert!(
                b.iter().all(|&x| x == (i / 2) as u8),
                "block {i} kept its contents"
            );
        }
        // Freed in later sessions than their own: not counted, no abort.
        common::start_with_trailers(4);
        let (baseline, _) = tracemalloc::get_traced_memory();
        drop(kept);
        assert_eq!(tracemalloc::get_traced_memory().0, baseline);
        tracemalloc::stop();
    }
}
