//! The viewer's depth features, driven by label through AccessKit as a
//! user would: the timeline and the growth ranking, opening and watching a
//! folder, the (diff) flame graph, the annotated source, DHAT profiles and
//! the exports. Headless: no GPU or display needed.

// Helpers outside #[test] functions unwrap too: a panic there is a test
// failure with a message, which is what we want.
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use tracemalloc_format::{Metadata, Snapshot, SnapshotBuilder, Timestamp};
use tracemalloc_viewer::viewer::export::ExportKind;
use tracemalloc_viewer::viewer::{Command, DialogKind, StartupOptions, ViewerApp};

use support::{settle, snapshot_names, viewer, write_leaky_series};

const CACHE_ROW: &str = "leaky_service/src/cache.rs:8  Cache::put";

/// A harness on a viewer opened on `files`, watching folders every 50 ms.
fn viewer_fast_watch(files: Vec<PathBuf>) -> Harness<'static, ViewerApp> {
    viewer_with(files, true)
}

/// [`viewer_fast_watch`], where `accessibility_check` can be turned off
/// for tests that show the in-app file browser: its path and file name
/// boxes (egui_file's own widgets, not ours) have no accessible name.
fn viewer_with(files: Vec<PathBuf>, accessibility_check: bool) -> Harness<'static, ViewerApp> {
    let options = StartupOptions {
        files,
        dialog: DialogKind::InApp,
        watch_interval: Duration::from_millis(50),
        ..StartupOptions::default()
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_step_dt(1.0 / 60.0)
        .with_max_steps(64)
        .with_accessibility_check(accessibility_check)
        .build_eframe(move |cc| ViewerApp::new(cc, options));
    settle(&mut harness);
    harness
}

fn click(harness: &mut Harness<'static, ViewerApp>, label: &str) {
    harness.get_by_label(label).click();
    settle(harness);
}

/// A primary click at a point, as the mouse makes it.
fn click_at(harness: &mut Harness<'static, ViewerApp>, pos: egui::Pos2) {
    harness.hover_at(pos);
    harness.step();
    for pressed in [true, false] {
        harness.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
    }
    settle(harness);
}

/// Snapshot `n` of a program with a steady leak (4 KiB more every time),
/// a noisy cache that grows far more overall but shrank once, and a
/// stable pool.
fn steady_leak_snapshot(n: usize) -> Snapshot {
    let noisy = [0u64, 64, 16, 96, 160, 200];
    let mut b = SnapshotBuilder::new(8);
    let main = b.intern_frame("src/main.rs", 5, Some("app::main")).unwrap();
    let steady = b
        .intern_frame("src/steady.rs", 3, Some("app::steady::grow"))
        .unwrap();
    let cache = b
        .intern_frame("src/noisy.rs", 9, Some("app::noisy::fill"))
        .unwrap();
    let pool = b
        .intern_frame("src/pool.rs", 2, Some("app::pool::new"))
        .unwrap();
    let tb = |b: &mut SnapshotBuilder, f| b.intern_traceback(&[f, main], None).unwrap();
    let (steady_tb, cache_tb, pool_tb) = (tb(&mut b, steady), tb(&mut b, cache), tb(&mut b, pool));
    for _ in 0..=n {
        b.push_trace(0, 4096, steady_tb).unwrap();
    }
    for _ in 0..noisy[n] {
        b.push_trace(0, 1024, cache_tb).unwrap();
    }
    for _ in 0..10 {
        b.push_trace(0, 2048, pool_tb).unwrap();
    }
    b.finish(Metadata {
        timestamp: Some(Timestamp {
            unix_micros: 1_795_462_860_000_000 + n as i64 * 60_000_000,
        }),
        ..Metadata::default()
    })
}

fn write_steady_series(dir: &Path, count: usize) -> Vec<PathBuf> {
    (0..count)
        .map(|n| {
            let path = dir.join(format!("app-{:04}.tmsnap", n + 1));
            steady_leak_snapshot(n).dump(&path).unwrap();
            path
        })
        .collect()
}

