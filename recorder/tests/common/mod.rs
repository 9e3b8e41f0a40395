//! Helpers shared by the integration tests. Each test file is its own
//! program with its own `#[global_allocator]` (as dhat-rs tests do), and
//! includes this module.

#![allow(dead_code)]
// Test code: a panic is a failure with a message, which is what we want.
#![allow(clippy::unwrap_used)]

use std::sync::{Mutex, MutexGuard, PoisonError};

use tracemalloc::Snapshot;
use tracemalloc_format::KeyType;

/// The recorder is process-wide: tests of one file that use it run one at
/// a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `(size, count)` of the blocks whose most recent frame is `file:line`
/// (`file` is matched as a suffix of the recorded path).
pub fn at_line(snapshot: &Snapshot, file: &str, line: u32) -> (u64, u64) {
    let stats = snapshot.statistics(KeyType::Lineno, false).unwrap();
    stats
        .iter()
        .filter(|s| {
            let f = &s.traceback.frames[0];
            f.filename.ends_with(file) && f.lineno == line
        })
        .fold((0, 0), |(size, count), s| (size + s.size, count + s.count))
}

/// The allocation history of the tracebacks whose most recent frame is
/// `file:line` (`file` matched as a suffix), added up: `[allocated blocks,
/// allocated bytes, freed blocks, temporary blocks, temporary bytes, peak
/// blocks, peak bytes]`, to compare with one `assert_eq!`. The snapshot
/// must have a history.
pub fn history_at_line(snapshot: &Snapshot, file: &str, line: u32) -> [u64; 7] {
    let history = snapshot.history().expect("the snapshot has a history");
    let mut sum = [0u64; 7];
    for row in history.rows() {
        let traceback = snapshot.traceback(row.traceback);
        let Some(frame) = traceback.most_recent() else {
            continue;
        };
        if frame.filename.ends_with(file) && frame.lineno == line {
            for (s, v) in sum.iter_mut().zip(row.counters()) {
                *s += v;
            }
        }
    }
    sum
}

/// Every `file:line` group of the snapshot, for failure messages.
pub fn describe(snapshot: &Snapshot) -> String {
    let stats = snapshot.statistics(KeyType::Traceback, false).unwrap();
    let mut out = String::new();
    for s in stats.iter().take(40) {
        out.push_str(&format!("{} B x{}:\n", s.size, s.count));
        for f in &s.traceback.frames {
            out.push_str(&format!(
                "    {}:{} {}\n",
                f.filename,
                f.lineno,
                f.function.as_deref().unwrap_or("?")
            ));
        }
    }
    out
}

/// Asserts that a snapshot's sizes add up to its recorded traced memory.
pub fn assert_consistent(snapshot: &Snapshot) {
    assert_eq!(
        Some(snapshot.total_size()),
        snapshot.metadata().traced_current,
        "the snapshot's traces must add up to the traced memory it records"
    );
}

/// Runs the tests of a `harness = false` test file, printing what libtest
/// prints. Files that check process-wide totals use it: libtest's own
/// threads allocate while tests run, which would make those totals racy.
/// A failing test panics, which fails the process.
pub fn run_tests(tests: &[(&str, fn())]) {
    let plural = if tests.len() == 1 { "" } else { "s" };
    println!("\nrunning {} test{plural}", tests.len());
    for (name, test) in tests {
        test();
        println!("test {name} ... ok");
    }
    println!(
        "\ntest result: ok. {} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n",
        tests.len()
    );
}

/// An inner allocator that is async-signal-safe, so that signal handlers
/// may allocate: it hands out memory from a fixed arena with a
/// compare-and-swap and never reuses it (frees do nothing).
pub struct Bump;

/// The arena of [`Bump`]: zero pages reserved, touched only when used.
const BUMP_ARENA: usize = 1 << 30;
static BUMP_NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static BUMP_BASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

// SAFETY: every block is a distinct, suitably aligned range of the arena,
// never handed out twice.
unsafe impl std::alloc::GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use std::sync::atomic::Ordering;
        let mut base = BUMP_BASE.load(Ordering::Acquire);
        if base == 0 {
            // SAFETY: an anonymous private mapping, checked below.
            let map = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    BUMP_ARENA,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if map == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            base = match BUMP_BASE.compare_exchange(
                0,
                map as usize,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => map as usize,
                Err(other) => {
                    // SAFETY: our mapping, unused.
                    unsafe { libc::munmap(map, BUMP_ARENA) };
                    other
                }
            };
        }
        let mut next = BUMP_NEXT.load(Ordering::Relaxed);
        loop {
            let start = (base + next).next_multiple_of(layout.align()) - base;
            let end = start + layout.size().max(1);
            if end > BUMP_ARENA {
                return std::ptr::null_mut();
            }
            match BUMP_NEXT.compare_exchange_weak(next, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (base + start) as *mut u8,
                Err(seen) => next = seen,
            }
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: std::alloc::Layout) {}
}

/// Ends the process with a failure and `what` on stderr unless it has
/// finished within `seconds`: for tests whose failure mode is a deadlock,
/// which must fail CI rather than hang it.
pub fn watchdog(seconds: u64, what: &'static str) {
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            // Formatted first: after the wait, an allocation could wait for
            // the deadlocked recorder too.
            let message = format!("\nwatchdog: {what}: not done after {seconds} s (deadlock?)\n");
            std::thread::sleep(std::time::Duration::from_secs(seconds));
            // SAFETY: writing a buffer to stderr, then ending the process
            // without running anything else (the main thread may hold locks).
            unsafe {
                libc::write(2, message.as_ptr().cast(), message.len());
                libc::_exit(3);
            }
        })
        .unwrap();
}

/// Installs `handler` for `signal`, restarting interrupted system calls.
pub fn on_signal(signal: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed `sigaction` is valid; the handler is an
    // `extern "C" fn(c_int)`, as `sa_handler` expects.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(libc::sigaction(signal, &action, std::ptr::null_mut()), 0);
    }
}

/// A thread that sends `signal` to `target` every `every` until the
/// returned flag is set; joined by the returned handle.
pub fn signal_sender(
    target: libc::pthread_t,
    signal: libc::c_int,
    every: std::time::Duration,
) -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<u64>,
) {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let handle = std::thread::Builder::new()
        .name("signal-sender".into())
        .spawn(move || {
            let mut sent = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: `target` is a live thread of this process (the
                // caller joins this thread before it ends).
                unsafe { libc::pthread_kill(target, signal) };
                sent += 1;
                std::thread::sleep(every);
            }
            sent
        })
        .unwrap();
    (stop, handle)
}

/// Starts tracing with block trailers (`Config::block_trailers`, the
/// default), which `TracingAllocator::system()` then gives on glibc.
pub fn start_with_trailers(nframe: u32) {
    tracemalloc::Config::new(nframe)
        .block_trailers(true)
        .start()
        .unwrap();
}
