// Programs modelled on dhat-rs's own: its two example programs
// (`examples/heap.rs`, `examples/heap-testing.rs`) and the program of its
// heap test (`tests/heap.rs`), rewritten for this comparison with the same
// allocation patterns. Written against dhat-rs's API through a `dhat` in
// scope: `src/bin/dhat_examples_dhat.rs` and `src/bin/dhat_examples_ours.rs`
// each include this file (`#[path]`) after `use ...::{real, ours} as dhat;`
// (see `src/dhat_shim.rs`), so both profilers see the same lines allocate.
//
// The `site:` comments name the lines that allocate;
// `tests/dhat_agreement.rs` finds the lines by them, so each must stay on
// the line of the allocation it names.

use std::hint::black_box;

use super::dhat;

/// The programs, by the name the command line gives.
pub const PROGRAMS: &[(&str, fn())] = &[
    ("heap", heap),
    ("heap_testing", heap_testing),
    ("heap_realloc", heap_realloc),
    ("equal_peaks", equal_peaks),
];

/// The `main` of a binary that runs these programs (`binary`, its name in
/// the usage message): runs the program its first argument names.
pub fn run(binary: &str) {
    let name = std::env::args().nth(1).unwrap_or_default();
    match PROGRAMS.iter().find(|(n, _)| *n == name) {
        Some((_, program)) => program(),
        None => {
            let names: Vec<&str> = PROGRAMS.iter().map(|(n, _)| *n).collect();
            eprintln!("usage: {binary} PROGRAM (one of: {})", names.join(", "));
            std::process::exit(2);
        }
    }
}

/// As `examples/heap.rs`: a heap profile of a program that prints a line,
/// whose one allocation is stdout's buffer, made at the first print and
/// live at the end.
fn heap() {
    let _profiler = dhat::Profiler::new_heap();
    println!("Hello from a profiled program"); // site: print
}

/// As `examples/heap-testing.rs`: two small vectors live, checked with
/// the heap statistics.
fn heap_testing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let _first = black_box(vec![10u32, 20, 30, 40]); // site: first
    let _second = black_box(vec![50u32, 60, 70, 80]); // site: second
    let stats = dhat::HeapStats::get();
    dhat::assert_eq!(stats.curr_blocks, 2);
    dhat::assert_eq!(stats.curr_bytes, 32);
}

/// As the program of dhat-rs's `tests/heap.rs`: blocks allocated before the
/// profile and freed or grown in it, a block grown where it was not
/// allocated (the global peak), a loop of small blocks, and the grown
/// block still live at the end.
fn heap_realloc() {
    // Allocated before the profile starts.
    let before_freed = black_box(vec![1u32, 2, 3, 4]);
    let mut before_grown = black_box(vec![1u32, 2, 3, 4]);
    let profiler = dhat::Profiler::builder().build();

    // Allocated before, freed during: counted nowhere.
    drop(before_freed);
    // Allocated before, grown during: a new block of 32 bytes here.
    before_grown.push(5); // site: before-grown
    let big = black_box(vec![0u8; 1000]); // site: big
    let mut grown = black_box(vec![0u8; 200]); // site: grown-alloc
    grown.reserve_exact(200); // site: grown-realloc
    drop(big);
    for i in 0..10u8 {
        black_box(vec![i]); // site: loop
    }
    let stats = dhat::HeapStats::get();
    // dhat-rs's test asserts the same figures for its program.
    dhat::assert_eq!(stats.total_blocks, 14);
    dhat::assert_eq!(stats.total_bytes, 1642);
    dhat::assert_eq!(stats.curr_blocks, 2);
    dhat::assert_eq!(stats.curr_bytes, 432);
    dhat::assert_eq!(stats.max_blocks, 3);
    dhat::assert_eq!(stats.max_bytes, 1432);
    drop(profiler);
    black_box((before_grown, grown));
}

/// Two peaks of the same height at different lines: dhat-rs reports the
/// later one as t-gmax, the recorder the first.
fn equal_peaks() {
    let _profiler = dhat::Profiler::new_heap();
    let first = black_box(vec![0u8; 4096]); // site: first-peak
    drop(first);
    let second = black_box(vec![1u8; 4096]); // site: second-peak
    drop(second);
}
