//! The README's quick start: trace a program, write a snapshot, and print
//! the top allocation sites.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use tracemalloc_format::KeyType;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

fn run() -> Vec<String> {
    (0..10_000).map(|i| format!("item number {i}")).collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracemalloc::start(16)?; // or TRACEMALLOC=16 in the environment
    let kept = run();
    let snapshot = tracemalloc::take_snapshot()?;
    let path = std::env::temp_dir().join("quickstart.tmsnap");
    snapshot.dump(&path)?;

    println!("[ Top 5 ]");
    for stat in snapshot.statistics(KeyType::Lineno, false)?.iter().take(5) {
        println!("{stat}");
    }
    let (current, peak) = tracemalloc::get_traced_memory();
    println!(
        "traced: current={current} B, peak={peak} B; snapshot written to {}",
        path.display()
    );
    drop(kept);
    Ok(())
}
