//! The analysis thread: filtering, grouping, joining, sorting and
//! searching, off the UI thread and cached.
//!
//! The UI sends an [`AnalysisRequest`] whenever what it shows changes and
//! keeps drawing the previous [`AnalysisResult`] until the new one arrives.
//! The thread only ever works on the latest request (older ones waiting in
//! the channel are skipped), and caches every stage by its inputs:
//!
//! | stage | key | format call |
//! |---|---|---|
//! | hide std frames | snapshot | `pipeline::hide_std_frames` |
//! | filter | snapshot, hide, filters | `pipeline::filtered` |
//! | group | ..., metric, key type, cumulative | `Grouping::new_by` |
//! | join | both groupings | `View::plain` / `View::compare` |
//! | sort | view, column, direction | `View::sorted` |
//! | search | sorted, needle | `View::search` |
//! | flame tree | both filtered snapshots, metric, weight | `FlameTree::new_by` |
//! | flame search | tree, needle | `FlameTree::search` |
//! | annotation | both `lineno` views, file | `FileAnnotation::new` |
//!
//! so that changing the comparison only rejoins, a new sort only sorts, and
//! Back returns to a cached result at once. The flame tree is only built
//! while the flame graph is shown, the annotation only while a source file
//! is; both reuse the filtered snapshots and groupings of the table.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tracemalloc_format::annotate::FileAnnotation;
use tracemalloc_format::flame::{FlameMatches, FlameTree, FlameWeight};
use tracemalloc_format::pipeline;
use tracemalloc_format::rows::{ChartMetric, Grouping, View};
use tracemalloc_format::{KeyType, Metric, Snapshot, TraceFilter, Traceback};

use super::loader::Notify;
use super::request_thread::{Latest, LatestRequest, LatestResult};
use super::session::SnapshotId;
use super::state::Sort;

/// A snapshot as the analysis sees it.
#[derive(Clone, Debug)]
pub struct Input {
    /// Its id: the cache key.
    pub id: SnapshotId,
    /// The data.
    pub snapshot: Arc<Snapshot>,
    /// Whether hiding the standard library's and the recorder's frames
    /// changes it ([`Snapshot::has_untrimmed_frames`], found when loading).
    pub has_untrimmed_frames: bool,
}

/// Everything the table, charts and status bar show depends on.
#[derive(Clone, Debug)]
pub struct AnalysisRequest {
    /// Increases with every request; results carry it back.
    pub generation: u64,
    /// The snapshot shown.
    pub new: Input,
    /// The snapshot it is compared to.
    pub old: Option<Input>,
    /// Hide the standard library's and the recorder's frames.
    pub hide_std_frames: bool,
    /// Filters for both snapshots.
    pub filters: Vec<TraceFilter>,
    /// What the rows, charts, flame graph and annotation measure: live
    /// blocks, or a metric of the allocation history (the format crate
    /// refuses one that a snapshot lacks, with the reason).
    pub metric: Metric,
    /// Grouping.
    pub key_type: KeyType,
    /// Cumulative mode.
    pub cumulative: bool,
    /// Table order.
    pub sort: Sort,
    /// Source search.
    pub search: String,
    /// Bars per chart.
    pub chart_top_n: usize,
    /// The selected group, to find its row in the result.
    pub selected: Option<Traceback>,
    /// Build the traceback tree, with this weight (the flame graph is
    /// shown).
    pub flame: Option<FlameWeight>,
    /// Highlight the tree's frames containing this text.
    pub flame_search: String,
    /// Annotate this source file (as recorded) with its lines' memory.
    pub annotate: Option<String>,
}

impl AnalysisRequest {
    /// The window's first request for `new` (compared to `old`): grouped
    /// by line, standard-library frames hidden, tracemallocqt's default
    /// order, 10 bars per chart, no search, selection, flame graph or
    /// annotated source.
    pub fn by_line(new: Input, old: Option<Input>) -> AnalysisRequest {
        let comparing = old.is_some();
        AnalysisRequest {
            generation: 0,
            new,
            old,
            hide_std_frames: true,
            filters: Vec::new(),
            metric: Metric::Live,
            key_type: KeyType::Lineno,
            cumulative: false,
            sort: Sort::default_for(comparing),
            search: String::new(),
            chart_top_n: 10,
            selected: None,
            flame: None,
            flame_search: String::new(),
            annotate: None,
        }
    }

