//! [`ViewerApp`], the eframe app: it owns the state and the background
//! services and runs one frame (take the threads' results, draw, apply the
//! commands the drawing returned, send new requests). Its other jobs live
//! beside it:
//!
//! - `commands.rs`: [`ViewerApp::apply`], the one place where commands
//!   change the state;
//! - `background.rs`: starting loads, sending analysis and timeline
//!   requests, polling the threads;
//! - `input.rs`: keyboard shortcuts, mouse side buttons, dropped files.

mod background;
mod commands;
mod input;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::analysis::Analysis;
use super::app_state::{AppState, MESSAGE_TIME, StatusMessage, UiBuffers};
use super::command::Command;
use super::export::Exports;
use super::file_dialog::{DialogKind, FileDialogs};
use super::loader::Notify;
use super::screenshot_scene::{Scene, SceneRunner};
use super::source::Sources;
use super::state::Settings;
use super::timeline_service::TimelineService;
use super::ui;
use super::watch::FolderWatch;

/// The key of the settings in eframe's storage.
const SETTINGS_KEY: &str = "tracemalloc-viewer/settings";

/// How the viewer starts.
#[derive(Clone, Debug)]
pub struct StartupOptions {
    /// Files to open; the bundled demo when empty.
    pub files: Vec<PathBuf>,
    /// Which File > Open dialog to use.
    pub dialog: DialogKind,
    /// A scripted scene to show (for screenshots).
    pub scene: Option<Scene>,
    /// Print frame times to stderr every two seconds.
    pub frame_stats: bool,
    /// How often a watched folder is looked at.
    pub watch_interval: Duration,
}

impl Default for StartupOptions {
    fn default() -> StartupOptions {
        StartupOptions {
            files: Vec::new(),
            dialog: DialogKind::Native,
            scene: None,
            frame_stats: false,
            watch_interval: Duration::from_secs(1),
        }
    }
}

/// Frame time measurements (`TRACEMALLOC_VIEWER_FRAME_STATS=1`): the time
/// in [`eframe::App::ui`] (building the frame), and eframe's CPU time of
/// the whole frame (including tessellation and rendering, without waiting
/// for vsync), summarized on stderr every two seconds.
#[derive(Debug, Default)]
struct FrameStats {
    ui: Vec<Duration>,
    cpu: Vec<Duration>,
    since: Option<Instant>,
}

/// Mean, 99th percentile and maximum of some durations, in milliseconds.
fn summarize(times: &mut [Duration]) -> String {
    if times.is_empty() {
        return "no data".to_owned();
    }
    times.sort_unstable();
    let n = times.len();
    let mean = times.iter().sum::<Duration>() / n as u32;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "mean {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(mean),
        ms(times[(n * 99 / 100).min(n - 1)]),
        ms(times[n - 1])
    )
}

