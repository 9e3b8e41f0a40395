//! The programs of `src/dhat_examples.rs` under the recorder
//! (`TracingAllocator` with allocation history), one per run:
//! `dhat_examples_ours PROGRAM`. The profile is written to the current
//! directory (see `src/dhat_shim.rs`);
//! `tests/dhat_agreement.rs` compares it with the other profiler's.

use tracemalloc_tests::dhat_shim::ours as dhat;

#[path = "../dhat_examples.rs"]
mod dhat_examples;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    match dhat_examples::PROGRAMS.iter().find(|(n, _)| *n == name) {
        Some((_, program)) => program(),
        None => {
            let names: Vec<&str> = dhat_examples::PROGRAMS.iter().map(|(n, _)| *n).collect();
            eprintln!(
                "usage: dhat_examples_ours PROGRAM (one of: {})",
                names.join(", ")
            );
            std::process::exit(2);
        }
    }
}
