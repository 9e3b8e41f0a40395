//! Carrying out [`Command`]s: [`ViewerApp::apply`], the one place where
//! what the user asked for changes the state, and its helpers (selection,
//! drill-down, history, exports, folder watching).

use std::path::PathBuf;
use std::sync::Arc;

use tracemalloc_format::dhat::DhatPoint;
use tracemalloc_format::rows::{SortColumn, View};
use tracemalloc_format::{Filter, KeyType, Traceback};

use super::ViewerApp;
use crate::viewer::app_state::TIMELINE_MIN_SNAPSHOTS;
use crate::viewer::command::Command;
use crate::viewer::demo;
use crate::viewer::display_text;
use crate::viewer::editor;
use crate::viewer::export::{ExportJob, ExportKind, TreeInput};
use crate::viewer::file_dialog::DialogPurpose;
use crate::viewer::loader::LoadSource;
use crate::viewer::session::{LoadedSnapshot, SnapshotId};
use crate::viewer::source::SourceState;
use crate::viewer::state::{BottomTab, Sort, ViewSpec};
use crate::viewer::ui;
use crate::viewer::watch::FolderWatch;

impl ViewerApp {
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
            Command::OpenPaths(paths) => self.open_paths(paths),
            Command::SetWatch(on) => self.set_watch(on),
            Command::OpenBytes { name, bytes } => {
                self.start_loading(vec![LoadSource::Bytes {
                    origin: crate::viewer::session::Origin::Dropped(name),
                    bytes,
                }]);
            }
            Command::OpenDemo => self.open_demo(),
            Command::Reload => self.reload(),
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
            Command::SetMetric(metric) => match self.state.metric_unavailable_reason() {
                // The picker is disabled then; a command from elsewhere
                // (a test, a script) is told why rather than obeyed with
                // numbers the snapshot does not have.
                Some(reason) if metric.needs_history() => {
                    self.set_message(format!("cannot show {metric} blocks: {reason}"), true);
                }
                _ => self.change_spec(|spec| spec.metric = metric),
            },
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
            Command::SortBy(column) => self.sort_by(column),
            Command::SetSearch(text) => {
                self.buffers.search.clone_from(&text);
                self.state.table.search = text;
            }
            Command::SelectRow(position) => self.select_position(position),
            Command::SelectGroup(tb) => self.select_group(tb),
            Command::MoveSelection(delta) => self.move_selection(delta),
            Command::ScrolledToSelected => self.state.table.scroll_to_selected = false,
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
            Command::OpenInEditor { file, line } => self.open_in_editor(file, line),
            Command::ShowCharts(on) => self.state.settings.show_charts = on,
            Command::ShowDetails(on) => self.state.settings.show_details = on,
            Command::ShowFullSourceGutter(on) => self.state.settings.full_source_gutter = on,
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
            Command::SetDhatPoint(point) => self.set_dhat_point(point),
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
                        metric: self.state.effective_metric(),
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
    pub(super) fn change_spec(&mut self, change: impl FnOnce(&mut ViewSpec)) {
        let before = self.state.spec.clone();
        change(&mut self.state.spec);
        if self.state.spec != before {
            self.state.history.record(before);
        }
    }

    pub(super) fn select_position(&mut self, position: usize) {
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
        let pattern = display_text::escape_glob(&frame.filename);
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
    pub(super) fn fix_selection(&mut self) {
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

    /// Opens files and folders; your own files replace the demo.
    fn open_paths(&mut self, paths: Vec<PathBuf>) {
        if self.state.session.showing_demo {
            // Your own files replace the demo.
            self.state.session.clear();
            self.state.current = None;
            self.state.compare = None;
        }
        if paths.len() >= TIMELINE_MIN_SNAPSHOTS {
            // Three or more snapshots at once are a series over time, as a
            // folder is: start on their timeline and growth ranking.
            self.show_timeline();
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
                self.show_timeline();
                sources.push(LoadSource::Folder(path));
            } else {
                sources.push(LoadSource::Path(path));
            }
        }
        self.start_loading(sources);
    }

    /// Shows the timeline tab of the bottom panel (which appears once
    /// three snapshots are open).
    fn show_timeline(&mut self) {
        self.state.bottom_tab = BottomTab::Timeline;
        self.state.settings.show_charts = true;
    }

    /// Opens the bundled demo snapshots in place of what is open.
    fn open_demo(&mut self) {
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

    /// Reads every snapshot opened from a file again.
    fn reload(&mut self) {
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

    /// Sorts by a column; a second click on the same column reverses it.
    fn sort_by(&mut self, column: SortColumn) {
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

    /// Selects a group by key (a chart's bar, a ranked group), in the
    /// current result or, when it is not there yet, the next one.
    fn select_group(&mut self, mut tb: Traceback) {
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

    /// Moves the selection by `delta` rows of the shown order.
    fn move_selection(&mut self, delta: isize) {
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

    /// Opens a source file (where the viewer found it) in the user's editor.
    fn open_in_editor(&mut self, file: String, line: u32) {
        let path = match self.sources.as_mut().map(|s| s.get(&file)) {
            Some(SourceState::Found(found)) => found.path.display().to_string(),
            _ => file,
        };
        match editor::open_in_editor(&path, line) {
            Ok(cmd) => self.set_message(format!("Opened: {cmd}"), false),
            Err(err) => self.set_message(format!("{err:#}"), true),
        }
    }

    /// Reads DHAT profiles at another moment (reloads them).
    fn set_dhat_point(&mut self, point: DhatPoint) {
        let at_end = point == DhatPoint::End;
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