    /// Whether two requests ask for the same result (everything but the
    /// generation and the selection).
    pub fn same_work(&self, other: &AnalysisRequest) -> bool {
        self.new.id == other.new.id
            && self.old.as_ref().map(|o| o.id) == other.old.as_ref().map(|o| o.id)
            && self.hide_std_frames == other.hide_std_frames
            && self.filters == other.filters
            && self.metric == other.metric
            && self.key_type == other.key_type
            && self.cumulative == other.cumulative
            && self.sort == other.sort
            && self.search == other.search
            && self.chart_top_n == other.chart_top_n
            && self.flame == other.flame
            && (self.flame.is_none() || self.flame_search.trim() == other.flame_search.trim())
            && self.annotate == other.annotate
    }
}

/// How long each stage of a request took (zero when cached).
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Hiding frames, both snapshots.
    pub trim: Duration,
    /// Filtering, both snapshots.
    pub filter: Duration,
    /// Grouping, both snapshots.
    pub group: Duration,
    /// Joining into rows (and CPython's order).
    pub join: Duration,
    /// Sorting by the chosen column.
    pub sort: Duration,
    /// Searching.
    pub search: Duration,
    /// Ranking for the charts.
    pub charts: Duration,
    /// Building the traceback tree and searching it.
    pub flame: Duration,
    /// Annotating the source file.
    pub annotate: Duration,
    /// The whole request.
    pub total: Duration,
}

impl Timings {
    /// Adds another snapshot's stage times.
    fn add(&mut self, other: &Timings) {
        self.trim += other.trim;
        self.filter += other.filter;
        self.group += other.group;
    }
}

/// What the analysis thread computed for a request.
#[derive(Clone, Debug)]
pub struct AnalysisResult {
    /// The request's generation.
    pub generation: u64,
    /// The request.
    pub request: AnalysisRequest,
    /// The rows.
    pub view: Arc<View>,
    /// The rows to show, in order: indices into `view.rows()`.
    pub order: Arc<Vec<u32>>,
    /// The top groups by size difference (or size), for the charts.
    pub top_size: Vec<u32>,
    /// The top groups by count difference (or count).
    pub top_count: Vec<u32>,
    /// Where the selected group is in `order`, if it is shown.
    pub selected_position: Option<usize>,
    /// The traceback tree, when asked for.
    pub flame: Option<FlameResult>,
    /// The annotated source file, when asked for.
    pub annotation: Option<Arc<FileAnnotation>>,
    /// How long it took.
    pub timings: Timings,
}

/// The traceback tree and the search over it.
#[derive(Clone, Debug)]
pub struct FlameResult {
    /// The tree of the shown snapshot, with the compared one's amounts.
    pub tree: Arc<FlameTree>,
    /// The frames matching the flame graph's search, when there is one.
    pub matches: Option<Arc<FlameMatches>>,
}

/// A request's outcome: a result, or why there is none.
pub type Outcome = super::request_thread::Outcome<AnalysisResult>;

impl LatestResult for AnalysisResult {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl LatestRequest for AnalysisRequest {
    fn same_work(&self, other: &Self) -> bool {
        AnalysisRequest::same_work(self, other)
    }
    fn generation(&self) -> u64 {
        self.generation
    }
    fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }
}

/// The UI's handle on the analysis thread.
pub struct Analysis {
    service: Latest<AnalysisRequest, AnalysisResult>,
}

