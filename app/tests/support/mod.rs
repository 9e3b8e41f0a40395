//! Snapshots for the UI tests: a small "leaky service" recorded five times,
//! written to a temporary folder, and a harness helper that waits for the
//! viewer's background threads.

#![allow(dead_code)]

pub mod cli;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use tracemalloc_format::{HistoryRow, Metadata, Snapshot, SnapshotBuilder, Timestamp};
use tracemalloc_viewer::viewer::{DialogKind, StartupOptions, ViewerApp};

/// The fake service's folder, relative: the viewer looks for relative
/// sources next to the opened snapshot files, where
/// [`write_leaky_series`] writes them.
pub const SRC: &str = "leaky_service";

/// Snapshot `n` (0-based) of a service whose cache grows every time, whose
/// request buffers stay the same and whose startup data shrinks; the
/// allocations pass through the Rust standard library, as a recording
/// that keeps std frames would have them.
pub fn leaky_snapshot(n: u64) -> Snapshot {
    let mut b = SnapshotBuilder::new(16);
    let f = |b: &mut SnapshotBuilder, file: &str, line: u32, func: &str| {
        b.intern_frame(file, line, Some(func))
            .expect("a small table")
    };
    let main = f(&mut b, &format!("{SRC}/src/main.rs"), 30, "leaky::main");
    let handle = f(
        &mut b,
        &format!("{SRC}/src/server.rs"),
        12,
        "leaky::server::handle",
    );
    let cache_put = f(
        &mut b,
        &format!("{SRC}/src/cache.rs"),
        8,
        "leaky::cache::Cache::put",
    );
    let buffer = f(
        &mut b,
        &format!("{SRC}/src/server.rs"),
        20,
        "leaky::server::read_request",
    );
    let startup = f(
        &mut b,
        &format!("{SRC}/src/config.rs"),
        5,
        "leaky::config::load",
    );
    let vec_push = f(
        &mut b,
        "/rustc/0123456789abcdef/library/alloc/src/vec/mod.rs",
        2430,
        "alloc::vec::Vec<T,A>::push",
    );
    let raw_vec = f(
        &mut b,
        "/rustc/0123456789abcdef/library/alloc/src/raw_vec.rs",
        480,
        "alloc::raw_vec::RawVec<T,A>::grow_one",
    );
    let cache_tb = b
        .intern_traceback(&[raw_vec, vec_push, cache_put, handle, main], Some(5))
        .expect("a small table");
    let buffer_tb = b
        .intern_traceback(&[raw_vec, buffer, handle, main], Some(4))
        .expect("a small table");
    let startup_tb = b
        .intern_traceback(&[vec_push, startup, main], Some(3))
        .expect("a small table");
    for _ in 0..(10 + 20 * n) {
        b.push_trace(0, 4096, cache_tb).expect("small sizes");
    }
    for _ in 0..8 {
        b.push_trace(0, 1024, buffer_tb).expect("small sizes");
    }
    for _ in 0..(5 - n.min(4)) {
        b.push_trace(0, 512, startup_tb).expect("small sizes");
    }
    b.finish(Metadata {
        timestamp: Some(Timestamp {
            unix_micros: 1_795_462_860_000_000 + n as i64 * 10_000_000,
        }),
        producer: Some("tests".to_owned()),
        ..Metadata::default()
    })
}

/// The fake service's cache.rs: line 8 is the leak.
pub const CACHE_RS: &str = r#"pub struct Cache { items: Vec<Vec<u8>> }
impl Cache {
    pub fn new() -> Cache {
        Cache { items: Vec::new() }
    }

    pub fn put(&mut self, item: Vec<u8>) {
        self.items.push(item); // never evicted
    }
}
"#;

/// Writes the five snapshots to `dir` as `leaky-1.tmsnap` … `leaky-5.tmsnap`,
/// and the service's cache.rs under `dir/leaky_service/src/`.
pub fn write_leaky_series(dir: &Path) -> Vec<PathBuf> {
    let src = dir.join(SRC).join("src");
    std::fs::create_dir_all(&src).expect("a writable temporary folder");
    std::fs::write(src.join("cache.rs"), CACHE_RS).expect("a writable temporary folder");
    (0..5)
        .map(|n| {
            let path = dir.join(format!("leaky-{}.tmsnap", n + 1));
            leaky_snapshot(n)
                .dump(&path)
                .expect("a writable temporary folder");
            path
        })
        .collect()
}

