//! The viewer's state as plain structs: what the user asked to see
//! ([`ViewSpec`], with its [`History`]), the settings kept between runs
//! ([`Settings`]), and the table's own state ([`TableState`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tracemalloc_format::dhat::DhatPoint;
use tracemalloc_format::flame::FlameWeight;
use tracemalloc_format::rows::SortColumn;
use tracemalloc_format::{Frame, KeyType, Metric, TraceFilter, Traceback};

/// How many recent files File > Open Recent remembers.
pub const MAX_RECENT_FILES: usize = 10;

/// What the table shows, apart from which snapshots: the metric, the
/// grouping, the cumulative mode and the filters. Back and Forward move
/// between these,
/// the steps of an exploration (drilling down, filtering); they restore
/// neither the snapshots shown (chosen in the snapshot list, a navigation
/// of its own) nor the "hide std frames" switch (a persisted display
/// setting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewSpec {
    /// What the numbers measure: live blocks, or one of the allocation
    /// history's metrics. Asked of snapshots without history it falls back
    /// to live blocks ([`ViewSpec::effective_metric`]), and the picker says
    /// why.
    pub metric: Metric,
    /// How traces are grouped.
    pub key_type: KeyType,
    /// Count each block in every frame of its traceback.
    pub cumulative: bool,
    /// Filters, applied to both snapshots, in the order they were added.
    pub filters: Vec<TraceFilter>,
}

impl ViewSpec {
    /// Whether cumulative mode is on and possible (it needs a per-frame
    /// grouping, as in CPython).
    pub fn effective_cumulative(&self) -> bool {
        self.cumulative && self.key_type != KeyType::Traceback
    }

    /// The metric to compute, given whether every shown snapshot has an
    /// allocation history: the chosen one when they do, live blocks
    /// otherwise (a history metric of a snapshot without history has no
    /// numbers, and showing zeros would be wrong).
    pub fn effective_metric(&self, history: bool) -> Metric {
        if history || !self.metric.needs_history() {
            self.metric
        } else {
            Metric::Live
        }
    }
}

/// Back and Forward over [`ViewSpec`]s, as a browser's history.
#[derive(Clone, Debug, Default)]
pub struct History {
    back: Vec<ViewSpec>,
    forward: Vec<ViewSpec>,
}

impl History {
    /// Remembers `previous` before a change: Back will return to it, and
    /// whatever Forward held is forgotten.
    pub fn record(&mut self, previous: ViewSpec) {
        self.back.push(previous);
        self.forward.clear();
    }

    /// The spec before `current`, remembering `current` for Forward.
    pub fn back(&mut self, current: ViewSpec) -> Option<ViewSpec> {
        let previous = self.back.pop()?;
        self.forward.push(current);
        Some(previous)
    }

    /// The spec Back left, remembering `current` for Back.
    pub fn forward(&mut self, current: ViewSpec) -> Option<ViewSpec> {
        let next = self.forward.pop()?;
        self.back.push(current);
        Some(next)
    }

    /// Whether Back would do anything.
    pub fn can_go_back(&self) -> bool {
        !self.back.is_empty()
    }

    /// Whether Forward would do anything.
    pub fn can_go_forward(&self) -> bool {
        !self.forward.is_empty()
    }
}

/// Settings kept between runs (eframe persistence).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The grouping the viewer starts with.
    pub key_type: KeyType,
    /// Whether it starts in cumulative mode.
    pub cumulative: bool,
    /// Hide the Rust standard library's and the recorder's frames.
    pub hide_std_frames: bool,
    /// Show the chart panel.
    pub show_charts: bool,
    /// Show the details panel (traceback and source).
    pub show_details: bool,
    /// How many groups each chart shows.
    pub chart_top_n: usize,
    /// Files opened recently, most recent first, without duplicates.
    pub recent_files: Vec<PathBuf>,
    /// What the flame graph's widths measure.
    pub flame_weight: FlameWeight,
    /// Read DHAT profiles at their end (`t-end`) instead of their global
    /// peak (`t-gmax`).
    pub dhat_at_end: bool,
    /// Show every annotation column beside the source code (blocks, Δ,
    /// through), not only the bytes allocated at each line.
    pub full_source_gutter: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            key_type: KeyType::Lineno,
            cumulative: false,
            hide_std_frames: true,
            show_charts: true,
            show_details: true,
            chart_top_n: 10,
            recent_files: Vec::new(),
            flame_weight: FlameWeight::Bytes,
            dhat_at_end: false,
            full_source_gutter: false,
        }
    }
}

impl Settings {
    /// Puts `path` first in the recent files, once.
    pub fn remember_file(&mut self, path: PathBuf) {
        self.recent_files.retain(|p| *p != path);
        self.recent_files.insert(0, path);
        self.recent_files.truncate(MAX_RECENT_FILES);
    }

    /// Which moment of a DHAT profile is read.
    pub fn dhat_point(&self) -> DhatPoint {
        if self.dhat_at_end {
            DhatPoint::End
        } else {
            DhatPoint::GlobalPeak
        }
    }
}

/// What the central panel shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CentralTab {
    /// The table of groups.
    #[default]
    Table,
    /// The traceback tree as an icicle graph.
    Flamegraph,
}

/// What the bottom panel shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BottomTab {
    /// The top groups as bars.
    #[default]
    Charts,
    /// Every snapshot's totals over time, and the growing groups.
    Timeline,
}

/// The flame graph's own state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlameState {
    /// The zoomed node, as its frames from the root (oldest first), so that
    /// it is found again in a recomputed tree; `None` for the whole tree.
    pub zoom: Option<Vec<Frame>>,
    /// Text whose frames are highlighted.
    pub search: String,
}

