//! Library benchmarks on a pair of 1M-trace snapshots: filter, group, diff,
//! `.tmsnap` encode and decode. The figures are recorded in
//! docs/BENCHMARKS.md.
//!
//! The snapshots come from `support/synthetic.rs` (no Python needed).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tracemalloc_format::{Filter, KeyType, Snapshot, TraceFilter};

#[path = "support/synthetic.rs"]
mod synthetic;
use synthetic::synthetic;

fn filters() -> Vec<TraceFilter> {
    vec![
        Filter::new(true, "/srv/app/pkg[0-7]/*").into(),
        Filter::new(false, "*/module_1?.py")
            .with_all_frames(true)
            .into(),
    ]
}

fn benches(c: &mut Criterion) {
    let old = synthetic(1, 1_000_000, false);
    let new = synthetic(2, 1_000_000, true);

    let bytes = new.to_tmsnap_bytes();
    eprintln!(
        "tmsnap size of 1M traces: {} bytes ({:.2} bytes per trace, tables included; \
         {} strings, {} frames, {} tracebacks)",
        bytes.len(),
        bytes.len() as f64 / new.traces().len() as f64,
        new.tables().string_count(),
        new.tables().frame_count(),
        new.tables().traceback_count()
    );

    let mut group = c.benchmark_group("1M traces");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("filter_traces (include glob + exclude all_frames)", |b| {
        let filters = filters();
        b.iter(|| black_box(new.filter_traces(&filters)))
    });
    group.bench_function("statistics lineno", |b| {
        b.iter(|| black_box(new.statistics(KeyType::Lineno, false)))
    });
    group.bench_function("statistics lineno cumulative", |b| {
        b.iter(|| black_box(new.statistics(KeyType::Lineno, true)))
    });
    group.bench_function("statistics traceback", |b| {
        b.iter(|| black_box(new.statistics(KeyType::Traceback, false)))
    });
    group.bench_function("compare_to lineno cumulative", |b| {
        b.iter(|| black_box(new.compare_to(&old, KeyType::Lineno, true)))
    });
    group.bench_function("filter both + compare_to lineno cumulative", |b| {
        let filters = filters();
        b.iter(|| {
            let new = new.filter_traces(&filters);
            let old = old.filter_traces(&filters);
            black_box(new.compare_to(&old, KeyType::Lineno, true))
        })
    });
    group.bench_function("tmsnap encode", |b| {
        b.iter(|| black_box(new.to_tmsnap_bytes()))
    });
    group.bench_function("tmsnap decode", |b| {
        b.iter(|| black_box(Snapshot::from_bytes(&bytes)))
    });
    group.finish();
}

criterion_group!(analysis, benches);
criterion_main!(analysis);
