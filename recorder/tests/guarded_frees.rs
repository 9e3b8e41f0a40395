//! Blocks the program allocated (traced) and the recorder frees on its
//! behalf, while the thread's re-entrancy guard is set: their traces must
//! go with them (issue 12, defect 2). `TracingAllocator::new(System)` gives
//! blocks without a header, whose free is looked up in the tables.

// A test program without libtest (see `main`): a panic is a failure with a
// message, which is what we want.
#![allow(clippy::unwrap_used)]

mod common;

use std::alloc::System;

// Without libtest: its threads allocate while tests run, which would make
// the process-wide totals checked here racy.
fn main() {
    common::run_tests(&[
        (
            "dump_at_exit_frees_the_old_path",
            dump_at_exit_frees_the_old_path,
        ),
        (
            "failed_periodic_start_frees_its_settings",
            failed_periodic_start_frees_its_settings,
        ),
        (
            "symbolizer_frees_a_cache_the_program_filled",
            symbolizer_frees_a_cache_the_program_filled,
        ),
    ]);
}

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::new(System);

/// `dump_at_exit` replaces the path of an earlier call, and frees it under
/// the guard.
fn dump_at_exit_frees_the_old_path() {
    tracemalloc::start(4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    tracemalloc::dump_at_exit(dir.path().join("first.tmsnap"));
    let (before, _) = tracemalloc::get_traced_memory();
    for i in 0..100 {
        tracemalloc::dump_at_exit(dir.path().join(format!("exit-{i:04}.tmsnap")));
    }
    let (after, _) = tracemalloc::get_traced_memory();
    // The path set last replaced the first one: one path live, as before.
    let last = dir.path().join("exit-0099.tmsnap").as_os_str().len() as u64;
    let first = dir.path().join("first.tmsnap").as_os_str().len() as u64;
    assert!(
        after <= before + last.saturating_sub(first) + 64,
        "100 replaced paths stayed traced: {before} -> {after} bytes"
    );
    // Nothing is written at exit: tracing is off then.
    tracemalloc::stop();
}

/// A `PeriodicBuilder::start` that fails (the directory cannot be created)
/// drops the builder's settings under the guard.
fn failed_periodic_start_frees_its_settings() {
    tracemalloc::start(4).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let (before, _) = tracemalloc::get_traced_memory();
    for i in 0..100 {
        let result = tracemalloc::PeriodicSnapshots::builder(file.join(format!("sub-{i}")))
            .prefix(format!("prefix-{i:0>400}"))
            .start();
        assert!(
            result.is_err(),
            "a directory under a file cannot be created"
        );
    }
    let (after, _) = tracemalloc::get_traced_memory();
    assert!(
        after <= before + 1024,
        "100 failed starts left their settings traced: {before} -> {after} bytes"
    );
    tracemalloc::stop();
}

/// The program resolves a backtrace (the `backtrace` crate fills its
/// debug-information cache, traced), then takes a snapshot.
///
/// Where the snapshot's symbolizer is the `backtrace` crate (not Linux), it
/// clears that cache under the guard, and the frees must take the cache's
/// traces with them. On Linux the recorder reads the debug information
/// itself and leaves the program's cache alone: the cache stays the
/// program's live memory, traced as it was, until the program clears it.
fn symbolizer_frees_a_cache_the_program_filled() {
    tracemalloc::start(4).unwrap();
    let (before, _) = tracemalloc::get_traced_memory();
    let bt = backtrace::Backtrace::new();
    assert!(!bt.frames().is_empty());
    drop(bt);
    let (filled, _) = tracemalloc::get_traced_memory();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    common::assert_consistent(&snapshot);
    drop(snapshot);
    let (after, _) = tracemalloc::get_traced_memory();
    println!("before {before}, cache filled {filled}, after the snapshot {after}");
    assert!(
        filled > before + 100_000,
        "the program's backtrace filled a cache: {before} -> {filled}"
    );
    if cfg!(any(target_os = "linux", target_os = "android")) {
        assert!(
            after.abs_diff(filled) < 64 * 1024,
            "the snapshot changed the program's traced memory: {before} -> {filled} -> {after} bytes"
        );
        backtrace::clear_symbol_cache();
        let (cleared, _) = tracemalloc::get_traced_memory();
        assert!(
            cleared < before + 64 * 1024,
            "the cache the program freed stayed traced: {before} -> {filled} -> {cleared} bytes"
        );
    } else {
        assert!(
            after < before + 64 * 1024,
            "the cache the symbolizer freed stayed traced: {before} -> {filled} -> {after} bytes"
        );
    }
    tracemalloc::stop();
}