#[test]
fn the_timeline_appears_with_three_snapshots_and_ranks_a_steady_leak_first() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_steady_series(dir.path(), 6);
    // Two snapshots: the comparison says it all, no timeline.
    let harness = viewer(files[..2].to_vec());
    assert!(harness.query_by_label_contains("Timeline (").is_none());
    drop(harness);

    let mut harness = viewer(files);
    click(&mut harness, "Timeline (6 snapshots)");
    harness.get_by_label("Total size");
    harness.get_by_label("Blocks");
    harness.get_by_label("Growing");
    harness.get_by_label("2 of 3 groups grew; steadiest first");
    // The panel's layout is stable: nothing in it is taller or wider than
    // its place, which would make it grow from one frame to the next.
    let before = harness.get_by_label("Growing").rect();
    harness.run_steps(10);
    assert_eq!(harness.get_by_label("Growing").rect(), before);
    // The steady leak is first, above the noisy cache that grew 50 times
    // more but not in every interval.
    // The ranking is narrow beside the details panel: files by name.
    let steady = harness.get_by_label("steady.rs:3").rect();
    let noisy = harness.get_by_label("noisy.rs:9").rect();
    assert!(steady.top() < noisy.top(), "{steady:?} {noisy:?}");
    harness.get_by_label("5/5");
    harness.get_by_label("4/5");
    // Beside the details panel the ranking is too narrow for a rate
    // column (see the end).
    assert!(harness.query_by_label("+4096 B/min").is_none());
    let state = &harness.state().state;
    let timeline = &state.timeline.as_ref().unwrap().timeline;
    assert_eq!(
        timeline.source_text(timeline.ranking()[0].group),
        "src/steady.rs:3"
    );

    // Clicking it selects it in the table and draws its series.
    click(&mut harness, "steady.rs:3");
    let selected = harness.state().state.table.selected.clone().unwrap();
    assert_eq!(selected.to_string(), "src/steady.rs:3");
    assert!(harness.state().state.selected_position().is_some());
    harness.get_by_label("#0  app::steady::grow\n      src/steady.rs:3");
    assert!(
        harness
            .query_all_by_label("Selected: src/steady.rs:3")
            .next()
            .is_some(),
        "the plots' legends name the selected series"
    );

    // Without the details panel, the ranking has room for the rate: 20 KiB
    // over five minutes.
    harness.state_mut().apply(Command::ShowDetails(false));
    settle(&mut harness);
    harness.get_by_label("+4096 B/min");
}

#[test]
fn the_ranking_follows_the_grouping() {
    let (dir, files) = {
        let dir = tempfile::tempdir().unwrap();
        let files = write_leaky_series(dir.path());
        (dir, files)
    };
    let mut harness = viewer(files);
    click(&mut harness, "Timeline (5 snapshots)");
    harness
        .get_by_role_and_label(Role::Button, "Traceback")
        .click();
    settle(&mut harness);
    let timeline = &harness.state().state.timeline.as_ref().unwrap().timeline;
    assert_eq!(
        timeline.source_text(timeline.ranking()[0].group),
        "leaky_service/src/cache.rs:8 ← leaky_service/src/server.rs:12 ← leaky_service/src/main.rs:30"
    );
    // The ranking's row and the table's.
    assert_eq!(
        harness
            .query_all_by_label("cache.rs:8 ← server.rs:12 ← main.rs:30")
            .count(),
        2
    );
    drop(dir);
}

#[test]
fn a_folder_opens_every_snapshot_and_watching_adds_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_steady_series(dir.path(), 3);
    std::fs::write(dir.path().join("README.txt"), b"not a snapshot").unwrap();
    let mut harness = viewer_fast_watch(vec![dir.path().to_owned()]);
    let names = snapshot_names(&harness);
    assert_eq!(
        names,
        ["app-0001.tmsnap", "app-0002.tmsnap", "app-0003.tmsnap"]
    );
    harness.get_by_label("Timeline (3 snapshots)");
    // A folder is a series: its timeline is shown at once.
    assert!(harness.state().state.timeline_shown());
    harness.get_by_label("Growing");

    click(&mut harness, "Watch for new snapshots");
    assert!(harness.state().state.watching);
    // The program writes its next snapshot.
    steady_leak_snapshot(3)
        .dump(dir.path().join("app-0004.tmsnap"))
        .unwrap();
    let start = Instant::now();
    while harness.state().state.session.snapshots().len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the new snapshot never came"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    settle(&mut harness);
    let state = &harness.state().state;
    // Still showing the newest, compared to the oldest.
    assert_eq!(state.current_snapshot().unwrap().name(), "app-0004.tmsnap");
    assert_eq!(state.compare_snapshot().unwrap().name(), "app-0001.tmsnap");
    harness.get_by_label("Timeline (4 snapshots)");
    harness.get_by_label("1 new snapshot in the watched folder");

    click(&mut harness, "Watch for new snapshots");
    assert!(!harness.state().state.watching);
}

