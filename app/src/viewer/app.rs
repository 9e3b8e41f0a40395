//! [`ViewerApp`]: the state, the background services, and
//! [`ViewerApp::apply`], the one place where commands change the state.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::{Event, Key, KeyboardShortcut, Modifiers, PointerButton};
use tracemalloc_format::view::View;
use tracemalloc_format::{Filter, KeyType, LoadOptions, TraceFilter, Traceback};

use super::analysis::{Analysis, AnalysisRequest, AnalysisResult, Input};
use super::command::Command;
use super::demo;
use super::editor;
use super::export::{ExportJob, ExportKind, Exports, TreeInput};
use super::file_dialog::{DialogKind, DialogPurpose, FileDialogs};
use super::loader::{LoadEvent, LoadSource, Loader, Notify};
use super::scene::{Scene, SceneRunner};
use super::session::{LoadError, LoadedSnapshot, Session, SnapshotId};
use super::source::{SourceState, Sources};
use super::state::{
    BottomTab, CentralTab, FlameState, History, Settings, Sort, TableState, ViewSpec,
};
use super::text;
use super::timeline::{TimelinePoint, TimelineRequest, TimelineResult, TimelineService};
use super::ui;
use super::watch::FolderWatch;

/// The fewest snapshots the timeline is shown for: with two, the table's
/// comparison already says everything.
pub const TIMELINE_MIN_SNAPSHOTS: usize = 3;

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

/// How long a message that is not an error stays in the status bar.
const MESSAGE_TIME: Duration = Duration::from_secs(6);

/// A message in the status bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMessage {
    /// What happened.
    pub text: String,
    /// Whether it is a problem: problems stay until the next message.
    pub is_error: bool,
    /// When it was shown.
    pub shown_at: Instant,
}

/// A filter being written in the filter editor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterForm {
    /// Include (or exclude).
    pub inclusive: bool,
    /// The glob; empty for a domain-only filter.
    pub pattern: String,
    /// Restrict to a line.
    pub use_lineno: bool,
    /// The line.
    pub lineno: u32,
    /// Match any frame.
    pub all_frames: bool,
    /// Restrict to a domain.
    pub use_domain: bool,
    /// The domain.
    pub domain: u32,
}

impl Default for FilterForm {
    fn default() -> FilterForm {
        FilterForm {
            inclusive: true,
            pattern: String::new(),
            use_lineno: false,
            lineno: 1,
            all_frames: false,
            use_domain: false,
            domain: 0,
        }
    }
}

impl FilterForm {
    /// The filter the form describes, or why it cannot be added.
    pub fn to_filter(&self) -> Result<TraceFilter, &'static str> {
        let pattern = self.pattern.trim();
        if pattern.is_empty() {
            if self.use_domain && !self.use_lineno && !self.all_frames {
                return Ok(tracemalloc_format::DomainFilter {
                    inclusive: self.inclusive,
                    domain: self.domain,
                }
                .into());
            }
            return Err("Enter a file glob (or only a domain)");
        }
        let mut filter = Filter::new(self.inclusive, pattern).with_all_frames(self.all_frames);
        if self.use_lineno {
            filter = filter.with_lineno(self.lineno);
        }
        if self.use_domain {
            filter = filter.with_domain(self.domain);
        }
        Ok(filter.into())
    }
}

/// Text being edited, and other state that only the drawing code uses.
#[derive(Clone, Debug, Default)]
pub struct UiBuffers {
    /// The search box.
    pub search: String,
    /// The quick glob box.
    pub quick_glob: String,
    /// The filter editor's form.
    pub filter_form: FilterForm,
    /// Whether the filter editor window is open.
    pub show_filter_editor: bool,
    /// Move the keyboard focus to the search box on the next frame.
    pub focus_search: bool,
    /// The flame graph's search box.
    pub flame_search: String,
}

