//! Any bytes as a pickle: the restricted reader must return a snapshot or an
//! error, never panic, hang, execute anything or allocate far more than the
//! input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracemalloc_format::{KeyType, pickle};

fuzz_target!(|bytes: &[u8]| {
    if let Ok(snapshot) = pickle::decode(bytes) {
        let _ = snapshot.statistics(KeyType::Filename, true);
        let _ = snapshot.to_tmsnap_bytes();
    }
});
