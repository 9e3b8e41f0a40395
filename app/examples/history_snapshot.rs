//! Writes a small snapshot with an allocation history (`.tmsnap` version
//! 2), for the "metric" screenshot scene until the recorder writes
//! histories itself:
//!
//! ```text
//! cargo run -p tracemalloc-viewer --example history_snapshot -- OUT.tmsnap
//! ```
//!
//! The numbers are made up, not recorded: a log parser that keeps a cache
//! of parsed records, splits every line into short-lived tokens (the
//! churn and the temporaries), and reads one large batch that is freed
//! before the snapshot (the peak).

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use tracemalloc_format::{HistoryRow, Metadata, SnapshotBuilder, Timestamp, TracebackId};

/// One allocation site: its frames (most recent first) and its history.
struct Site {
    frames: &'static [(&'static str, u32, &'static str)],
    /// Live blocks at the snapshot, each `live_size` bytes.
    live: u64,
    live_size: u64,
    allocated_blocks: u64,
    allocated_bytes: u64,
    temporary_blocks: u64,
    temporary_bytes: u64,
    peak_blocks: u64,
    peak_bytes: u64,
}

const MAIN: (&str, u32, &str) = ("src/main.rs", 31, "logparse::main");
const RUN: (&str, u32, &str) = ("src/parser.rs", 18, "logparse::parser::run");

const SITES: &[Site] = &[
    // The cache of parsed records: kept, so live and at the peak.
    Site {
        frames: &[
            ("src/cache.rs", 42, "logparse::cache::Cache::insert"),
            RUN,
            MAIN,
        ],
        live: 2_000,
        live_size: 96,
        allocated_blocks: 2_400,
        allocated_bytes: 230_400,
        temporary_blocks: 0,
        temporary_bytes: 0,
        peak_blocks: 2_000,
        peak_bytes: 192_000,
    },
    // Tokens: one String per field of every line, dropped at once.
    Site {
        frames: &[
            ("src/tokenize.rs", 27, "logparse::tokenize::split"),
            RUN,
            MAIN,
        ],
        live: 0,
        live_size: 0,
        allocated_blocks: 1_200_000,
        allocated_bytes: 19_200_000,
        temporary_blocks: 1_150_000,
        temporary_bytes: 18_400_000,
        peak_blocks: 12,
        peak_bytes: 192,
    },
    // The field vector of every line, reallocated as it grows.
    Site {
        frames: &[
            ("src/tokenize.rs", 12, "logparse::tokenize::fields"),
            RUN,
            MAIN,
        ],
        live: 0,
        live_size: 0,
        allocated_blocks: 300_000,
        allocated_bytes: 14_400_000,
        temporary_blocks: 40_000,
        temporary_bytes: 1_920_000,
        peak_blocks: 1,
        peak_bytes: 48,
    },
    // One batch of lines read at once, freed before the snapshot.
    Site {
        frames: &[
            ("src/reader.rs", 55, "logparse::reader::read_batch"),
            RUN,
            MAIN,
        ],
        live: 0,
        live_size: 0,
        allocated_blocks: 4,
        allocated_bytes: 8_388_608,
        temporary_blocks: 0,
        temporary_bytes: 0,
        peak_blocks: 1,
        peak_bytes: 4_194_304,
    },
    // The line buffer, reused: allocated once, still live.
    Site {
        frames: &[("src/reader.rs", 21, "logparse::reader::Reader::new"), MAIN],
        live: 1,
        live_size: 65_536,
        allocated_blocks: 1,
        allocated_bytes: 65_536,
        temporary_blocks: 0,
        temporary_bytes: 0,
        peak_blocks: 1,
        peak_bytes: 65_536,
    },
    // The report's lines, formatted at the end.
    Site {
        frames: &[("src/report.rs", 9, "logparse::report::summary"), MAIN],
        live: 40,
        live_size: 120,
        allocated_blocks: 400,
        allocated_bytes: 48_000,
        temporary_blocks: 300,
        temporary_bytes: 36_000,
        peak_blocks: 0,
        peak_bytes: 0,
    },
];

fn main() -> Result<()> {
    let out: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: history_snapshot OUT.tmsnap")?;
    let mut b = SnapshotBuilder::new(16);
    for site in SITES {
        let frames = site
            .frames
            .iter()
            .map(|&(file, line, function)| b.intern_frame(file, line, Some(function)))
            .collect::<Result<Vec<_>, _>>()?;
        let tb: TracebackId = b.intern_traceback(&frames, None)?;
        for _ in 0..site.live {
            b.push_trace(0, site.live_size, tb)?;
        }
        b.push_history(HistoryRow {
            allocated_blocks: site.allocated_blocks,
            allocated_bytes: site.allocated_bytes,
            freed_blocks: site.allocated_blocks - site.live,
            temporary_blocks: site.temporary_blocks,
            temporary_bytes: site.temporary_bytes,
            peak_blocks: site.peak_blocks,
            peak_bytes: site.peak_bytes,
            ..HistoryRow::new(0, tb)
        })?;
    }
    let metadata = Metadata {
        producer: Some("history_snapshot example (made-up numbers)".to_owned()),
        timestamp: Some(Timestamp {
            unix_micros: 1_795_000_000_000_000,
        }),
        ..Metadata::default()
    };
    b.finish(metadata)
        .dump(&out)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}