/// Everything the drawing code reads.
#[derive(Debug)]
pub struct AppState {
    /// Settings kept between runs.
    pub settings: Settings,
    /// The open snapshots.
    pub session: Session,
    /// Grouping, cumulative, filters.
    pub spec: ViewSpec,
    /// Back and Forward.
    pub history: History,
    /// Order, search, selection.
    pub table: TableState,
    /// The snapshot shown.
    pub current: Option<SnapshotId>,
    /// The snapshot compared to.
    pub compare: Option<SnapshotId>,
    /// The last analysis result.
    pub result: Option<AnalysisResult>,
    /// Why the last analysis failed.
    pub analysis_error: Option<String>,
    /// Whether an analysis is running.
    pub analysis_pending: bool,
    /// The load requests in progress.
    pub loader: Loader,
    /// A message for the status bar.
    pub message: Option<StatusMessage>,
    /// Whether the keyboard shortcuts window is open.
    pub show_shortcuts: bool,
    /// Whether a native file dialog is open.
    pub waiting_for_dialog: bool,
    /// What the central panel shows.
    pub central_tab: CentralTab,
    /// What the bottom panel shows.
    pub bottom_tab: BottomTab,
    /// The flame graph's zoom and search.
    pub flame: FlameState,
    /// The last timeline computed.
    pub timeline: Option<TimelineResult>,
    /// Why the last timeline failed.
    pub timeline_error: Option<String>,
    /// Snapshots grouped and to group while a timeline is computed.
    pub timeline_progress: Option<(usize, usize)>,
    /// The folder opened last, which can be watched.
    pub folder: Option<PathBuf>,
    /// Whether that folder is watched for new snapshots.
    pub watching: bool,
    /// Whether an export is being written.
    pub exporting: bool,
}

impl AppState {
    /// The snapshot shown.
    pub fn current_snapshot(&self) -> Option<&LoadedSnapshot> {
        self.current.and_then(|id| self.session.get(id))
    }

    /// The snapshot compared to.
    pub fn compare_snapshot(&self) -> Option<&LoadedSnapshot> {
        self.compare.and_then(|id| self.session.get(id))
    }

    /// Whether any shown snapshot has frames the "hide" switch would hide.
    pub fn has_hideable_frames(&self) -> bool {
        [self.current_snapshot(), self.compare_snapshot()]
            .into_iter()
            .flatten()
            .any(|s| s.info.has_hideable_frames)
    }

    /// The shown result's selected position in the table, if the result
    /// still is about the selected group.
    pub fn selected_position(&self) -> Option<usize> {
        self.result.as_ref()?.selected_position
    }

    /// Whether the timeline tab is offered: enough snapshots are open.
    pub fn timeline_available(&self) -> bool {
        self.session.snapshots().len() >= TIMELINE_MIN_SNAPSHOTS
    }

    /// Whether the timeline is on screen.
    pub fn timeline_shown(&self) -> bool {
        self.settings.show_charts
            && self.bottom_tab == BottomTab::Timeline
            && self.timeline_available()
    }

