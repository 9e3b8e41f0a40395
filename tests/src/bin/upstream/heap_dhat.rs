//! dhat-rs's own `examples/heap.rs` under dhat-rs (its `Alloc` and `Profiler`), through
//! `src/dhat_shim.rs`. scripts/compare_dhat.sh copies the file from Cargo's
//! registry into the folder named by `DHAT_UPSTREAM_EXAMPLES` and builds
//! this program with the `dhat-upstream` feature.

use tracemalloc_tests::dhat_shim::real as dhat;

include!(concat!(env!("DHAT_UPSTREAM_EXAMPLES"), "/heap.rs"));
