//! The viewer's flows, driven by label through AccessKit as a user would:
//! open snapshots, pick a comparison, group, filter, drill down and back,
//! select a row, sort, search, and survive a corrupt file. Headless: no
//! GPU or display needed.

mod support;

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use tracemalloc_format::KeyType;
use tracemalloc_viewer::viewer::ViewerApp;
use tracemalloc_viewer::viewer::state::BottomTab;

use support::{settle, snapshot_names, viewer, write_leaky_series};

/// The Source cell of the cache line, as the table shows it.
const CACHE_ROW: &str = "leaky_service/src/cache.rs:8  Cache::put";
const SERVER_ROW: &str = "leaky_service/src/server.rs:20  server::read_request";
const CONFIG_ROW: &str = "leaky_service/src/config.rs:5  config::load";

fn open_series() -> (tempfile::TempDir, Harness<'static, ViewerApp>) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files = write_leaky_series(dir.path());
    let mut harness = viewer(files);
    // Five files open on the timeline, as a series; these flows are about
    // the table and its charts.
    assert_eq!(harness.state().state.bottom_tab, BottomTab::Timeline);
    click(&mut harness, "Charts");
    // Half a second of frames, so that a flow's first click does not make
    // a double click with this one.
    for _ in 0..30 {
        harness.step();
    }
    (dir, harness)
}