    /// The source file the details panel shows (the selected frame's), as
    /// recorded, if it can be a file.
    pub fn shown_source_file(&self) -> Option<&str> {
        if !self.settings.show_details {
            return None;
        }
        let tb = self.table.selected.as_ref()?;
        let index = self
            .table
            .selected_frame
            .min(tb.frames.len().checked_sub(1)?);
        let name: &str = &tb.frames[index].filename;
        let pseudo = name.is_empty() || (name.starts_with('<') && name.ends_with('>'));
        (!pseudo).then_some(name)
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
        let ctx = cc.egui_ctx.clone();
        install_fonts(&ctx);
        let repaint = ctx.clone();
        let notify: Notify = Arc::new(move || repaint.request_repaint());
        // A background service that cannot start (no thread) leaves its
        // feature off and says why in the status bar; the rest works.
        let mut message = None;
        let analysis = started(Analysis::start(Arc::clone(&notify)), &mut message);
        let sources = started(Sources::start(Arc::clone(&notify)), &mut message);
        let timeline_service = started(TimelineService::start(Arc::clone(&notify)), &mut message);
        let spec = ViewSpec {
            key_type: settings.key_type,
            cumulative: settings.cumulative,
            filters: Vec::new(),
        };
        let mut app = ViewerApp {
            state: AppState {
                settings,
                session: Session::default(),
                spec,
                history: History::default(),
                table: TableState::default(),
                current: None,
                compare: None,
                result: None,
                analysis_error: None,
                analysis_pending: false,
                loader: Loader::default(),
                message,
                show_shortcuts: false,
                waiting_for_dialog: false,
                central_tab: CentralTab::Table,
                bottom_tab: BottomTab::Charts,
                flame: FlameState::default(),
                timeline: None,
                timeline_error: None,
                timeline_progress: None,
                folder: None,
                watching: false,
                exporting: false,
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

    fn start_loading(&mut self, sources: Vec<LoadSource>) {
        let options = LoadOptions {
            dhat_point: self.state.settings.dhat_point(),
        };
        if let Err(err) = self
            .state
            .loader
            .start(sources, options, Arc::clone(&self.notify))
        {
            self.set_message(format!("{err:#}"), true);
        }
    }

    /// Carries out one command.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::OpenDialog => {
                if let Err(err) = self.dialogs.open(Arc::clone(&self.notify)) {
                    self.set_message(format!("{err:#}"), true);
                }
            }
            Command::OpenBrowser => self.dialogs.open_browser(),
            Command::OpenFolderDialog => {
                if let Err(err) = self
                    .dialogs
                    .show(DialogPurpose::OpenFolder, Arc::clone(&self.notify))
                {
                    self.set_message(format!("{err:#}"), true);
                }
            }
            Command::OpenPaths(paths) => {
                if self.state.session.showing_demo {
                    // Your own files replace the demo.
                    self.state.session.clear();
                    self.state.current = None;
                    self.state.compare = None;
                }
                let mut sources = Vec::new();
                for path in paths {
                    self.state.settings.remember_file(path.clone());
                    // The next dialog starts where these files are, as it
                    // does after a choice made in a dialog: File > Open
                    // folder right after opening one snapshot from the
                    // command line offers that snapshot's folder.
                    if let Some(dir) = std::path::absolute(&path)
                        .ok()
                        .and_then(|p| p.parent().map(|d| d.to_owned()))
                    {
                        self.dialogs.start_dir = Some(dir);
                    }
                    let is_folder = path.is_dir();
                    // Sources are looked for next to the snapshots.
                    let root = if is_folder {
                        Some(path.clone())
                    } else {
                        path.parent().map(|p| p.to_owned())
                    };
                    if let Some(root) = root
                        && let Some(files) = &mut self.sources
                        && !files.roots.contains(&root)
                    {
                        files.roots.push(root);
                    }
                    if is_folder {
                        if self.state.folder.as_ref() != Some(&path) {
                            // A new folder: the old one is no longer watched.
                            self.watcher = None;
                            self.state.watching = false;
                        }
                        self.state.folder = Some(path.clone());
                        // A folder is a series of snapshots over time: show
                        // its timeline and growth ranking (the tab only
                        // appears once three snapshots are open).
                        self.state.bottom_tab = BottomTab::Timeline;
                        self.state.settings.show_charts = true;
                        sources.push(LoadSource::Folder(path));
                    } else {
                        sources.push(LoadSource::Path(path));
                    }
                }
                self.start_loading(sources);
            }
            Command::SetWatch(on) => self.set_watch(on),
            Command::OpenBytes { name, bytes } => {
                self.start_loading(vec![LoadSource::Bytes {
                    origin: super::session::Origin::Dropped(name),
                    bytes,
                }]);
            }
            Command::OpenDemo => {
                let sources = demo::demo_sources();
                if sources.is_empty() {
                    self.set_message(
                        "This build has no demo snapshots: open your own with File > Open (Ctrl+O)",
                        false,
                    );
                } else {
                    self.state.session.clear();
                    self.state.session.showing_demo = true;
                    if let Some(sources) = &mut self.sources {
                        let root = demo::source_root();
                        if !sources.roots.contains(&root) {
                            sources.roots.push(root);
                        }
                    }
                    self.state.current = None;
                    self.state.compare = None;
                    self.auto_select = true;
                    self.start_loading(sources);
                }
            }
            Command::Reload => {
                let paths: Vec<LoadSource> = self
                    .state
                    .session
                    .snapshots()
                    .iter()
                    .filter_map(|s| s.origin.path().cloned())
                    .map(LoadSource::Path)
                    .collect();
                if paths.is_empty() {
                    self.set_message(
                        "Nothing to reload: no snapshot was opened from a file",
                        false,
                    );
                } else {
                    if let Some(sources) = &mut self.sources {
                        sources.clear();
                    }
                    self.start_loading(paths);
                }
            }
            Command::CancelLoading => {
                self.state.loader.cancel_all();
                self.set_message("Loading cancelled", false);
            }
            Command::CloseSnapshot(id) => {
                self.state.session.remove(id);
                self.fix_selection();
            }
            Command::CloseAll => {
                self.state.session.clear();
                self.fix_selection();
            }
            Command::DismissError(i) => {
                if i < self.state.session.errors.len() {
                    self.state.session.errors.remove(i);
                }
            }
            Command::SelectSnapshot(id) => {
                if self.state.session.get(id).is_some() {
                    self.auto_select = false;
                    self.state.current = Some(id);
                    if self.state.compare == Some(id) {
                        self.state.compare = None;
                    }
                }
            }
            Command::CompareTo(id) => {
                self.auto_select = false;
                self.state.compare = id.filter(|&id| {
                    Some(id) != self.state.current && self.state.session.get(id).is_some()
                });
            }
            Command::SetKeyType(key_type) => {
                self.change_spec(|spec| spec.key_type = key_type);
                self.state.settings.key_type = key_type;
            }
            Command::SetCumulative(on) => {
                self.change_spec(|spec| spec.cumulative = on);
                self.state.settings.cumulative = on;
            }
            Command::SetHideStdFrames(on) => self.state.settings.hide_std_frames = on,
            Command::AddFilter(filter) => {
                if !self.state.spec.filters.contains(&filter) {
                    self.change_spec(|spec| spec.filters.push(filter));
                }
            }
            Command::RemoveFilter(i) => {
                if i < self.state.spec.filters.len() {
                    self.change_spec(|spec| {
                        spec.filters.remove(i);
                    });
                }
            }
            Command::ClearFilters => {
                if !self.state.spec.filters.is_empty() {
                    self.change_spec(|spec| spec.filters.clear());
                }
            }
            Command::SortBy(column) => {
                let comparing = self.state.compare.is_some();
                let current = self.state.table.effective_sort(comparing);
                self.state.table.sort = Some(if current.column == column {
                    Sort {
                        column,
                        descending: !current.descending,
                    }
                } else {
                    Sort::first_click(column)
                });
            }
            Command::SetSearch(text) => {
                self.buffers.search.clone_from(&text);
                self.state.table.search = text;
            }
            Command::SelectRow(position) => self.select_position(position),
            Command::SelectGroup(mut tb) => {
                if let Some(result) = &mut self.state.result {
                    let row = find_row(&result.view, &tb);
                    if let Some(row) = row {
                        // The table's own key (a line's function may differ
                        // between a chart's and the table's snapshots).
                        tb = result.view.traceback(row);
                    }
                    result.selected_position =
                        row.and_then(|row| result.order.iter().position(|&i| i as usize == row));
                    self.state.table.scroll_to_selected = result.selected_position.is_some();
                }
                if self.state.table.selected.as_ref() != Some(&tb) {
                    self.state.table.selected = Some(tb);
                    self.state.table.selected_frame = 0;
                }
            }
            Command::MoveSelection(delta) => {
                let Some(result) = &self.state.result else {
                    return;
                };
                let len = result.order.len();
                if len == 0 {
                    return;
                }
                let from = result.selected_position.map_or(-1, |p| p as isize);
                let to = (from + delta).clamp(0, len as isize - 1) as usize;
                self.select_position(to);
                self.state.table.scroll_to_selected = true;
            }
            Command::DrillDown(position) => self.drill_down(position),
            Command::Back => {
                if let Some(spec) = self.state.history.back(self.state.spec.clone()) {
                    self.state.spec = spec;
                }
            }
            Command::Forward => {
                if let Some(spec) = self.state.history.forward(self.state.spec.clone()) {
                    self.state.spec = spec;
                }
            }
            Command::SelectFrame(i) => self.state.table.selected_frame = i,
            Command::Copy(text) => {
                self.ctx.copy_text(text);
                self.set_message("Copied to the clipboard", false);
            }
            Command::CopySelectedRow => {
                if let Some(text) = self.selected_row_text() {
                    self.apply(Command::Copy(text));
                }
            }
            Command::OpenInEditor { file, line } => {
                let path = match self.sources.as_mut().map(|s| s.get(&file)) {
                    Some(SourceState::Found(found)) => found.path.display().to_string(),
                    _ => file,
                };
                match editor::open_in_editor(&path, line) {
                    Ok(cmd) => self.set_message(format!("Opened: {cmd}"), false),
                    Err(err) => self.set_message(format!("{err:#}"), true),
                }
            }
            Command::ShowCharts(on) => self.state.settings.show_charts = on,
            Command::ShowDetails(on) => self.state.settings.show_details = on,
            Command::SetChartTopN(n) => self.state.settings.chart_top_n = n.clamp(1, 100),
            Command::FocusSearch => self.buffers.focus_search = true,
            Command::ShowShortcuts(on) => self.state.show_shortcuts = on,
            Command::ShowError(text) => self.set_message(text, true),
            Command::ShowCentralTab(tab) => self.state.central_tab = tab,
            Command::ShowBottomTab(tab) => {
                self.state.bottom_tab = tab;
                self.state.settings.show_charts = true;
            }
            Command::SetFlameWeight(weight) => self.state.settings.flame_weight = weight,
            Command::FlameZoom(path) => {
                self.state.flame.zoom = path.filter(|p| !p.is_empty());
            }
            Command::SetFlameSearch(text) => {
                self.buffers.flame_search.clone_from(&text);
                self.state.flame.search = text;
            }
            Command::SelectGrowing(position) => {
                let tb = self.state.timeline.as_ref().and_then(|t| {
                    let growth = t.timeline.ranking().get(position)?;
                    Some(t.timeline.traceback(growth.group))
                });
                if let Some(tb) = tb {
                    self.apply(Command::SelectGroup(tb));
                }
            }
            Command::SetDhatPoint(point) => {
                let at_end = point == tracemalloc_format::dhat::DhatPoint::End;
                if self.state.settings.dhat_at_end != at_end {
                    self.state.settings.dhat_at_end = at_end;
                    // Read the DHAT profiles again at the other moment.
                    let paths: Vec<LoadSource> = self
                        .state
                        .session
                        .snapshots()
                        .iter()
                        .filter(|s| s.info.dhat_point.is_some())
                        .filter_map(|s| s.origin.path().cloned())
                        .map(LoadSource::Path)
                        .collect();
                    self.start_loading(paths);
                }
            }
            Command::ExportDialog(kind) => {
                if let Err(err) = self
                    .dialogs
                    .show(DialogPurpose::Save(kind), Arc::clone(&self.notify))
                {
                    self.set_message(format!("{err:#}"), true);
                }
            }
            Command::Export { kind, path } => self.export(kind, path),
            Command::Quit => self.ctx.send_viewport_cmd(egui::ViewportCommand::Close),
        }
    }

