//! Measures the viewer's depth features on large inputs, through the same
//! background threads the window uses: the traceback tree of a 1M-trace
//! snapshot pair (build, layout per frame, search), the annotated source,
//! and the timeline of 50 snapshots of 1M traces each (first computation,
//! regrouping, going back, one more snapshot). Optionally writes the
//! snapshots for a frame-time measurement in the real window:
//!
//! ```text
//! cargo run --release -p tracemalloc-viewer --example depth_bench [-- --write DIR]
//! ```
//!
//! docs/BENCHMARKS.md ("Viewer depth") has the figures and the window measurement.

#[path = "../../format/benches/support/synthetic.rs"]
#[allow(dead_code, clippy::manual_is_multiple_of, missing_docs)]
mod synthetic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracemalloc_format::flame::{FlameTree, FlameWeight};
use tracemalloc_format::{KeyType, Metadata, Metric, Snapshot, SnapshotBuilder, Timestamp};
use tracemalloc_viewer::viewer::analysis::{Analysis, AnalysisRequest, AnalysisResult, Input};
use tracemalloc_viewer::viewer::session::SnapshotId;
use tracemalloc_viewer::viewer::timeline_service::{
    TimelinePoint, TimelineRequest, TimelineResult, TimelineService,
};

/// Snapshots in the timeline measurement.
const SERIES: usize = 50;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of `runs` runs of `f`, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort_unstable();
    ms(times[times.len() / 2])
}

/// Snapshot `k` of a program running for `SERIES` minutes: the synthetic
/// base (1M traces over 30,000 tracebacks, the same in every snapshot),
/// plus a leak of 4,000 blocks a minute on 20 of its tracebacks.
fn series_snapshot(base: &Snapshot, k: usize) -> Snapshot {
    let tables = base.tables();
    let mut b = SnapshotBuilder::new(base.traceback_limit());
    let mut frame_ids = vec![None; tables.frame_count()];
    let tracebacks: Vec<_> = tables
        .traceback_ids()
        .map(|tb| {
            let frames: Vec<_> = tables
                .traceback_frames(tb)
                .iter()
                .map(|&f| {
                    *frame_ids[f.index()].get_or_insert_with(|| {
                        let frame = tables.frame(f);
                        b.intern_frame(frame.filename, frame.lineno, frame.function)
                            .expect("a small table")
                    })
                })
                .collect();
            b.intern_traceback(&frames, tables.traceback_total_nframe(tb))
                .expect("a small table")
        })
        .collect();
    b.reserve_traces(base.traces().len() + 4000 * k);
    for t in base.traces() {
        b.push_trace(t.domain, t.size, tracebacks[t.traceback.index()])
            .expect("small sizes");
    }
    for i in 0..4000 * k {
        b.push_trace(0, 64 + (i % 7) as u64 * 16, tracebacks[i % 20])
            .expect("small sizes");
    }
    b.finish(Metadata {
        timestamp: Some(Timestamp {
            unix_micros: 1_795_462_860_000_000 + k as i64 * 60_000_000,
        }),
        ..Metadata::default()
    })
}

fn wait_analysis(analysis: &mut Analysis, what: &str) -> (AnalysisResult, Duration) {
    let start = Instant::now();
    match analysis.wait() {
        Ok(result) => (result, start.elapsed()),
        Err((_, err)) => panic!("{what}: {err}"),
    }
}

fn wait_timeline(service: &mut TimelineService, what: &str) -> (TimelineResult, Duration) {
    let start = Instant::now();
    match service.wait() {
        Ok(result) => (result, start.elapsed()),
        Err((_, err)) => panic!("{what}: {err}"),
    }
}

