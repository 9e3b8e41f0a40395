//! dhat-rs's own `examples/heap-testing.rs` under dhat-rs (its `Alloc` and `Profiler`), through
//! `src/dhat_shim.rs`. scripts/compare_dhat.sh copies the file from Cargo's
//! registry into the folder named by `DHAT_UPSTREAM_EXAMPLES` and builds
//! this program with the `dhat-upstream` feature.

// dhat-rs's code as it is: its vectors are what is measured, which clippy
// does not know.
#![allow(clippy::useless_vec)]

use tracemalloc_tests::dhat_shim::real as dhat;

include!(concat!(env!("DHAT_UPSTREAM_EXAMPLES"), "/heap-testing.rs"));
