//! The global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::Ordering;

use crate::state::{self, EPOCH, EPOCH_ALIGNED_SAMPLES, Epoch, SAMPLE_ALIGN, is_tracing_epoch};
use crate::tls::{self, GUARD_CALIBRATE, GUARD_COUNTED, GUARD_NONE, ThreadState};
use crate::trailer;

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
/// With [`TracingAllocator::system`] on glibc (and
/// [`Config::block_trailers`](crate::Config::block_trailers), the
/// default), a block of up to 128 KiB traced in exact mode carries the
/// place of its record in 8 bytes at the end of glibc's usable area (the
/// inner allocator is asked for 8 bytes more), so that freeing it needs no
/// search; these bytes count as the recorder's memory. The block pointer
/// is glibc's own either way, so C code may free, reallocate or measure
/// it as in the untraced program.
#[derive(Debug, Default)]
pub struct TracingAllocator<A: GlobalAlloc = System> {
    inner: A,
    /// Whether blocks may get a trailer (see `trailer.rs`): only the
    /// system allocator's, when a session asks for them and `start` finds
    /// the chunk layout known (glibc's `malloc`, not under valgrind).
    trailers: bool,
}

impl<A: GlobalAlloc> TracingAllocator<A> {
    /// Wraps `inner`.
    pub const fn new(inner: A) -> TracingAllocator<A> {
        TracingAllocator {
            inner,
            trailers: false,
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
            trailers: true,
        }
    }
}

// SAFETY: every method forwards to the inner allocator with the caller's
// arguments and returns its result unchanged, except for blocks with a
// trailer (`trailer.rs`): those are allocated 8 bytes longer, with the
// same alignment, and handed out as they are. Only the system allocator
// gives them (`trailers`), and only where `malloc` is glibc's; `System`
// frees such a block with `free` and reallocates it with `realloc` (or,
// for an alignment above the new size, a new block and a copy of the
// layout's size), so the shorter layout the caller gives back is fine.
// Otherwise the recorder only observes addresses and sizes, and writes
// nothing into the blocks but their trailers, past the bytes the caller
// asked for.
unsafe impl<A: GlobalAlloc> GlobalAlloc for TracingAllocator<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let epoch = EPOCH.load(Ordering::Relaxed);
        if is_tracing_epoch(epoch) && self.trailers {
            if trailer::gives_trailer(epoch, layout) {
                // SAFETY: forwarded from the caller.
                return unsafe { trailer::alloc(&self.inner, layout, epoch, false) };
            }
            if epoch & EPOCH_ALIGNED_SAMPLES != 0 {
                // SAFETY: forwarded from the caller.
                return unsafe { self.alloc_sampling(layout, epoch, false) };
            }
        }
        // SAFETY: forwarded from the caller.
        let ptr = unsafe { self.inner.alloc(layout) };
        observe_alloc(ptr, layout.size(), epoch);
        ptr
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let epoch = EPOCH.load(Ordering::Relaxed);
        if is_tracing_epoch(epoch) && self.trailers {
            if trailer::gives_trailer(epoch, layout) {
                // SAFETY: forwarded from the caller.
                return unsafe { trailer::alloc(&self.inner, layout, epoch, true) };
            }
            if epoch & EPOCH_ALIGNED_SAMPLES != 0 {
                // SAFETY: forwarded from the caller.
                return unsafe { self.alloc_sampling(layout, epoch, true) };
            }
        }
        // SAFETY: forwarded from the caller.
        let ptr = unsafe { self.inner.alloc_zeroed(layout) };
        observe_alloc(ptr, layout.size(), epoch);
        ptr
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let epoch = EPOCH.load(Ordering::Relaxed);
        if is_tracing_epoch(epoch)
            && !(self.trailers
                && state::surely_unsampled(epoch, ptr as usize)
                && tls::with(|state| state.guard.get() == GUARD_NONE))
        {
            // The free is recorded before the block goes back: once the
            // inner allocator has it, another thread may get the same
            // address and record it first.
            // SAFETY: forwarded from the caller.
            before_dealloc(
                ptr,
                layout,
                unsafe { self.trailer_slot(ptr, layout, epoch) },
                epoch,
            );
        }
        // SAFETY: forwarded from the caller (see the `unsafe impl` for
        // blocks with a trailer).
        unsafe { self.inner.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let epoch = EPOCH.load(Ordering::Relaxed);
        if !is_tracing_epoch(epoch) {
            // SAFETY: forwarded from the caller.
            let new = unsafe { self.inner.realloc(ptr, layout, new_size) };
            if epoch == 0 && !new.is_null() {
                first_allocation(new, new_size);
            }
            return new;
        }
        // SAFETY: forwarded from the caller.
        let slot = unsafe { self.trailer_slot(ptr, layout, epoch) };
        // Whether the new block gets a trailer, and the size to ask for.
        let trailed = self.trailers
            && Layout::from_size_align(new_size, layout.align())
                .is_ok_and(|new| trailer::gives_trailer(epoch, new));
        let ask = if trailed {
            new_size + trailer::TRAILER
        } else {
            new_size
        };
        tls::with(|state| {
            let guard = state.guard.get();
            if guard != GUARD_NONE {
                // SAFETY: forwarded from the caller.
                return unsafe {
                    guarded_realloc(
                        &self.inner,
                        state,
                        guard,
                        ptr,
                        layout,
                        new_size,
                        slot,
                        epoch,
                    )
                };
            }
            // The old block's trace goes first, for the same reason as in
            // `dealloc`: a moving realloc frees the old address.
            let config = state::hot_config();
            let aligned_samples = self.trailers && epoch & EPOCH_ALIGNED_SAMPLES != 0;
            let old = if aligned_samples && state::surely_unsampled(epoch, ptr as usize) {
                None
            } else {
                tls::hook(state, || {
                    if state::is_sampled(config) && !crate::table::may_be_traced(ptr as usize) {
                        None
                    } else {
                        state::remove_any(state, ptr as usize, slot, epoch)
                    }
                })
            };
            if aligned_samples && crate::sampling::take_sample(state, new_size) {
                // SAFETY: forwarded from the caller.
                return unsafe {
                    self.realloc_sampled(state, ptr, layout, new_size, old, epoch, config)
                };
            }
            // SAFETY: forwarded from the caller; `ask` is `new_size`, or 8
            // bytes more for a trailer (see the `unsafe impl`).
            let new = unsafe { self.inner.realloc(ptr, layout, ask) };
            if new.is_null() {
                // The old block is still the caller's: trace it again (in
                // the hash table: its trailer's slot no longer holds it).
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
            if trailed {
                // SAFETY: a live block of `new_size` bytes with room for a
                // trailer.
                tls::hook(state, || unsafe {
                    state::record_trailed(state, new, new_size, epoch)
                });
            } else if !aligned_samples {
                state::on_alloc(state, new as usize, new_size, epoch);
            }
            new
        })
    }
}

