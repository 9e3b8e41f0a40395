//! Scripted scenes for the README's screenshots
//! (`TRACEMALLOC_VIEWER_SCENE=compare|filters|traceback|charts|timeline|
//! growing|flamegraph|annotated|metric-live|metric-allocated|
//! metric-temporary|metric-peak`, used by scripts/screenshots.sh): the real
//! viewer on the demo snapshots (or the files given: the `metric-*` scenes
//! open app/demo/ripgrep-history.tmsnap, a recording of ripgrep with its
//! allocation history), driven
//! by the same commands a user's clicks send, one step each time the
//! viewer is idle. When the last step is done the viewer prints
//! `tracemalloc-viewer: scene ready` on stderr, and the script takes the
//! picture.

use std::collections::VecDeque;
use std::str::FromStr;

use tracemalloc_format::rows::SortColumn;
use tracemalloc_format::{Filter, KeyType, Metric};

use super::app_state::AppState;
use super::command::Command;
use super::state::{BottomTab, CentralTab};

/// A screenshot scene.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scene {
    /// The table comparing the newest snapshot to the oldest, by line, the
    /// top row selected.
    Compare,
    /// Filters applied: by line, cumulative, an include filter on any
    /// frame, an exclude filter for one line, and a search.
    Filters,
    /// A line drilled down to its tracebacks, one selected, its source
    /// shown.
    Traceback,
    /// The delta charts.
    Charts,
    /// The timeline of every snapshot, the steadiest leak selected.
    Timeline,
    /// The growth ranking by traceback, tall and wide, the steadiest
    /// selected.
    Growing,
    /// The diff flame graph of the newest snapshot against the oldest.
    Flamegraph,
    /// The top line selected, its source annotated with memory.
    Annotated,
    /// A recording with an allocation history (the file given) by what is
    /// live at its end, the top line selected: the little a snapshot at
    /// exit shows.
    MetricLive,
    /// The same recording by allocations, the line that allocates most
    /// often on top and selected.
    MetricAllocated,
    /// The same recording by temporary blocks, the top line selected.
    MetricTemporary,
    /// The same recording by what was live at the peak, the top line
    /// selected, its source annotated.
    MetricPeak,
}

impl FromStr for Scene {
    type Err = String;

    fn from_str(s: &str) -> Result<Scene, String> {
        match s {
            "compare" => Ok(Scene::Compare),
            "filters" => Ok(Scene::Filters),
            "traceback" => Ok(Scene::Traceback),
            "charts" => Ok(Scene::Charts),
            "timeline" => Ok(Scene::Timeline),
            "growing" => Ok(Scene::Growing),
            "flamegraph" => Ok(Scene::Flamegraph),
            "annotated" => Ok(Scene::Annotated),
            "metric-live" => Ok(Scene::MetricLive),
            "metric-allocated" => Ok(Scene::MetricAllocated),
            "metric-temporary" => Ok(Scene::MetricTemporary),
            "metric-peak" => Ok(Scene::MetricPeak),
            other => Err(format!(
                "unknown scene {other:?} (expected compare, filters, traceback, charts, \
                 timeline, growing, flamegraph, annotated, metric-live, metric-allocated, \
                 metric-temporary or metric-peak)"
            )),
        }
    }
}

/// Plays a scene.
#[derive(Debug)]
pub struct SceneRunner {
    steps: VecDeque<Command>,
    announced: bool,
}

impl SceneRunner {
    /// The runner of a scene.
    pub fn new(scene: Scene) -> SceneRunner {
        use Command::*;
        let steps = match scene {
            Scene::Compare => vec![
                ShowCharts(true),
                ShowDetails(true),
                SetKeyType(KeyType::Lineno),
                SelectRow(0),
            ],
            Scene::Filters => vec![
                ShowCharts(false),
                ShowDetails(true),
                SetKeyType(KeyType::Lineno),
                SetCumulative(true),
                AddFilter(
                    Filter::new(true, "*/leaky_service.rs")
                        .with_all_frames(true)
                        .into(),
                ),
                AddFilter(
                    Filter::new(false, "*/leaky_service.rs")
                        .with_lineno(120)
                        .into(),
                ),
                SetSearch("leaky_service.rs:1".to_owned()),
                SelectRow(0),
            ],
            Scene::Traceback => vec![
                ShowCharts(false),
                ShowDetails(true),
                SetKeyType(KeyType::Lineno),
                DrillDown(0),
                SelectRow(0),
                SelectFrame(1),
            ],
            Scene::Charts => vec![
                ShowCharts(true),
                ShowDetails(false),
                SetKeyType(KeyType::Lineno),
                SelectRow(0),
            ],
            Scene::Timeline => vec![
                ShowDetails(false),
                SetKeyType(KeyType::Lineno),
                ShowBottomTab(BottomTab::Timeline),
                SelectGrowing(0),
            ],
            Scene::Growing => vec![
                ShowDetails(false),
                SetKeyType(KeyType::Traceback),
                ShowBottomTab(BottomTab::Timeline),
                SelectGrowing(0),
            ],
            Scene::Flamegraph => vec![
                ShowCharts(false),
                ShowDetails(false),
                SetKeyType(KeyType::Lineno),
                ShowCentralTab(CentralTab::Flamegraph),
            ],
            Scene::Annotated => vec![
                ShowCharts(false),
                ShowDetails(true),
                SetKeyType(KeyType::Lineno),
                SelectRow(0),
            ],
            Scene::MetricLive => vec![
                ShowCharts(true),
                ShowDetails(true),
                SetKeyType(KeyType::Lineno),
                SetMetric(Metric::Live),
                SelectRow(0),
            ],
            Scene::MetricAllocated => vec![
                ShowCharts(true),
                ShowDetails(true),
                SetKeyType(KeyType::Lineno),
                SetMetric(Metric::Allocated),
                // By allocations (the count column): where it allocates
                // most often, not where the bytes went.
                SortBy(SortColumn::Count),
                SelectRow(0),
            ],
            Scene::MetricTemporary => vec![
                ShowCharts(true),
                ShowDetails(true),
                SetKeyType(KeyType::Lineno),
                SetMetric(Metric::Temporary),
                SelectRow(0),
            ],
            Scene::MetricPeak => vec![
                ShowCharts(true),
                ShowDetails(true),
                SetKeyType(KeyType::Lineno),
                SetMetric(Metric::Peak),
                SelectRow(0),
            ],
        };
        SceneRunner {
            steps: steps.into(),
            announced: false,
        }
    }

    /// The next step's commands, when the viewer is idle with a result.
    pub fn next(&mut self, idle: bool, state: &AppState) -> Vec<Command> {
        if !idle || state.result.is_none() {
            return Vec::new();
        }
        match self.steps.pop_front() {
            Some(command) => vec![command],
            None => {
                if !self.announced {
                    self.announced = true;
                    eprintln!("tracemalloc-viewer: scene ready");
                }
                Vec::new()
            }
        }
    }

    /// Whether the scene is not ready yet.
    pub fn is_playing(&self) -> bool {
        !self.announced
    }
}
