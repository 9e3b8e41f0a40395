//! Golden `.tmsnap` files: one per format version ever written, each read
//! back field by field, so that no later change of the reader loses the
//! ability to read an old file; and the current writer must reproduce the
//! current version's file byte for byte, so that no change of the format
//! slips in without a new version.
//!
//! To write the golden file of a new version (never to rewrite an old
//! one): `UPDATE_GOLDEN=1 cargo test -p tracemalloc-format --test golden`.

// Test helpers outside #[test] functions: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use tracemalloc_format::tmsnap::FORMAT_VERSION;
use tracemalloc_format::{
    Frame, HistoryRow, Metadata, Snapshot, SnapshotBuilder, Timestamp, Traceback,
};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The snapshot every golden file holds: every metadata field set, frames
/// with and without functions, tracebacks with and without total_nframe,
/// several domains, sizes past 2^32, a non-ASCII filename and a shared
/// traceback. From version 2 on it also has an allocation history, one row
/// of which belongs to a traceback with no live block.
fn expected(version: u32) -> Snapshot {
    let mut b = SnapshotBuilder::new(16);
    let main = b
        .intern_frame("/home/dev/app/src/main.rs", 42, Some("app::main"))
        .unwrap();
    let cache = b
        .intern_frame(
            "/home/dev/app/src/cache.rs",
            7,
            Some("app::cache::Cache::insert"),
        )
        .unwrap();
    let odd = b
        .intern_frame("/tmp/naïve dir/ünïcode.py", 3, None)
        .unwrap();
    let unknown = b.intern_frame("<unknown>", 0, Some("0x7f00dead")).unwrap();
    let t1 = b.intern_traceback(&[cache, main], Some(9)).unwrap();
    let t2 = b.intern_traceback(&[odd], None).unwrap();
    let t3 = b.intern_traceback(&[unknown, main], Some(2)).unwrap();
    b.push_trace(0, 4096, t1).unwrap();
    b.push_trace(0, 24, t1).unwrap();
    b.push_trace(0, 5_000_000_000, t3).unwrap();
    b.push_trace(2, 100, t2).unwrap();
    b.push_trace(7, 1, t3).unwrap();
    if version >= 2 {
        let freed = b.intern_traceback(&[odd, main], Some(2)).unwrap();
        b.set_history(Some(Timestamp {
            unix_micros: 1_795_462_859_000_001,
        }));
        b.push_history(HistoryRow {
            allocated_blocks: 7,
            allocated_bytes: 28_696,
            freed_blocks: 5,
            temporary_blocks: 1,
            temporary_bytes: 4096,
            peak_blocks: 3,
            peak_bytes: 12_288,
            ..HistoryRow::new(0, t1)
        })
        .unwrap();
        b.push_history(HistoryRow {
            allocated_blocks: 1 << 33,
            allocated_bytes: 5_000_000_000,
            freed_blocks: 1 << 33,
            temporary_blocks: (1 << 33) - 1,
            temporary_bytes: 4_999_999_000,
            peak_blocks: 1,
            peak_bytes: 1000,
            ..HistoryRow::new(2, freed)
        })
        .unwrap();
    }
    b.finish(Metadata {
        format_version: None,
        producer: Some("tracemalloc-rs golden".into()),
        pid: Some(4242),
        command_line: Some(vec!["app".into(), "--serve".into(), "ünï".into()]),
        timestamp: Some(Timestamp {
            unix_micros: 1_795_462_860_123_456,
        }),
        traced_current: Some(5_000_004_221),
        traced_peak: Some(6_000_000_000),
        tracemalloc_memory: Some(65_536),
        sampling_rate: Some(524_288),
    })
}

/// A history row with its traceback's frames in place of its id.
type HistoryContents = (Option<Timestamp>, Vec<(Traceback, [u64; 8])>);

/// What [`contents`] returns.
type Contents = (
    u32,
    Metadata,
    Vec<(u32, u64, Traceback)>,
    Option<HistoryContents>,
);

/// Everything a snapshot holds, in a comparable form.
fn contents(s: &Snapshot) -> Contents {
    let mut metadata = s.metadata().clone();
    metadata.format_version = None;
    let traces = s
        .traces()
        .iter()
        .map(|t| (t.domain, t.size, s.traceback(t.traceback)))
        .collect();
    let history = s.history().map(|h| {
        let rows = h
            .rows()
            .iter()
            .map(|r| {
                let counters = [
                    u64::from(r.domain),
                    r.allocated_blocks,
                    r.allocated_bytes,
                    r.freed_blocks,
                    r.temporary_blocks,
                    r.temporary_bytes,
                    r.peak_blocks,
                    r.peak_bytes,
                ];
                (s.traceback(r.traceback), counters)
            })
            .collect();
        (h.peak_timestamp, rows)
    });
    (s.traceback_limit(), metadata, traces, history)
}

#[test]
fn every_golden_version_reads() {
    // Add a line here for every new version; never remove one.
    for version in 1..=2u32 {
        let path = data(&format!("golden-v{version}.tmsnap"));
        let snapshot = Snapshot::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(snapshot.metadata().format_version, Some(version));
        assert_eq!(
            contents(&snapshot),
            contents(&expected(version)),
            "{}",
            path.display()
        );
        let first = snapshot.traceback(snapshot.traces()[0].traceback);
        assert_eq!(
            first.frames[0],
            Frame {
                filename: "/home/dev/app/src/cache.rs".into(),
                lineno: 7,
                function: Some("app::cache::Cache::insert".into()),
            }
        );
    }
}

#[test]
fn the_writer_reproduces_the_current_golden_file() {
    let path = data(&format!("golden-v{FORMAT_VERSION}.tmsnap"));
    let bytes = expected(FORMAT_VERSION).to_tmsnap_bytes();
    if std::env::var_os("UPDATE_GOLDEN").is_some() && !path.exists() {
        std::fs::write(&path, &bytes).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        golden == bytes,
        "the writer's output differs from {}: a format change needs a new FORMAT_VERSION and a new golden file",
        path.display()
    );
}
