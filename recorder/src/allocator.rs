//! The global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::Ordering;

use crate::header;
use crate::state::{self, EPOCH, Epoch, is_tracing_epoch};
use crate::tls::{self, GUARD_CALIBRATE, GUARD_COUNTED, GUARD_NONE, ThreadState};

/// A global allocator that traces every allocation of the program while
/// tracing is on, and forwards everything to an inner allocator.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();
/// ```
///
/// Any allocator works inside:
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: tracemalloc::TracingAllocator<mimalloc::MiMalloc> =
///     tracemalloc::TracingAllocator::new(mimalloc::MiMalloc);
/// # fn main() {}
/// ```
///
/// While tracing is off, each call costs one relaxed atomic load on top of
/// the inner allocator.
///
/// With [`TracingAllocator::system`] on glibc and
/// [`Config::block_headers`](crate::Config::block_headers) asked for, a
/// block traced in exact mode carries its record in 16 bytes in front of it
/// (the inner allocator is asked for 16 bytes more), so that freeing it
/// needs no search; these bytes count as the recorder's memory. Without
/// them (the default), every block is the inner allocator's own, so C code
/// may free, reallocate or measure it as in the untraced program.
#[derive(Debug, Default)]
pub struct TracingAllocator<A: GlobalAlloc = System> {
    inner: A,
    /// Whether blocks may get a header (see `header.rs`): only the system
    /// allocator's, when a session asks for them and `start` finds the
    /// chunk layout known (glibc's `malloc`, not under valgrind).
    headers: bool,
}

impl<A: GlobalAlloc> TracingAllocator<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> TracingAllocator<A> {
        TracingAllocator {
            inner,
            headers: false,
        }
    }

    /// The wrapped allocator.
    pub const fn inner(&self) -> &A {
        &self.inner
    }
}

impl TracingAllocator<System> {
    /// Wraps the system allocator.
    pub const fn system() -> TracingAllocator<System> {
        TracingAllocator {
            inner: System,
            headers: true,
        }
    }
}

// SAFETY: every method forwards to the inner allocator with the caller's
// arguments and returns its result unchanged, except for blocks with a
// header (`header.rs`): those are the inner allocator's blocks 16 bytes
// longer, handed out 16 bytes in, and given back the same way. Otherwise
// the recorder only observes addresses and sizes and never touches the
// blocks' memory.
unsafe impl<A: GlobalAlloc> GlobalAlloc for TracingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let epoch = EPOCH.load(Ordering::Relaxed);
        if is_tracing_epoch(epoch) && self.headers && header::gives_header(epoch, layout) {
            // SAFETY: forwarded from the caller.
            return unsafe { header::alloc(&self.inner, layout, epoch, false) };
        }
        // SAFETY: forwarded from the caller.
        let ptr = unsafe { self.inner.alloc(layout) };
        observe_alloc(ptr, layout.size(), epoch);
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let epoch = EPOCH.load(Ordering::Relaxed);
        if is_tracing_epoch(epoch) && self.headers && header::gives_header(epoch, layout) {
            // SAFETY: forwarded from the caller.
            return unsafe { header::alloc(&self.inner, layout, epoch, true) };
        }
        // SAFETY: forwarded from the caller.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        observe_alloc(ptr, layout.size(), epoch);
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let epoch = EPOCH.load(Ordering::Relaxed);
        // One test while tracing was never on, as before headers existed.
        if epoch & (1 | header::EPOCH_HEADERS_SEEN) != 0 {
            if self.headers
                && epoch & header::EPOCH_HEADERS_SEEN != 0
                // SAFETY: `EPOCH_HEADERS_SEEN` is set only where `malloc`
                // is glibc's, and `headers` only for the system allocator.
                && unsafe { header::has_header(ptr) }
            {
                // SAFETY: forwarded from the caller.
                unsafe { header::dealloc(&self.inner, ptr, layout, epoch) };
                return;
            }
            if is_tracing_epoch(epoch) {
                // The free is recorded before the block goes back: once the
                // inner allocator has it, another thread may get the same
                // address and record it first.
                before_dealloc(ptr, layout.size(), epoch);
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let epoch = EPOCH.load(Ordering::Relaxed);
        if epoch & header::EPOCH_HEADERS_SEEN != 0
            && self.headers
            // SAFETY: as in `dealloc`.
            && unsafe { header::has_header(ptr) }
        {
            // SAFETY: forwarded from the caller.
            return unsafe { header::realloc(&self.inner, ptr, layout, new_size, epoch) };
        }
        if !is_tracing_epoch(epoch) {
            // SAFETY: forwarded from the caller.
            let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
            if epoch == 0 && !new.is_null() {
                first_allocation(new, new_size);
            }
            return new;
        }
        tls::with(|state| {
            let guard = state.guard.get();
            if guard != GUARD_NONE {
                // SAFETY: forwarded from the caller.
                return unsafe {
                    guarded_realloc(&self.inner, state, guard, ptr, layout, new_size, epoch)
                };
            }
            // The old block's trace goes first, for the same reason as in
            // `dealloc`: a moving realloc frees the old address.
            let config = state::hot_config();
            let old = tls::hook(state, || {
                if state::is_sampled(config) && !crate::table::may_be_traced(ptr as usize) {
                    None
                } else {
                    state::remove(state, 0, ptr as usize, epoch)
                }
            });
            // SAFETY: forwarded from the caller.
            let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
            if new.is_null() {
                // The old block is still the caller's: trace it again.
                if let Some(old) = old {
                    state::reinsert(state, ptr as usize, old, epoch);
                }
                return new;
            }
            if state::history_on(config)
                && let Some(old) = old
            {
                // The history counts a free of the old block, then an
                // allocation of the new one (`history.rs`).
                tls::hook(state, || {
                    crate::history::on_free(state, ptr as usize, old, false, epoch);
                });
            }
            // As CPython: the trace takes the new size and the traceback
            // of the realloc.
            state::on_alloc(state, new as usize, new_size, epoch);
            new
        })
    }
}