fn flame_scenario(new: Snapshot, old: Snapshot) {
    println!("\n### Flame graph and annotation: 1M traces, 30,000 tracebacks\n");
    let input = |id: u64, s: Snapshot| Input {
        id: SnapshotId(id),
        has_untrimmed_frames: s.has_untrimmed_frames(),
        snapshot: Arc::new(s),
    };
    let (new, old) = (input(1, new), input(2, old));
    let plain_tree = FlameTree::new(&new.snapshot, None, FlameWeight::Bytes).expect("a tree");
    println!(
        "{} nodes, depth {}\n",
        plain_tree.len(),
        plain_tree.max_depth()
    );
    println!("| step | ms |");
    println!("|---|---|");
    let build = median_ms(5, || {
        FlameTree::new(&new.snapshot, None, FlameWeight::Bytes).expect("a tree");
    });
    println!("| build the tree of one snapshot (median of 5) | {build:.1} |");
    let diff = median_ms(5, || {
        FlameTree::new(&new.snapshot, Some(&old.snapshot), FlameWeight::Bytes).expect("a tree");
    });
    println!("| build the diff tree of two snapshots (median of 5) | {diff:.1} |");
    // What a frame of the window computes: the layout at 1,500 points
    // wide, of the whole tree and of a zoom.
    let min_width = 0.5 / 1500.0;
    let spans = plain_tree.layout(0, min_width).len();
    let layout = median_ms(101, || {
        std::hint::black_box(plain_tree.layout(0, min_width));
    });
    println!("| layout of the whole tree per frame ({spans} frames drawn) | {layout:.3} |");
    // Zoomed on the caller with the most frames under it (its subtree is
    // `index + 1 .. end`): the largest layout a zoom asks for.
    let zoom = plain_tree
        .children(0)
        .max_by_key(|&i| (plain_tree.node(i).end as usize - i, std::cmp::Reverse(i)))
        .unwrap_or(0);
    let zoomed = median_ms(101, || {
        std::hint::black_box(plain_tree.layout(zoom, min_width));
    });
    println!(
        "| layout zoomed on `{}` ({} frames under it) per frame | {zoomed:.3} |",
        plain_tree.label(zoom),
        plain_tree.node(zoom).end as usize - zoom - 1
    );
    let search = median_ms(5, || {
        std::hint::black_box(plain_tree.search("module_17"));
    });
    println!("| search `module_17` | {search:.1} |");

    // Through the analysis thread, as the window asks.
    let mut analysis = Analysis::start(Arc::new(|| {})).expect("the analysis thread");
    let mut request = AnalysisRequest::by_line(new.clone(), Some(old.clone()));
    analysis.request(request.clone());
    let (_, t) = wait_analysis(&mut analysis, "table");
    println!(
        "| table first (group both by line, compare) | {:.1} |",
        ms(t)
    );
    request.flame = Some(FlameWeight::Bytes);
    analysis.request(request.clone());
    let (result, t) = wait_analysis(&mut analysis, "flame");
    println!(
        "| open the flame graph tab (diff tree, thread) | {:.1} (tree {:.1}) |",
        ms(t),
        ms(result.timings.flame)
    );
    request.flame = Some(FlameWeight::Blocks);
    analysis.request(request.clone());
    let (_, t) = wait_analysis(&mut analysis, "blocks");
    println!("| switch to blocks | {:.1} |", ms(t));
    request.flame = Some(FlameWeight::Bytes);
    analysis.request(request.clone());
    let (_, t) = wait_analysis(&mut analysis, "bytes again");
    println!("| back to bytes (cached) | {:.1} |", ms(t));
    request.flame_search = "module_17".to_owned();
    analysis.request(request.clone());
    let (_, t) = wait_analysis(&mut analysis, "search");
    println!("| highlight `module_17` | {:.1} |", ms(t));
    let file = plain_tree.frame(1).expect("a frame").filename.to_owned();
    request.annotate = Some(file);
    analysis.request(request.clone());
    let (result, t) = wait_analysis(&mut analysis, "annotate");
    println!(
        "| annotate a file (first: both line groupings, cumulative too) | {:.1} (annotation {:.1}) |",
        ms(t),
        ms(result.timings.annotate)
    );
}

