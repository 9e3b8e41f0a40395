//! The programs of `src/dhat_examples.rs` under dhat-rs (its `Alloc` and
//! `Profiler`), one per run: `dhat_examples_dhat PROGRAM`. The profile is written to the
//! current directory (see `src/dhat_shim.rs`); `tests/dhat_agreement.rs`
//! compares it with the other profiler's.

use tracemalloc_tests::dhat_shim::real as dhat;

#[path = "../dhat_examples.rs"]
mod dhat_examples;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn main() {
    dhat_examples::run("dhat_examples_dhat");
}
