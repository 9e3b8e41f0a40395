//! Measures the viewer's analysis on 1M-trace snapshots, through the same
//! analysis thread the window uses (format calls plus the viewer's caching
//! and bookkeeping), and writes the snapshots for a frame-time measurement
//! in the real window:
//!
//! ```text
//! cargo run --release -p tracemalloc-viewer --example viewer_bench [-- --write DIR]
//! ```
//!
//! Two pairs of snapshots: the synthetic pair of the format crate's
//! benches (1,000,000 traces over 30,000 tracebacks, a realistic program),
//! and a stress pair of 1,000,000 traces with 1,000,000 distinct tracebacks
//! (a million rows when grouped by traceback). docs/BENCHMARKS.md ("Viewer")
//! has the figures.

#[path = "../../format/benches/support/synthetic.rs"]
#[allow(dead_code, clippy::manual_is_multiple_of, missing_docs)]
mod synthetic;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracemalloc_format::rows::SortColumn;
use tracemalloc_format::{Filter, KeyType, Metadata, Snapshot, SnapshotBuilder};
use tracemalloc_viewer::viewer::analysis::{Analysis, AnalysisRequest, AnalysisResult, Input};
use tracemalloc_viewer::viewer::session::SnapshotId;
use tracemalloc_viewer::viewer::state::Sort;

/// 1M traces, each with its own traceback of 10 frames over 100,000
/// distinct frames (the three oldest from 50 entry points).
fn distinct_tracebacks(seed: u64, traces: usize) -> Snapshot {
    let mut state = seed;
    let mut next = move |n: u64| {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    };
    let mut b = SnapshotBuilder::new(10);
    let nframes = 100_000;
    let nfiles = nframes / 40;
    let frames: Vec<_> = (0..nframes)
        .map(|i| {
            let file = format!("/srv/app/module{}/file{}.rs", (i % nfiles) % 50, i % nfiles);
            let function = format!("app::module{}::function_{}", (i % nfiles) % 50, i / 3);
            b.intern_frame(&file, 1 + (i / nfiles) as u32 * 7, Some(&function))
                .expect("a small table")
        })
        .collect();
    let mut stack = Vec::new();
    for _ in 0..traces {
        stack.clear();
        for depth in 0..10 {
            let pool = if depth < 3 { 50 } else { nframes as u64 };
            stack.push(frames[next(pool) as usize]);
        }
        stack.reverse();
        let tb = b.intern_traceback(&stack, Some(10)).expect("a small table");
        b.push_trace(0, 16 + next(4000), tb).expect("small sizes");
    }
    b.finish(Metadata::default())
}

struct Bench {
    analysis: Analysis,
    last: Option<AnalysisRequest>,
}

impl Bench {
    /// Sends a request and waits for its result.
    fn run(&mut self, what: &str, request: AnalysisRequest) -> AnalysisResult {
        let start = Instant::now();
        assert!(
            self.analysis.request(request.clone()),
            "{what}: same request"
        );
        let result = match self.analysis.wait() {
            Ok(result) => result,
            Err((_, err)) => panic!("{what}: {err}"),
        };
        let wall = start.elapsed();
        let t = result.timings;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {what} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            ms(wall),
            ms(t.trim),
            ms(t.filter),
            ms(t.group),
            ms(t.join),
            ms(t.sort),
            ms(t.search),
            result.order.len()
        );
        self.last = Some(request);
        result
    }

    fn last(&self) -> AnalysisRequest {
        self.last.clone().expect("a first request")
    }
}

