//! Any bytes after the .tmsnap header: the decoder must return a snapshot or
//! an error, never panic, hang or allocate far more than the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracemalloc_format::{KeyType, Metric, tmsnap};

fuzz_target!(|body: &[u8]| {
    let mut bytes = tmsnap::MAGIC.to_vec();
    bytes.extend_from_slice(&tmsnap::FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(body);
    if let Ok(snapshot) = tmsnap::decode(&bytes) {
        // Whatever decodes must be usable: analysis and re-encoding too.
        let _ = snapshot.statistics(KeyType::Lineno, true);
        let again = tmsnap::decode(&snapshot.to_tmsnap_bytes()).expect("re-encoded snapshot decodes");
        assert_eq!(again.traces().len(), snapshot.traces().len());
        for metric in Metric::ALL {
            let _ = snapshot.statistics_by(metric, KeyType::Lineno, true);
            assert_eq!(again.totals_by(metric).ok(), snapshot.totals_by(metric).ok());
        }
    }
});