#[test]
fn the_diff_flame_graph_zooms_on_click_and_highlights() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = viewer(write_leaky_series(dir.path()));
    click(&mut harness, "Flame graph");
    {
        let state = &harness.state().state;
        let flame = state.result.as_ref().unwrap().flame.as_ref().unwrap();
        let tree = &flame.tree;
        assert!(tree.is_comparison());
        // Std frames hidden, as in the table: main, handle, put.
        let labels: Vec<String> = (0..tree.len()).map(|i| tree.label(i)).collect();
        assert_eq!(
            labels,
            [
                "all",
                "leaky::main",
                "leaky::server::handle",
                "leaky::cache::Cache::put",
                "leaky::server::read_request",
                "leaky::config::load"
            ]
        );
        // The leak is the largest growth: the reddest frame.
        assert_eq!(tree.growth(3), 1.0);
        assert!(tree.growth(5) < 0.0);
    }
    harness.get_by_label("■ grew");
    harness.get_by_label_contains("All: 368 KiB in 99 blocks");

    // Row 3 (depth 3) holds Cache::put on the left, almost full width.
    let graph = harness
        .get_by_role_and_label(Role::Image, "Flame graph")
        .rect();
    click_at(
        &mut harness,
        egui::pos2(graph.left() + graph.width() * 0.3, graph.top() + 3.5 * 20.0),
    );
    let zoom = harness.state().state.flame.zoom.clone().unwrap();
    let functions: Vec<&str> = zoom
        .iter()
        .map(|f| f.function.as_deref().unwrap())
        .collect();
    assert_eq!(
        functions,
        [
            "leaky::main",
            "leaky::server::handle",
            "leaky::cache::Cache::put"
        ]
    );
    harness.get_by_label_contains("Zoomed on leaky::cache::Cache::put — 360 KiB");

    // Clicking the root zooms back out.
    let graph = harness
        .get_by_role_and_label(Role::Image, "Flame graph")
        .rect();
    click_at(
        &mut harness,
        egui::pos2(graph.center().x, graph.top() + 10.0),
    );
    assert!(harness.state().state.flame.zoom.is_none());

    // The search highlights the matching frames and says how much they hold.
    harness
        .get_by_role_and_label(Role::TextInput, "Highlight")
        .focus();
    harness.step();
    harness
        .get_by_role_and_label(Role::TextInput, "Highlight")
        .type_text("config");
    settle(&mut harness);
    harness.get_by_label("1 frame matches: 512 B (0.1 %)");

    // Blocks instead of bytes (the weight's button, not the timeline's
    // "Blocks" plot title: five files open on the timeline).
    harness
        .query_all_by_label("Blocks")
        .find(|node| node.accesskit_node().role() != Role::Label)
        .expect("the flame graph's Blocks button")
        .click();
    settle(&mut harness);
    let tree = &harness
        .state()
        .state
        .result
        .as_ref()
        .unwrap()
        .flame
        .as_ref()
        .unwrap()
        .tree;
    assert_eq!(tree.value(0), 99);
}

#[test]
fn the_annotated_source_shows_the_bytes_on_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = viewer(write_leaky_series(dir.path()));
    click(&mut harness, CACHE_ROW);
    harness.get_by_label("In this file: 360 KiB in 90 blocks (+320 KiB, +80 blocks)");
    harness
        .get_by_label("line 8: 360 KiB in 90 blocks here (+320 KiB); 360 KiB through (+320 KiB)");
    assert!(harness.query_by_label_contains("line 7:").is_none());
    let annotation = harness
        .state()
        .state
        .result
        .as_ref()
        .unwrap()
        .annotation
        .clone()
        .unwrap();
    assert_eq!(annotation.filename(), "leaky_service/src/cache.rs");
    assert_eq!(annotation.lines().len(), 1);
    assert_eq!(annotation.lines()[0].lineno, 8);
}

