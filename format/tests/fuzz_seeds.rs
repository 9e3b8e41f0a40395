//! Replays the committed fuzz seeds (format/fuzz/seeds/) through the same
//! checks as the fuzz targets, so that every `cargo test` exercises the
//! corpus and any input that once found a bug stays fixed.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use tracemalloc_format::{KeyType, Metric, Snapshot, pickle, tmsnap};

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

/// What the fuzz targets check of a decoded snapshot: it can be analysed,
/// and it re-encodes to a file that decodes to the same traces.
fn check_usable(snapshot: &Snapshot) {
    snapshot.statistics(KeyType::Lineno, true).unwrap();
    let again = tmsnap::decode(&snapshot.to_tmsnap_bytes()).unwrap();
    assert_eq!(again.traces().len(), snapshot.traces().len());
    assert_eq!(again.totals(), snapshot.totals());
    assert_eq!(again.history().is_some(), snapshot.history().is_some());
    if snapshot.history().is_some() {
        for metric in Metric::ALL {
            snapshot
                .statistics_by(metric, KeyType::Lineno, true)
                .unwrap();
            assert_eq!(
                again.totals_by(metric).unwrap(),
                snapshot.totals_by(metric).unwrap()
            );
        }
    }
}

#[test]
fn tmsnap_seeds_decode_or_fail_cleanly() {
    let seeds = seeds("tmsnap");
    assert!(seeds.len() >= 10, "the seed corpus is missing");
    let mut decoded = 0;
    for (path, body) in &seeds {
        let mut bytes = tmsnap::MAGIC.to_vec();
        bytes.extend_from_slice(&tmsnap::FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(body);
        match tmsnap::decode(&bytes) {
            Ok(snapshot) => {
                check_usable(&snapshot);
                decoded += 1;
            }
            Err(e) => assert!(!e.to_string().is_empty(), "{}", path.display()),
        }
    }
    // The corpus holds valid files too (the golden body at least), so the
    // successful path is exercised.
    assert!(decoded >= 1);
}

#[test]
fn pickle_seeds_decode_or_fail_cleanly() {
    for (_, bytes) in seeds("pickle") {
        if let Ok(snapshot) = pickle::decode(&bytes) {
            check_usable(&snapshot);
        }
    }
}

#[test]
fn load_seeds_decode_or_fail_cleanly() {
    for (_, bytes) in seeds("load") {
        if let Ok(snapshot) = Snapshot::from_bytes(&bytes) {
            check_usable(&snapshot);
        }
    }
}
