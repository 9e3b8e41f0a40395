//! The window's layout at the sizes a newcomer meets (1280x800 and up):
//! every table column readable, the Source column showing file and line,
//! the annotated source's code beside a narrow gutter, and a table that
//! opens at its first rows whatever egui remembered, and a toolbar that
//! stays one row with the metric picker in it.

mod support;

use egui::Rect;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use tracemalloc_viewer::viewer::state::BottomTab;
use tracemalloc_viewer::viewer::{Command, ViewerApp};

use support::{settle, viewer_in, write_leaky_series};

/// The sizes checked: the smallest supported, the default, a large one.
const SIZES: [(f32, f32); 3] = [(1280.0, 800.0), (1440.0, 880.0), (1600.0, 1000.0)];

/// The Source cell of the cache line (screen readers hear all of it).
const CACHE_ROW: &str = "leaky_service/src/cache.rs:8  Cache::put";

fn rect_of(harness: &Harness<'static, ViewerApp>, label: &str) -> Rect {
    harness.get_by_label(label).rect()
}

/// The left edge of the details panel: its heading's (the rightmost
/// "Traceback": the toolbar's grouping has one too).
fn details_left(harness: &Harness<'static, ViewerApp>) -> f32 {
    harness
        .query_all_by_label("Traceback")
        .map(|n| n.rect().left())
        .fold(f32::MIN, f32::max)
}

#[test]
fn every_table_column_fits_beside_the_panels() {
    for (width, height) in SIZES {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let files = write_leaky_series(dir.path());
        // Two snapshots: a comparison, the table's widest form.
        let mut harness = viewer_in(files[3..].to_vec(), egui::vec2(width, height), None);
        harness.state_mut().apply(Command::SelectRow(0));
        settle(&mut harness);
        let right = details_left(&harness);
        let source = harness.get_by_role_and_label(Role::Button, "Source").rect();
        let total = harness
            .get_by_role_and_label(Role::Button, "% Total")
            .rect();
        assert!(
            total.right() <= right,
            "{width}x{height}: % Total ends at {} past the details panel at {right}",
            total.right()
        );
        for header in ["Size Δ ▼", "Count Δ", "Item size"] {
            let rect = harness.get_by_role_and_label(Role::Button, header).rect();
            assert!(rect.right() <= right, "{width}x{height}: {header} clipped");
        }
        // The Source column keeps room for a path, its file name and line.
        let size = harness.get_by_role_and_label(Role::Button, "Size").rect();
        assert!(
            size.left() - source.left() >= 200.0,
            "{width}x{height}: the Source column is {} wide",
            size.left() - source.left()
        );
        let cell = rect_of(&harness, CACHE_ROW);
        assert!(cell.left() < size.left(), "{width}x{height}");
    }
}

#[test]
fn the_annotated_source_leaves_the_code_room() {
    for (width, height) in SIZES {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let files = write_leaky_series(dir.path());
        let mut harness = viewer_in(files[3..].to_vec(), egui::vec2(width, height), None);
        harness.get_by_label(CACHE_ROW).click();
        settle(&mut harness);
        // The line's memory, its blocks and change are still there to hear
        // (and in its tooltip).
        harness.get_by_label_contains("line 8: 360 KiB in 90 blocks here (+80.0 KiB)");
        let code = harness
            .get_by_label_contains("self.items.push(item); // never evicted")
            .rect();
        // At least 40 characters of code in view before the window's edge.
        let room = width - code.left();
        assert!(
            room >= 40.0 * 7.0,
            "{width}x{height}: the code starts {room} points from the edge"
        );
        // All columns on request: they take room, and give it back.
        harness.get_by_label("All columns").click();
        settle(&mut harness);
        assert!(harness.state().state.settings.full_source_gutter);
        harness.get_by_label("through");
        harness.get_by_label("Fewer columns").click();
        settle(&mut harness);
        assert!(harness.query_by_label("through").is_none());
    }
}

#[test]
fn the_metric_picker_keeps_the_toolbar_on_one_row() {
    let ripgrep = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("demo")
        .join("ripgrep-history.tmsnap");
    for (width, height) in SIZES {
        let harness = viewer_in(vec![ripgrep.clone()], egui::vec2(width, height), None);
        let row = rect_of(&harness, "Back");
        // The picker's buttons and what comes after them, the last being
        // Cumulative: all on Back's row.
        for label in [
            "Live",
            "Allocated",
            "Temporary",
            "Peak",
            "Group by",
            "Cumulative",
        ] {
            let rect = rect_of(&harness, label);
            assert!(
                (rect.center().y - row.center().y).abs() < row.height() / 2.0,
                "{width}x{height}: {label} at {rect:?}, Back at {row:?}"
            );
            assert!(
                rect.right() <= width,
                "{width}x{height}: {label} at {rect:?}"
            );
        }
    }
}

/// Three hundred files of different sizes: more rows than a window shows.
fn many_rows(dir: &std::path::Path) -> std::path::PathBuf {
    let names: Vec<String> = (0..300).map(|i| format!("src/mod_{i:03}.rs")).collect();
    let frames: Vec<[(&str, u32); 1]> = names.iter().map(|n| [(n.as_str(), 1)]).collect();
    let traces = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (0, 1000 + i as u64, &f[..], None));
    let path = dir.join("many.tmsnap");
    tracemalloc_format::Snapshot::from_raw_traces(1, traces)
        .expect("a small snapshot")
        .dump(&path)
        .expect("a writable temporary folder");
    path
}

#[test]
fn a_remembered_scroll_position_does_not_open_the_table_past_its_first_rows() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = many_rows(dir.path());
    let size = egui::vec2(1280.0, 800.0);
    // The largest group is the first row; End scrolls to the last.
    let first = "src/mod_299.rs:1";
    let mut harness = viewer_in(vec![file.clone()], size, None);
    harness.get_by_label(first);
    harness
        .state_mut()
        .apply(Command::MoveSelection(isize::MAX / 2));
    settle(&mut harness);
    for _ in 0..30 {
        harness.step();
    }
    assert!(harness.query_by_label(first).is_none(), "scrolled away");
    // egui's memory, which eframe saves at exit and restores at the next
    // start (the scroll positions are among its persisted values).
    let memory = harness.ctx.memory(|m| m.clone());
    drop(harness);
    let harness = viewer_in(vec![file], size, Some(memory));
    let row = rect_of(&harness, first);
    assert!(row.bottom() <= size.y, "the first row is at {row:?}");
}

#[test]
fn three_files_open_on_the_timeline_at_every_size() {
    for (width, height) in SIZES {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let files = write_leaky_series(dir.path());
        let harness = viewer_in(files[2..].to_vec(), egui::vec2(width, height), None);
        assert_eq!(harness.state().state.bottom_tab, BottomTab::Timeline);
        // The timeline is drawn: its ranking lists the leak.
        harness.get_by_label("Total size");
    }
}