/// A fixture of the format crate's DHAT tests.
fn dhat_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../format/tests/data/dhat")
        .join(name)
}

#[test]
fn a_dhat_profile_from_the_dhat_crate_opens_at_either_point() {
    let mut harness = viewer(vec![dhat_fixture("dhat-rs-heap.json")]);
    {
        let state = &harness.state().state;
        let shown = state.current_snapshot().unwrap();
        assert_eq!(shown.name(), "dhat-rs-heap.json (t-gmax)");
        assert_eq!(
            (shown.info.total.size, shown.info.total.count),
            (37_032, 14)
        );
        // dhat-rs keeps the standard library's frames: hidden by default.
        assert!(shown.info.has_hideable_frames);
        let result = state.result.as_ref().unwrap();
        assert_eq!(
            result.view.source_text(result.order[0] as usize),
            "src/main.rs:33"
        );
    }
    harness.get_by_label("DHAT at");
    click(&mut harness, "t-end");
    let state = &harness.state().state;
    assert_eq!(state.session.snapshots().len(), 1);
    let shown = state.current_snapshot().unwrap();
    assert_eq!(shown.name(), "dhat-rs-heap.json (t-end)");
    assert_eq!((shown.info.total.size, shown.info.total.count), (3048, 4));
    assert!(state.settings.dhat_at_end);
}

#[test]
fn a_valgrind_dhat_profile_opens_with_the_programs_lines() {
    let harness = viewer(vec![dhat_fixture("valgrind-dhat.json")]);
    let state = &harness.state().state;
    let shown = state.current_snapshot().unwrap();
    assert_eq!(
        (shown.info.total.size, shown.info.total.count),
        (36_792, 12)
    );
    let result = state.result.as_ref().unwrap();
    assert_eq!(
        result.view.source_text(result.order[0] as usize),
        "valgrind_prog.c:12"
    );
    harness.get_by_label_contains("Lines: 2 — Total: 35.9 KiB");
}

#[test]
fn exports_save_the_table_and_the_folded_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = viewer(write_leaky_series(dir.path()));
    let csv = dir.path().join("table.csv");
    let folded = dir.path().join("stacks.folded");
    // One after the other: two exports run side by side, and the status
    // bar shows whichever finishes last.
    harness.state_mut().apply(Command::Export {
        kind: ExportKind::TableCsv,
        path: csv.clone(),
    });
    settle(&mut harness);
    harness.get_by_label(&format!("Saved 3 rows to {}", csv.display()));
    harness.state_mut().apply(Command::Export {
        kind: ExportKind::FoldedStacks,
        path: folded.clone(),
    });
    settle(&mut harness);
    let table = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(
        rows[..2],
        [
            "source,filename,lineno,function,size,count,average,size_diff,count_diff",
            "leaky_service/src/cache.rs:8,leaky_service/src/cache.rs,8,leaky::cache::Cache::put,368640,90,4096.0,327680,80",
        ]
    );
    assert_eq!(rows.len(), 4);
    let stacks = std::fs::read_to_string(&folded).unwrap();
    assert!(
        stacks.contains(
            "leaky::main (leaky_service/src/main.rs:30);leaky::server::handle \
             (leaky_service/src/server.rs:12);leaky::cache::Cache::put \
             (leaky_service/src/cache.rs:8) 40960 368640\n"
        ),
        "{stacks}"
    );
    harness.get_by_label_contains("Saved differential folded stacks (old, new) to");
}

