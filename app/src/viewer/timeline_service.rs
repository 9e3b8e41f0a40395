//! The timeline thread: every open snapshot grouped under the current
//! grouping and filters, merged into a [`Timeline`] (totals, each group's
//! series, the growth ranking), off the UI thread.
//!
//! It is a thread of its own, not a stage of the analysis thread: grouping
//! fifty snapshots takes a while, and the table must not wait for it. Each
//! snapshot's grouping is cached by (snapshot, hide std frames, filters,
//! grouping), so a snapshot added by a watched folder costs one grouping,
//! and going back to a grouping costs only the merge. A newer request
//! interrupts the one in progress between two snapshots.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use tracemalloc_format::pipeline;
use tracemalloc_format::rows::Grouping;
use tracemalloc_format::timeline::Timeline;
use tracemalloc_format::{KeyType, Metric, Snapshot, Timestamp, TraceFilter};

use super::loader::Notify;
use super::request_thread::{Latest, LatestRequest, LatestResult};
use super::session::SnapshotId;

/// One snapshot of the timeline.
#[derive(Clone, Debug)]
pub struct TimelinePoint {
    /// Its id: the cache key.
    pub id: SnapshotId,
    /// The data.
    pub snapshot: Arc<Snapshot>,
    /// Whether hiding std frames changes it.
    pub has_untrimmed_frames: bool,
    /// When it was taken, where known.
    pub time: Option<Timestamp>,
}

/// What the timeline depends on.
#[derive(Clone, Debug)]
pub struct TimelineRequest {
    /// Increases with every request; results carry it back.
    pub generation: u64,
    /// The snapshots, oldest first.
    pub points: Vec<TimelinePoint>,
    /// Hide the standard library's frames.
    pub hide_std_frames: bool,
    /// Filters.
    pub filters: Vec<TraceFilter>,
    /// What the series measure (a history metric only when every
    /// snapshot has a history: the format crate refuses it otherwise).
    pub metric: Metric,
    /// Grouping.
    pub key_type: KeyType,
    /// Cumulative mode.
    pub cumulative: bool,
}

impl TimelineRequest {
    /// Whether two requests ask for the same timeline.
    pub fn same_work(&self, other: &TimelineRequest) -> bool {
        self.points.len() == other.points.len()
            && self
                .points
                .iter()
                .zip(&other.points)
                .all(|(a, b)| a.id == b.id && a.time == b.time)
            && self.hide_std_frames == other.hide_std_frames
            && self.filters == other.filters
            && self.metric == other.metric
            && self.key_type == other.key_type
            && self.cumulative == other.cumulative
    }
}

/// A computed timeline.
#[derive(Clone, Debug)]
pub struct TimelineResult {
    /// The request's generation.
    pub generation: u64,
    /// The timeline.
    pub timeline: Arc<Timeline>,
    /// The snapshot of each point.
    pub ids: Vec<SnapshotId>,
    /// How long it took.
    pub elapsed: Duration,
}

/// A request's outcome.
pub type TimelineOutcome = super::request_thread::Outcome<TimelineResult>;

impl LatestResult for TimelineResult {
    fn generation(&self) -> u64 {
        self.generation
    }
}

impl LatestRequest for TimelineRequest {
    fn same_work(&self, other: &Self) -> bool {
        TimelineRequest::same_work(self, other)
    }
    fn generation(&self) -> u64 {
        self.generation
    }
    fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }
}

/// Snapshots grouped so far, and to do, for the status bar.
#[derive(Debug, Default)]
pub struct TimelineProgress {
    /// Snapshots grouped (or found cached) for the current request.
    pub done: AtomicUsize,
    /// Snapshots in the current request.
    pub total: AtomicUsize,
}

/// The UI's handle on the timeline thread.
pub struct TimelineService {
    service: Latest<TimelineRequest, TimelineResult>,
    /// Progress of the request being computed.
    pub progress: Arc<TimelineProgress>,
}