/// The status bar's summary line (`Lines: 3 — Total: …`).
fn summary(harness: &Harness<'static, ViewerApp>) -> String {
    // AccessKit keeps a label's text in its value.
    let text = |n: &egui_kittest::kittest::AccessKitNode<'_>| {
        (n.role() == Role::Label).then(|| n.value()).flatten()
    };
    let node = harness
        .query_by(move |n| {
            text(n).is_some_and(|l| {
                ["Files: ", "Lines: ", "Tracebacks: "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
        })
        .expect("the status bar shows a summary");
    node.accesskit_node().value().unwrap_or_default()
}

/// Clicks a node found by its exact label, then waits for the viewer.
fn click(harness: &mut Harness<'static, ViewerApp>, label: &str) {
    harness.get_by_label(label).click();
    settle(harness);
}

/// Clicks a button found by its exact label, then waits for the viewer.
fn click_button(harness: &mut Harness<'static, ViewerApp>, label: &str) {
    harness.get_by_role_and_label(Role::Button, label).click();
    settle(harness);
}

fn double_click(harness: &mut Harness<'static, ViewerApp>, label: &str) {
    harness.get_by_label(label).click();
    harness.step();
    harness.get_by_label(label).click();
    settle(harness);
}

#[test]
fn opening_files_lists_them_and_compares_newest_to_oldest() {
    let (_dir, harness) = open_series();
    let names = snapshot_names(&harness);
    let state = &harness.state().state;
    assert_eq!(
        names,
        [
            "leaky-1.tmsnap",
            "leaky-2.tmsnap",
            "leaky-3.tmsnap",
            "leaky-4.tmsnap",
            "leaky-5.tmsnap"
        ]
    );
    assert_eq!(state.current_snapshot().unwrap().name(), "leaky-5.tmsnap");
    assert_eq!(state.compare_snapshot().unwrap().name(), "leaky-1.tmsnap");
    // The leak tops the table, in growth colours, with the Δ columns.
    assert_eq!(summary(&harness), "Lines: 3 — Total: 368 KiB (+318 KiB)");
    harness.get_by_label(CACHE_ROW);
    harness.get_by_label("+320 KiB");
    harness.get_by_label("Size Δ ▼");
    harness.get_by_label("Count Δ");
    harness.get_by_label("Top 10 by size Δ");
    // The snapshot list says name, size, traces and time.
    harness.get_by_label("leaky-5.tmsnap  (shown)\n368 KiB · 99 traces · 19:41:40");
}

#[test]
fn picking_a_comparison_and_none() {
    let (_dir, mut harness) = open_series();
    harness
        .get_by_role_and_label(Role::ComboBox, "compared to")
        .click();
    harness.run();
    click(
        &mut harness,
        "leaky-4.tmsnap — 289 KiB, 80 traces, 2026-11-23 19:41:30",
    );
    assert_eq!(
        harness.state().state.compare_snapshot().unwrap().name(),
        "leaky-4.tmsnap"
    );
    assert_eq!(summary(&harness), "Lines: 3 — Total: 368 KiB (+79.5 KiB)");

    // No comparison: the Δ columns go, the default order is by size.
    harness
        .get_by_role_and_label(Role::ComboBox, "compared to")
        .click();
    harness.run();
    click(&mut harness, "none");
    assert!(harness.state().state.compare.is_none());
    assert_eq!(summary(&harness), "Lines: 3 — Total: 368 KiB");
    assert!(harness.query_by_label("Size Δ").is_none());
    harness.get_by_label("Size ▼");
    harness.get_by_label("Top 10 by size");
}

#[test]
fn switching_the_grouping_and_cumulative() {
    let (_dir, mut harness) = open_series();
    click_button(&mut harness, "Filename");
    assert_eq!(summary(&harness), "Files: 3 — Total: 368 KiB (+318 KiB)");
    harness.get_by_label("leaky_service/src/cache.rs");

    click(&mut harness, "Cumulative");
    assert!(harness.state().state.spec.cumulative);
    // Every block passes through main.rs: cumulative adds that file.
    assert_eq!(summary(&harness), "Files: 4 — Total: 368 KiB (+318 KiB)");
    harness.get_by_label("leaky_service/src/main.rs");

    // Traceback grouping disables cumulative, and says why.
    click_button(&mut harness, "Traceback");
    assert_eq!(
        summary(&harness),
        "Tracebacks: 3 — Total: 368 KiB (+318 KiB)"
    );
    assert!(
        harness
            .get_by_label("Cumulative")
            .accesskit_node()
            .is_disabled()
    );
    harness.get_by_label("cache.rs:8 ← server.rs:12 ← main.rs:30");
}

#[test]
fn adding_and_removing_a_glob_filter() {
    let (_dir, mut harness) = open_series();
    harness
        .get_by_role_and_label(Role::TextInput, "Filter")
        .focus();
    harness.step();
    harness
        .get_by_role_and_label(Role::TextInput, "Filter")
        .type_text("*/server.rs");
    harness.run();
    click(&mut harness, "Exclude");
    assert_eq!(summary(&harness), "Lines: 2 — Total: 360 KiB (+318 KiB)");
    assert!(harness.query_by_label(SERVER_ROW).is_none());

    click(&mut harness, "Remove filter: exclude */server.rs");
    assert!(harness.state().state.spec.filters.is_empty());
    assert_eq!(summary(&harness), "Lines: 3 — Total: 368 KiB (+318 KiB)");
    harness.get_by_label(SERVER_ROW);
}

#[test]
fn the_filter_editor_adds_a_line_filter_on_any_frame() {
    let (_dir, mut harness) = open_series();
    click(&mut harness, "Filters…");
    harness.get_by_label("File glob").click();
    harness.step();
    harness.get_by_label("File glob").type_text("*/server.rs");
    harness.run();
    harness
        .get_by_role_and_label(Role::CheckBox, "Line")
        .click();
    harness.run();
    harness.get_by_label("Line number").focus();
    harness.step();
    harness
        .get_by_label("Match any frame, not only the most recent")
        .click();
    harness.run();
    // The line stays 1: nothing at server.rs:1, so the table is empty.
    click(&mut harness, "Add filter");
    harness.get_by_role_and_label(
        Role::Button,
        "Remove filter: include */server.rs:1 (any frame)",
    );
    harness.get_by_label("No allocation matches the filters.");
}

#[test]
fn drilling_down_and_going_back_and_forward() {
    let (_dir, mut harness) = open_series();
    double_click(&mut harness, CACHE_ROW);
    let spec = harness.state().state.spec.clone();
    assert_eq!(spec.key_type, KeyType::Traceback);
    assert_eq!(spec.filters.len(), 1);
    harness.get_by_label("include leaky_service/src/cache.rs:8");
    assert_eq!(
        summary(&harness),
        "Tracebacks: 1 — Total: 360 KiB (+320 KiB)"
    );
    // The drilled row is selected: its traceback is shown.
    harness.get_by_label("#1  leaky::server::handle\n      leaky_service/src/server.rs:12");

    click(&mut harness, "Back");
    assert_eq!(harness.state().state.spec.key_type, KeyType::Lineno);
    assert!(harness.state().state.spec.filters.is_empty());
    assert!(
        harness
            .query_by_label("include leaky_service/src/cache.rs:8")
            .is_none()
    );

    click(&mut harness, "Forward");
    assert_eq!(harness.state().state.spec.key_type, KeyType::Traceback);

    // Alt+Left goes back too.
    harness.key_press_modifiers(egui::Modifiers::ALT, egui::Key::ArrowLeft);
    settle(&mut harness);
    assert_eq!(harness.state().state.spec.key_type, KeyType::Lineno);
}

#[test]
fn selecting_a_row_shows_its_traceback_and_source() {
    let (_dir, mut harness) = open_series();
    click_button(&mut harness, "Traceback");
    click(&mut harness, "cache.rs:8 ← server.rs:12 ← main.rs:30");
    // Every frame, most recent first, with its function; std frames hidden.
    harness.get_by_label("#0  leaky::cache::Cache::put\n      leaky_service/src/cache.rs:8");
    harness.get_by_label("#2  leaky::main\n      leaky_service/src/main.rs:30");
    assert!(harness.query_by_label_contains("raw_vec").is_none());
    // The source, found next to the snapshots, with the line.
    harness.get_by_label_contains("self.items.push(item); // never evicted");

    // A frame whose file is not on this machine says so calmly.
    click(
        &mut harness,
        "#2  leaky::main\n      leaky_service/src/main.rs:30",
    );
    harness.get_by_label_contains("Source not found: leaky_service/src/main.rs");
}

#[test]
fn showing_std_frames_moves_the_attribution() {
    let (_dir, mut harness) = open_series();
    click(&mut harness, "Hide Rust std frames");
    assert!(!harness.state().state.settings.hide_std_frames);
    harness.get_by_label("…/alloc/src/raw_vec.rs:480  raw_vec::RawVec<T,A>::grow_one");
    assert!(harness.query_by_label(CACHE_ROW).is_none());
}

#[test]
fn sorting_by_a_column_and_reversing() {
    let (_dir, mut harness) = open_series();
    let first_row = |harness: &Harness<'static, ViewerApp>| {
        let result = harness.state().state.result.as_ref().unwrap();
        result.view.source_text(result.order[0] as usize)
    };
    assert_eq!(first_row(&harness), "leaky_service/src/cache.rs:8");
    click(&mut harness, "Source");
    harness.get_by_label("Source ▲");
    assert_eq!(first_row(&harness), "leaky_service/src/cache.rs:8");
    click(&mut harness, "Source ▲");
    assert_eq!(first_row(&harness), "leaky_service/src/server.rs:20");
    // Size Δ: shrinkage last, then first when reversed.
    click(&mut harness, "Size Δ");
    click(&mut harness, "Size Δ ▼");
    harness.get_by_label("Size Δ ▲");
    assert_eq!(first_row(&harness), "leaky_service/src/config.rs:5");
}

#[test]
fn searching_the_source_column() {
    let (_dir, mut harness) = open_series();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    harness.run();
    assert!(
        harness
            .get_by_role_and_label(Role::TextInput, "Search")
            .is_focused()
    );
    harness
        .get_by_role_and_label(Role::TextInput, "Search")
        .type_text("config");
    settle(&mut harness);
    harness.get_by_label("Showing 1 of 3");
    harness.get_by_label(CONFIG_ROW);
    assert!(harness.query_by_label(CACHE_ROW).is_none());
    click(&mut harness, "Clear the search");
    assert!(harness.query_by_label("Showing 1 of 3").is_none());
}

#[test]
fn the_context_menu_excludes_a_file_and_copies() {
    let (_dir, mut harness) = open_series();
    harness.get_by_label(CONFIG_ROW).click_secondary();
    harness.run();
    click(&mut harness, "Exclude this file");
    harness.get_by_label("exclude leaky_service/src/config.rs");
    assert_eq!(summary(&harness), "Lines: 2 — Total: 368 KiB (+320 KiB)");

    harness.get_by_label(CACHE_ROW).click_secondary();
    harness.run();
    // The copy is in the output of the frame that handled the click.
    harness.get_by_label("Copy file:line").click();
    harness.step();
    let copied = harness.output().platform_output.commands.iter().any(
        |c| matches!(c, egui::OutputCommand::CopyText(t) if t == "leaky_service/src/cache.rs:8"),
    );
    assert!(copied, "{:?}", harness.output().platform_output.commands);
    settle(&mut harness);
    harness.get_by_label("Copied to the clipboard");
}

#[test]
fn keyboard_moves_the_selection_and_enter_drills_down() {
    let (_dir, mut harness) = open_series();
    harness.key_press(egui::Key::ArrowDown);
    settle(&mut harness);
    harness.key_press(egui::Key::ArrowDown);
    settle(&mut harness);
    let state = &harness.state().state;
    assert_eq!(state.selected_position(), Some(1));
    harness.key_press(egui::Key::Enter);
    settle(&mut harness);
    let spec = &harness.state().state.spec;
    assert_eq!(spec.key_type, KeyType::Traceback);
    harness.get_by_label("include leaky_service/src/server.rs:20");
}

#[test]
fn a_corrupt_file_shows_an_error_and_the_others_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = write_leaky_series(dir.path());
    let bad = dir.path().join("bad.tmsnap");
    std::fs::write(&bad, b"\x89TMS\r\n\x1a\n\x01\x00\x00\x00garbage").unwrap();
    files.insert(1, bad.clone());
    let mut harness = viewer(files);
    harness.get_by_label("Could not open bad.tmsnap");
    harness.get_by_label_contains(&format!("{}: ", bad.display()));
    assert_eq!(harness.state().state.session.snapshots().len(), 5);
    assert_eq!(summary(&harness), "Lines: 3 — Total: 368 KiB (+318 KiB)");
    click(&mut harness, "Dismiss");
    assert!(
        harness
            .query_by_label("Could not open bad.tmsnap")
            .is_none()
    );
}