#[test]
fn the_flame_graph_explains_a_frame_on_hover_and_resets_its_zoom() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = viewer(write_leaky_series(dir.path()));
    click(&mut harness, "Flame graph");
    // Hovering the leak's frame (depth 3, on the left) explains it.
    let graph = harness
        .get_by_role_and_label(Role::Image, "Flame graph")
        .rect();
    let put = egui::pos2(graph.left() + graph.width() * 0.3, graph.top() + 3.5 * 20.0);
    harness.hover_at(put);
    settle(&mut harness);
    // Tooltips wait for the pointer to rest (half a second of steps).
    harness.run_steps(60);
    harness.get_by_label(
        "leaky::cache::Cache::put\nleaky_service/src/cache.rs:8\n\n\
         360 KiB in 90 blocks — 97.7 % of all, 97.8 % of its caller\n\
         Allocated here: 360 KiB in 90 blocks\n\
         Change: +320 KiB (+80 blocks) since leaky-1.tmsnap\n\n\
         Click to zoom on this frame.",
    );
    assert!(harness.state().state.flame.zoom.is_none());

    // Zoomed on it, then back to the whole tree with the button.
    click_at(&mut harness, put);
    assert!(harness.state().state.flame.zoom.is_some());
    harness.get_by_label_contains("Zoomed on leaky::cache::Cache::put");
    harness.hover_at(egui::pos2(graph.right() - 5.0, graph.bottom() - 5.0));
    click(&mut harness, "Reset zoom");
    assert!(harness.state().state.flame.zoom.is_none());
    harness.get_by_label_contains("All: 368 KiB in 99 blocks");
}

#[test]
fn a_malformed_dhat_profile_says_what_is_wrong_and_the_others_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = write_leaky_series(dir.path());
    let bad = dir.path().join("dhat-heap.json");
    std::fs::write(
        &bad,
        br#"{"dhatFileVersion":2,"mode":"rust-heap","pps":[{"tb":8,"tbk":1,"fs":[5]}],"ftbl":["[root]"]}"#,
    )
    .unwrap();
    files.insert(2, bad.clone());
    let harness = viewer(files);
    harness.get_by_label("Could not open dhat-heap.json");
    harness.get_by_label_contains(&format!(
        "{}: not a valid DHAT profile: program point 0 refers to frame 5, \
         but the frame table has 1 entries",
        bad.display()
    ));
    assert_eq!(harness.state().state.session.snapshots().len(), 5);
}

#[test]
fn file_open_folder_loads_the_folder_and_lets_it_be_watched() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_steady_series(dir.path(), 3);
    // One file first: the browser starts in its folder.
    let mut harness = viewer_with(vec![files[0].clone()], false);
    assert_eq!(harness.state().state.session.snapshots().len(), 1);
    assert!(harness.query_by_label_contains("Timeline (").is_none());
    click(&mut harness, "File");
    click(&mut harness, "Open folder…");
    harness.get_by_label_contains("Open a folder of snapshots");
    harness.get_by_role_and_label(Role::Button, "Open").click();
    let start = Instant::now();
    while harness.state().state.session.snapshots().len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the folder never loaded"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    settle(&mut harness);
    let names = snapshot_names(&harness);
    assert_eq!(
        names,
        ["app-0001.tmsnap", "app-0002.tmsnap", "app-0003.tmsnap"]
    );
    harness.get_by_label("Timeline (3 snapshots)");
    harness.get_by_label("Growing");
    click(&mut harness, "Watch for new snapshots");
    assert!(harness.state().state.watching);
}

#[test]
fn file_export_pprof_writes_the_shown_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = viewer_with(write_leaky_series(dir.path()), false);
    settle(&mut harness);
    // The menu entry asks where to save, with a pprof name.
    click(&mut harness, "File");
    click(&mut harness, "Export snapshot as pprof…");
    harness.get_by_label_contains("Export the snapshot as a pprof profile");
    let path = dir.path().join("heap.pb.gz");
    harness.state_mut().apply(Command::Export {
        kind: ExportKind::Pprof,
        path: path.clone(),
    });
    settle(&mut harness);
    harness.get_by_label(&format!("Saved pprof profile to {}", path.display()));
    // The profile of the snapshot as the window shows it: the standard
    // library's frames (Vec::push, RawVec) hidden.
    let shown = harness.state().state.current_snapshot().unwrap();
    assert!(shown.info.has_hideable_frames);
    let trimmed = shown.snapshot.with_default_trim().unwrap();
    let gzip = tracemalloc_format::pprof::Encoding::Gzip;
    let written = std::fs::read(&path).unwrap();
    assert_eq!(
        written,
        tracemalloc_format::pprof::to_bytes(&trimmed, gzip).unwrap()
    );
    assert_ne!(
        written,
        tracemalloc_format::pprof::to_bytes(&shown.snapshot, gzip).unwrap()
    );
}