impl<A: GlobalAlloc> TracingAllocator<A> {
    /// `alloc` in an [`EPOCH_ALIGNED_SAMPLES`] session (the system
    /// allocator only): the sampling countdown decides first, so that a
    /// sampled block is allocated aligned to [`SAMPLE_ALIGN`]; a block not
    /// sampled is the inner allocator's, as asked.
    ///
    /// # Safety
    /// As `GlobalAlloc::alloc`; `self.trailers` is set.
    #[inline(always)]
    unsafe fn alloc_sampling(&self, layout: Layout, epoch: Epoch, zeroed: bool) -> *mut u8 {
        // Small closures, so that they inline: the allocation itself stays
        // outside.
        let (guard, sampled) = tls::with(|state| {
            let guard = state.guard.get();
            (
                guard,
                guard == GUARD_NONE && crate::sampling::take_sample(state, layout.size()),
            )
        });
        let aligned = if sampled {
            Layout::from_size_align(layout.size(), layout.align().max(SAMPLE_ALIGN)).ok()
        } else {
            None
        };
        let ask = aligned.unwrap_or(layout);
        // SAFETY: forwarded from the caller; an aligned layout has the
        // caller's size and a larger alignment, which `System` frees with
        // `free` whatever layout the caller gives back (see the `unsafe
        // impl`).
        let ptr = unsafe {
            if zeroed {
                self.inner.alloc_zeroed(ask)
            } else {
                self.inner.alloc(ask)
            }
        };
        if ptr.is_null() {
            return ptr;
        }
        if aligned.is_some() {
            // As in `state::on_alloc`: the settings `start` stored before
            // this epoch.
            std::sync::atomic::fence(Ordering::Acquire);
            let config = state::hot_config();
            tls::with(|state| {
                state::on_alloc_traced(state, ptr as usize, layout.size(), epoch, config);
            });
        } else if guard != GUARD_NONE {
            tls::with(|state| guarded_alloc(state, guard, layout.size()));
        }
        // A sampled block too large to align (near `isize::MAX`) stays
        // untraced, as one that fails to be filed does.
        ptr
    }

