//! The allocation-heavy workload of the whole-process benchmark
//! (`scripts/bench_recorder.sh`): a `BTreeMap<String, Vec<u8>>` that
//! churns, a tree of boxes built and dropped, `format!`, and `Vec` growth.
//! About 10 million allocation events (allocations, frees and reallocs)
//! per thread at the default scale.

use std::collections::BTreeMap;
use std::hint::black_box;

/// A node of the box tree.
pub struct Node {
    _left: Option<Box<Node>>,
    _right: Option<Box<Node>>,
    _value: u64,
}

fn tree(depth: u32, value: u64) -> Option<Box<Node>> {
    if depth == 0 {
        return None;
    }
    Some(Box::new(Node {
        _left: tree(depth - 1, value * 2),
        _right: tree(depth - 1, value * 2 + 1),
        _value: value,
    }))
}

/// Runs the workload `scale` times (1 is about ten million events); returns
/// a checksum so nothing is optimized away.
pub fn run(scale: u32, seed: u64) -> u64 {
    let mut checksum = 0u64;
    let mut rng = seed | 1;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for _ in 0..scale {
        // 1. A map that churns: about 3 events per insert and remove.
        let mut map: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for i in 0..800_000u64 {
            let key = format!("key-{}", next() % 20_000);
            let value = vec![(i & 0xff) as u8; (next() % 200) as usize + 1];
            if let Some(old) = map.insert(key, value) {
                checksum = checksum.wrapping_add(old.len() as u64);
            }
            if i % 3 == 0 {
                let probe = format!("key-{}", next() % 20_000);
                map.remove(&probe);
            }
        }
        checksum = checksum.wrapping_add(map.len() as u64);
        drop(map);

        // 2. A tree of boxes built and dropped: 2 events per node.
        for round in 0..24 {
            let t = tree(16, round);
            checksum = checksum.wrapping_add(black_box(&t).is_some() as u64);
        }

        // 3. format! and Vec growth (reallocs).
        for i in 0..300_000u64 {
            let s = format!("{i}:{}", i * 7);
            let mut v: Vec<u32> = Vec::new();
            for j in 0..(i % 40) as u32 {
                v.push(j);
            }
            checksum = checksum.wrapping_add(s.len() as u64 + v.len() as u64);
        }
    }
    checksum
}

/// Runs the workload on `threads` threads at once, each with its own seed;
/// returns the sum of their checksums and the time they took together.
pub fn run_on_threads(
    threads: u64,
    scale: u32,
) -> Result<(u64, std::time::Duration), &'static str> {
    let start = std::time::Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| std::thread::spawn(move || run(scale, 0x9E37_79B9 + t)))
        .collect();
    let mut checksum = 0u64;
    for h in handles {
        checksum = checksum.wrapping_add(h.join().map_err(|_| "a workload thread panicked")?);
    }
    Ok((checksum, start.elapsed()))
}
