//! The background services as the app sees them: starting loads, sending
//! the analysis and timeline requests for what is shown, and taking what
//! the threads produced at the start of each frame.

use std::sync::Arc;

use tracemalloc_format::LoadOptions;

use super::ViewerApp;
use crate::viewer::analysis::{AnalysisRequest, Input};
use crate::viewer::loader::{LoadEvent, LoadSource};
use crate::viewer::session::{LoadError, LoadedSnapshot};
use crate::viewer::state::CentralTab;
use crate::viewer::timeline_service::{TimelinePoint, TimelineRequest};

impl ViewerApp {
    /// The background half of a frame, without drawing: takes what the
    /// threads produced, then sends the requests for what is shown now.
    /// A frame does the same around its drawing; tests without a window
    /// call this instead.
    pub fn poll_and_request(&mut self) {
        self.poll_background();
        self.request_analysis();
        self.request_timeline();
    }

    pub(super) fn start_loading(&mut self, sources: Vec<LoadSource>) {
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

    /// Takes what the background threads produced.
    pub(super) fn poll_background(&mut self) {
        self.poll_watch_and_exports();
        self.poll_timeline();
        self.poll_loads();
        if let Some(sources) = &mut self.sources {
            sources.poll();
        }
        self.poll_analysis();
    }

    /// New files in the watched folder (loaded), finished exports (said).
    fn poll_watch_and_exports(&mut self) {
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
    }

    /// The newest timeline, or why it failed, and the progress.
    fn poll_timeline(&mut self) {
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
    }

    /// Loaded snapshots into the session, failures into its error list.
    fn poll_loads(&mut self) {
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
    }

    /// The newest analysis result, its selection found again.
    fn poll_analysis(&mut self) {
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
    pub(super) fn request_analysis(&mut self) {
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
            metric: self.state.effective_metric(),
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
    pub(super) fn request_timeline(&mut self) {
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
            metric: self.state.timeline_metric(),
            key_type: self.state.spec.key_type,
            cumulative: self.state.spec.effective_cumulative(),
        };
        if service.request(request) {
            let total = self.state.session.snapshots().len();
            self.state.timeline_progress = Some((0, total));
        }
    }
}