impl std::fmt::Debug for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Analysis")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Analysis {
    /// Starts the analysis thread; `notify` is called when a result is
    /// ready.
    pub fn start(notify: Notify) -> Result<Analysis> {
        let (request_tx, request_rx) = channel::<AnalysisRequest>();
        let (result_tx, result_rx) = channel::<Outcome>();
        std::thread::Builder::new()
            .name("analysis".to_owned())
            .spawn(move || {
                let mut worker = Worker::default();
                // Ends when the UI drops its sender.
                while let Ok(mut request) = request_rx.recv() {
                    // Only the latest request matters.
                    while let Ok(newer) = request_rx.try_recv() {
                        request = newer;
                    }
                    let generation = request.generation;
                    let outcome = worker
                        .run(request)
                        .map_err(|err| (generation, format!("{err:#}")));
                    if result_tx.send(outcome).is_err() {
                        return;
                    }
                    notify();
                }
            })
            .context("cannot start the analysis thread")?;
        Ok(Analysis {
            service: Latest::new(request_tx, result_rx, "analysis"),
        })
    }

    /// The generation of the last request sent.
    pub fn generation(&self) -> u64 {
        self.service.generation()
    }

    /// Sends a request unless it asks for the same work as the last one.
    /// Returns whether it was sent.
    pub fn request(&mut self, request: AnalysisRequest) -> bool {
        self.service.request(request, |_| {})
    }

    /// Forgets the last request, e.g. when no snapshot is left to show.
    pub fn reset(&mut self) {
        self.service.reset();
    }

    /// The newest outcome that arrived, if any.
    pub fn poll(&mut self) -> Option<Outcome> {
        self.service.poll()
    }

    /// Blocks until the outcome of the last request sent arrives (for
    /// benchmarks and tests; the window polls).
    pub fn wait(&mut self) -> Outcome {
        self.service.wait()
    }
}

/// A small least-recently-used cache: enough for the few variants a user
/// moves between (Back and Forward, toggling a filter).
struct Lru<K, V> {
    entries: VecDeque<(K, V)>,
    capacity: usize,
}

impl<K: PartialEq, V: Clone> Lru<K, V> {
    fn new(capacity: usize) -> Lru<K, V> {
        Lru {
            entries: VecDeque::new(),
            capacity,
        }
    }

    fn get(&mut self, key: &K) -> Option<V> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(i)?;
        let value = entry.1.clone();
        self.entries.push_front(entry);
        Some(value)
    }

    fn insert(&mut self, key: K, value: V) {
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push_front((key, value));
        self.entries.truncate(self.capacity);
    }

    /// The cached value, or `make`'s, timed into `elapsed`.
    fn get_or_try<E>(
        &mut self,
        key: K,
        elapsed: &mut Duration,
        make: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let start = Instant::now();
        let v = make()?;
        *elapsed += start.elapsed();
        self.insert(key, v.clone());
        Ok(v)
    }
}

/// What a filtered snapshot depends on.
#[derive(Clone, Debug, PartialEq)]
struct FilterKey {
    id: SnapshotId,
    hide: bool,
    filters: Vec<TraceFilter>,
}

/// What a grouping depends on.
#[derive(Clone, Debug, PartialEq)]
struct GroupKey {
    filtered: FilterKey,
    metric: Metric,
    key_type: KeyType,
    cumulative: bool,
}

/// What a view depends on.
#[derive(Clone, Debug, PartialEq)]
struct ViewKey {
    new: GroupKey,
    old: Option<GroupKey>,
}

/// Where a snapshot's grouping starts from: the furthest cached stage.
enum Stage {
    /// Nothing cached: hide frames, filter, group.
    Raw(Arc<Snapshot>),
    /// Frames hidden (or nothing to hide): filter, group.
    Trimmed(Arc<Snapshot>),
    /// Filtered: group.
    Filtered(Arc<Snapshot>),
    /// Grouped: nothing to do.
    Grouped(Arc<Grouping>),
}

/// Grouping one snapshot from a cached stage.
struct GroupJob {
    key: GroupKey,
    start: Stage,
    filters: Vec<TraceFilter>,
}

/// What a [`GroupJob`] computed, for the caches.
struct Done {
    trimmed: Option<Arc<Snapshot>>,
    filtered: Option<Arc<Snapshot>>,
    grouping: Arc<Grouping>,
    timings: Timings,
}

/// A snapshot hidden and filtered from a cached stage, with what was
/// computed on the way (for the caches).
struct Prepared {
    /// Newly hidden.
    trimmed: Option<Arc<Snapshot>>,
    /// Newly filtered.
    filtered: Option<Arc<Snapshot>>,
    /// The snapshot ready to group.
    ready: Arc<Snapshot>,
}

