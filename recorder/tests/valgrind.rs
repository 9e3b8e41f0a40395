//! A traced stress program runs clean under valgrind's memcheck (issue 12,
//! defect 1): threads, frees from other threads, realloc, `clear_traces`
//! and a snapshot, with block trailers asked for. Valgrind replaces
//! `malloc` without replacing its symbol, so the word before a block is
//! its redzone, not glibc's chunk size: trailers must stay off there.
//!
//! The test runs this same program under `valgrind --error-exitcode=1`.
//! Valgrind must be installed (`.ci/run` installs it): without it the test
//! fails and says so.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::mpsc;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const CHILD: &str = "TRACEMALLOC_TEST_UNDER_VALGRIND";

fn main() {
    if std::env::var_os(CHILD).is_some() {
        stress();
        return;
    }
    common::run_tests(&[("memcheck_finds_no_error", memcheck_finds_no_error)]);
}

/// How long memcheck may take: about 30 s of CPU here (most of it the
/// snapshot symbolizing this debug binary); a hang (the original defect
/// ended in one) fails the test instead of CI.
const LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

fn memcheck_finds_no_error() {
    let exe = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let child = std::process::Command::new("valgrind")
        .args(["--error-exitcode=1", "--quiet", "--trace-children=no"])
        .arg(&exe)
        .env(CHILD, "1")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "valgrind is not installed: this test runs the traced stress program under \
             `valgrind --error-exitcode=1` (apt-get install valgrind; .ci/run installs it)"
        ),
        Err(e) => panic!("cannot run valgrind: {e}"),
    };
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let Some(status) = status else {
        panic!(
            "memcheck did not finish in {LIMIT:?} (a hang?)\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
    };
    assert!(
        status.success() && stdout.contains("stress done"),
        "memcheck: {status}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// Allocates, reallocates and frees on four threads, handing blocks to one
/// another, then takes a snapshot.
fn stress() {
    let t0 = std::time::Instant::now();
    let trailers_asked = tracemalloc::Config::new(8).block_trailers(true);
    trailers_asked.start().unwrap();
    eprintln!("started after {:?}", t0.elapsed());
    assert_eq!(
        tracemalloc::get_tracemalloc_memory_usage().block_trailers,
        0,
        "no trailers under valgrind"
    );
    let (send, receive) = mpsc::channel::<Vec<Box<[u8; 48]>>>();
    let consumer = std::thread::Builder::new()
        .name("consumer".into())
        .spawn(move || {
            let mut freed = 0;
            for batch in receive {
                freed += batch.len();
                drop(black_box(batch));
            }
            freed
        })
        .unwrap();
    let workers: Vec<_> = (0..3)
        .map(|t| {
            let send = send.clone();
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn(move || {
                    let mut kept: Vec<Vec<u64>> = Vec::new();
                    for round in 0..20 {
                        let batch: Vec<Box<[u8; 48]>> =
                            (0..50).map(|i| Box::new([(i + round) as u8; 48])).collect();
                        send.send(batch).unwrap();
                        let mut v: Vec<u64> = Vec::with_capacity(1);
                        for i in 0..(100 + round * 10) {
                            v.push(black_box(i as u64));
                        }
                        v.shrink_to_fit();
                        let s: String = (0..round).map(|i| format!("{i}-{t};")).collect();
                        kept.push(black_box(v));
                        drop(black_box(s));
                        if round % 5 == 4 {
                            kept.truncate(2);
                        }
                    }
                    kept.len()
                })
                .unwrap()
        })
        .collect();
    drop(send);
    for w in workers {
        w.join().unwrap();
    }
    let freed = consumer.join().unwrap();
    assert_eq!(freed, 3 * 20 * 50);
    eprintln!("threads done after {:?}", t0.elapsed());
    tracemalloc::clear_traces();
    let kept: Vec<String> = (0..100).map(|i| i.to_string()).collect();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    common::assert_consistent(&snapshot);
    assert!(
        snapshot.traces().len() >= 100,
        "{} traces",
        snapshot.traces().len()
    );
    eprintln!("snapshot done after {:?}", t0.elapsed());
    drop(kept);
    tracemalloc::stop();
    println!("stress done");
}
