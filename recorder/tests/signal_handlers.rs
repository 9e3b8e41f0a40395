//! Signal handlers that allocate and free, interrupting a thread that
//! allocates and frees itself, while another thread takes snapshots (issue
//! 12, defect 5). Whatever the handler interrupts (the program, the inner
//! allocator or the recorder's own hooks), the accounting stays exact: no
//! trace is left behind, and snapshots add up to the traced memory. The
//! inner allocator is async-signal-safe, so the handler may allocate.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator<common::Bump> =
    tracemalloc::TracingAllocator::new(common::Bump);

const FILE: &str = "tests/signal_handlers.rs";

static HANDLED: AtomicU64 = AtomicU64::new(0);
static HANDLER_LINE: AtomicU32 = AtomicU32::new(0);

#[rustfmt::skip]
extern "C" fn allocate_and_free(_: libc::c_int) {
    let line = line!(); let mut v: Vec<u64> = black_box(Vec::with_capacity(4));
    v.extend_from_slice(&[1, 2, 3, 4, 5]);
    let b = black_box(Box::new([7u8; 24]));
    drop(black_box(v));
    drop(b);
    HANDLER_LINE.store(line, Ordering::Relaxed);
    HANDLED.fetch_add(1, Ordering::Relaxed);
}

fn main() {
    common::watchdog(
        120,
        "signal handlers allocating while the program allocates",
    );
    common::on_signal(libc::SIGUSR1, allocate_and_free);
    // Standard output's buffer, allocated at the first print, is not traced.
    println!("\nrunning 1 test");
    tracemalloc::start(4).unwrap();
    let (baseline, _) = tracemalloc::get_traced_memory();
    let done = Arc::new(AtomicBool::new(false));
    // Freezes every table over and over: a busy flag cleared too early
    // lets it read a table its owner is changing.
    let freezer = {
        let done = Arc::clone(&done);
        std::thread::Builder::new()
            .name("freezer".into())
            .spawn(move || {
                let mut snapshots = 0;
                while !done.load(Ordering::Relaxed) {
                    black_box(tracemalloc::get_traced_memory());
                    if snapshots < 20 {
                        let snapshot = tracemalloc::take_snapshot().unwrap();
                        common::assert_consistent(&snapshot);
                        snapshots += 1;
                    }
                }
            })
            .unwrap()
    };
    // SAFETY: the calling thread's id.
    let me = unsafe { libc::pthread_self() };
    let (stop, sender) = common::signal_sender(me, libc::SIGUSR1, Duration::from_micros(10));
    let mut ring: Vec<Vec<u8>> = Vec::with_capacity(64);
    let mut rounds = 0u64;
    while HANDLED.load(Ordering::Relaxed) < 20_000 {
        for i in 0..64usize {
            let mut v = Vec::with_capacity(8 + i);
            v.extend(std::iter::repeat_n(i as u8, 40 + i));
            if ring.len() == 64 {
                ring.swap_remove(i);
            }
            ring.push(black_box(v));
        }
        rounds += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    drop(stop);
    done.store(true, Ordering::Relaxed);
    freezer.join().unwrap();
    drop(done);
    drop(ring);
    println!(
        "{rounds} rounds, {sent} signals sent, {} handled",
        HANDLED.load(Ordering::Relaxed)
    );
    let snapshot = tracemalloc::take_snapshot().unwrap();
    common::assert_consistent(&snapshot);
    let line = HANDLER_LINE.load(Ordering::Relaxed);
    assert_eq!(
        common::at_line(&snapshot, FILE, line),
        (0, 0),
        "the handlers' blocks are freed"
    );
    let (current, _) = tracemalloc::get_traced_memory();
    // The ring's buffer is gone; the freezer's thread is gone. What is
    // left is what was traced before, and the snapshot (untraced).
    assert_eq!(
        current,
        baseline,
        "traced memory after every block was freed: {}",
        common::describe(&snapshot)
    );
    tracemalloc::stop();
    println!("test signal_handlers_keep_the_accounting_exact ... ok");
}
