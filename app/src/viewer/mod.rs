//! The viewer window: tracemallocqt's successor in egui.
//!
//! A thin view over `tracemalloc-format`, which does every computation. The
//! modules:
//!
//! - [`app`]: [`ViewerApp`], the eframe app, split by job: the frame,
//!   `apply` (the one place where [`Command`]s change the state), the
//!   background services, input;
//! - [`app_state`]: what the drawing code reads ([`app_state::AppState`])
//!   and edits ([`app_state::UiBuffers`]); the drawing code depends on it
//!   and on [`command`], never on [`app`];
//! - [`command`]: what the UI asks for;
//! - [`state`]: the view spec with Back/Forward, the persisted settings,
//!   the table's state;
//! - [`session`]: the open snapshots, listed by time;
//! - [`loader`], [`analysis`], [`timeline_service`], [`source`], [`watch`],
//!   [`export`]: the background threads (loading files and folders,
//!   analysing, the timeline of every snapshot, reading source files,
//!   watching a folder, writing exports);
//! - [`file_dialog`], [`editor`], [`demo`], [`screenshot_scene`]: File > Open, "Open in
//!   editor", the bundled demo, scripted screenshot scenes;
//! - [`ui`]: drawing, `*_ui` functions that read the state and return
//!   commands;
//! - [`request_thread`]: the handle on a thread that works on the newest
//!   request only, shared by the analysis and timeline threads;
//! - [`display_text`]: numbers, paths and filters as the window shows them.

pub mod analysis;
pub mod app;
pub mod app_state;
pub mod command;
pub mod demo;
pub mod display_text;
pub mod editor;
pub mod export;
pub mod file_dialog;
pub mod loader;
pub mod request_thread;
pub mod screenshot_scene;
pub mod session;
pub mod source;
pub mod state;
pub mod timeline_service;
pub mod ui;
pub mod watch;

use std::path::PathBuf;

pub use app::{StartupOptions, ViewerApp};
pub use command::Command;
pub use file_dialog::DialogKind;

/// The environment variable that picks a screenshot scene.
pub const SCENE_VAR: &str = "TRACEMALLOC_VIEWER_SCENE";

/// The environment variable that turns on frame time measurements.
pub const FRAME_STATS_VAR: &str = "TRACEMALLOC_VIEWER_FRAME_STATS";

/// The environment variable that makes File > Open use the in-app browser
/// (`builtin`) instead of the desktop's dialog.
pub const FILE_DIALOG_VAR: &str = "TRACEMALLOC_VIEWER_FILE_DIALOG";

/// Opens the viewer on `files` (the bundled demo when there are none) and
/// returns the process exit code.
pub fn main(files: Vec<PathBuf>) -> i32 {
    let scene = match std::env::var(SCENE_VAR) {
        Ok(name) => match name.parse() {
            Ok(scene) => Some(scene),
            Err(err) => {
                eprintln!("tracemalloc-viewer: {SCENE_VAR}: {err}");
                return 2;
            }
        },
        Err(_) => None,
    };
    let dialog = match std::env::var(FILE_DIALOG_VAR).as_deref() {
        Ok("builtin") => DialogKind::InApp,
        _ => DialogKind::Native,
    };
    let options = StartupOptions {
        files,
        dialog,
        scene,
        frame_stats: std::env::var_os(FRAME_STATS_VAR).is_some(),
        ..StartupOptions::default()
    };
    let native_options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("tracemalloc-viewer")
            .with_app_id("tracemalloc-viewer")
            .with_inner_size([1440.0, 900.0])
            .with_min_inner_size([720.0, 420.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let result = eframe::run_native(
        "tracemalloc-viewer",
        native_options,
        Box::new(move |cc| Ok(Box::new(ViewerApp::new(cc, options)))),
    );
    match result {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("tracemalloc-viewer: cannot open the viewer window: {err}");
            eprintln!(
                "tracemalloc-viewer: the headless commands work without a display: \
                 tracemalloc-viewer stats FILE"
            );
            1
        }
    }
}
