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
    dhat_examples::run("dhat_examples_ours");
}
