//! Allocation history (opt-in, `Config::history`): per traceback, the
//! blocks and bytes allocated, the blocks freed, the temporary blocks, and
//! the live set at the peak of traced memory.
//!
//! The counters of traceback `id` are one cache line of relaxed atomics
//! ([`Counters`]), in chunks laid out as the traceback store's id chunks
//! (chunk `k` holds `ID_BASE << k` of them) that never move and are never
//! freed, only zeroed when the store is cleared. A chunk is allocated
//! under the store's lock when the store hands out the first id of it
//! (`Store::ensure_id_slot`), so the hot path only loads a chunk pointer
//! and adds: no lock, no allocation.
//!
//! What counts:
//! - an allocation traced in domain 0 (the global allocator) adds a block
//!   and its size to its traceback's `allocated`;
//! - a free that removes such a trace adds a block and its size to the
//!   allocating traceback's `freed` (a free of a block allocated before
//!   tracing started, or before the last `clear_traces`, has no trace and
//!   counts nowhere);
//! - a realloc counts as a free of the old block and an allocation of the
//!   new size under the realloc's traceback, as the live trace does (and
//!   as heaptrack and DHAT count); the free half is never temporary;
//! - a free is temporary (heaptrack's definition) when the same thread
//!   allocated that block last: each thread remembers the address and
//!   traceback of its latest traced allocation, replaced by the next one;
//! - the peak (DHAT's t-gmax): when traced memory reaches a new maximum,
//!   [`PEAK_DIRTY`] is set; the next free copies every traceback's live
//!   blocks and bytes (allocated minus freed), before taking its own block
//!   away, as the peak set. That costs O(tracebacks) once per fall from a
//!   new maximum, not at every new maximum. A snapshot taken while the
//!   flag is set copies the current live set, which is the peak then.
//!
//! In sampled mode each sampled event counts with its unbiased weight,
//! `1 / p` blocks and `size / p` bytes (`p` the block's chance to be
//! sampled), as the live statistics scale the traces: block counters are
//! kept in `1 / BLOCK_UNIT` blocks so that the fractions add up, rounded
//! when a snapshot reads them. An allocation that is not sampled still
//! ends its thread's latest allocation (seen in the sampling countdown, at
//! no cost to the allocations not sampled), so a sampled block freed after
//! it is not temporary.
//!
//! With several threads the counters are exact (atomic adds), while the
//! peak set is a copy taken as other threads go on allocating and freeing:
//! it is the live set at about the peak, as the peak itself is (see
//! `state::note_change`). `track`/`untrack` (other domains, memory not from
//! the global allocator) are not part of the history.

use std::alloc::Layout;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, Ordering};

use crate::stacks::{ID_BASE, NCHUNKS, STORE, chunk_of};
use crate::table::Entry;
use crate::tls::ThreadState;

/// The history counters of one traceback. One cache line, so that the
/// adds of one event touch one line, and two tracebacks never share one.
#[repr(C, align(64))]
pub(crate) struct Counters {
    allocated_blocks: AtomicU64,
    allocated_bytes: AtomicU64,
    freed_blocks: AtomicU64,
    freed_bytes: AtomicU64,
    temporary_blocks: AtomicU64,
    temporary_bytes: AtomicU64,
    peak_blocks: AtomicU64,
    peak_bytes: AtomicU64,
}

/// The block counters count in units of `1 / BLOCK_UNIT` block, so that a
/// sampled block adds its unbiased weight `1 / p` with its fraction
/// (`p` its chance to be sampled; see `sampling.rs`). In exact mode every
/// block adds `BLOCK_UNIT`, and the counts read back are exact.
const BLOCK_UNIT: u64 = 1 << 12;

/// What a block of `size` bytes adds to the counters: its weight in
/// [`BLOCK_UNIT`]s and its bytes. Its size and one block in exact mode; in
/// sampled mode (`sample_mean` not 0) the unbiased estimates the live
/// statistics use: `size / p` bytes (rounded per block as
/// `state::amount_of` does) and `1 / p` blocks.
#[inline]
fn weight(size: usize, sample_mean: u64) -> (u64, u64) {
    if sample_mean == 0 || size == 0 {
        return (BLOCK_UNIT, size as u64);
    }
    let p = -(-(size as f64) / sample_mean as f64).exp_m1();
    if p <= 0.0 {
        return (BLOCK_UNIT, size as u64);
    }
    (
        (BLOCK_UNIT as f64 / p).round() as u64,
        crate::state::amount_of(size, sample_mean),
    )
}

