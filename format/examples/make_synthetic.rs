//! Writes a pair of large synthetic snapshots for measurements:
//!
//! ```text
//! cargo run --release -p tracemalloc-format --example make_synthetic -- [OUT_DIR] [TRACES]
//! ```
//!
//! writes OUT_DIR/synthetic-old.tmsnap and OUT_DIR/synthetic-new.tmsnap
//! (default target/large, 1,000,000 traces each), the same snapshots the
//! criterion benches measure.

#[path = "../benches/support/synthetic.rs"]
mod synthetic;

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/large".into()));
    let traces: usize = match args.next() {
        Some(n) => n.parse()?,
        None => 1_000_000,
    };
    std::fs::create_dir_all(&dir)?;
    for (name, seed, leak) in [("old", 1, false), ("new", 2, true)] {
        let path = dir.join(format!("synthetic-{name}.tmsnap"));
        synthetic::synthetic(seed, traces, leak).dump(&path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