    /// The rest of `realloc` in an [`EPOCH_ALIGNED_SAMPLES`] session when
    /// the new block is sampled: it must be aligned to [`SAMPLE_ALIGN`],
    /// which `realloc` does not promise, so it is a new aligned block and a
    /// copy, and the old block is freed. `old`: the old block's trace,
    /// already removed.
    ///
    /// # Safety
    /// As `GlobalAlloc::realloc`; `self.trailers` is set.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn realloc_sampled(
        &self,
        state: &ThreadState,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
        old: Option<crate::table::Entry>,
        epoch: Epoch,
        config: u64,
    ) -> *mut u8 {
        let new = Layout::from_size_align(new_size, layout.align().max(SAMPLE_ALIGN))
            .ok()
            // SAFETY: a non-zero size (`realloc`'s contract).
            .map_or(std::ptr::null_mut(), |aligned| unsafe {
                self.inner.alloc(aligned)
            });
        if new.is_null() {
            // The old block is still the caller's: trace it again.
            if let Some(old) = old {
                state::reinsert(state, ptr as usize, old, epoch);
            }
            return new;
        }
        // SAFETY: both blocks are live and distinct; the old one has
        // `layout.size()` bytes, the new one `new_size`.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.inner.dealloc(ptr, layout);
        }
        if let Some(old) = old {
            count_history_free(state, ptr as usize, old, false, epoch);
        }
        state::on_alloc_traced(state, new as usize, new_size, epoch, config);
        new
    }

    /// The slot that the trailer of the block at `ptr` names, if it has a
    /// trailer whose check word matches (see `trailer.rs`). `epoch` is a
    /// tracing epoch.
    ///
    /// # Safety
    /// `ptr` is a live block of this allocator with `layout`.
    #[inline(always)]
    unsafe fn trailer_slot(&self, ptr: *mut u8, layout: Layout, epoch: Epoch) -> Option<u32> {
        if self.trailers && epoch & trailer::EPOCH_TRAILERS != 0 && trailer::may_have(layout) {
            // SAFETY: `EPOCH_TRAILERS` is set only where `malloc` is
            // glibc's, and `trailers` only for the system allocator; the
            // alignment is at most 16.
            unsafe { trailer::find(ptr, layout.size()) }
        } else {
            None
        }
    }
}

/// `realloc` while this thread's guard is set: the new block is not
/// traced (and gets no trailer), and the old one's trace goes (see
/// `tls::frees_looked_up`).
///
/// # Safety
/// As `GlobalAlloc::realloc`.
#[cold]
#[allow(clippy::too_many_arguments)]
unsafe fn guarded_realloc<A: GlobalAlloc>(
    inner: &A,
    state: &ThreadState,
    guard: u8,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
    slot: Option<u32>,
    epoch: Epoch,
) -> *mut u8 {
    let old = if tls::frees_looked_up(state, guard) {
        state::forget_guarded_free(state, ptr as usize, slot, epoch)
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
/// `slot`: the slot the block's trailer names.
#[inline(never)]
fn before_dealloc(ptr: *mut u8, layout: Layout, slot: Option<u32>, epoch: Epoch) {
    tls::with(|state| {
        let guard = state.guard.get();
        if guard != GUARD_NONE {
            guarded_dealloc(state, guard, ptr, layout.size(), slot, epoch);
            return;
        }
        let config = state::hot_config();
        if state::is_sampled(config) && !crate::table::may_be_traced(ptr as usize) {
            return;
        }
        // The history counts the free under the same guard (see
        // `history::on_free`).
        tls::hook(state, || {
            let removed = state::remove_any(state, ptr as usize, slot, epoch);
            if state::history_on(config)
                && let Some(entry) = removed
            {
                crate::history::on_free(state, ptr as usize, entry, true, epoch);
            }
        });
    });
}

/// A free while this thread's guard is set: its trace goes all the same
/// (see `tls::frees_looked_up`); a block that had none counts as the
/// symbolizer's under `GUARD_COUNTED`.
#[cold]
fn guarded_dealloc(
    state: &ThreadState,
    guard: u8,
    ptr: *mut u8,
    size: usize,
    slot: Option<u32>,
    epoch: Epoch,
) {
    let freed = if tls::frees_looked_up(state, guard) {
        state::forget_guarded_free(state, ptr as usize, slot, epoch)
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
/// (`history.rs`). For the frees under the recorder's guard and the old
/// block of a sampled realloc that moves to an aligned block, which are
/// rare: the plain `dealloc` and `realloc` count inline.
/// `may_be_temporary` is false for the free half of a realloc and for a
/// block the recorder frees for the program under its guard.
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