    /// Starts or stops watching the opened folder.
    fn set_watch(&mut self, on: bool) {
        if !on {
            self.watcher = None;
            self.state.watching = false;
            return;
        }
        let Some(dir) = self.state.folder.clone() else {
            self.set_message("Open a folder first (File > Open folder)", true);
            return;
        };
        match FolderWatch::start(dir, self.watch_interval, Arc::clone(&self.notify)) {
            Ok(watch) => {
                self.watcher = Some(watch);
                self.state.watching = true;
            }
            Err(err) => self.set_message(format!("{err:#}"), true),
        }
    }

    /// Writes an export of what the window shows.
    fn export(&mut self, kind: ExportKind, path: PathBuf) {
        let job = match kind {
            ExportKind::TableCsv => match &self.state.result {
                Some(result) => ExportJob::Csv {
                    view: Arc::clone(&result.view),
                    order: Arc::clone(&result.order),
                },
                None => {
                    self.set_message("Nothing to export: no snapshot is shown", true);
                    return;
                }
            },
            ExportKind::FoldedStacks | ExportKind::Pprof => {
                let tree_input = |s: &LoadedSnapshot| TreeInput {
                    snapshot: Arc::clone(&s.snapshot),
                    has_untrimmed_frames: s.info.has_hideable_frames,
                };
                let Some(new) = self.state.current_snapshot().map(tree_input) else {
                    self.set_message("Nothing to export: no snapshot is shown", true);
                    return;
                };
                if kind == ExportKind::Pprof {
                    ExportJob::Pprof {
                        snapshot: new,
                        hide_std_frames: self.state.settings.hide_std_frames,
                        filters: self.state.spec.filters.clone(),
                    }
                } else {
                    ExportJob::Folded {
                        new,
                        old: self.state.compare_snapshot().map(tree_input),
                        hide_std_frames: self.state.settings.hide_std_frames,
                        filters: self.state.spec.filters.clone(),
                        weight: self.state.settings.flame_weight,
                    }
                }
            }
        };
        match self.exports.start(job, path, Arc::clone(&self.notify)) {
            Ok(()) => self.state.exporting = true,
            Err(err) => self.set_message(format!("{err:#}"), true),
        }
    }