#[test]
fn closing_every_snapshot_leaves_a_calm_empty_window() {
    let (_dir, mut harness) = open_series();
    click(&mut harness, "File");
    click(&mut harness, "Close all snapshots");
    harness.get_by_label("No snapshot open");
    assert!(harness.state().state.result.is_none());
}

#[test]
fn without_files_the_demo_opens_and_says_so() {
    let mut harness = viewer(Vec::new());
    let state = &harness.state().state;
    assert!(state.session.showing_demo);
    assert_eq!(state.session.snapshots().len(), 5);
    assert_eq!(
        state.current_snapshot().unwrap().name(),
        "leaky_service-05.tmsnap"
    );
    assert_eq!(
        state.compare_snapshot().unwrap().name(),
        "leaky_service-01.tmsnap"
    );
    harness.get_by_label_contains("These are the bundled demo snapshots");
    // The leak is the demo's top line.
    let result = state.result.as_ref().unwrap();
    let top = result.order[0] as usize;
    assert_eq!(
        result.view.source_text(top),
        "recorder/examples/leaky_service.rs:120"
    );
    assert!(result.view.rows()[top].size_diff > 1 << 20);

    // Opening a file of one's own replaces the demo.
    let dir = tempfile::tempdir().unwrap();
    let files = write_leaky_series(dir.path());
    drop_files(&mut harness, &files[..2]);
    let state = &harness.state().state;
    assert!(!state.session.showing_demo);
    assert_eq!(state.session.snapshots().len(), 2);
    assert!(
        harness
            .query_by_label_contains("These are the bundled demo snapshots")
            .is_none()
    );
}

