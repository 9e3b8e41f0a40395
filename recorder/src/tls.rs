//! Per-thread state of the recorder: the re-entrancy guard, the frame
//! buffer, the traceback cache, the sampling countdown and the unflushed
//! change of traced memory.
//!
//! Everything lives in one const-initialized thread-local without a
//! destructor. Such a thread-local is a plain `#[thread_local]` static
//! underneath: reaching it costs one TLS-relative address computation, it
//! never allocates, and it stays usable while other thread-locals are being
//! destroyed at thread exit, so `Drop` code that allocates during teardown is
//! still traced correctly.

use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{Ordering, compiler_fence};

use crate::stacks::MAX_RAW;
use crate::state::Epoch;

/// The guard is off: allocations of this thread are traced.
pub(crate) const GUARD_NONE: u8 = 0;
/// Recorder code is running: allocations go to the inner allocator untraced
/// and are not counted anywhere (snapshots handed to the user, temporary
/// buffers, the recorder's own tables, whose size is computed instead).
/// Frees are still looked up (see [`frees_looked_up`]): the recorder may
/// drop a block the program allocated.
pub(crate) const GUARD_UNTRACED: u8 = 1;
/// The symbolizer is running: allocations go untraced and their net size
/// counts as the recorder's own memory (the debug-info caches of the
/// `backtrace` crate and the resolved-symbol cache).
pub(crate) const GUARD_COUNTED: u8 = 2;
/// `start()` is measuring how many frames the standard library puts
/// between an allocation and its caller (see `calibrate`).
pub(crate) const GUARD_CALIBRATE: u8 = 3;

/// A hook is working on this thread's tables (it may be inside its
/// table, `busy`): allocations go untraced, and frees are not looked up,
/// which would enter the table again. A signal handler that interrupts the
/// hook sees this value.
pub(crate) const GUARD_HOOK: u8 = 4;

/// Entries of the per-thread traceback cache (a power of two).
pub(crate) const CACHE_SIZE: usize = 1024;

/// One entry of the per-thread cache: a traceback's hashes, the id it was
/// interned as, and the tracing epoch the id belongs to (0 in an unused
/// entry).
#[derive(Clone, Copy)]
pub(crate) struct CacheEntry {
    pub(crate) hash: crate::stacks::Hashes,
    pub(crate) id: u32,
    pub(crate) epoch: Epoch,
}

/// The per-thread state. Only its own thread touches it.
pub(crate) struct ThreadState {
    /// One of the `GUARD_*` values.
    pub(crate) guard: Cell<u8>,
    /// Table locks (shards, registry, traceback store) this thread holds
    /// or is taking (see `SpinLock::new_table`).
    pub(crate) table_locks: Cell<u32>,
    /// Change of traced memory not yet added to the global estimate that
    /// detects new peaks (see `state::note_change`).
    pub(crate) pending: Cell<i64>,
    /// The epoch `pending` belongs to.
    pub(crate) pending_epoch: Cell<Epoch>,
    /// Whether the thread-exit hook that flushes `pending` is registered.
    pub(crate) exit_hook: Cell<bool>,
    /// The thread's table (null until its first traced allocation).
    pub(crate) table: Cell<*const crate::thread_table::ThreadTable>,
    /// Set at thread exit, once the table is gone: later allocations (in
    /// other thread-locals' destructors) use the shared table.
    pub(crate) table_retired: Cell<bool>,
    /// The thread's stack, `[lo, hi)`; `hi == 0` until first needed, and
    /// `lo == hi == 1` when it could not be found.
    pub(crate) stack_lo: Cell<usize>,
    pub(crate) stack_hi: Cell<usize>,
    /// Bytes left before the next sample in sampled mode; 0 until the
    /// first draw.
    pub(crate) sample_left: Cell<i64>,
    /// State of the thread's random number generator; 0 until seeded.
    pub(crate) rng: Cell<u64>,
    /// During calibration: the frame (pointer or stack address) of the
    /// probe function, and the largest depth seen at which it was found.
    pub(crate) calib_target: Cell<usize>,
    pub(crate) calib_depth: Cell<usize>,
    pub(crate) calib_dwarf: Cell<bool>,
    /// With allocation history: the address of this thread's latest traced
    /// allocation (0 once freed) and its traceback id, which tell a
    /// temporary block (see `history.rs`).
    pub(crate) last_alloc: Cell<usize>,
    pub(crate) last_traceback: Cell<u32>,
    /// The traceback id the thread's latest cache miss resolved to: the
    /// next miss tries the id after it first (`stacks::intern`).
    pub(crate) last_missed: Cell<u32>,
    /// `sample_left` right after that allocation: a later allocation
    /// changes it, sampled or not (see `history::on_free`).
    pub(crate) last_sample_left: Cell<i64>,
    /// Return addresses of the traceback being captured.
    pub(crate) frames: UnsafeCell<[usize; MAX_RAW]>,
    /// Recently interned tracebacks, by hash (direct-mapped).
    pub(crate) cache: UnsafeCell<[CacheEntry; CACHE_SIZE]>,
}

