//! Sampled tracing: a block is traced with probability
//! `1 - exp(-size / mean)`, and the estimates are unbiased.

mod common;

use std::hint::black_box;

use common::at_line;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/sampling.rs";
const MEAN: u64 = 4096;

#[test]
// The `line!()` markers must stay on the line of the allocation they
// name: keep rustfmt from splitting those lines.
#[rustfmt::skip]
fn sampled_estimates_are_unbiased() {
    let _serial = common::serial();
    assert!(matches!(
        tracemalloc::start_sampled(4, 0),
        Err(tracemalloc::Error::InvalidSamplingMean)
    ));
    tracemalloc::start_sampled(4, MEAN).unwrap();
    let mut small = Vec::with_capacity(100_000);
    // 100 000 blocks of 64 bytes: about 1560 samples, so the estimate is
    // within 2.5 % (one standard deviation); the bound below is 5 of them.
    let small_line = line!(); for _ in 0..100_000 { small.push(black_box(vec![0u8; 64])); }
    let (big, big_line) = (black_box(vec![0u8; 1 << 20]), line!());

    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(snapshot.metadata().sampling_rate, Some(MEAN));
    let (size, count) = at_line(&snapshot, FILE, small_line);
    let expected = 100_000.0 * 64.0;
    assert!(
        (size as f64 - expected).abs() < 0.125 * expected,
        "estimated {size} B for {expected} B"
    );
    assert!(
        (count as f64 - 100_000.0).abs() < 12_500.0,
        "estimated {count} blocks for 100000"
    );
    // The real number of traced blocks is a small sample.
    let sampled = snapshot.traces().iter().filter(|t| t.size == 64).count();
    assert!((500..4000).contains(&sampled), "{sampled} samples");
    // A block much larger than the mean is always sampled, and counts once.
    assert_eq!(at_line(&snapshot, FILE, big_line), (1 << 20, 1));

    // The traced memory is the same estimate.
    let (current, peak) = tracemalloc::get_traced_memory();
    let total = 100_000.0 * 64.0 + (1 << 20) as f64 + 100_000.0 * 24.0;
    assert!(
        (current as f64 - total).abs() < 0.125 * total,
        "{current} for {total}"
    );
    assert!(peak >= current);

    // Frees of unsampled blocks cost nothing and change nothing; frees of
    // sampled ones take their estimate back.
    drop(small);
    drop(big);
    let (current, _) = tracemalloc::get_traced_memory();
    assert!(current < 64 * 1024, "{current} B left");
    tracemalloc::stop();

    // Exact mode again afterwards.
    tracemalloc::start(4).unwrap();
    let (v, line) = (black_box(vec![0u8; 10]), line!());
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(snapshot.metadata().sampling_rate, None);
    assert_eq!(at_line(&snapshot, FILE, line), (10, 1));
    tracemalloc::stop();
    black_box(v);
}