/// A recording with history: `src/keep.rs:3` keeps one of its two 100-byte
/// blocks; `src/parse.rs:9` allocated 1,000 temporary 16-byte blocks;
/// `src/spike.rs:5` allocated one 4 KiB block, live at the peak and freed
/// before the snapshot. `main.rs:1` calls all three.
pub fn write_history_snapshot(dir: &Path) -> PathBuf {
    let mut b = SnapshotBuilder::new(4);
    let main = b
        .intern_frame("src/main.rs", 1, Some("main"))
        .expect("a small snapshot in a writable temporary folder");
    let keep = b
        .intern_frame("src/keep.rs", 3, Some("keep"))
        .expect("a small snapshot in a writable temporary folder");
    let parse = b
        .intern_frame("src/parse.rs", 9, Some("parse"))
        .expect("a small snapshot in a writable temporary folder");
    let spike = b
        .intern_frame("src/spike.rs", 5, Some("spike"))
        .expect("a small snapshot in a writable temporary folder");
    let kept = b
        .intern_traceback(&[keep, main], None)
        .expect("a small snapshot in a writable temporary folder");
    let parsed = b
        .intern_traceback(&[parse, main], None)
        .expect("a small snapshot in a writable temporary folder");
    let spiked = b
        .intern_traceback(&[spike, main], None)
        .expect("a small snapshot in a writable temporary folder");
    b.push_trace(0, 100, kept)
        .expect("a small snapshot in a writable temporary folder");
    let rows = [
        HistoryRow {
            allocated_blocks: 2,
            allocated_bytes: 200,
            freed_blocks: 1,
            peak_blocks: 2,
            peak_bytes: 200,
            ..HistoryRow::new(0, kept)
        },
        HistoryRow {
            allocated_blocks: 1000,
            allocated_bytes: 16_000,
            freed_blocks: 1000,
            temporary_blocks: 1000,
            temporary_bytes: 16_000,
            peak_blocks: 1,
            peak_bytes: 16,
            ..HistoryRow::new(0, parsed)
        },
        HistoryRow {
            allocated_blocks: 1,
            allocated_bytes: 4096,
            freed_blocks: 1,
            peak_blocks: 1,
            peak_bytes: 4096,
            ..HistoryRow::new(0, spiked)
        },
    ];
    for row in rows {
        b.push_history(row)
            .expect("a small snapshot in a writable temporary folder");
    }
    let path = dir.join("history.tmsnap");
    b.finish(Metadata::default())
        .dump(&path)
        .expect("a small snapshot in a writable temporary folder");
    path
}

/// A harness on a viewer opened on `files`, settled.
pub fn viewer(files: Vec<PathBuf>) -> Harness<'static, ViewerApp> {
    viewer_in(files, egui::vec2(1400.0, 900.0), None)
}

/// A harness on a viewer opened on `files` in a window of `size`, settled;
/// with egui's memory of an earlier run when given, restored before the
/// app starts as eframe restores it.
pub fn viewer_in(
    files: Vec<PathBuf>,
    size: egui::Vec2,
    memory: Option<egui::Memory>,
) -> Harness<'static, ViewerApp> {
    let options = StartupOptions {
        files,
        dialog: DialogKind::InApp,
        ..StartupOptions::default()
    };
    let mut harness = Harness::builder()
        .with_size(size)
        // Frames as a real display paces them, so that two clicks in a
        // row make a double click.
        .with_step_dt(1.0 / 60.0)
        // At 60 steps a second, menus take a few steps to open.
        .with_max_steps(64)
        .build_eframe(move |cc| {
            if let Some(memory) = memory {
                cc.egui_ctx.memory_mut(|m| *m = memory);
            }
            ViewerApp::new(cc, options)
        });
    settle(&mut harness);
    harness
}

/// The names of the opened snapshots, in the list's order.
pub fn snapshot_names(harness: &Harness<'static, ViewerApp>) -> Vec<String> {
    harness
        .state()
        .state
        .session
        .snapshots()
        .iter()
        .map(|s| s.name())
        .collect()
}

/// Steps until the background threads are done and the UI is still.
pub fn settle(harness: &mut Harness<'static, ViewerApp>) {
    let start = Instant::now();
    loop {
        harness.step();
        if !harness.state().is_busy() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the viewer stays busy"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    // Let layout settle (menus, tables) and run the accessibility check.
    harness.run();
}