/// Runs the format crate's pipeline (hide std frames, then filter) from a
/// cached stage; `Grouped` is not a stage before filtering.
fn prepare_from(stage: &Stage, filters: &[TraceFilter], timings: &mut Timings) -> Result<Prepared> {
    let source = match stage {
        Stage::Raw(raw) => {
            let start = Instant::now();
            let trimmed = Arc::new(pipeline::hide_std_frames(raw)?);
            timings.trim += start.elapsed();
            trimmed
        }
        Stage::Trimmed(t) => Arc::clone(t),
        Stage::Filtered(f) => {
            return Ok(Prepared {
                trimmed: None,
                filtered: None,
                ready: Arc::clone(f),
            });
        }
        Stage::Grouped(_) => anyhow::bail!("a grouping is past filtering"),
    };
    let trimmed = matches!(stage, Stage::Raw(_)).then(|| Arc::clone(&source));
    let start = Instant::now();
    let ready = pipeline::filtered(source, filters);
    timings.filter += start.elapsed();
    Ok(Prepared {
        trimmed,
        filtered: Some(Arc::clone(&ready)),
        ready,
    })
}

impl GroupJob {
    fn run(&self, metric: Metric, key_type: KeyType, cumulative: bool) -> Result<Done> {
        let mut timings = Timings::default();
        if let Stage::Grouped(g) = &self.start {
            return Ok(Done {
                trimmed: None,
                filtered: None,
                grouping: Arc::clone(g),
                timings,
            });
        }
        let prepared = prepare_from(&self.start, &self.filters, &mut timings)?;
        let start = Instant::now();
        let grouping = Arc::new(Grouping::new_by(
            &prepared.ready,
            metric,
            key_type,
            cumulative,
        )?);
        timings.group = start.elapsed();
        Ok(Done {
            trimmed: prepared.trimmed,
            filtered: prepared.filtered,
            grouping,
            timings,
        })
    }
}

/// What a traceback tree depends on.
#[derive(Clone, Debug, PartialEq)]
struct FlameKey {
    new: FilterKey,
    old: Option<FilterKey>,
    metric: Metric,
    weight: FlameWeight,
}

/// The analysis thread's caches.
struct Worker {
    trimmed: Lru<SnapshotId, Arc<Snapshot>>,
    filtered: Lru<FilterKey, Arc<Snapshot>>,
    grouped: Lru<GroupKey, Arc<Grouping>>,
    views: Lru<ViewKey, Arc<View>>,
    sorted: Lru<(ViewKey, Sort), Arc<Vec<u32>>>,
    searched: Lru<(ViewKey, Sort, String), Arc<Vec<u32>>>,
    flames: Lru<FlameKey, Arc<FlameTree>>,
    flame_matches: Lru<(FlameKey, String), Arc<FlameMatches>>,
    annotations: Lru<(ViewKey, ViewKey, String), Arc<FileAnnotation>>,
}

impl Default for Worker {
    fn default() -> Worker {
        Worker {
            trimmed: Lru::new(4),
            filtered: Lru::new(8),
            grouped: Lru::new(16),
            views: Lru::new(10),
            sorted: Lru::new(8),
            searched: Lru::new(4),
            flames: Lru::new(4),
            flame_matches: Lru::new(4),
            annotations: Lru::new(8),
        }
    }
}

impl Worker {
    /// What is left to do to group a snapshot: the stages already cached
    /// are looked up here, the rest is a [`GroupJob`] that needs no access
    /// to the caches, so that both snapshots can be grouped in parallel.
    fn plan(
        &mut self,
        input: &Input,
        request: &AnalysisRequest,
        key_type: KeyType,
        cumulative: bool,
    ) -> GroupJob {
        let hide = request.hide_std_frames && input.has_untrimmed_frames;
        let filter_key = FilterKey {
            id: input.id,
            hide,
            filters: request.filters.clone(),
        };
        let key = GroupKey {
            filtered: filter_key.clone(),
            metric: request.metric,
            key_type,
            cumulative,
        };
        let start = match self.grouped.get(&key) {
            Some(g) => Stage::Grouped(g),
            None => self.prepared_stage(input, &filter_key),
        };
        GroupJob {
            key,
            start,
            filters: request.filters.clone(),
        }
    }

