//! The README's allocation-history example: a program that allocates
//! often, makes temporaries and frees a spike before the snapshot. Prints
//! the top lines by each metric, as `tracemalloc-viewer stats --metric`
//! does with the snapshot it writes.
//!
//! ```text
//! cargo run --example history
//! ```

use std::hint::black_box;

use tracemalloc_format::{KeyType, Metric, Statistic};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

/// Splits a line into words: a temporary `Vec` per call.
fn count_words(line: &str) -> usize {
    let words: Vec<&str> = line.split(' ').collect();
    words.len()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // or TRACEMALLOC=16 TRACEMALLOC_HISTORY=1 in the environment
    tracemalloc::Config::new(16).history(true).start()?;
    let mut lengths = Vec::new();
    for i in 0..10_000 {
        let line = format!("item {i} of the list");
        lengths.push(count_words(&line));
    }
    let spike: Vec<u64> = (0..1_000_000).map(black_box).collect();
    drop(spike);

    let snapshot = tracemalloc::take_snapshot()?;
    let path = std::env::temp_dir().join("history.tmsnap");
    snapshot.dump(&path)?;
    for (title, metric, by_count) in [
        ("allocations", Metric::Allocated, true),
        ("temporary", Metric::Temporary, true),
        ("peak", Metric::Peak, false),
    ] {
        let mut stats = snapshot.statistics_by(metric, KeyType::Lineno, false)?;
        if by_count {
            stats.sort_by(Statistic::cmp_by_count);
        }
        println!("[ Top 3 lines, --metric {title} ]");
        for stat in stats.iter().take(3) {
            println!("{stat}");
        }
    }
    println!("snapshot written to {}", path.display());
    black_box(lengths);
    Ok(())
}