fn scenario(name: &str, new: Snapshot, old: Snapshot, third: Snapshot) {
    println!("\n### {name}\n");
    println!(
        "{} traces, {} tracebacks (new); {} traces (old)\n",
        new.traces().len(),
        new.tables().traceback_count(),
        old.traces().len()
    );
    println!("| step | wall ms | trim | filter | group | join | sort | search | rows |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let input = |id: u64, s: Snapshot| Input {
        id: SnapshotId(id),
        has_untrimmed_frames: s.has_untrimmed_frames(),
        snapshot: Arc::new(s),
    };
    let (new, old, third) = (input(1, new), input(2, old), input(3, third));
    let mut bench = Bench {
        analysis: Analysis::start(Arc::new(|| {})).expect("the analysis thread"),
        last: None,
    };
    let first = AnalysisRequest::by_line(new.clone(), Some(old.clone()));
    bench.run("open: group both by line, compare", first);
    for key_type in [KeyType::Traceback, KeyType::Filename, KeyType::Lineno] {
        let mut r = bench.last();
        r.key_type = key_type;
        bench.run(&format!("regroup by {key_type}"), r);
    }
    let mut r = bench.last();
    r.cumulative = true;
    bench.run("cumulative on", r);
    let mut r = bench.last();
    r.cumulative = false;
    bench.run("cumulative off (cached)", r);
    let mut r = bench.last();
    r.filters = vec![Filter::new(false, "*/pkg3/*").into()];
    bench.run("refilter: exclude a package", r);
    let mut r = bench.last();
    r.filters
        .push(Filter::new(true, "*module_1*").with_all_frames(true).into());
    bench.run("refilter: include on any frame", r);
    let mut r = bench.last();
    r.filters.clear();
    bench.run("remove the filters (cached)", r);
    let mut r = bench.last();
    r.old = Some(third.clone());
    bench.run("rediff: compare to another snapshot", r);
    let mut r = bench.last();
    r.old = None;
    r.sort = Sort::default_for(false);
    bench.run("no comparison", r);
    let mut r = bench.last();
    r.old = Some(old.clone());
    r.sort = Sort::default_for(true);
    bench.run("compare again (cached)", r);
    let mut r = bench.last();
    r.sort = Sort::first_click(SortColumn::Source);
    bench.run("sort by source", r);
    let mut r = bench.last();
    r.search = "module_17".to_owned();
    bench.run("search", r);
    let mut r = bench.last();
    r.search.clear();
    r.key_type = KeyType::Traceback;
    r.sort = Sort::default_for(true);
    bench.run("by traceback, compared", r);
    let mut r = bench.last();
    r.old = None;
    r.sort = Sort::default_for(false);
    bench.run("by traceback, one snapshot", r);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let write_dir = match (args.next().as_deref(), args.next()) {
        (Some("--write"), Some(dir)) => Some(PathBuf::from(dir)),
        (None, _) => None,
        _ => {
            eprintln!("usage: viewer_bench [--write DIR]");
            std::process::exit(2);
        }
    };
    let start = Instant::now();
    let new = synthetic::synthetic(2, 1_000_000, true);
    let old = synthetic::synthetic(1, 1_000_000, false);
    let third = synthetic::synthetic(3, 1_000_000, false);
    eprintln!("made the synthetic snapshots in {:?}", start.elapsed());
    if let Some(dir) = &write_dir {
        std::fs::create_dir_all(dir).expect("a writable folder");
        new.dump(dir.join("synthetic-new.tmsnap")).expect("writing");
        old.dump(dir.join("synthetic-old.tmsnap")).expect("writing");
    }
    scenario(
        "1M traces, 30,000 tracebacks (format/benches/support/synthetic.rs)",
        new,
        old,
        third,
    );

    let start = Instant::now();
    let new = distinct_tracebacks(1, 1_000_000);
    let old = distinct_tracebacks(2, 1_000_000);
    let third = distinct_tracebacks(3, 1_000_000);
    eprintln!(
        "made the distinct-traceback snapshots in {:?}",
        start.elapsed()
    );
    if let Some(dir) = &write_dir {
        new.dump(dir.join("distinct-new.tmsnap")).expect("writing");
        old.dump(dir.join("distinct-old.tmsnap")).expect("writing");
    }
    scenario(
        "1M traces, 1M distinct tracebacks (stress)",
        new,
        old,
        third,
    );
}