    /// Changes the view spec, remembering the old one for Back.
    fn change_spec(&mut self, change: impl FnOnce(&mut ViewSpec)) {
        let before = self.state.spec.clone();
        change(&mut self.state.spec);
        if self.state.spec != before {
            self.state.history.record(before);
        }
    }

    fn select_position(&mut self, position: usize) {
        let Some(result) = &mut self.state.result else {
            return;
        };
        let Some(&row) = result.order.get(position) else {
            return;
        };
        let tb = result.view.traceback(row as usize);
        result.selected_position = Some(position);
        if self.state.table.selected.as_ref() != Some(&tb) {
            self.state.table.selected = Some(tb);
            self.state.table.selected_frame = 0;
        }
    }

    /// A file's lines, or a line's tracebacks, with a filter for the file
    /// (or line). The filter replaces the include filters: CPython keeps a
    /// trace that matches any include filter, so adding one would show
    /// more, not less. Back restores them.
    fn drill_down(&mut self, position: usize) {
        self.select_position(position);
        let Some(tb) = self.state.table.selected.clone() else {
            return;
        };
        let Some(frame) = tb.frames.first() else {
            return;
        };
        let cumulative = self.state.spec.effective_cumulative();
        let pattern = text::escape_glob(&frame.filename);
        let (key_type, filter) = match self.state.spec.key_type {
            KeyType::Filename => (
                KeyType::Lineno,
                Filter::new(true, &pattern).with_all_frames(cumulative),
            ),
            KeyType::Lineno => (
                KeyType::Traceback,
                Filter::new(true, &pattern)
                    .with_lineno(frame.lineno)
                    .with_all_frames(cumulative),
            ),
            // A traceback is as deep as it goes.
            KeyType::Traceback => return,
        };
        self.change_spec(|spec| {
            spec.key_type = key_type;
            spec.filters.retain(|f| !f.inclusive());
            spec.filters.push(filter.into());
        });
        self.state.table.selected = None;
        self.select_first_on_result = true;
    }

