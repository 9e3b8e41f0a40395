//! Any bytes through content detection, as `Snapshot::load` sees a file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracemalloc_format::Snapshot;

fuzz_target!(|bytes: &[u8]| {
    let _ = Snapshot::from_bytes(bytes);
});