fn timeline_scenario(snapshots: Vec<Snapshot>, extra: Snapshot) {
    println!(
        "\n### Timeline: {} snapshots of {} to {} traces\n",
        snapshots.len(),
        snapshots.first().map_or(0, |s| s.traces().len()),
        snapshots.last().map_or(0, |s| s.traces().len()),
    );
    let points: Vec<TimelinePoint> = snapshots
        .into_iter()
        .enumerate()
        .map(|(i, s)| TimelinePoint {
            id: SnapshotId(100 + i as u64),
            has_untrimmed_frames: s.has_untrimmed_frames(),
            time: s.metadata().timestamp,
            snapshot: Arc::new(s),
        })
        .collect();
    let mut service = TimelineService::start(Arc::new(|| {})).expect("the timeline thread");
    let mut request = TimelineRequest {
        generation: 0,
        points,
        hide_std_frames: true,
        filters: Vec::new(),
        metric: Metric::Live,
        key_type: KeyType::Lineno,
        cumulative: false,
    };
    println!("| step | ms |");
    println!("|---|---|");
    service.request(request.clone());
    let (first, t) = wait_timeline(&mut service, "first");
    println!(
        "| first timeline by line (group every snapshot, merge, rank) | {:.0} |",
        ms(t)
    );
    service.request(TimelineRequest {
        key_type: KeyType::Filename,
        ..request.clone()
    });
    let (_, t) = wait_timeline(&mut service, "by file");
    println!("| regroup by file | {:.0} |", ms(t));
    service.request(request.clone());
    let (_, t) = wait_timeline(&mut service, "back");
    println!(
        "| back to lines (groupings cached: merge and rank) | {:.0} |",
        ms(t)
    );
    request.points.push(TimelinePoint {
        id: SnapshotId(99_999),
        has_untrimmed_frames: extra.has_untrimmed_frames(),
        time: extra.metadata().timestamp,
        snapshot: Arc::new(extra),
    });
    service.request(request.clone());
    let (_, t) = wait_timeline(&mut service, "one more");
    println!("| one more snapshot (a watched folder) | {:.0} |", ms(t));
    let timeline = &first.timeline;
    if let Some(top) = timeline.ranking().first() {
        println!(
            "\n{} groups, {} growing; the steadiest: {} (grew in {} of {} intervals)",
            timeline.group_count(),
            timeline.ranking().len(),
            timeline.source_text(top.group),
            top.grew,
            timeline.len() - 1
        );
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let write_dir = match (args.next().as_deref(), args.next()) {
        (Some("--write"), Some(dir)) => Some(PathBuf::from(dir)),
        (None, _) => None,
        _ => {
            eprintln!("usage: depth_bench [--write DIR]");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let new = synthetic::synthetic(2, 1_000_000, true);
    let old = synthetic::synthetic(1, 1_000_000, false);
    eprintln!("made the pair in {:?}", start.elapsed());
    if let Some(dir) = &write_dir {
        let pair = dir.join("pair");
        std::fs::create_dir_all(&pair).expect("a writable folder");
        new.dump(pair.join("synthetic-new.tmsnap"))
            .expect("writing");
        old.dump(pair.join("synthetic-old.tmsnap"))
            .expect("writing");
    }
    flame_scenario(new, old);

    let start = Instant::now();
    let base = synthetic::synthetic(7, 1_000_000, false);
    let snapshots: Vec<Snapshot> = (0..SERIES).map(|k| series_snapshot(&base, k)).collect();
    let extra = series_snapshot(&base, SERIES);
    eprintln!("made the series in {:?}", start.elapsed());
    if let Some(dir) = &write_dir {
        let series = dir.join("series");
        std::fs::create_dir_all(&series).expect("a writable folder");
        for (k, s) in snapshots.iter().enumerate() {
            s.dump(series.join(format!("series-{:04}.tmsnap", k + 1)))
                .expect("writing");
        }
        eprintln!("wrote the snapshots to {}", dir.display());
    }
    timeline_scenario(snapshots, extra);
}