impl FrameStats {
    fn record(&mut self, ui: Duration, cpu: Option<f32>, rows: usize) {
        self.ui.push(ui);
        if let Some(cpu) = cpu {
            self.cpu.push(Duration::from_secs_f32(cpu));
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if since.elapsed() >= Duration::from_secs(2) {
            eprintln!(
                "tracemalloc-viewer: {} frames, {rows} rows: ui {}; whole frame (cpu) {}",
                self.ui.len(),
                summarize(&mut self.ui),
                summarize(&mut self.cpu)
            );
            self.ui.clear();
            self.cpu.clear();
            self.since = Some(Instant::now());
        }
    }
}

/// egui's default fonts, with the monospace font (Hack) as a fallback of
/// the proportional one: Ubuntu Light has no arrows (`←`, `▼`), which the
/// table's tracebacks and sort indicators use.
fn install_fonts(ctx: &egui::Context) {
    let mut fonts = egui::FontDefinitions::default();
    if let Some(proportional) = fonts.families.get_mut(&egui::FontFamily::Proportional)
        && fonts.font_data.contains_key("Hack")
    {
        let at = proportional.len().min(1);
        proportional.insert(at, "Hack".to_owned());
    }
    ctx.set_fonts(fonts);
}

/// The viewer: an [`eframe::App`].
pub struct ViewerApp {
    /// What the drawing code reads.
    pub state: AppState,
    /// What the drawing code edits.
    pub buffers: UiBuffers,
    analysis: Option<Analysis>,
    sources: Option<Sources>,
    dialogs: FileDialogs,
    notify: Notify,
    ctx: egui::Context,
    /// Show the newest snapshot compared to the oldest until the user
    /// chooses either.
    auto_select: bool,
    /// Select the first row when the next result arrives (after a drill-down).
    select_first_on_result: bool,
    scene: Option<SceneRunner>,
    frame_stats: Option<FrameStats>,
    title: String,
    timeline_service: Option<TimelineService>,
    watcher: Option<FolderWatch>,
    watch_interval: Duration,
    exports: Exports,
}

impl std::fmt::Debug for ViewerApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ViewerApp")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// The service if it started; otherwise `None`, with the reason kept in
/// `message` for the status bar.
fn started<T>(result: anyhow::Result<T>, message: &mut Option<StatusMessage>) -> Option<T> {
    result
        .map_err(|e| {
            *message = Some(StatusMessage {
                text: format!("{e:#}"),
                is_error: true,
                shown_at: Instant::now(),
            })
        })
        .ok()
}

impl ViewerApp {
    /// The viewer, with its settings from eframe's storage, loading the
    /// startup files (or the demo).
    pub fn new(cc: &eframe::CreationContext<'_>, options: StartupOptions) -> ViewerApp {
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, SETTINGS_KEY))
            .unwrap_or_default();
        install_fonts(&cc.egui_ctx);
        ViewerApp::with_context(cc.egui_ctx.clone(), settings, options)
    }

    /// The viewer on a bare egui context, without eframe: what
    /// [`ViewerApp::new`] builds once it has read the settings. Tests use it
    /// to [`apply`](ViewerApp::apply) commands and read the state without a
    /// window.
    pub fn with_context(
        ctx: egui::Context,
        settings: Settings,
        options: StartupOptions,
    ) -> ViewerApp {
        // eframe restores egui's memory, scroll positions included: a table
        // scrolled far down in the last run would open past the first rows
        // of whatever is open now. Every view starts at its top.
        ctx.data_mut(|d| d.remove_by_type::<egui::scroll_area::State>());
        let repaint = ctx.clone();
        let notify: Notify = Arc::new(move || repaint.request_repaint());
        // A background service that cannot start (no thread) leaves its
        // feature off and says why in the status bar; the rest works.
        let mut message = None;
        let analysis = started(Analysis::start(Arc::clone(&notify)), &mut message);
        let sources = started(Sources::start(Arc::clone(&notify)), &mut message);
        let timeline_service = started(TimelineService::start(Arc::clone(&notify)), &mut message);
        let mut app = ViewerApp {
            state: AppState {
                message,
                ..AppState::new(settings)
            },
            buffers: UiBuffers::default(),
            analysis,
            sources,
            dialogs: FileDialogs::new(options.dialog),
            notify,
            ctx,
            auto_select: true,
            select_first_on_result: false,
            scene: options.scene.map(SceneRunner::new),
            frame_stats: options.frame_stats.then(FrameStats::default),
            title: String::new(),
            timeline_service,
            watcher: None,
            watch_interval: options.watch_interval,
            exports: Exports::default(),
        };
        if options.files.is_empty() {
            app.apply(Command::OpenDemo);
        } else {
            app.apply(Command::OpenPaths(options.files));
        }
        app
    }

    /// Whether anything is still running in the background: loading,
    /// analysis, or reading a source file. Tests wait for this.
    pub fn is_busy(&self) -> bool {
        self.state.loader.is_busy()
            || self.state.analysis_pending
            || self.sources.as_ref().is_some_and(Sources::is_busy)
            || self.state.timeline_progress.is_some()
            || self.exports.is_busy()
    }

    fn set_message(&mut self, text: impl Into<String>, is_error: bool) {
        self.state.message = Some(StatusMessage {
            text: text.into(),
            is_error,
            shown_at: Instant::now(),
        });
        self.ctx.request_repaint_after(MESSAGE_TIME);
    }

    fn update_title(&mut self, ctx: &egui::Context) {
        let mut title = "tracemalloc-viewer".to_owned();
        if let Some(current) = self.state.current_snapshot() {
            title.push_str(&format!(" — {}", current.name()));
            if let Some(old) = self.state.compare_snapshot() {
                title.push_str(&format!(" compared to {}", old.name()));
            }
        }
        if title != self.title {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(title.clone()));
            self.title = title;
        }
    }
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let frame_start = Instant::now();
        let ctx = ui.ctx().clone();
        self.poll_background();
        if self
            .state
            .message
            .as_ref()
            .is_some_and(|m| !m.is_error && m.shown_at.elapsed() >= MESSAGE_TIME)
        {
            self.state.message = None;
        }
        let mut commands = Vec::new();
        self.handle_input(&ctx, &mut commands);
        self.state.waiting_for_dialog = self.dialogs.waiting_for_native();
        let dialogs = self.dialogs.ui(&ctx);
        if !dialogs.chosen.is_empty() {
            commands.push(Command::OpenPaths(dialogs.chosen));
        }
        if let Some((kind, path)) = dialogs.save {
            commands.push(Command::Export { kind, path });
        }
        ui::viewer_ui(
            ui,
            &self.state,
            &mut self.buffers,
            self.sources.as_mut(),
            &mut commands,
        );
        if let Some(scene) = &mut self.scene {
            let idle = !self.state.loader.is_busy()
                && !self.state.analysis_pending
                && self.state.timeline_progress.is_none()
                && !self.sources.as_ref().is_some_and(Sources::is_busy);
            commands.extend(scene.next(idle, &self.state));
        }
        for command in commands {
            self.apply(command);
        }
        self.request_analysis();
        self.request_timeline();
        self.update_title(&ctx);
        if self.scene.as_ref().is_some_and(SceneRunner::is_playing) {
            // The scene's next step waits for an idle frame.
            ctx.request_repaint_after(Duration::from_millis(50));
        }
        if self.state.loader.is_busy() || self.state.timeline_progress.is_some() {
            // Progress bars move without news from the threads too.
            ctx.request_repaint_after(Duration::from_millis(100));
        }
        if let Some(stats) = &mut self.frame_stats {
            let rows = self.state.result.as_ref().map_or(0, |r| r.order.len());
            stats.record(frame_start.elapsed(), frame.info().cpu_usage, rows);
            // Measuring needs frames: keep drawing.
            ctx.request_repaint();
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, SETTINGS_KEY, &self.state.settings);
    }
}