impl ThreadState {
    const fn new() -> ThreadState {
        ThreadState {
            guard: Cell::new(GUARD_NONE),
            table_locks: Cell::new(0),
            pending: Cell::new(0),
            pending_epoch: Cell::new(0),
            exit_hook: Cell::new(false),
            table: Cell::new(std::ptr::null()),
            table_retired: Cell::new(false),
            stack_lo: Cell::new(0),
            stack_hi: Cell::new(0),
            sample_left: Cell::new(0),
            rng: Cell::new(0),
            calib_target: Cell::new(0),
            calib_depth: Cell::new(0),
            calib_dwarf: Cell::new(false),
            last_alloc: Cell::new(0),
            last_traceback: Cell::new(0),
            last_missed: Cell::new(u32::MAX),
            last_sample_left: Cell::new(0),
            frames: UnsafeCell::new([0; MAX_RAW]),
            cache: UnsafeCell::new(
                [CacheEntry {
                    hash: crate::stacks::Hashes { index: 0, check: 0 },
                    id: 0,
                    epoch: 0,
                }; CACHE_SIZE],
            ),
        }
    }
}

thread_local! {
    static STATE: ThreadState = const { ThreadState::new() };
}

/// Runs `f` with this thread's state.
#[inline(always)]
pub(crate) fn with<R>(f: impl FnOnce(&ThreadState) -> R) -> R {
    // Only the address is taken inside `LocalKey::with`: with the whole
    // hook in its closure, the compiler keeps `with` out of line and
    // reaches the thread-local through a function pointer on every call.
    let state: *const ThreadState = STATE.with(std::ptr::from_ref);
    // SAFETY: the thread-local is const-initialized and has no destructor,
    // so it lives, unmoved, as long as this thread, and `f` runs on this
    // thread, within this call.
    f(unsafe { &*state })
}

/// Whether a free made on this thread while its guard is set (`guard`,
/// not `GUARD_NONE`) looks its block up to forget its trace: a free must
/// remove its trace whoever makes it (the symbolizer dropping a cache the
/// program filled, a control call dropping the program's argument). Not
/// inside a hook, whose table is in use, nor while holding a table lock
/// that the lookup would take again: there the recorder frees only its own
/// memory, never traced, and a signal handler interrupting it is told in
/// the README what it may do.
#[inline]
pub(crate) fn frees_looked_up(state: &ThreadState, guard: u8) -> bool {
    guard != GUARD_HOOK && state.table_locks.get() == 0
}

/// Runs `f`, a hook's work on this thread's tables, under `GUARD_HOOK`,
/// and restores the guard it found. The compiler fences keep the table
/// work between the two stores, where a signal handler that interrupts
/// this thread sees the guard set.
#[inline(always)]
pub(crate) fn hook<R>(state: &ThreadState, f: impl FnOnce() -> R) -> R {
    let previous = state.guard.replace(GUARD_HOOK);
    compiler_fence(Ordering::SeqCst);
    let result = f();
    compiler_fence(Ordering::SeqCst);
    state.guard.set(previous);
    result
}

/// Sets this thread's guard for the lifetime of the value, and restores the
/// previous one when dropped (so guards nest).
pub(crate) struct Guard {
    previous: u8,
}

impl Guard {
    /// Enters `mode` (one of the `GUARD_*` values) on this thread.
    #[inline]
    pub(crate) fn enter(mode: u8) -> Guard {
        let previous = STATE.with(|s| s.guard.replace(mode));
        Guard { previous }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        STATE.with(|s| s.guard.set(self.previous));
    }
}

/// Runs `f` with this thread's allocations untraced and uncounted: for work
/// the recorder does on the user's behalf (building a snapshot, writing it).
pub(crate) fn untraced<R>(f: impl FnOnce() -> R) -> R {
    let _guard = Guard::enter(GUARD_UNTRACED);
    f()
}

/// Flushes the thread's unflushed memory change when the thread exits, so
/// the global peak estimate does not drift when threads come and go.
struct ExitFlush;

impl Drop for ExitFlush {
    fn drop(&mut self) {
        crate::state::flush_pending_at_exit();
        let _guard = Guard::enter(GUARD_UNTRACED);
        STATE.with(|state| {
            state.table_retired.set(true);
            let table = state.table.replace(std::ptr::null());
            if !table.is_null() {
                // SAFETY: the pointer came from `ThreadTable::create` and only
                // this thread retires it, once.
                unsafe { &*table }.retire();
            }
        });
    }
}

thread_local! {
    static EXIT_FLUSH: ExitFlush = const { ExitFlush };
}

/// Registers [`ExitFlush`] for this thread (once).
#[cold]
pub(crate) fn register_exit_hook(state: &ThreadState) {
    state.exit_hook.set(true);
    let _guard = Guard::enter(GUARD_UNTRACED);
    // Touching the thread-local registers its destructor. It fails only
    // when the thread is already exiting, and then there is nothing to do.
    let _ = EXIT_FLUSH.try_with(|_| ());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_nest_and_restore() {
        assert_eq!(with(|s| s.guard.get()), GUARD_NONE);
        {
            let _a = Guard::enter(GUARD_UNTRACED);
            assert_eq!(with(|s| s.guard.get()), GUARD_UNTRACED);
            {
                let _b = Guard::enter(GUARD_COUNTED);
                assert_eq!(with(|s| s.guard.get()), GUARD_COUNTED);
            }
            assert_eq!(with(|s| s.guard.get()), GUARD_UNTRACED);
        }
        assert_eq!(with(|s| s.guard.get()), GUARD_NONE);
    }
}