    /// Caches what a job computed.
    fn store(&mut self, id: SnapshotId, job_key: &GroupKey, done: &Done) {
        if let Some(trimmed) = &done.trimmed {
            self.trimmed.insert(id, Arc::clone(trimmed));
        }
        if let Some(filtered) = &done.filtered {
            self.filtered
                .insert(job_key.filtered.clone(), Arc::clone(filtered));
        }
        self.grouped
            .insert(job_key.clone(), Arc::clone(&done.grouping));
    }

    /// The furthest cached stage of a snapshot on its way to `key`:
    /// filtered, hidden (or nothing to hide), or as loaded.
    fn prepared_stage(&mut self, input: &Input, key: &FilterKey) -> Stage {
        if let Some(f) = self.filtered.get(key) {
            Stage::Filtered(f)
        } else if !key.hide {
            Stage::Trimmed(Arc::clone(&input.snapshot))
        } else if let Some(t) = self.trimmed.get(&input.id) {
            Stage::Trimmed(t)
        } else {
            Stage::Raw(Arc::clone(&input.snapshot))
        }
    }

    /// A snapshot hidden and filtered as the request says, from the caches
    /// where possible.
    fn filtered(
        &mut self,
        input: &Input,
        request: &AnalysisRequest,
        t: &mut Timings,
    ) -> Result<(FilterKey, Arc<Snapshot>)> {
        let key = FilterKey {
            id: input.id,
            hide: request.hide_std_frames && input.has_untrimmed_frames,
            filters: request.filters.clone(),
        };
        let stage = self.prepared_stage(input, &key);
        let prepared = prepare_from(&stage, &request.filters, t)?;
        if let Some(trimmed) = &prepared.trimmed {
            self.trimmed.insert(input.id, Arc::clone(trimmed));
        }
        if let Some(filtered) = &prepared.filtered {
            self.filtered.insert(key.clone(), Arc::clone(filtered));
        }
        Ok((key, prepared.ready))
    }