/// A file dropped on the window, as eframe hands it over.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn drop_files(harness: &mut Harness<'static, ViewerApp>, files: &[std::path::PathBuf]) {
    for file in files {
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(Dropped(file.clone())));
    }
    settle(harness);
}

#[test]
fn dropping_a_corrupt_file_keeps_the_open_snapshots() {
    let (dir, mut harness) = open_series();
    let bad = dir.path().join("notes.txt");
    std::fs::write(&bad, b"hello").unwrap();
    drop_files(&mut harness, &[bad]);
    harness.get_by_label("Could not open notes.txt");
    harness.get_by_label_contains("not a snapshot file: it is neither a .tmsnap file nor a pickle");
    assert_eq!(harness.state().state.session.snapshots().len(), 5);
    assert_eq!(summary(&harness), "Lines: 3 — Total: 368 KiB (+318 KiB)");
}

#[test]
fn reload_reads_the_files_again() {
    let (dir, mut harness) = open_series();
    // The newest snapshot changes on disk: F5 shows the new content.
    support::leaky_snapshot(6)
        .dump(dir.path().join("leaky-5.tmsnap"))
        .unwrap();
    harness.key_press(egui::Key::F5);
    settle(&mut harness);
    let state = &harness.state().state;
    assert_eq!(state.session.snapshots().len(), 5);
    assert_eq!(state.current_snapshot().unwrap().name(), "leaky-5.tmsnap");
    assert_eq!(summary(&harness), "Lines: 3 — Total: 528 KiB (+478 KiB)");
}