impl std::fmt::Debug for TimelineService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimelineService")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl TimelineService {
    /// Starts the thread; `notify` is called when a result is ready.
    pub fn start(notify: Notify) -> Result<TimelineService> {
        let (request_tx, request_rx) = channel::<TimelineRequest>();
        let (result_tx, result_rx) = channel::<TimelineOutcome>();
        let progress = Arc::new(TimelineProgress::default());
        let thread_progress = Arc::clone(&progress);
        std::thread::Builder::new()
            .name("timeline".to_owned())
            .spawn(move || {
                let mut worker = Worker::default();
                let mut next = None;
                loop {
                    let mut request = match next.take() {
                        Some(r) => r,
                        None => match request_rx.recv() {
                            Ok(r) => r,
                            // The UI dropped its sender.
                            Err(_) => return,
                        },
                    };
                    while let Ok(newer) = request_rx.try_recv() {
                        request = newer;
                    }
                    let generation = request.generation;
                    match worker.run(&request, &request_rx, &thread_progress) {
                        Ok(Step::Done(result)) => {
                            if result_tx.send(Ok(result)).is_err() {
                                return;
                            }
                        }
                        Ok(Step::Interrupted(newer)) => {
                            next = Some(newer);
                            continue;
                        }
                        Err(err) => {
                            if result_tx
                                .send(Err((generation, format!("{err:#}"))))
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                    notify();
                }
            })
            .context("cannot start the timeline thread")?;
        Ok(TimelineService {
            service: Latest::new(request_tx, result_rx, "timeline"),
            progress,
        })
    }

    /// The generation of the last request sent.
    pub fn generation(&self) -> u64 {
        self.service.generation()
    }

    /// Sends a request unless it asks for the same work as the last one.
    /// Returns whether it was sent.
    pub fn request(&mut self, request: TimelineRequest) -> bool {
        let progress = &self.progress;
        self.service.request(request, |request| {
            // Reset before the thread can count the new request's work.
            progress.done.store(0, Ordering::Relaxed);
            progress
                .total
                .store(request.points.len(), Ordering::Relaxed);
        })
    }

    /// Forgets the last request (the timeline is hidden, or fewer than
    /// three snapshots are open), so that the next one is sent.
    pub fn reset(&mut self) {
        self.service.reset();
    }

    /// The newest outcome that arrived, if any.
    pub fn poll(&mut self) -> Option<TimelineOutcome> {
        self.service.poll()
    }

    /// Blocks until the outcome of the last request sent arrives (for
    /// benchmarks and tests; the window polls).
    pub fn wait(&mut self) -> TimelineOutcome {
        self.service.wait()
    }
}

/// What a grouping of one snapshot depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GroupsKey {
    id: SnapshotId,
    hide: bool,
    filters: String,
    metric: Metric,
    key_type: KeyType,
    cumulative: bool,
}

/// How a run ended.
enum Step {
    Done(TimelineResult),
    /// A newer request arrived midway: work on it instead.
    Interrupted(TimelineRequest),
}

/// The thread's cache: groupings by key, with the tick they were last used.
#[derive(Default)]
struct Worker {
    cache: HashMap<GroupsKey, (Arc<Grouping>, u64)>,
    tick: u64,
}