/// The order of the table: a column and a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sort {
    /// The column.
    pub column: SortColumn,
    /// Largest (or Z) first.
    pub descending: bool,
}

impl Sort {
    /// tracemallocqt's default: by size difference when comparing, by size
    /// otherwise, largest first.
    pub fn default_for(comparing: bool) -> Sort {
        Sort {
            column: if comparing {
                SortColumn::SizeDiff
            } else {
                SortColumn::Size
            },
            descending: true,
        }
    }

    /// The first direction of a column when its header is clicked: A to Z
    /// for the source, largest first for numbers.
    pub fn first_click(column: SortColumn) -> Sort {
        Sort {
            column,
            descending: column != SortColumn::Source,
        }
    }
}

/// The table's state: its order, its search, the selected group.
#[derive(Clone, Debug, Default)]
pub struct TableState {
    /// The order the user chose; `None` for the default, which depends on
    /// whether two snapshots are compared.
    pub sort: Option<Sort>,
    /// Substring searched in the Source column.
    pub search: String,
    /// The selected group, by key, so that it stays selected when the rows
    /// are recomputed.
    pub selected: Option<Traceback>,
    /// The selected frame of the selected group's traceback (0: most recent).
    pub selected_frame: usize,
    /// Scroll the table to the selected row on the next frame.
    pub scroll_to_selected: bool,
}

impl TableState {
    /// The order to use: the user's choice, unless it needs a comparison
    /// there is not.
    pub fn effective_sort(&self, comparing: bool) -> Sort {
        match self.sort {
            Some(sort)
                if comparing
                    || !matches!(sort.column, SortColumn::SizeDiff | SortColumn::CountDiff) =>
            {
                sort
            }
            _ => Sort::default_for(comparing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemalloc_format::Filter;

    fn spec(key_type: KeyType) -> ViewSpec {
        ViewSpec {
            metric: Metric::Live,
            key_type,
            cumulative: false,
            filters: Vec::new(),
        }
    }

    #[test]
    fn history_goes_back_and_forward_like_a_browser() {
        let mut h = History::default();
        assert!(!h.can_go_back());
        h.record(spec(KeyType::Filename));
        h.record(spec(KeyType::Lineno));
        // Current: traceback.
        assert_eq!(
            h.back(spec(KeyType::Traceback)),
            Some(spec(KeyType::Lineno))
        );
        assert_eq!(h.back(spec(KeyType::Lineno)), Some(spec(KeyType::Filename)));
        assert_eq!(h.back(spec(KeyType::Filename)), None);
        assert_eq!(
            h.forward(spec(KeyType::Filename)),
            Some(spec(KeyType::Lineno))
        );
        assert!(h.can_go_forward());
        // A new change forgets the forward history.
        h.record(spec(KeyType::Lineno));
        assert!(!h.can_go_forward());
    }

    #[test]
    fn recent_files_are_unique_and_bounded() {
        let mut s = Settings::default();
        for i in 0..15 {
            s.remember_file(PathBuf::from(format!("{i}.tmsnap")));
        }
        s.remember_file(PathBuf::from("7.tmsnap"));
        assert_eq!(s.recent_files.len(), MAX_RECENT_FILES);
        assert_eq!(s.recent_files[0], PathBuf::from("7.tmsnap"));
        assert_eq!(s.recent_files[1], PathBuf::from("14.tmsnap"));
        assert_eq!(
            s.recent_files
                .iter()
                .filter(|p| p.as_os_str() == "7.tmsnap")
                .count(),
            1
        );
    }

    #[test]
    fn default_sort_follows_the_comparison() {
        let mut t = TableState::default();
        assert_eq!(t.effective_sort(true).column, SortColumn::SizeDiff);
        assert_eq!(t.effective_sort(false).column, SortColumn::Size);
        t.sort = Some(Sort::first_click(SortColumn::CountDiff));
        assert_eq!(t.effective_sort(true).column, SortColumn::CountDiff);
        // A difference column without a comparison falls back.
        assert_eq!(t.effective_sort(false).column, SortColumn::Size);
        t.sort = Some(Sort::first_click(SortColumn::Source));
        assert_eq!(
            t.effective_sort(false),
            Sort {
                column: SortColumn::Source,
                descending: false
            }
        );
    }

    #[test]
    fn cumulative_needs_a_per_frame_grouping() {
        let mut s = ViewSpec {
            cumulative: true,
            ..spec(KeyType::Lineno)
        };
        assert!(s.effective_cumulative());
        s.key_type = KeyType::Traceback;
        assert!(!s.effective_cumulative());
        s.filters.push(Filter::new(true, "x").into());
        assert_eq!(s.filters.len(), 1);
    }

    #[test]
    fn a_history_metric_needs_a_history() {
        let mut s = spec(KeyType::Lineno);
        assert_eq!(s.effective_metric(false), Metric::Live);
        s.metric = Metric::Peak;
        assert_eq!(s.effective_metric(true), Metric::Peak);
        assert_eq!(s.effective_metric(false), Metric::Live);
    }

    #[test]
    fn settings_survive_a_round_trip_and_missing_fields() {
        let mut s = Settings::default();
        s.remember_file(PathBuf::from("/tmp/a.tmsnap"));
        s.key_type = KeyType::Traceback;
        let text = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Settings>(&text).unwrap(), s);
        // Settings written by an older viewer lack fields: defaults fill in.
        let old: Settings = serde_json::from_str(r#"{"cumulative": true}"#).unwrap();
        assert!(old.cumulative);
        assert_eq!(old.chart_top_n, 10);
    }
}
