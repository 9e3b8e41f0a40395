//! The recorder's own memory, by part (`get_tracemalloc_memory_usage()`):
//! the tables that grow with the live blocks stay within 32 bytes per block,
//! the interned tracebacks are apart, the symbolizer gives back the debug
//! information it parsed once a snapshot is taken, and `clear_traces()`
//! frees the tables.

use std::hint::black_box;

use tracemalloc::MemoryUsage;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

/// What grows with the number of live blocks.
fn per_block_tables(usage: MemoryUsage) -> u64 {
    usage.address_table + usage.thread_tables + usage.block_trailers
}

#[test]
fn about_32_bytes_per_live_block_plus_the_tracebacks() {
    tracemalloc::start(8).unwrap();
    let empty = tracemalloc::get_tracemalloc_memory_usage();
    // Counts from 100 000 to 400 000 live blocks cover several rebuilds of
    // this thread's table (a hash table each about 1.45 times larger, or,
    // with block trailers, a block array 1.4 times larger), so the figures
    // below are over the whole cycle of their load.
    let mut blocks: Vec<Box<u64>> = Vec::with_capacity(400_000);
    let mut figures = Vec::new();
    for step in 0..=24u64 {
        let target = 100_000 + step * 12_500;
        while (blocks.len() as u64) < target {
            blocks.push(Box::new(blocks.len() as u64));
        }
        let usage = tracemalloc::get_tracemalloc_memory_usage();
        let per_block =
            (per_block_tables(usage) - per_block_tables(empty)) as f64 / blocks.len() as f64;
        figures.push(per_block);
        // All the blocks share a traceback or two: the store does not grow
        // with them.
        assert!(
            usage.tracebacks <= empty.tracebacks.max(256 * 1024),
            "{usage:?}"
        );
    }
    let mean = figures.iter().sum::<f64>() / figures.len() as f64;
    let worst = figures.iter().copied().fold(0.0, f64::max);
    let best = figures.iter().copied().fold(f64::MAX, f64::min);
    eprintln!(
        "address table + per-thread tables: {best:.1} to {worst:.1} bytes per live block, {mean:.1} on average"
    );
    // Without trailers, 16-byte slots cost 16 / 0.8 = 20 bytes per block
    // just before a rebuild and 16 * 9 / 5 = 28.8 just after. With them
    // (the system allocator on glibc), an 8-byte trailer and a 16-byte
    // array slot (address and record) cost 24 bytes per block just before
    // the array grows and 8 + 16 * 7 / 5 = 30.4 just after. Always within 32.
    assert!(
        mean <= 32.0,
        "{mean:.1} bytes per live block on average (figures {figures:.1?})"
    );
    assert!(
        worst <= 32.0,
        "{worst:.1} bytes per live block at worst (figures {figures:.1?})"
    );
    assert!(
        best >= 16.0,
        "{best:.1}: the tables cannot be smaller than their keys"
    );
    let usage = tracemalloc::get_tracemalloc_memory_usage();
    if usage.block_trailers > 0 {
        // Every block of the test has a trailer.
        assert!(usage.block_trailers >= 8 * blocks.len() as u64, "{usage:?}");
        assert!(best >= 24.0, "{best:.1}: a trailer and an array slot");
    }

    // Symbolizing for a snapshot parses the test binary's debug
    // information (tens of megabytes); it is released afterwards, and what
    // stays is the cache of resolved addresses.
    let snapshot = tracemalloc::take_snapshot().unwrap();
    // The test harness's own threads may have a few blocks too.
    assert!(snapshot.traces().len() >= blocks.len());
    let after = tracemalloc::get_tracemalloc_memory_usage();
    eprintln!("after a snapshot: {after:?}");
    assert!(
        after.symbolizer < 1024 * 1024,
        "the symbolizer keeps {} bytes",
        after.symbolizer
    );
    // The total is the sum of the parts. The test harness's threads may
    // allocate meanwhile (a new thread's table, say), and nothing here
    // shrinks, so the total lies between the sums before and after.
    let sum = |u: MemoryUsage| {
        u.address_table + u.thread_tables + u.block_trailers + u.tracebacks + u.symbolizer
    };
    let total = tracemalloc::get_tracemalloc_memory();
    let later = tracemalloc::get_tracemalloc_memory_usage();
    assert!(
        sum(after) <= total && total <= sum(later),
        "{total} is not the sum of the parts {after:?}"
    );
    drop(snapshot);

    drop(blocks);
    tracemalloc::clear_traces();
    let cleared = tracemalloc::get_tracemalloc_memory_usage();
    // The tables are freed (the per-thread ones shrink back to their first
    // size); the traceback store keeps its first chunks for reuse.
    assert!(
        cleared.address_table < empty.address_table + 64 * 1024,
        "{cleared:?} after clear_traces"
    );
    assert!(
        cleared.thread_tables < empty.thread_tables + 64 * 1024,
        "{cleared:?} after clear_traces, {empty:?} at first"
    );
    // The cleared arrays list no block with a trailer.
    assert!(
        cleared.block_trailers < 64 * 1024,
        "{cleared:?} after clear_traces"
    );
    tracemalloc::stop();
    black_box(cleared);

    // With allocation history, the same tables hold the blocks (the
    // history's counters are per traceback, in `tracebacks`).
    tracemalloc::Config::new(8).history(true).start().unwrap();
    let empty = tracemalloc::get_tracemalloc_memory_usage();
    let mut blocks: Vec<Box<u64>> = Vec::with_capacity(400_000);
    let mut worst = 0.0f64;
    for step in 0..=12u64 {
        let target = 100_000 + step * 25_000;
        while (blocks.len() as u64) < target {
            blocks.push(Box::new(blocks.len() as u64));
        }
        let usage = tracemalloc::get_tracemalloc_memory_usage();
        let per_block =
            (per_block_tables(usage) - per_block_tables(empty)) as f64 / blocks.len() as f64;
        worst = worst.max(per_block);
    }
    eprintln!("with history: {worst:.1} bytes per live block at worst");
    assert!(
        worst <= 32.0,
        "{worst:.1} bytes per live block with history"
    );
    drop(blocks);
    tracemalloc::stop();
}