/// Blocks from a counter in [`BLOCK_UNIT`]s, rounded to the nearest.
#[inline]
fn blocks_of(units: u64) -> u64 {
    units / BLOCK_UNIT + u64::from(units % BLOCK_UNIT >= BLOCK_UNIT / 2)
}

/// A copy of one traceback's counters, as a snapshot reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Read {
    pub(crate) allocated_blocks: u64,
    pub(crate) allocated_bytes: u64,
    pub(crate) freed_blocks: u64,
    pub(crate) temporary_blocks: u64,
    pub(crate) temporary_bytes: u64,
    pub(crate) peak_blocks: u64,
    pub(crate) peak_bytes: u64,
}

/// The counter chunks; chunk `k` holds `ID_BASE << k` [`Counters`].
static CHUNKS: [AtomicPtr<Counters>; NCHUNKS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; NCHUNKS];

/// Set when traced memory reached a new maximum and the live set has not
/// been copied as the peak set since (see the module documentation).
static PEAK_DIRTY: AtomicBool = AtomicBool::new(false);

/// When the peak set was copied, in microseconds since the Unix epoch; 0
/// when none was.
static PEAK_MICROS: AtomicI64 = AtomicI64::new(0);

/// Makes sure counter chunk `k` exists; returns the bytes it allocated.
/// Called under the traceback store's lock (which serializes it), with the
/// re-entrancy guard set, so that the chunk is the recorder's memory.
/// `None` when memory ran out.
pub(crate) fn ensure_chunk(k: usize) -> Option<usize> {
    let ptr = CHUNKS.get(k)?;
    if !ptr.load(Ordering::Acquire).is_null() {
        return Some(0);
    }
    let layout = Layout::array::<Counters>(ID_BASE << k).ok()?;
    // SAFETY: the layout has a non-zero size; zeroed atomics are valid.
    let chunk: *mut Counters = unsafe { std::alloc::alloc_zeroed(layout) }.cast();
    if chunk.is_null() {
        return None;
    }
    ptr.store(chunk, Ordering::Release);
    Some(layout.size())
}

/// The counters of traceback `id`, if their chunk exists.
#[inline]
fn counters(id: u32) -> Option<&'static Counters> {
    let (k, off) = chunk_of(id as usize, ID_BASE);
    let chunk = CHUNKS.get(k)?.load(Ordering::Acquire);
    if chunk.is_null() {
        return None;
    }
    // SAFETY: chunk `k` holds `ID_BASE << k` counters, `off` is below that
    // by construction of `chunk_of`, and chunks are never freed.
    Some(unsafe { &*chunk.add(off) })
}