impl Worker {
    fn run(
        &mut self,
        request: &TimelineRequest,
        newer: &Receiver<TimelineRequest>,
        progress: &TimelineProgress,
    ) -> Result<Step> {
        let start = Instant::now();
        self.tick += 1;
        // Filters are compared as their debug text: they hold no float, so
        // equal text is equal filters, and the key stays hashable.
        let filters = format!("{:?}", request.filters);
        let mut groups = Vec::with_capacity(request.points.len());
        for (done, point) in request.points.iter().enumerate() {
            if let Ok(newer) = newer.try_recv() {
                return Ok(Step::Interrupted(newer));
            }
            let hide = request.hide_std_frames && point.has_untrimmed_frames;
            let key = GroupsKey {
                id: point.id,
                hide,
                filters: filters.clone(),
                metric: request.metric,
                key_type: request.key_type,
                cumulative: request.cumulative,
            };
            let grouped = match self.cache.get_mut(&key) {
                Some((g, used)) => {
                    *used = self.tick;
                    Arc::clone(g)
                }
                None => {
                    let g = Arc::new(group(point, hide, request)?);
                    self.cache.insert(key, (Arc::clone(&g), self.tick));
                    g
                }
            };
            groups.push(grouped);
            progress.done.store(done + 1, Ordering::Relaxed);
        }
        // Keep this request's groupings and the most recently used others,
        // up to twice as many: enough to go back to the previous grouping
        // or filters at once.
        let capacity = 3 * request.points.len() + 16;
        if self.cache.len() > capacity {
            let mut ticks: Vec<u64> = self.cache.values().map(|(_, t)| *t).collect();
            ticks.sort_unstable_by(|a, b| b.cmp(a));
            let oldest_kept = ticks[capacity - 1];
            let tick = self.tick;
            self.cache
                .retain(|_, (_, used)| *used >= oldest_kept || *used == tick);
        }
        let points: Vec<(&Grouping, Option<Timestamp>)> = groups
            .iter()
            .zip(&request.points)
            .map(|(g, p)| (&**g, p.time))
            .collect();
        let timeline = Timeline::new(&points);
        Ok(Step::Done(TimelineResult {
            generation: request.generation,
            timeline: Arc::new(timeline),
            ids: request.points.iter().map(|p| p.id).collect(),
            elapsed: start.elapsed(),
        }))
    }
}

/// One snapshot grouped as the window shows it.
fn group(point: &TimelinePoint, hide: bool, request: &TimelineRequest) -> Result<Grouping> {
    let shown = pipeline::prepare(&point.snapshot, hide, &request.filters)?;
    Ok(Grouping::new_by(
        &shown,
        request.metric,
        request.key_type,
        request.cumulative,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemalloc_format::Filter;

    fn point(id: u64, leak: u64) -> TimelinePoint {
        let snapshot = Snapshot::from_raw_traces(
            5,
            [
                (0, leak, &[("leak.rs", 8), ("main.rs", 1)][..], None),
                (0, 100, &[("stable.rs", 3), ("main.rs", 1)][..], None),
            ],
        )
        .unwrap();
        TimelinePoint {
            id: SnapshotId(id),
            has_untrimmed_frames: false,
            snapshot: Arc::new(snapshot),
            time: Some(Timestamp {
                unix_micros: id as i64 * 1_000_000,
            }),
        }
    }

    fn wait(service: &mut TimelineService) -> TimelineResult {
        let start = Instant::now();
        loop {
            if let Some(outcome) = service.poll() {
                let result = outcome.unwrap();
                if result.generation == service.generation() {
                    return result;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(20));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn the_thread_ranks_the_leak_and_reuses_groupings() {
        let mut service = TimelineService::start(Arc::new(|| {})).unwrap();
        let mut request = TimelineRequest {
            generation: 0,
            points: (1..=4).map(|i| point(i, 10 * i)).collect(),
            hide_std_frames: true,
            filters: Vec::new(),
            metric: Metric::Live,
            key_type: KeyType::Lineno,
            cumulative: false,
        };
        assert!(service.request(request.clone()));
        assert!(!service.request(request.clone()), "the same work");
        let result = wait(&mut service);
        let timeline = &result.timeline;
        assert_eq!(timeline.len(), 4);
        assert_eq!(result.ids[3], SnapshotId(4));
        let leak = timeline.ranking()[0];
        assert_eq!(timeline.source_text(leak.group), "leak.rs:8");
        assert_eq!(leak.grew, 3);
        assert_eq!(service.progress.done.load(Ordering::Relaxed), 4);

        // One more snapshot, and a filter: still right.
        request.points.push(point(5, 50));
        request.filters = vec![Filter::new(false, "stable.rs").into()];
        assert!(service.request(request));
        let result = wait(&mut service);
        assert_eq!(result.timeline.len(), 5);
        assert_eq!(result.timeline.totals()[4].size, 50);
    }
}