    /// The selected row as the table shows it, tab-separated.
    fn selected_row_text(&self) -> Option<String> {
        let result = self.state.result.as_ref()?;
        let position = result.selected_position?;
        let row_index = *result.order.get(position)? as usize;
        Some(ui::table::row_text(&result.view, row_index))
    }

    /// Keeps `current` and `compare` pointing at open snapshots; shows the
    /// newest snapshot compared to the oldest until the user chooses.
    fn fix_selection(&mut self) {
        let snapshots = self.state.session.snapshots();
        let valid = |id: Option<SnapshotId>| id.filter(|&id| snapshots.iter().any(|s| s.id == id));
        let newest = snapshots.last().map(|s| s.id);
        let oldest = snapshots
            .first()
            .map(|s| s.id)
            .filter(|&id| Some(id) != newest);
        if self.auto_select {
            self.state.current = newest;
            self.state.compare = oldest;
        } else {
            self.state.current = valid(self.state.current).or(newest);
            self.state.compare =
                valid(self.state.compare).filter(|&c| Some(c) != self.state.current);
        }
        if self.state.current.is_none() {
            self.state.result = None;
            self.state.table.selected = None;
            if let Some(analysis) = &mut self.analysis {
                analysis.reset();
            }
        }
    }

    /// Takes what the background threads produced.
    fn poll_background(&mut self) {
        if let Some(watch) = &self.watcher {
            let found = watch.poll();
            if !found.is_empty() {
                let n = found.len();
                self.start_loading(found.into_iter().map(LoadSource::Path).collect());
                self.set_message(
                    format!(
                        "{n} new snapshot{} in the watched folder",
                        if n == 1 { "" } else { "s" }
                    ),
                    false,
                );
            }
        }
        for outcome in self.exports.poll() {
            match outcome {
                Ok(said) => self.set_message(said, false),
                Err(err) => self.set_message(err, true),
            }
        }
        self.state.exporting = self.exports.is_busy();
        if let Some(service) = &mut self.timeline_service {
            if let Some(outcome) = service.poll() {
                match outcome {
                    Ok(result) => {
                        if result.generation == service.generation() {
                            self.state.timeline_progress = None;
                        }
                        self.state.timeline_error = None;
                        self.state.timeline = Some(result);
                    }
                    Err((generation, message)) => {
                        if generation == service.generation() {
                            self.state.timeline_progress = None;
                        }
                        self.state.timeline_error = Some(message);
                    }
                }
            }
            if self.state.timeline_progress.is_some() {
                let p = &service.progress;
                self.state.timeline_progress = Some((
                    p.done.load(std::sync::atomic::Ordering::Relaxed),
                    p.total.load(std::sync::atomic::Ordering::Relaxed),
                ));
            }
        }
        for event in self.state.loader.poll() {
            match event {
                LoadEvent::Loaded(loaded) => {
                    let id = self.state.session.next_id();
                    let loaded = LoadedSnapshot {
                        id,
                        origin: loaded.origin,
                        snapshot: Arc::new(loaded.snapshot),
                        info: loaded.info,
                        opened: 0,
                    };
                    if let Some(old) = self.state.session.insert(loaded) {
                        for slot in [&mut self.state.current, &mut self.state.compare] {
                            if *slot == Some(old) {
                                *slot = Some(id);
                            }
                        }
                    }
                    self.fix_selection();
                }
                LoadEvent::Failed { name, message } => {
                    self.state.session.errors.push(LoadError { name, message });
                }
                LoadEvent::Finished => {}
            }
        }
        if let Some(sources) = &mut self.sources {
            sources.poll();
        }
        if let Some(analysis) = &mut self.analysis
            && let Some(outcome) = analysis.poll()
        {
            let latest = analysis.generation();
            match outcome {
                Ok(_) if self.state.current.is_none() => {
                    // Every snapshot was closed meanwhile.
                    self.state.analysis_pending = false;
                }
                Ok(mut result) => {
                    if result.generation == latest {
                        self.state.analysis_pending = false;
                    }
                    // The selection may have changed since the request.
                    result.selected_position = self.state.table.selected.as_ref().and_then(|tb| {
                        let row = result.view.position_of(tb)? as u32;
                        result.order.iter().position(|&i| i == row)
                    });
                    if result.selected_position.is_none() {
                        if self.select_first_on_result && !result.order.is_empty() {
                            self.select_first_on_result = false;
                            let tb = result.view.traceback(result.order[0] as usize);
                            self.state.table.selected = Some(tb);
                            self.state.table.selected_frame = 0;
                            result.selected_position = Some(0);
                        } else if self.state.table.selected.is_some() {
                            // The group is not shown any more.
                            self.state.table.selected = None;
                        }
                    }
                    self.state.table.scroll_to_selected = result.selected_position.is_some();
                    self.state.analysis_error = None;
                    self.state.result = Some(result);
                }
                Err((generation, message)) => {
                    if generation == latest {
                        self.state.analysis_pending = false;
                    }
                    self.state.analysis_error = Some(message);
                }
            }
        }
    }

