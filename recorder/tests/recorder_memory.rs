//! The recorder's own memory: at most 32 bytes per live block plus the
//! interned tracebacks, reported by `get_tracemalloc_memory()`, and given
//! back by `clear_traces()`.

use std::hint::black_box;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

#[test]
fn at_most_32_bytes_per_live_block() {
    tracemalloc::start(8).unwrap();
    let empty = tracemalloc::get_tracemalloc_memory();
    const N: usize = 300_000;
    let blocks: Vec<Box<u64>> = (0..N as u64).map(Box::new).collect();
    let full = tracemalloc::get_tracemalloc_memory();
    let per_block = (full - empty) as f64 / N as f64;
    // All the blocks share one traceback; the traceback store's first
    // chunks (about 160 KiB) are the "plus the interned tracebacks".
    let store = 256 * 1024;
    assert!(
        full - empty <= 32 * N as u64 + store,
        "{per_block:.1} bytes per live block ({empty} B empty, {full} B with {N} blocks)"
    );
    assert!(
        per_block >= 16.0,
        "{per_block:.1}: the tables cannot be smaller than the keys"
    );
    drop(blocks);
    tracemalloc::clear_traces();
    let cleared = tracemalloc::get_tracemalloc_memory();
    // The address table is freed; the traceback store keeps its first
    // chunks for reuse.
    assert!(
        cleared < empty + (full - empty) / 20,
        "{cleared} B after clear_traces, {full} B before"
    );
    tracemalloc::stop();
    black_box(cleared);
}