#[test]
fn clicking_a_chart_bar_selects_its_row() {
    let (_dir, mut harness) = open_series();
    // Growth and shrinkage: the cache line grew, the config line shrank.
    let top: Vec<String> = {
        let result = harness.state().state.result.as_ref().unwrap();
        result
            .top_size
            .iter()
            .map(|&i| result.view.source_text(i as usize))
            .collect()
    };
    assert_eq!(
        top,
        [
            "leaky_service/src/cache.rs:8",
            "leaky_service/src/config.rs:5"
        ]
    );
    // The size chart is the plot under its title; its second bar (config)
    // is in the lower part.
    let title = harness.get_by_label("Top 10 by size Δ").rect();
    let plot = harness
        .get_all_by_role(Role::Unknown)
        .map(|n| n.rect())
        .find(|r| r.top() > title.bottom() && (r.left() - title.left()).abs() < 2.0)
        .expect("the size chart");
    harness.hover_at(egui::pos2(
        plot.center().x,
        plot.top() + plot.height() * 0.72,
    ));
    harness.event(egui::Event::PointerButton {
        pos: egui::pos2(plot.center().x, plot.top() + plot.height() * 0.72),
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    harness.event(egui::Event::PointerButton {
        pos: egui::pos2(plot.center().x, plot.top() + plot.height() * 0.72),
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    settle(&mut harness);
    let selected = harness.state().state.table.selected.clone().unwrap();
    assert_eq!(selected.to_string(), "leaky_service/src/config.rs:5");
    harness.get_by_label("#0  leaky::config::load\n      leaky_service/src/config.rs:5");
}

#[test]
fn ctrl_c_copies_the_selected_row() {
    let (_dir, mut harness) = open_series();
    click(&mut harness, CACHE_ROW);
    harness.event(egui::Event::Copy);
    harness.step();
    let copied: Vec<&String> = harness
        .output()
        .platform_output
        .commands
        .iter()
        .filter_map(|c| match c {
            egui::OutputCommand::CopyText(t) => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(
        copied,
        ["leaky_service/src/cache.rs:8\t360 KiB\t+320 KiB\t90\t+80\t4096 B\t97.7 %"]
    );
}

#[test]
fn the_mouse_back_button_goes_back() {
    let (_dir, mut harness) = open_series();
    click_button(&mut harness, "Filename");
    let at = harness.get_by_label("Snapshots").rect().center();
    for pressed in [true, false] {
        harness.event(egui::Event::PointerButton {
            pos: at,
            button: egui::PointerButton::Extra1,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
    }
    settle(&mut harness);
    assert_eq!(harness.state().state.spec.key_type, KeyType::Lineno);
}

/// eframe's storage, in memory.
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }

    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }

    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }

    fn flush(&mut self) {}
}

#[test]
fn settings_and_recent_files_are_kept_between_runs() {
    let (dir, mut harness) = open_series();
    click_button(&mut harness, "Filename");
    let mut storage = MemoryStorage::default();
    eframe::App::save(harness.state_mut(), &mut storage);
    drop(harness);

    // The next run starts grouped by file, with the files in File > Open recent.
    let storage: &'static MemoryStorage = Box::leak(Box::new(storage));
    let options = tracemalloc_viewer::viewer::StartupOptions {
        dialog: tracemalloc_viewer::viewer::DialogKind::InApp,
        ..Default::default()
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_step_dt(1.0 / 60.0)
        .with_max_steps(64)
        .build_eframe(move |cc| {
            cc.storage = Some(storage);
            ViewerApp::new(cc, options)
        });
    settle(&mut harness);
    assert_eq!(harness.state().state.spec.key_type, KeyType::Filename);
    click(&mut harness, "File");
    harness.get_by_label("Open recent").hover();
    harness.run();
    let third = dir.path().join("leaky-3.tmsnap").display().to_string();
    click(&mut harness, &third);
    let names = snapshot_names(&harness);
    assert_eq!(names, ["leaky-3.tmsnap"]);
}

/// A sampled snapshot's table and totals are estimates while its trace
/// count is the sampled blocks: the status bar says it is sampled, with
/// what mean, and calls the traces sampled.
#[test]
fn a_sampled_snapshot_says_its_figures_are_estimates() {
    use tracemalloc_format::{Metadata, SnapshotBuilder};

    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut b = SnapshotBuilder::new(1);
    let frame = b.intern_frame("src/parse.rs", 12, Some("parse")).unwrap();
    let tb = b.intern_traceback(&[frame], Some(1)).unwrap();
    b.push_trace(0, 32, tb).unwrap();
    b.push_trace(0, 32, tb).unwrap();
    let snapshot = b.finish(Metadata {
        sampling_rate: Some(64),
        ..Metadata::default()
    });
    let estimated: u64 = snapshot
        .statistics(KeyType::Lineno, false)
        .unwrap()
        .iter()
        .map(|s| s.size)
        .sum();
    // Each 32-byte block was traced with probability 1 - exp(-1/2), so the
    // two stand for about 163 bytes: the status bar must show that, not
    // the 64 bytes traced.
    assert!(estimated > 150, "{estimated}");
    let path = dir.path().join("sampled.tmsnap");
    snapshot.dump(&path).unwrap();
    let harness = viewer(vec![path]);
    assert_eq!(
        summary(&harness),
        format!(
            "Lines: 1 — Total: {}",
            tracemalloc_format::format_bytes(estimated)
        )
    );
    harness.get_by_label("Sampled: 1 per 64 B");
    harness.get_by_label("Sampled traces: 2");
}