    /// Sends the analysis request for what is shown now, if it changed.
    fn request_analysis(&mut self) {
        let Some(analysis) = &mut self.analysis else {
            return;
        };
        let Some(current) = self.state.current_snapshot() else {
            return;
        };
        let compare = self.state.compare_snapshot();
        let comparing = compare.is_some();
        let request = AnalysisRequest {
            generation: 0,
            new: Input {
                id: current.id,
                snapshot: Arc::clone(&current.snapshot),
                has_untrimmed_frames: current.info.has_hideable_frames,
            },
            old: compare.map(|c| Input {
                id: c.id,
                snapshot: Arc::clone(&c.snapshot),
                has_untrimmed_frames: c.info.has_hideable_frames,
            }),
            hide_std_frames: self.state.settings.hide_std_frames,
            filters: self.state.spec.filters.clone(),
            key_type: self.state.spec.key_type,
            cumulative: self.state.spec.effective_cumulative(),
            sort: self.state.table.effective_sort(comparing),
            search: self.state.table.search.clone(),
            chart_top_n: self.state.settings.chart_top_n,
            selected: self.state.table.selected.clone(),
            flame: (self.state.central_tab == CentralTab::Flamegraph)
                .then_some(self.state.settings.flame_weight),
            flame_search: self.state.flame.search.clone(),
            annotate: self.state.shown_source_file().map(str::to_owned),
        };
        if analysis.request(request) {
            self.state.analysis_pending = true;
        }
    }

