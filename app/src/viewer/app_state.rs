//! The viewer's state as the drawing code sees it: [`AppState`] (everything
//! drawn, changed only by [`super::app::ViewerApp::apply`]), [`UiBuffers`]
//! (text being typed, which the drawing code edits in place), the filter
//! editor's [`FilterForm`] and the status bar's [`StatusMessage`].
//!
//! It lives apart from the app (as rerun's `app_state.rs` beside `app.rs`),
//! so that the drawing code (`ui/`) depends on the state and the commands
//! only, never on the app that owns the threads and applies the commands.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tracemalloc_format::{Filter, Metric, TraceFilter};

use super::analysis::AnalysisResult;
use super::loader::Loader;
use super::session::{LoadedSnapshot, Session, SnapshotId};
use super::state::{BottomTab, CentralTab, FlameState, History, Settings, TableState, ViewSpec};
use super::timeline_service::TimelineResult;

/// The fewest snapshots the timeline is shown for: with two, the table's
/// comparison already says everything.
pub const TIMELINE_MIN_SNAPSHOTS: usize = 3;

/// Why the metric picker offers only live blocks for a snapshot without
/// allocation history.
pub const NO_HISTORY: &str = "this snapshot has no allocation history \
     (CPython pickles and version 1 files record only live blocks)";

/// Why the metric picker offers only live blocks when one of the compared
/// snapshots has no allocation history.
pub const NO_HISTORY_COMPARED: &str = "one of the compared snapshots has no allocation history \
     (CPython pickles and version 1 files record only live blocks)";

/// How long a message that is not an error stays in the status bar.
pub const MESSAGE_TIME: Duration = Duration::from_secs(6);

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
    /// The state of a viewer with nothing open yet, starting from the
    /// settings kept between runs. It needs no egui or eframe context, so
    /// tests can build one and draw it or change it directly.
    pub fn new(settings: Settings) -> AppState {
        // The metric is not a setting: a history metric would be refused
        // by the next file without history, so every run starts with live
        // blocks, tracemalloc's view.
        let spec = ViewSpec {
            metric: Metric::Live,
            key_type: settings.key_type,
            cumulative: settings.cumulative,
            filters: Vec::new(),
        };
        AppState {
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
            message: None,
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
        }
    }

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

    /// Why the history metrics cannot be shown for the shown snapshots
    /// (one of them has no allocation history), or `None` when they can.
    pub fn metric_unavailable_reason(&self) -> Option<&'static str> {
        let shown = [self.current_snapshot(), self.compare_snapshot()];
        let lacking = shown
            .into_iter()
            .flatten()
            .any(|s| s.snapshot.history().is_none());
        let any = shown.into_iter().flatten().next().is_some();
        if !any {
            Some("no snapshot is shown")
        } else if !lacking {
            None
        } else if self.compare_snapshot().is_some() {
            Some(NO_HISTORY_COMPARED)
        } else {
            Some(NO_HISTORY)
        }
    }

    /// The metric the shown numbers measure: the chosen one, or live
    /// blocks when a shown snapshot has no history.
    pub fn effective_metric(&self) -> Metric {
        self.spec
            .effective_metric(self.metric_unavailable_reason().is_none())
    }

    /// The metric the timeline measures: the chosen one when every open
    /// snapshot has a history (the timeline merges them all), live blocks
    /// otherwise.
    pub fn timeline_metric(&self) -> Metric {
        let all = self
            .session
            .snapshots()
            .iter()
            .all(|s| s.snapshot.history().is_some());
        self.spec.effective_metric(all)
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
