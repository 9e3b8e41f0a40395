//! The state without a window: an [`AppState`] built by hand, drawn by one
//! `*_ui` function in a bare kittest harness, and a [`ViewerApp`] on a bare
//! egui context whose `apply` is called directly.

mod support;

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use tracemalloc_format::{Filter, KeyType};
use tracemalloc_viewer::viewer::app_state::{AppState, UiBuffers};
use tracemalloc_viewer::viewer::state::{BottomTab, Settings};
use tracemalloc_viewer::viewer::ui::filters::filter_bar_ui;
use tracemalloc_viewer::viewer::{Command, DialogKind, StartupOptions, ViewerApp};

/// The filter bar draws the state's filters as chips and answers a click on
/// a chip's × with a command; it changes no state itself.
#[test]
fn filter_bar_ui_returns_commands_and_leaves_the_state_alone() {
    let mut state = AppState::new(Settings::default());
    state
        .spec
        .filters
        .push(Filter::new(true, "*/cache.rs").into());
    state
        .spec
        .filters
        .push(Filter::new(false, "*/std/*").into());
    let before = state.spec.clone();
    let mut buffers = UiBuffers::default();
    let mut commands = Vec::new();
    let mut harness = Harness::new_ui(|ui| {
        filter_bar_ui(ui, &state, &mut buffers, &mut commands);
    });
    harness.run();
    harness
        .get_by_label("Remove filter: exclude */std/*")
        .click();
    harness.run();
    drop(harness);
    assert_eq!(commands, vec![Command::RemoveFilter(1)]);
    assert_eq!(state.spec, before);
}

/// A viewer on a bare egui context (no eframe, no window), driven through
/// `apply` alone.
fn bare_viewer(files: Vec<std::path::PathBuf>) -> ViewerApp {
    let options = StartupOptions {
        files,
        dialog: DialogKind::InApp,
        ..StartupOptions::default()
    };
    ViewerApp::with_context(egui::Context::default(), Settings::default(), options)
}

/// Sends the requests for what the state shows and polls the background
/// threads (as frames would) until they are done.
fn wait(app: &mut ViewerApp) {
    let start = Instant::now();
    app.poll_and_request();
    while app.is_busy() {
        app.poll_and_request();
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the viewer stays busy"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn apply_changes_the_grouping_and_back_restores_it() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files = support::write_leaky_series(dir.path());
    let mut app = bare_viewer(files[..2].to_vec());
    wait(&mut app);
    assert_eq!(app.state.session.snapshots().len(), 2);
    assert_eq!(app.state.spec.key_type, KeyType::Lineno);
    app.apply(Command::SetKeyType(KeyType::Filename));
    app.apply(Command::AddFilter(Filter::new(true, "*cache*").into()));
    assert_eq!(app.state.spec.key_type, KeyType::Filename);
    assert_eq!(app.state.spec.filters.len(), 1);
    app.apply(Command::Back);
    assert!(app.state.spec.filters.is_empty());
    app.apply(Command::Back);
    assert_eq!(app.state.spec.key_type, KeyType::Lineno);
    app.apply(Command::Forward);
    assert_eq!(app.state.spec.key_type, KeyType::Filename);
    // The analysis follows the state: one file's rows, grouped by file.
    app.apply(Command::Forward);
    wait(&mut app);
    let result = app.state.result.as_ref().expect("a result");
    assert_eq!(result.order.len(), 1);
    assert_eq!(
        result.view.source_text(result.order[0] as usize),
        "leaky_service/src/cache.rs"
    );
}

/// Three or more files at once are a series: the bottom panel starts on
/// the timeline, as it does for a folder.
#[test]
fn three_files_open_on_the_timeline() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let files = support::write_leaky_series(dir.path());
    let app = bare_viewer(files[..2].to_vec());
    assert_eq!(app.state.bottom_tab, BottomTab::Charts);
    let app = bare_viewer(files[..3].to_vec());
    assert_eq!(app.state.bottom_tab, BottomTab::Timeline);
    assert!(app.state.settings.show_charts);
}