    /// Sends the timeline request for what is shown now, if it changed.
    fn request_timeline(&mut self) {
        let Some(service) = &mut self.timeline_service else {
            return;
        };
        if !self.state.timeline_shown() {
            // Hidden: nothing to compute, and the next showing asks again.
            service.reset();
            self.state.timeline_progress = None;
            return;
        }
        let points = self
            .state
            .session
            .snapshots()
            .iter()
            .map(|s| TimelinePoint {
                id: s.id,
                snapshot: Arc::clone(&s.snapshot),
                has_untrimmed_frames: s.info.has_hideable_frames,
                time: s
                    .time_micros()
                    .map(|unix_micros| tracemalloc_format::Timestamp { unix_micros }),
            })
            .collect();
        let request = TimelineRequest {
            generation: 0,
            points,
            hide_std_frames: self.state.settings.hide_std_frames,
            filters: self.state.spec.filters.clone(),
            key_type: self.state.spec.key_type,
            cumulative: self.state.spec.effective_cumulative(),
        };
        if service.request(request) {
            let total = self.state.session.snapshots().len();
            self.state.timeline_progress = Some((0, total));
        }
    }

    /// Keyboard shortcuts, mouse side buttons and dropped files.
    fn handle_input(&mut self, ctx: &egui::Context, commands: &mut Vec<Command>) {
        let typing = ctx.egui_wants_keyboard_input();
        ctx.input_mut(|i| {
            let ctrl = |key| KeyboardShortcut::new(Modifiers::COMMAND, key);
            let alt = |key| KeyboardShortcut::new(Modifiers::ALT, key);
            if i.consume_shortcut(&ctrl(Key::O)) {
                commands.push(Command::OpenDialog);
            }
            if i.consume_shortcut(&ctrl(Key::F)) {
                commands.push(Command::FocusSearch);
            }
            if i.consume_key(Modifiers::NONE, Key::F5) {
                commands.push(Command::Reload);
            }
            if i.consume_shortcut(&alt(Key::ArrowLeft))
                || i.pointer.button_clicked(PointerButton::Extra1)
            {
                commands.push(Command::Back);
            }
            if i.consume_shortcut(&alt(Key::ArrowRight))
                || i.pointer.button_clicked(PointerButton::Extra2)
            {
                commands.push(Command::Forward);
            }
            if !typing {
                if i.events.iter().any(|e| matches!(e, Event::Copy)) {
                    commands.push(Command::CopySelectedRow);
                }
                for (key, delta) in [
                    (Key::ArrowDown, 1),
                    (Key::ArrowUp, -1),
                    (Key::PageDown, 20),
                    (Key::PageUp, -20),
                    (Key::End, isize::MAX / 2),
                    (Key::Home, -(isize::MAX / 2)),
                ] {
                    if i.consume_key(Modifiers::NONE, key) {
                        commands.push(Command::MoveSelection(delta));
                    }
                }
                if i.consume_key(Modifiers::NONE, Key::Enter)
                    && let Some(position) = self.state.selected_position()
                {
                    commands.push(Command::DrillDown(position));
                }
            }
            let mut paths = Vec::new();
            for file in std::mem::take(&mut i.raw.dropped_files) {
                let path = file.path();
                if !path.as_os_str().is_empty() {
                    paths.push(path.to_owned());
                    continue;
                }
                // No path (not the desktop's way, but possible): the bytes.
                match file.bytes() {
                    Ok(bytes) => commands.push(Command::OpenBytes {
                        name: "dropped file".to_owned(),
                        bytes: Arc::from(bytes),
                    }),
                    Err(err) => commands.push(Command::ShowError(format!(
                        "cannot read the dropped file: {err}"
                    ))),
                }
            }
            if !paths.is_empty() {
                commands.push(Command::OpenPaths(paths));
            }
        });
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

/// The row of `view` whose key is `key`: the same frames, or for file and
/// line groupings the same file and line (a line's shown function can
/// differ between two computations of the same group).
fn find_row(view: &View, key: &Traceback) -> Option<usize> {
    if let Some(row) = view.position_of(key) {
        return Some(row);
    }
    if view.key_type() == KeyType::Traceback {
        return None;
    }
    let wanted = key.frames.first()?;
    (0..view.len()).find(|&i| {
        view.frames(i)
            .next()
            .is_some_and(|f| f.filename == &*wanted.filename && f.lineno == wanted.lineno)
    })
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