    /// Both snapshots grouped by `key_type` and joined, from the caches
    /// where possible; the two are grouped side by side.
    fn view(
        &mut self,
        request: &AnalysisRequest,
        key_type: KeyType,
        cumulative: bool,
        t: &mut Timings,
    ) -> Result<(ViewKey, Arc<View>)> {
        let metric = request.metric;
        let new_job = self.plan(&request.new, request, key_type, cumulative);
        let old_job = request
            .old
            .as_ref()
            .map(|old| self.plan(old, request, key_type, cumulative));
        // The two snapshots are independent: group them side by side.
        let (new_done, old_done) = std::thread::scope(|s| {
            let old = old_job.as_ref().map(|job| {
                std::thread::Builder::new()
                    .name("analysis-old".to_owned())
                    .spawn_scoped(s, || job.run(metric, key_type, cumulative))
            });
            let new = new_job.run(metric, key_type, cumulative);
            let old = old.map(|spawned| match spawned {
                Ok(handle) => handle.join().unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("the analysis of the old snapshot crashed"))
                }),
                // No thread: do it here.
                Err(_) => old_job.as_ref().map_or_else(
                    || Err(anyhow::anyhow!("no old snapshot")),
                    |job| job.run(metric, key_type, cumulative),
                ),
            });
            (new, old.transpose())
        });
        let new_done = new_done?;
        let old_done = old_done?;
        self.store(request.new.id, &new_job.key, &new_done);
        t.add(&new_done.timings);
        let new_key = new_job.key.clone();
        let new_grouping = Arc::clone(&new_done.grouping);
        let old = match (&request.old, old_job, old_done) {
            (Some(old), Some(job), Some(done)) => {
                self.store(old.id, &job.key, &done);
                t.add(&done.timings);
                Some((job.key, done.grouping))
            }
            _ => None,
        };
        let view_key = ViewKey {
            new: new_key,
            old: old.as_ref().map(|(k, _)| k.clone()),
        };
        let view = self.views.get_or_try(view_key.clone(), &mut t.join, || {
            Ok::<_, anyhow::Error>(Arc::new(match &old {
                Some((_, old_grouping)) => View::compare(&new_grouping, old_grouping),
                None => View::plain(&new_grouping),
            }))
        })?;
        Ok((view_key, view))
    }

    /// The traceback tree of the shown snapshot (with the compared one's
    /// amounts), and the search over it.
    fn flame(
        &mut self,
        request: &AnalysisRequest,
        weight: FlameWeight,
        t: &mut Timings,
    ) -> Result<FlameResult> {
        let (new_key, new) = self.filtered(&request.new, request, t)?;
        let old = match &request.old {
            Some(old) => Some(self.filtered(old, request, t)?),
            None => None,
        };
        let key = FlameKey {
            new: new_key,
            old: old.as_ref().map(|(k, _)| k.clone()),
            metric: request.metric,
            weight,
        };
        let tree = self.flames.get_or_try(key.clone(), &mut t.flame, || {
            FlameTree::new_by(
                &new,
                old.as_ref().map(|(_, s)| &**s),
                request.metric,
                weight,
            )
            .map(Arc::new)
            .context("cannot build the traceback tree")
        })?;
        let needle = request.flame_search.trim().to_owned();
        let matches = if needle.is_empty() {
            None
        } else {
            Some(
                self.flame_matches
                    .get_or_try((key, needle.clone()), &mut t.flame, || {
                        Ok::<_, anyhow::Error>(Arc::new(tree.search(&needle)))
                    })?,
            )
        };
        Ok(FlameResult { tree, matches })
    }

    /// A source file's lines with their memory: from the plain and the
    /// cumulative `lineno` views of the request's snapshots.
    fn annotate(
        &mut self,
        request: &AnalysisRequest,
        filename: &str,
        t: &mut Timings,
    ) -> Result<Arc<FileAnnotation>> {
        let (here_key, here) = self.view(request, KeyType::Lineno, false, t)?;
        let (through_key, through) = self.view(request, KeyType::Lineno, true, t)?;
        self.annotations.get_or_try(
            (here_key, through_key, filename.to_owned()),
            &mut t.annotate,
            || Ok::<_, anyhow::Error>(Arc::new(FileAnnotation::new(&here, &through, filename))),
        )
    }

    fn run(&mut self, request: AnalysisRequest) -> Result<AnalysisResult> {
        let start = Instant::now();
        let mut t = Timings::default();
        let (view_key, view) = self.view(&request, request.key_type, request.cumulative, &mut t)?;
        let sort = request.sort;
        let sorted = self
            .sorted
            .get_or_try((view_key.clone(), sort), &mut t.sort, || {
                Ok::<_, anyhow::Error>(Arc::new(view.sorted(sort.column, sort.descending)))
            })?;
        let needle = request.search.trim().to_owned();
        let order = if needle.is_empty() {
            sorted
        } else {
            self.searched
                .get_or_try((view_key, sort, needle.clone()), &mut t.search, || {
                    Ok::<_, anyhow::Error>(Arc::new(view.search(&sorted, &needle)))
                })?
        };
        let charts_start = Instant::now();
        let (size_metric, count_metric) = if view.is_comparison() {
            (ChartMetric::SizeDiff, ChartMetric::CountDiff)
        } else {
            (ChartMetric::Size, ChartMetric::Count)
        };
        let top_size = view.top(size_metric, request.chart_top_n);
        let top_count = view.top(count_metric, request.chart_top_n);
        t.charts = charts_start.elapsed();
        let selected_position = request.selected.as_ref().and_then(|tb| {
            let row = view.position_of(tb)? as u32;
            order.iter().position(|&i| i == row)
        });
        let flame = match request.flame {
            Some(weight) => Some(self.flame(&request, weight, &mut t)?),
            None => None,
        };
        let annotation = match &request.annotate {
            Some(filename) => Some(self.annotate(&request, filename, &mut t)?),
            None => None,
        };
        t.total = start.elapsed();
        Ok(AnalysisResult {
            generation: request.generation,
            request,
            view,
            order,
            top_size,
            top_count,
            selected_position,
            flame,
            annotation,
            timings: t,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemalloc_format::Filter;
    use tracemalloc_format::rows::SortColumn;

    fn input(id: u64, traces: &[(u64, &[(&str, u32)])]) -> Input {
        let snapshot =
            Snapshot::from_raw_traces(5, traces.iter().map(|&(s, f)| (0, s, f, None))).unwrap();
        Input {
            id: SnapshotId(id),
            has_untrimmed_frames: snapshot.has_untrimmed_frames(),
            snapshot: Arc::new(snapshot),
        }
    }

    fn request(new: Input, old: Option<Input>) -> AnalysisRequest {
        AnalysisRequest {
            generation: 1,
            sort: Sort::default_for(false),
            ..AnalysisRequest::by_line(new, old)
        }
    }

    #[test]
    fn stages_are_cached_by_their_inputs() {
        let mut w = Worker::default();
        let new = input(1, &[(30, &[("a.rs", 1)]), (10, &[("b.rs", 2)])]);
        let old = input(2, &[(10, &[("a.rs", 1)])]);
        let mut req = request(new.clone(), Some(old));
        req.sort = Sort::default_for(true);
        let first = w.run(req.clone()).unwrap();
        assert_eq!(first.view.len(), 2);
        assert_eq!(first.view.source_text(first.order[0] as usize), "a.rs:1");

        // Same request: every stage cached, the same rows.
        let again = w.run(req.clone()).unwrap();
        assert!(Arc::ptr_eq(&first.view, &again.view));
        assert_eq!(again.timings.group, Duration::ZERO);

        // A new sort only sorts.
        req.sort = Sort::first_click(SortColumn::Source);
        let sorted = w.run(req.clone()).unwrap();
        assert!(Arc::ptr_eq(&first.view, &sorted.view));
        assert_eq!(sorted.timings.join, Duration::ZERO);

        // A filter regroups, and the selection is found in the result.
        req.filters = vec![Filter::new(true, "b.rs").into()];
        req.selected = Some(sorted.view.traceback(sorted.view.len() - 1));
        let filtered = w.run(req.clone()).unwrap();
        // The filter applies to both snapshots: only b.rs:2 is left.
        assert_eq!(filtered.order.len(), 1);
        assert_eq!(filtered.selected_position, Some(0));
        assert!(filtered.timings.group > Duration::ZERO);

        // Search keeps matching rows.
        req.filters.clear();
        req.search = "B.RS".into();
        assert!(w.run(req.clone()).unwrap().order.is_empty(), "smart case");
        req.search = "b.rs".into();
        let searched = w.run(req).unwrap();
        assert_eq!(searched.order.len(), 1);
        // The charts rank every row, whatever the search.
        assert_eq!(searched.top_size.len(), 2);
    }

    #[test]
    fn the_flame_tree_and_annotation_come_on_request() {
        let mut w = Worker::default();
        let new = input(
            1,
            &[
                (30, &[("a.rs", 1), ("m.rs", 9)]),
                (10, &[("b.rs", 2), ("m.rs", 9)]),
            ],
        );
        let old = input(2, &[(10, &[("a.rs", 1), ("m.rs", 9)])]);
        let mut req = request(new, Some(old));
        let plain = w.run(req.clone()).unwrap();
        assert!(plain.flame.is_none() && plain.annotation.is_none());

        req.flame = Some(FlameWeight::Bytes);
        req.annotate = Some("m.rs".to_owned());
        let first = w.run(req.clone()).unwrap();
        let flame = first.flame.unwrap();
        assert_eq!(flame.tree.label(1), "m.rs:9");
        assert_eq!((flame.tree.value(2), flame.tree.old_value(2)), (30, 10));
        assert!(flame.matches.is_none());
        let annotation = first.annotation.unwrap();
        let line = annotation.line(9).unwrap();
        assert_eq!(
            (line.here.size, line.through.size, line.through.size_diff),
            (0, 40, 30)
        );

        // A search only searches; the tree is cached.
        req.flame_search = "b.rs".to_owned();
        let searched = w.run(req.clone()).unwrap();
        let flame2 = searched.flame.unwrap();
        assert!(Arc::ptr_eq(&flame.tree, &flame2.tree));
        let matches = flame2.matches.unwrap();
        assert_eq!((matches.nodes, matches.total.size), (1, 10));
        assert!(Arc::ptr_eq(&annotation, &searched.annotation.unwrap()));
    }

    /// `a.rs:1` keeps one 30-byte block; `b.rs:2` allocated a hundred
    /// 8-byte blocks, all freed.
    fn history_input(id: u64) -> Input {
        use tracemalloc_format::{HistoryRow, Metadata, SnapshotBuilder};
        let mut b = SnapshotBuilder::new(5);
        let a = b.intern_frame("a.rs", 1, None).unwrap();
        let churn = b.intern_frame("b.rs", 2, None).unwrap();
        let kept = b.intern_traceback(&[a], None).unwrap();
        let freed = b.intern_traceback(&[churn], None).unwrap();
        b.push_trace(0, 30, kept).unwrap();
        for row in [
            HistoryRow {
                allocated_blocks: 1,
                allocated_bytes: 30,
                peak_blocks: 1,
                peak_bytes: 30,
                ..HistoryRow::new(0, kept)
            },
            HistoryRow {
                allocated_blocks: 100,
                allocated_bytes: 800,
                freed_blocks: 100,
                temporary_blocks: 100,
                temporary_bytes: 800,
                ..HistoryRow::new(0, freed)
            },
        ] {
            b.push_history(row).unwrap();
        }
        let snapshot = b.finish(Metadata::default());
        Input {
            id: SnapshotId(id),
            has_untrimmed_frames: snapshot.has_untrimmed_frames(),
            snapshot: Arc::new(snapshot),
        }
    }

    #[test]
    fn the_metric_is_part_of_every_cache_key() {
        let mut w = Worker::default();
        let mut req = request(history_input(1), None);
        req.flame = Some(FlameWeight::Bytes);
        req.annotate = Some("b.rs".to_owned());
        let live = w.run(req.clone()).unwrap();
        assert_eq!(live.view.source_text(live.order[0] as usize), "a.rs:1");
        assert_eq!(live.flame.as_ref().unwrap().tree.value(0), 30);
        assert!(live.annotation.as_ref().unwrap().lines().is_empty());

        req.metric = Metric::Allocated;
        assert!(!req.same_work(&live.request));
        let allocated = w.run(req.clone()).unwrap();
        assert_eq!(allocated.view.metric(), Metric::Allocated);
        let top = allocated.order[0] as usize;
        assert_eq!(allocated.view.source_text(top), "b.rs:2");
        assert_eq!(allocated.view.rows()[top].count, 100);
        assert_eq!(allocated.flame.as_ref().unwrap().tree.value(0), 830);
        let line = *allocated.annotation.as_ref().unwrap().line(2).unwrap();
        assert_eq!((line.here.size, line.here.count), (800, 100));

        // Back to live: the cached live results, not the allocated ones.
        req.metric = Metric::Live;
        let again = w.run(req).unwrap();
        assert!(Arc::ptr_eq(&again.view, &live.view));
        assert_eq!(again.flame.unwrap().tree.value(0), 30);
    }

    #[test]
    fn a_history_metric_without_history_is_an_error_naming_why() {
        let mut w = Worker::default();
        let mut req = request(input(1, &[(1, &[("a.rs", 1)])]), None);
        req.metric = Metric::Peak;
        let err = format!("{:#}", w.run(req).unwrap_err());
        assert!(err.contains("needs an allocation history"), "{err}");
    }

    #[test]
    fn cumulative_traceback_is_an_error_not_a_panic() {
        let mut w = Worker::default();
        let mut req = request(input(1, &[(1, &[("a.rs", 1)])]), None);
        req.key_type = KeyType::Traceback;
        req.cumulative = true;
        let err = w.run(req).unwrap_err();
        assert!(format!("{err:#}").contains("cumulative"));
    }

    #[test]
    fn the_thread_answers_the_latest_request() {
        let mut analysis = Analysis::start(Arc::new(|| {})).unwrap();
        let new = input(1, &[(30, &[("a.rs", 1)])]);
        assert!(analysis.request(request(new.clone(), None)));
        // The same work is not sent twice.
        assert!(!analysis.request(request(new.clone(), None)));
        let mut other = request(new, None);
        other.key_type = KeyType::Filename;
        assert!(analysis.request(other));
        let start = Instant::now();
        let result = loop {
            if let Some(outcome) = analysis.poll() {
                let result = outcome.unwrap();
                if result.generation == analysis.generation() {
                    break result;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(20));
            std::thread::sleep(Duration::from_millis(2));
        };
        assert_eq!(result.view.key_type(), KeyType::Filename);
        assert_eq!(result.view.source_text(0), "a.rs");
    }
}