/// `realloc` of a block without a header while this thread's guard is
/// set: the new block is not traced, and the old one's trace goes (see
/// `tls::frees_looked_up`).
///
/// # Safety
/// As `GlobalAlloc::realloc`.
#[cold]
unsafe fn guarded_realloc<A: GlobalAlloc>(
    inner: &A,
    state: &ThreadState,
    guard: u8,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
    epoch: Epoch,
) -> *mut u8 {
    let old = if tls::frees_looked_up(state, guard) {
        state::forget_guarded_free(state, ptr as usize, epoch)
    } else {
        None
    };
    // SAFETY: forwarded from the caller.
    let new = unsafe { inner.realloc(ptr, layout, new_size) };
    if new.is_null() {
        if let Some(old) = old {
            state::reinsert(state, ptr as usize, old, epoch);
        }
        return new;
    }
    if let Some(old) = old {
        count_history_free(state, ptr as usize, old, false, epoch);
    }
    if guard == GUARD_COUNTED {
        // A block the program allocated becomes the symbolizer's.
        let freed = if old.is_some() {
            0
        } else {
            layout.size() as i64
        };
        count_own(new_size as i64 - freed);
    }
    new
}

/// What `alloc` and `alloc_zeroed` do with a new block: trace it while
/// tracing, or, at the very first allocation of the process (epoch 0),
/// read the environment first.
#[inline(always)]
fn observe_alloc(ptr: *mut u8, size: usize, epoch: Epoch) {
    if is_tracing_epoch(epoch) && !ptr.is_null() {
        after_alloc(ptr, size, epoch);
    } else if epoch == 0 {
        first_allocation(ptr, size);
    }
}

/// The tracing part of `alloc`: kept separate so that the off path stays a
/// load and a branch.
#[inline]
fn after_alloc(ptr: *mut u8, size: usize, epoch: Epoch) {
    tls::with(|state| {
        let guard = state.guard.get();
        if guard == GUARD_NONE {
            state::on_alloc(state, ptr as usize, size, epoch);
        } else {
            guarded_alloc(state, guard, size);
        }
    });
}

#[cold]
fn guarded_alloc(state: &ThreadState, guard: u8, size: usize) {
    if guard == GUARD_COUNTED {
        count_own(size as i64);
    } else if guard == GUARD_CALIBRATE {
        state::calibration_capture(state);
    }
}

/// The tracing part of `dealloc`. Out of line so that the registers the
/// table lookup needs are saved only while tracing, not on the off path.
#[inline(never)]
fn before_dealloc(ptr: *mut u8, size: usize, epoch: Epoch) {
    tls::with(|state| {
        let guard = state.guard.get();
        if guard != GUARD_NONE {
            guarded_dealloc(state, guard, ptr, size, epoch);
            return;
        }
        let config = state::hot_config();
        if state::is_sampled(config) && !crate::table::may_be_traced(ptr as usize) {
            return;
        }
        let removed = tls::hook(state, || state::remove(state, 0, ptr as usize, epoch));
        if state::history_on(config)
            && let Some(entry) = removed
        {
            count_history_free(state, ptr as usize, entry, true, epoch);
        }
    });
}

/// A free of a block without a header while this thread's guard is set:
/// its trace goes all the same (see `tls::frees_looked_up`); a block that
/// had none counts as the symbolizer's under `GUARD_COUNTED`.
#[cold]
fn guarded_dealloc(state: &ThreadState, guard: u8, ptr: *mut u8, size: usize, epoch: Epoch) {
    let freed = if tls::frees_looked_up(state, guard) {
        state::forget_guarded_free(state, ptr as usize, epoch)
    } else {
        None
    };
    match freed {
        Some(entry) => count_history_free(state, ptr as usize, entry, false, epoch),
        None if guard == GUARD_COUNTED => count_own(-(size as i64)),
        None => {}
    }
}

/// Counts the free of the traced block at `addr`, whose trace `entry` was
/// just removed, in the history if the session records one
/// (`history.rs`). Out of line: the paths without history only test
/// for it. `may_be_temporary` is false for the free half of a realloc
/// and for a block the recorder frees for the program under its guard.
#[cold]
#[inline(never)]
pub(crate) fn count_history_free(
    state: &ThreadState,
    addr: usize,
    entry: crate::table::Entry,
    may_be_temporary: bool,
    epoch: Epoch,
) {
    if state::history_on(state::hot_config()) {
        tls::hook(state, || {
            crate::history::on_free(state, addr, entry, may_be_temporary, epoch);
        });
    }
}

#[inline]
pub(crate) fn count_own(delta: i64) {
    state::SYMBOLIZER_BYTES.fetch_add(delta, Ordering::Relaxed);
}

/// The very first allocation: reads the environment (`TRACEMALLOC=N`), and
/// traces this allocation too if that started tracing.
#[cold]
fn first_allocation(ptr: *mut u8, size: usize) {
    crate::env::init();
    let epoch = EPOCH.load(Ordering::Acquire);
    if is_tracing_epoch(epoch) && !ptr.is_null() {
        after_alloc(ptr, size, epoch);
    }
}
