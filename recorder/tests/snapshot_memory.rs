//! Taking a snapshot keeps the process's peak memory in bounds: resolving
//! thousands of return addresses does not make the program's debug
//! information resident (issue 12: the `backtrace` crate's symbolizer
//! raised ripgrep's peak RSS by 83 MB for one snapshot).

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use tracemalloc_format::KeyType;

fn main() {
    common::run_tests(&[(
        "snapshots_add_little_to_the_peak_rss",
        snapshots_add_little_to_the_peak_rss,
    )]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

/// What a snapshot may add to the process's peak resident memory.
const LIMIT_KB: u64 = 20 * 1024;

/// `VmHWM` of this process, in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Takes a snapshot and returns it with what it added to the peak RSS.
fn snapshot_peak() -> (tracemalloc::Snapshot, u64) {
    // Writing 5 resets the peak to the current resident size.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = peak_rss_kb();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    (snapshot, peak_rss_kb().saturating_sub(before))
}

/// Allocations from many places in the standard library.
fn standard_library_work() -> Vec<Box<dyn Any>> {
    let words: Vec<String> = (0..500).map(|i| format!("word{i}")).collect();
    let map: HashMap<String, usize> = words.iter().cloned().zip(0..).collect();
    let tree: BTreeMap<usize, String> = (0..500).map(|i| (i, i.to_string())).collect();
    let set: BTreeSet<String> = words.iter().map(|w| w.to_uppercase()).collect();
    let deque: VecDeque<Vec<u8>> = (0..50).map(|i| vec![0; i]).collect();
    let heap: BinaryHeap<u64> = (0..300).collect();
    let text = words.join(" ").replace("word", "w");
    let split: Vec<&'static str> = text.clone().leak().split(' ').collect();
    let shared = (Rc::new(text.clone()), Arc::new(words.clone()));
    let from_threads: Vec<String> = (0..4)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || format!("{:?}", vec![i; 10]))
                .unwrap()
        })
        .map(|t| t.join().unwrap())
        .collect();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let dir: Vec<std::path::PathBuf> = std::fs::read_dir(env!("CARGO_MANIFEST_DIR"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    vec![
        Box::new(words),
        Box::new(map),
        Box::new(tree),
        Box::new(set),
        Box::new(deque),
        Box::new(heap),
        Box::new(split),
        Box::new(shared),
        Box::new(from_threads),
        Box::new(env),
        Box::new(dir),
    ]
}

fn snapshots_add_little_to_the_peak_rss() {
    tracemalloc::start(32).unwrap();
    let mut live = standard_library_work();

    let (first, added_first) = snapshot_peak();
    common::assert_consistent(&first);

    // More code of other crates: the format crate's encoder, decoder and
    // statistics (serde, rmp), over the first snapshot.
    let bytes = tracemalloc_format::tmsnap::encode(&first);
    let decoded = tracemalloc_format::Snapshot::from_bytes(&bytes).unwrap();
    let stats = decoded.statistics(KeyType::Filename, true).unwrap();
    let diff = decoded.compare_to(&first, KeyType::Lineno, false).unwrap();
    live.push(Box::new((bytes, decoded, stats, diff)));

    let (second, added_second) = snapshot_peak();
    let lines = second.statistics(KeyType::Lineno, true).unwrap().len();
    eprintln!(
        "snapshots added {added_first} KiB and {added_second} KiB to the peak RSS \
         ({} traces, {lines} lines)",
        second.traces().len()
    );
    assert!(lines > 20, "{}", common::describe(&second));
    assert!(
        added_first <= LIMIT_KB,
        "the first snapshot added {added_first} KiB"
    );
    assert!(
        added_second <= LIMIT_KB,
        "the second snapshot added {added_second} KiB"
    );
    drop(live);
    tracemalloc::stop();
}
