//! End to end: a program profiled by dhat-rs writes its `dhat-heap.json`,
//! and the format crate reads it back with exactly the totals dhat counted,
//! at the global peak and at the end, attributed to the lines that
//! allocated; the CLI prints and converts it.
//!
//! This file is its own test binary without the test harness
//! (`harness = false` in Cargo.toml): dhat-rs profiles every allocation of
//! the process, and the harness's threads would allocate too, while the
//! profile is being taken.

// A test without the harness: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use clap::Parser;
use tracemalloc_format::dhat::DhatPoint;
use tracemalloc_format::{KeyType, LoadOptions, Snapshot, Totals};
use tracemalloc_viewer::cli::{Args, run};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Blocks that stay live until the profile is written, and the line that
/// allocated them.
#[inline(never)]
fn keep() -> (Vec<Box<[u8]>>, u32) {
    let mut kept = Vec::with_capacity(4);
    let line = line!() + 2;
    for i in 0..4 {
        kept.push(vec![i as u8; 3000].into_boxed_slice());
    }
    (kept, line)
}

/// A peak that is freed before the end.
#[inline(never)]
fn peak() -> u64 {
    let buffers: Vec<Vec<u8>> = (0..16).map(|i| vec![i as u8; 8192]).collect();
    buffers.iter().map(|b| b.len() as u64).sum()
}

fn main() {
    // Everything the profile must not see is made before it starts.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dhat-heap.json");
    let profiler = dhat::Profiler::builder().file_name(&path).build();
    let (kept, kept_line) = keep();
    let peak_bytes = peak();
    let stats = dhat::HeapStats::get();
    drop(profiler);
    drop(kept);
    assert_eq!(peak_bytes, 16 * 8192);

    let peak = Snapshot::load(&path).unwrap();
    assert_eq!(
        peak.totals(),
        Totals {
            size: stats.max_bytes as u64,
            count: stats.max_blocks as u64
        },
        "the global peak, as dhat counted it"
    );
    let end = Snapshot::load_with(
        &path,
        &LoadOptions {
            dhat_point: DhatPoint::End,
        },
    )
    .unwrap();
    assert_eq!(
        end.totals(),
        Totals {
            size: stats.curr_bytes as u64,
            count: stats.curr_blocks as u64
        },
        "the end, as dhat counted it"
    );
    // What this program kept: four 3000-byte slices and their vector.
    assert_eq!(end.totals().size, 4 * 3000 + 4 * 16);
    assert!(peak.totals().size >= end.totals().size + 16 * 8192);

    // The standard library's frames hidden, as the viewer does, the kept
    // slices are attributed to the line that made them.
    let lines = end
        .with_default_trim()
        .unwrap()
        .statistics(KeyType::Lineno, false)
        .unwrap();
    let top = &lines[0].traceback.frames[0];
    assert!(top.filename.ends_with("dhat_profile.rs"), "{top}");
    assert_eq!(top.lineno, kept_line);
    assert_eq!(top.function.as_deref(), Some("dhat_profile::keep"));
    assert_eq!((lines[0].size, lines[0].count), (12_000, 4));

    // The CLI reads it like any snapshot, and converts it.
    let cli = |args: &[&str]| {
        let args = Args::try_parse_from(args).unwrap();
        let mut out = Vec::new();
        run(args.command.as_ref().unwrap(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let file = path.to_str().unwrap();
    let text = cli(&["tracemalloc-viewer", "stats", file, "--dhat-point", "end"]);
    assert!(
        text.ends_with(&format!(
            "Total allocated size: {} in 5 blocks\n",
            tracemalloc_format::format_size((4 * 3000 + 4 * 16) as f64, false)
        )),
        "{text}"
    );
    let info = cli(&["tracemalloc-viewer", "info", file]);
    assert!(info.contains("Format:             DHAT JSON\n"), "{info}");
    assert!(
        info.contains("Producer:           dhat-rs heap profile, t-gmax: the global peak at "),
        "{info}"
    );
    let converted = dir.path().join("peak.tmsnap");
    cli(&[
        "tracemalloc-viewer",
        "convert",
        file,
        converted.to_str().unwrap(),
    ]);
    assert_eq!(Snapshot::load(&converted).unwrap().totals(), peak.totals());
    eprintln!("tests/dhat_profile.rs: ok");
}