/// Counts a traced allocation of `size` bytes at `addr` by this thread,
/// filed under traceback `id`, and makes it the thread's latest.
#[inline]
pub(crate) fn on_alloc(state: &ThreadState, id: u32, addr: usize, size: usize) {
    if let Some(c) = counters(id) {
        let (units, bytes) = weight(size, crate::state::sample_mean_raw());
        c.allocated_blocks.fetch_add(units, Ordering::Relaxed);
        c.allocated_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    state.last_alloc.set(addr);
    state.last_traceback.set(id);
    state.last_sample_left.set(state.sample_left.get());
}

/// Counts the free of the traced block at `addr` (its trace `entry` was
/// just removed) by this thread. `may_be_temporary` is false for the free
/// half of a realloc and for frees the recorder makes for the program.
#[inline]
pub(crate) fn on_free(state: &ThreadState, addr: usize, entry: Entry, may_be_temporary: bool) {
    if PEAK_DIRTY.load(Ordering::Relaxed) {
        // Memory falls for the first time since its new maximum: the live
        // set, this block still in it, is the peak set.
        capture_peak();
    }
    // In sampled mode an allocation that sampling left out does not reach
    // `on_alloc`, but it lowers the thread's countdown to the next sample
    // (by its size, never 0) or draws a new one: a countdown unchanged
    // since the latest traced allocation means no allocation since. In
    // exact mode the countdown never changes.
    let latest =
        state.last_alloc.get() == addr && state.sample_left.get() == state.last_sample_left.get();
    if latest {
        state.last_alloc.set(0);
    }
    let Some(c) = counters(entry.traceback) else {
        return;
    };
    let (units, bytes) = weight(entry.size, crate::state::sample_mean_raw());
    c.freed_blocks.fetch_add(units, Ordering::Relaxed);
    c.freed_bytes.fetch_add(bytes, Ordering::Relaxed);
    if latest && may_be_temporary && state.last_traceback.get() == entry.traceback {
        c.temporary_blocks.fetch_add(units, Ordering::Relaxed);
        c.temporary_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Traced memory reached a new maximum: the live set becomes the peak set
/// at the next fall (or the next snapshot).
#[inline]
pub(crate) fn new_peak() {
    if !PEAK_DIRTY.load(Ordering::Relaxed) {
        PEAK_DIRTY.store(true, Ordering::Relaxed);
    }
}

/// Copies the live set as the peak set if memory reached a new maximum
/// since the last copy. Several threads may race here: one wins the flag,
/// the others go on (their frees then count against a copy in progress,
/// which the module documentation allows).
#[cold]
#[inline(never)]
pub(crate) fn capture_peak() {
    if !PEAK_DIRTY.swap(false, Ordering::Relaxed) {
        return;
    }
    for id in 0..STORE.count_unlocked() {
        let Some(c) = counters(id) else {
            break;
        };
        // Freed first: a concurrent allocation and free of one block then
        // never makes the live count negative.
        let freed_blocks = c.freed_blocks.load(Ordering::Relaxed);
        let freed_bytes = c.freed_bytes.load(Ordering::Relaxed);
        let blocks = c.allocated_blocks.load(Ordering::Relaxed);
        let bytes = c.allocated_bytes.load(Ordering::Relaxed);
        c.peak_blocks
            .store(blocks.saturating_sub(freed_blocks), Ordering::Relaxed);
        c.peak_bytes
            .store(bytes.saturating_sub(freed_bytes), Ordering::Relaxed);
    }
    PEAK_MICROS.store(
        tracemalloc_format::Timestamp::now().unix_micros,
        Ordering::Relaxed,
    );
}

/// `reset_peak()`: the current live set is the new peak set, copied at the
/// next fall unless memory rises further first.
pub(crate) fn reset_peak() {
    PEAK_DIRTY.store(true, Ordering::Relaxed);
}

/// When the peak set was copied, if it was.
pub(crate) fn peak_timestamp() -> Option<tracemalloc_format::Timestamp> {
    match PEAK_MICROS.load(Ordering::Relaxed) {
        0 => None,
        unix_micros => Some(tracemalloc_format::Timestamp { unix_micros }),
    }
}

/// The counters of traceback `id`, or `None` when it has no history. The
/// freed counts are capped at the allocated ones: a block freed by another
/// thread just after it was filed may be counted freed before allocated.
pub(crate) fn read(id: u32) -> Option<Read> {
    let c = counters(id)?;
    let allocated = c.allocated_blocks.load(Ordering::Relaxed);
    if allocated == 0 {
        return None;
    }
    Some(Read {
        allocated_blocks: blocks_of(allocated),
        allocated_bytes: c.allocated_bytes.load(Ordering::Relaxed),
        freed_blocks: blocks_of(c.freed_blocks.load(Ordering::Relaxed).min(allocated)),
        temporary_blocks: blocks_of(c.temporary_blocks.load(Ordering::Relaxed)),
        temporary_bytes: c.temporary_bytes.load(Ordering::Relaxed),
        peak_blocks: blocks_of(c.peak_blocks.load(Ordering::Relaxed)),
        peak_bytes: c.peak_bytes.load(Ordering::Relaxed),
    })
}

/// Forgets the history of tracebacks `0..count` (the store's ids of the
/// epoch that ends) and the peak set. Called by `state::reset` with every
/// table held, before the store is cleared.
pub(crate) fn clear(count: u32) {
    for id in 0..count {
        let Some(c) = counters(id) else {
            break;
        };
        for counter in [
            &c.allocated_blocks,
            &c.allocated_bytes,
            &c.freed_blocks,
            &c.freed_bytes,
            &c.temporary_blocks,
            &c.temporary_bytes,
            &c.peak_blocks,
            &c.peak_bytes,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
    PEAK_DIRTY.store(false, Ordering::Relaxed);
    PEAK_MICROS.store(0, Ordering::Relaxed);
}
