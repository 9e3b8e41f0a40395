//! Criterion benchmarks of the recorder's hot path and of taking a
//! snapshot. The whole-process comparison (ratios to an untraced run,
//! dhat-rs, heaptrack) is `scripts/bench_recorder.sh`.
//!
//! ```text
//! cargo bench -p tracemalloc --bench hot_path
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

#[inline(never)]
fn depth(n: u32, f: &mut dyn FnMut()) {
    if n == 0 {
        f();
    } else {
        depth(n - 1, f);
        black_box(n);
    }
}

/// One allocation and its free, through the global allocator (and so
/// through the recorder), 10 frames below the benchmark loop.
fn alloc_free(c: &mut Criterion) {
    let mut group = c.benchmark_group("alloc_free_64B");
    group.measurement_time(Duration::from_secs(3));
    let layout = Layout::from_size_align(64, 8).expect("a valid layout");
    group.bench_function("system_direct", |b| {
        depth(10, &mut || {
            b.iter(|| {
                // SAFETY: the layout has a non-zero size; the block is
                // freed with the same layout.
                unsafe {
                    let p = System.alloc(layout);
                    System.dealloc(black_box(p), layout);
                }
            })
        })
    });
    // A mode is "installed but off" (None) or tracing with a frame count
    // and an optional sampling mean.
    type Mode = Option<(u32, Option<u64>)>;
    let modes: [(&str, Mode); 5] = [
        ("installed_off", None),
        ("nframe_1", Some((1, None))),
        ("nframe_16", Some((16, None))),
        ("nframe_32", Some((32, None))),
        ("sampled_512KiB", Some((16, Some(512 * 1024)))),
    ];
    for (name, mode) in modes {
        match mode {
            None => tracemalloc::stop(),
            Some((nframe, None)) => {
                tracemalloc::stop();
                tracemalloc::start(nframe).expect("start");
            }
            Some((nframe, Some(mean))) => {
                tracemalloc::stop();
                tracemalloc::start_sampled(nframe, mean).expect("start");
            }
        }
        group.bench_function(name, |b| {
            depth(10, &mut || {
                b.iter(|| black_box(Box::new(black_box([0u8; 64]))))
            })
        });
    }
    tracemalloc::stop();
    group.finish();
}

/// `take_snapshot` and `dump` with many live blocks (symbols cached by a
/// first snapshot, as in a long-running program).
fn snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for live in [100_000usize, 1_000_000] {
        tracemalloc::stop();
        tracemalloc::start(16).expect("start");
        let blocks: Vec<Box<u64>> = (0..live as u64).map(Box::new).collect();
        let dir = std::env::temp_dir();
        let path = dir.join(format!("tracemalloc-bench-{}.tmsnap", std::process::id()));
        drop(tracemalloc::take_snapshot().expect("snapshot"));
        group.bench_with_input(
            BenchmarkId::new("take_snapshot_and_dump", live),
            &live,
            |b, _| {
                b.iter(|| {
                    let s = tracemalloc::take_snapshot().expect("snapshot");
                    s.dump(&path).expect("dump");
                })
            },
        );
        let _ = std::fs::remove_file(&path);
        drop(blocks);
    }
    tracemalloc::stop();
    group.finish();
}

criterion_group!(benches, alloc_free, snapshot);
criterion_main!(benches);
