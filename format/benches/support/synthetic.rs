//! A deterministic generator of large snapshots with the structure of
//! scripts/make_large_snapshots.py: 30,000 tracebacks of 1 to 10 frames over
//! 12,000 call sites in 400 files, outer frames shared the most. Shared by
//! the benches and `examples/make_synthetic.rs` (no Python needed).

use tracemalloc_format::{Metadata, Snapshot, SnapshotBuilder};

/// splitmix64: a tiny deterministic generator, so every run measures the
/// same snapshots.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A snapshot of `traces` traces; `leak` makes the first 200 tracebacks
/// twenty times more frequent (the "new" snapshot of a leaking program).
pub fn synthetic(seed: u64, traces: usize, leak: bool) -> Snapshot {
    let mut rng = Rng(seed);
    let mut b = SnapshotBuilder::new(10);
    let mut sites = Vec::new();
    for file in 0..400 {
        let name = format!("/srv/app/pkg{}/module_{file}.py", file / 40);
        for _ in 0..30 {
            let line = 1 + rng.below(2000) as u32;
            sites.push(b.intern_frame(&name, line, None).expect("small table"));
        }
    }
    let mut tracebacks = Vec::new();
    let mut frames = Vec::new();
    while tracebacks.len() < 30_000 {
        let depth = 1 + rng.below(10) as usize;
        frames.clear();
        for level in 0..depth {
            let pool = (50 * (level + 1).pow(3)).min(sites.len()) as u64;
            let index = if rng.below(2) == 0 {
                rng.below(pool)
            } else {
                let spread = 7 * (1 + rng.below(8));
                rng.below(spread) % pool
            };
            frames.push(sites[index as usize]);
        }
        frames.reverse();
        let tb = b
            .intern_traceback(&frames, Some(depth as u32))
            .expect("small table");
        if tb.index() == tracebacks.len() {
            tracebacks.push(tb);
        }
    }
    b.reserve_traces(traces);
    for _ in 0..traces {
        let pick = if leak && rng.below(8) == 0 {
            rng.below(200)
        } else {
            rng.below(tracebacks.len() as u64)
        } as usize;
        let size = match rng.below(100) {
            0..70 => 16 + rng.below(112),
            70..95 => 129 + rng.below(3968),
            _ => 4097 + rng.below(1 << 20),
        };
        let domain = if pick.is_multiple_of(50) {
            1 + (pick % 3) as u32
        } else {
            0
        };
        b.push_trace(domain, size, tracebacks[pick])
            .expect("small sizes");
    }
    b.finish(Metadata::default())
}
