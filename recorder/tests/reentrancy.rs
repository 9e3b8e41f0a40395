//! Code that allocates where the recorder is delicate: `Drop` that
//! allocates, also during thread-local teardown at thread exit, and
//! allocations while the recorder itself works (taking a snapshot).

mod common;

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Mutex;

use common::{assert_consistent, at_line};

#[global_allocator]
static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();

const FILE: &str = "tests/reentrancy.rs";

/// Where `Drop` puts what it allocates.
static GRAVEYARD: Mutex<Vec<String>> = Mutex::new(Vec::new());
static DROP_LINE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct AllocatesOnDrop(u32);

impl Drop for AllocatesOnDrop {
    // The `line!()` markers must stay on the line of the allocation they
    // name: keep rustfmt from splitting those lines.
    #[rustfmt::skip]
    fn drop(&mut self) {
        let line = line!(); let epitaph = format!("{:0>200}", self.0);
        DROP_LINE.store(line, std::sync::atomic::Ordering::Relaxed);
        GRAVEYARD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(epitaph);
    }
}

thread_local! {
    static LOCAL: RefCell<Vec<AllocatesOnDrop>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn drop_that_allocates_is_traced_even_at_thread_exit() {
    let _serial = common::serial();
    tracemalloc::start(8).unwrap();
    tracemalloc::clear_traces();
    GRAVEYARD.lock().unwrap().reserve(100);

    // A plain drop.
    drop(AllocatesOnDrop(1));
    // Drops during thread-local destruction, after the recorder's own
    // thread-exit hook may already have run.
    let threads: Vec<_> = (0..4)
        .map(|i| {
            std::thread::spawn(move || {
                LOCAL.with(|l| l.borrow_mut().push(AllocatesOnDrop(10 + i)));
                // Freed and allocated during teardown too.
                let v = vec![0u8; 100];
                LOCAL.with(|l| l.borrow_mut().push(AllocatesOnDrop(20 + i)));
                black_box(v);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let line = DROP_LINE.load(std::sync::atomic::Ordering::Relaxed);
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_consistent(&snapshot);
    assert_eq!(GRAVEYARD.lock().unwrap().len(), 9);
    let (size, count) = at_line(&snapshot, FILE, line);
    assert_eq!(count, 9, "{}", common::describe(&snapshot));
    assert!(size >= 9 * 200);

    // Everything freed goes back to zero.
    GRAVEYARD.lock().unwrap().clear();
    let snapshot = tracemalloc::take_snapshot().unwrap();
    assert_eq!(at_line(&snapshot, FILE, line), (0, 0));
    tracemalloc::stop();
}

#[test]
fn the_recorder_never_appears_in_its_own_snapshots() {
    let _serial = common::serial();
    tracemalloc::start(16).unwrap();
    tracemalloc::clear_traces();
    let (block, line) = (vec![0u8; 1234], line!());
    // Snapshots, tracebacks and symbol lookups allocate plenty inside the
    // recorder; none of it is traced.
    for _ in 0..3 {
        let snapshot = tracemalloc::take_snapshot().unwrap();
        let tb = tracemalloc::get_object_traceback(block.as_ptr()).unwrap();
        assert_eq!(tb.frames[0].lineno, line);
        let ours: Vec<_> = snapshot
            .traces()
            .iter()
            .filter(|t| {
                snapshot.traceback(t.traceback).frames.iter().any(|f| {
                    // (libtest's generated `main` is in this file too.)
                    f.filename.contains("recorder/src/")
                        || f.function
                            .as_deref()
                            .is_some_and(|f| f.contains("never_appears"))
                })
            })
            .map(|t| t.size)
            .collect();
        assert_eq!(ours, [1234], "{}", common::describe(&snapshot));
        black_box(tb);
    }
    assert!(tracemalloc::get_tracemalloc_memory() > 0);
    tracemalloc::stop();
    black_box(block);
}
