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
//!   as heaptrack counts; dhat-rs keeps it under the block's allocating
//!   site, see docs/BENCHMARKS.md); the free half is never temporary;
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
//! Where the counts go: a thread with a table (`thread_table.rs`, every
//! thread that traced an allocation in exact mode) counts in its own
//! [`Local`] counters, which only it writes, with a plain load and store:
//! no atomic read-modify-write, and no cache line shared with another
//! thread that allocates on the same traceback (with two threads on the
//! same code, shared atomic counters cost 45 % more than tracing without
//! history, the line bouncing between the cores). Other events (threads
//! without a table, and an owner whose `Local` could not get memory) add
//! to the shared atomic [`Counters`]. A reader sums the shared counters
//! and every registered table's `Local`, holding the registry lock, which
//! keeps the tables (and their pages) alive; an exiting thread adds its
//! `Local` to the shared counters before its table goes
//! ([`Local::merge_into_shared`]), under that same lock, so a reader never
//! counts it twice or misses it.
//!
//! A `Local` holds the counts of one tracing epoch, its tag: readers skip
//! a `Local` of another epoch, and its owner zeroes it at its first event
//! of a new epoch. `clear_traces` therefore never writes a `Local` (its
//! owner may be between the load and the store of an add, outside every
//! lock), it only changes the epoch.
//!
//! With several threads the counters are exact, while the peak set is a
//! copy taken as other threads go on allocating and freeing: it is the live
//! set at about the peak, as the peak itself is (see `state::note_change`).
//! A `Local`'s counts may be read a moment before its owner's latest add;
//! a snapshot holds every table still (`thread_table::freeze_all`) but the
//! adds happen outside a table operation, so a count may lag the traces it
//! copies by the events in flight. `track`/`untrack` (other domains,
//! memory not from the global allocator) are not part of the history.

use std::alloc::Layout;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, AtomicU64, Ordering};

use crate::stacks::{ID_BASE, NCHUNKS, STORE, chunk_of};
use crate::state::Epoch;
use crate::table::Entry;
use crate::thread_table::ThreadTable;
use crate::tls::ThreadState;

/// The history counters of one traceback. One cache line, so that the
/// adds of one event touch one line, and two tracebacks never share one.
#[repr(C, align(64))]
pub(crate) struct Counters {
    events: Events,
    peak_blocks: AtomicU64,
    peak_bytes: AtomicU64,
}

/// The block counters count in units of `1 / BLOCK_UNIT` block, so that a
/// sampled block adds its unbiased weight `1 / p` with its fraction
/// (`p` its chance to be sampled; see `sampling.rs`). In exact mode every
/// block adds `BLOCK_UNIT`, and the counts read back are exact. The unit is
/// the format crate's, whose live estimates round as these counts do.
const BLOCK_UNIT: u64 = tracemalloc_format::SAMPLED_BLOCK_UNIT;

/// What a block of `size` bytes adds to the counters: its weight in
/// [`BLOCK_UNIT`]s and its bytes. Its size and one block in exact mode; in
/// sampled mode (`sample_mean` not 0) the unbiased estimates the live
/// statistics use: `size / p` bytes (rounded per block as
/// `state::amount_of` does) and `1 / p` blocks.
#[inline(always)]
fn weight(size: usize, sample_mean: u64) -> (u64, u64) {
    if sample_mean == 0 {
        (BLOCK_UNIT, size as u64)
    } else {
        sampled_weight(size, sample_mean)
    }
}

/// [`weight`] in sampled mode: out of line, so that the exact mode's
/// inlined counting holds no floating-point code.
#[inline(never)]
fn sampled_weight(size: usize, sample_mean: u64) -> (u64, u64) {
    let (bytes, units) = tracemalloc_format::sampled_amount(size as u64, sample_mean);
    (units, bytes)
}

/// A copy of one traceback's counters, as a snapshot reads them: blocks
/// still in [`BLOCK_UNIT`]s, rounded by `tracemalloc_format::blocks_of_units`
/// (as the live estimates are) only once the raw
/// tracebacks that make one snapshot traceback are added up. (Rounding each
/// first made a line's allocated blocks, in sampled mode, fall below its
/// live estimate, which the snapshot rounds per traceback.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Read {
    pub(crate) allocated_units: u64,
    pub(crate) allocated_bytes: u64,
    pub(crate) freed_units: u64,
    pub(crate) temporary_units: u64,
    pub(crate) temporary_bytes: u64,
    pub(crate) peak_units: u64,
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

/// One traceback's counts of events: the shared [`Counters`] without the
/// peak, and a traceback's counters in a thread's [`Local`] (the peak set
/// is a sum over every thread, kept in the shared counters only), which
/// only their owner writes.
#[repr(C)]
struct Events {
    allocated_blocks: AtomicU64,
    allocated_bytes: AtomicU64,
    freed_blocks: AtomicU64,
    freed_bytes: AtomicU64,
    temporary_blocks: AtomicU64,
    temporary_bytes: AtomicU64,
}

impl Events {
    /// The counts, in the order of [`Sums`].
    #[inline]
    fn load(&self) -> Sums {
        [
            self.allocated_blocks.load(Ordering::Relaxed),
            self.allocated_bytes.load(Ordering::Relaxed),
            self.freed_blocks.load(Ordering::Relaxed),
            self.freed_bytes.load(Ordering::Relaxed),
            self.temporary_blocks.load(Ordering::Relaxed),
            self.temporary_bytes.load(Ordering::Relaxed),
        ]
    }

    /// Every counter, in the order of [`Sums`].
    fn all(&self) -> [&AtomicU64; 6] {
        [
            &self.allocated_blocks,
            &self.allocated_bytes,
            &self.freed_blocks,
            &self.freed_bytes,
            &self.temporary_blocks,
            &self.temporary_bytes,
        ]
    }
}

/// Adds `n` to a counter only this thread writes: a plain load and store,
/// which is what makes a thread's own counters cheaper than shared ones.
#[inline(always)]
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

/// Tracebacks per page of a [`Local`]: 256 of 48 bytes, 12 KiB.
const PAGE_IDS: usize = 256;

/// A page of a thread's counters.
type Page = [Events; PAGE_IDS];

/// A thread's own history counters, kept in its `ThreadTable` (see the
/// module documentation). Pages are laid out as the traceback store's id
/// chunks: chunk `k`'s directory holds the pages of its `ID_BASE << k`
/// ids. Directories and pages are created by the owner when it first
/// counts an id they cover, are never moved, and are freed only with the
/// table, once it is unregistered, so a reader holding the registry lock
/// may follow any pointer it loads.
pub(crate) struct Local {
    /// The tracing epoch whose counts the pages hold; 0 (never a tracing
    /// epoch) before the first event.
    epoch: AtomicU64,
    /// Chunk `k`'s pages: null, or `(ID_BASE << k) / PAGE_IDS` page
    /// pointers, each null or a [`Page`].
    dir: [AtomicPtr<AtomicPtr<Page>>; NCHUNKS],
}

impl Local {
    /// A `Local` with no pages.
    pub(crate) const fn new() -> Local {
        Local {
            epoch: AtomicU64::new(0),
            dir: [const { AtomicPtr::new(std::ptr::null_mut()) }; NCHUNKS],
        }
    }

    /// The owner's counters of traceback `id` for an event of `epoch`, or
    /// `None` when the event must count in the shared counters (memory
    /// ran out, or the event belongs to an epoch that already ended).
    #[inline(always)]
    fn get(&self, state: &ThreadState, id: u32, epoch: Epoch) -> Option<&Events> {
        if self.epoch.load(Ordering::Relaxed) != epoch && !self.renew(epoch) {
            return None;
        }
        let (k, off) = chunk_of(id as usize, ID_BASE);
        let pages = self.dir.get(k)?.load(Ordering::Acquire);
        let page = if pages.is_null() {
            std::ptr::null_mut()
        } else {
            // SAFETY: chunk `k`'s directory has `(ID_BASE << k) / PAGE_IDS`
            // entries and `off < ID_BASE << k`.
            unsafe { &*pages.add(off / PAGE_IDS) }.load(Ordering::Acquire)
        };
        let page = if page.is_null() {
            self.add_page(state, k, off / PAGE_IDS)?
        } else {
            page
        };
        // SAFETY: a page lives as long as the table, which outlives every
        // event of its owner; `off % PAGE_IDS` is in the page.
        Some(unsafe { &(*page)[off % PAGE_IDS] })
    }

    /// The owner's first event of `epoch`: zeroes the counts of the epoch
    /// that ended, then tags the pages with `epoch` (release: a reader that
    /// sees the tag sees the zeroes). `false` when `epoch` is not the
    /// current one (an event that began before a `clear_traces`, in a
    /// signal handler's caller): the `Local` is left as it is.
    #[cold]
    #[inline(never)]
    fn renew(&self, epoch: Epoch) -> bool {
        if crate::state::EPOCH.load(Ordering::Acquire) != epoch {
            return false;
        }
        self.for_each_page(|_, page| {
            for counter in page.iter().flat_map(Events::all) {
                counter.store(0, Ordering::Relaxed);
            }
        });
        self.epoch.store(epoch, Ordering::Release);
        true
    }

    /// Creates page `index` of chunk `k` (and the chunk's directory), under
    /// the hook's guard so that its memory is the recorder's, untraced.
    /// `None` when memory ran out.
    #[cold]
    #[inline(never)]
    fn add_page(&self, state: &ThreadState, k: usize, index: usize) -> Option<*mut Page> {
        crate::tls::hook(state, || {
            let slot = self.dir.get(k)?;
            let mut pages = slot.load(Ordering::Acquire);
            if pages.is_null() {
                // SAFETY: at least one page per chunk (`ID_BASE` is a
                // multiple of `PAGE_IDS`); null pointers are all zeroes.
                pages = unsafe {
                    crate::thread_table::alloc_zeroed_array::<AtomicPtr<Page>>(
                        (ID_BASE << k) / PAGE_IDS,
                    )
                };
                if pages.is_null() {
                    return None;
                }
                slot.store(pages, Ordering::Release);
            }
            // SAFETY: a page's counters are atomics, valid when zeroed.
            let page = unsafe { crate::thread_table::alloc_zeroed_array::<Events>(PAGE_IDS) };
            if page.is_null() {
                return None;
            }
            let page: *mut Page = page.cast();
            // SAFETY: `index < (ID_BASE << k) / PAGE_IDS`, the directory's
            // length (the caller's `off / PAGE_IDS`).
            unsafe { &*pages.add(index) }.store(page, Ordering::Release);
            Some(page)
        })
    }

    /// Calls `f` with the first traceback id and the counters of every
    /// page. The caller is the owner, or holds the registry lock.
    fn for_each_page(&self, mut f: impl FnMut(usize, &Page)) {
        for (k, slot) in self.dir.iter().enumerate() {
            let pages = slot.load(Ordering::Acquire);
            if pages.is_null() {
                continue;
            }
            let first = ID_BASE * ((1 << k) - 1);
            for index in 0..(ID_BASE << k) / PAGE_IDS {
                // SAFETY: the directory has `(ID_BASE << k) / PAGE_IDS`
                // entries; it and its pages live as long as the table,
                // which the caller keeps alive.
                let page = unsafe { &*pages.add(index) }.load(Ordering::Acquire);
                if !page.is_null() {
                    // SAFETY: as above.
                    f(first + index * PAGE_IDS, unsafe { &*page });
                }
            }
        }
    }

    /// Calls `f` with each traceback id below `count` and its counters, if
    /// the `Local` holds the counts of `epoch`. The caller holds the
    /// registry lock.
    fn for_each_of(&self, epoch: Epoch, count: usize, mut f: impl FnMut(usize, &Events)) {
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        self.for_each_page(|first, page| {
            for (i, c) in page.iter().enumerate().take(count.saturating_sub(first)) {
                f(first + i, c);
            }
        });
    }

    /// Adds the counts of the current epoch to the shared counters: the
    /// thread exits, or has no owner any more (in a forked child). The
    /// caller holds the registry lock and every shard lock, so no reset or
    /// reader runs meanwhile, and the owner makes no event any more.
    pub(crate) fn merge_into_shared(&self) {
        let epoch = crate::state::EPOCH.load(Ordering::Acquire);
        let count = STORE.count_unlocked() as usize;
        self.for_each_of(epoch, count, |id, local| {
            let Some(c) = counters(id as u32) else {
                return;
            };
            for (counter, n) in c.events.all().into_iter().zip(local.load()) {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        });
        // Counted once: a later reader (none can run before the table is
        // unregistered, but a forked child keeps nothing of it) skips it.
        self.epoch.store(0, Ordering::Release);
    }

    /// Bytes of the pages and directories.
    pub(crate) fn memory(&self) -> usize {
        let mut bytes = 0;
        for (k, slot) in self.dir.iter().enumerate() {
            if !slot.load(Ordering::Acquire).is_null() {
                bytes += (ID_BASE << k) / PAGE_IDS * size_of::<AtomicPtr<Page>>();
            }
        }
        self.for_each_page(|_, _| bytes += size_of::<Page>());
        bytes
    }

    /// Frees the pages and directories.
    ///
    /// # Safety
    /// The table is unregistered (or never was) and nothing uses it any
    /// more.
    pub(crate) unsafe fn free(&self) {
        for (k, slot) in self.dir.iter().enumerate() {
            let pages = slot.swap(std::ptr::null_mut(), Ordering::Acquire);
            if pages.is_null() {
                continue;
            }
            let len = (ID_BASE << k) / PAGE_IDS;
            for index in 0..len {
                // SAFETY: the directory has `len` entries.
                let page = unsafe { &*pages.add(index) }.load(Ordering::Acquire);
                if !page.is_null() {
                    // SAFETY: made by `add_page` with this length; the
                    // caller's contract says nothing reads it any more.
                    unsafe {
                        crate::thread_table::free_array(page.cast::<Events>(), PAGE_IDS);
                    }
                }
            }
            // SAFETY: as above, for the directory.
            unsafe { crate::thread_table::free_array(pages, len) };
        }
    }
}

/// A traceback's counts being summed: allocated blocks (in
/// [`BLOCK_UNIT`]s) and bytes, freed blocks and bytes, temporary blocks
/// and bytes.
type Sums = [u64; 6];

/// The counters this thread adds to for a traceback: its own (`own`),
/// or the shared ones.
struct Target<'a> {
    events: &'a Events,
    own: bool,
}

impl Target<'_> {
    /// Adds `n` to `counter`, one of `self.events`.
    #[inline(always)]
    fn add(&self, counter: &AtomicU64, n: u64) {
        if self.own {
            bump(counter, n);
        } else {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// The counters this thread adds to for traceback `id` in `epoch`.
#[inline(always)]
fn target(state: &ThreadState, id: u32, epoch: Epoch) -> Option<Target<'_>> {
    let table = state.table.get();
    if !table.is_null() {
        // SAFETY: the thread's own table, alive until its exit hook, which
        // sets `state.table` to null before freeing it.
        let table: &ThreadTable = unsafe { &*table };
        if let Some(events) = table.history.get(state, id, epoch) {
            return Some(Target { events, own: true });
        }
    }
    counters(id).map(|c| Target {
        events: &c.events,
        own: false,
    })
}

/// Counts a traced allocation of `size` bytes at `addr` by this thread in
/// `epoch`, filed under traceback `id`, and makes it the thread's latest.
#[inline(always)]
pub(crate) fn on_alloc(state: &ThreadState, id: u32, addr: usize, size: usize, epoch: Epoch) {
    let (units, bytes) = weight(size, crate::state::sample_mean_raw());
    if let Some(t) = target(state, id, epoch) {
        t.add(&t.events.allocated_blocks, units);
        t.add(&t.events.allocated_bytes, bytes);
    }
    state.last_alloc.set(addr);
    state.last_traceback.set(id);
    state.last_sample_left.set(state.sample_left.get());
}

/// Counts the free of the traced block at `addr` (its trace `entry` was
/// just removed, in `epoch`) by this thread. `may_be_temporary` is false
/// for the free half of a realloc and for frees the recorder makes for
/// the program. The caller holds the hook's guard: a signal handler must
/// not count between the load and the store of an add to the thread's
/// own counters.
#[inline(always)]
pub(crate) fn on_free(
    state: &ThreadState,
    addr: usize,
    entry: Entry,
    may_be_temporary: bool,
    epoch: Epoch,
) {
    if PEAK_DIRTY.load(Ordering::Relaxed) {
        // Memory falls for the first time since its new maximum: the live
        // set, this block still in it, is the peak set.
        crate::thread_table::with_tables(|tables| capture_peak(tables));
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
    let temporary = latest && may_be_temporary && state.last_traceback.get() == entry.traceback;
    let (units, bytes) = weight(entry.size, crate::state::sample_mean_raw());
    if let Some(t) = target(state, entry.traceback, epoch) {
        t.add(&t.events.freed_blocks, units);
        t.add(&t.events.freed_bytes, bytes);
        if temporary {
            t.add(&t.events.temporary_blocks, units);
            t.add(&t.events.temporary_bytes, bytes);
        }
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
/// since the last copy. `tables` are every registered table, whose
/// registry lock the caller holds (which also serializes copies). It
/// allocates nothing: it runs in the path of a free.
///
/// Live is summed in three passes over the counters, with wrapping
/// arithmetic: a thread's own counters may free more of a traceback than
/// they allocate (blocks handed to it by another thread), so only the
/// total is meaningful, and a total that came out below zero (a count
/// read a moment before its allocation's) is clamped to zero.
#[cold]
#[inline(never)]
pub(crate) fn capture_peak<'a>(tables: impl Iterator<Item = &'a ThreadTable>) {
    if !PEAK_DIRTY.swap(false, Ordering::Relaxed) {
        return;
    }
    let count = STORE.count_unlocked() as usize;
    let epoch = crate::state::EPOCH.load(Ordering::Acquire);
    for id in 0..count {
        let Some(c) = counters(id as u32) else {
            break;
        };
        // Freed first: a concurrent allocation and free of one block then
        // never makes the live count negative.
        let freed_blocks = c.events.freed_blocks.load(Ordering::Relaxed);
        let freed_bytes = c.events.freed_bytes.load(Ordering::Relaxed);
        let blocks = c.events.allocated_blocks.load(Ordering::Relaxed);
        let bytes = c.events.allocated_bytes.load(Ordering::Relaxed);
        c.peak_blocks
            .store(blocks.wrapping_sub(freed_blocks), Ordering::Relaxed);
        c.peak_bytes
            .store(bytes.wrapping_sub(freed_bytes), Ordering::Relaxed);
    }
    for table in tables {
        table.history.for_each_of(epoch, count, |id, local| {
            let Some(c) = counters(id as u32) else {
                return;
            };
            let [ab, aby, fb, fby, _, _] = local.load();
            let blocks = c.peak_blocks.load(Ordering::Relaxed);
            let bytes = c.peak_bytes.load(Ordering::Relaxed);
            c.peak_blocks
                .store(blocks.wrapping_add(ab.wrapping_sub(fb)), Ordering::Relaxed);
            c.peak_bytes
                .store(bytes.wrapping_add(aby.wrapping_sub(fby)), Ordering::Relaxed);
        });
    }
    for id in 0..count {
        let Some(c) = counters(id as u32) else {
            break;
        };
        for counter in [&c.peak_blocks, &c.peak_bytes] {
            if (counter.load(Ordering::Relaxed) as i64) < 0 {
                counter.store(0, Ordering::Relaxed);
            }
        }
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

/// Every traceback with a history among the first `count`, in the order of
/// their ids, with its counters summed over the shared counters and
/// `tables` (every registered table: the caller holds the registry lock).
/// The freed counts are capped at the allocated ones: a block freed by
/// another thread just after it was filed may be counted freed before
/// allocated.
pub(crate) fn read_all<'a>(
    count: u32,
    tables: impl Iterator<Item = &'a ThreadTable>,
) -> Vec<(u32, Read)> {
    let count = count as usize;
    let epoch = crate::state::EPOCH.load(Ordering::Acquire);
    let mut sums: Vec<Sums> = vec![[0; 6]; count];
    for (id, sum) in sums.iter_mut().enumerate() {
        let Some(c) = counters(id as u32) else {
            break;
        };
        *sum = c.events.load();
    }
    for table in tables {
        table.history.for_each_of(epoch, count, |id, local| {
            if let Some(sum) = sums.get_mut(id) {
                for (s, v) in sum.iter_mut().zip(local.load()) {
                    *s = s.wrapping_add(v);
                }
            }
        });
    }
    let mut rows = Vec::new();
    for (id, sum) in sums.iter().enumerate() {
        let [
            allocated,
            allocated_bytes,
            freed,
            _,
            temporary,
            temporary_bytes,
        ] = *sum;
        if allocated == 0 {
            continue;
        }
        let (peak_blocks, peak_bytes) = counters(id as u32).map_or((0, 0), |c| {
            (
                c.peak_blocks.load(Ordering::Relaxed),
                c.peak_bytes.load(Ordering::Relaxed),
            )
        });
        rows.push((
            id as u32,
            Read {
                allocated_units: allocated,
                allocated_bytes,
                freed_units: freed.min(allocated),
                temporary_units: temporary,
                temporary_bytes,
                peak_units: peak_blocks,
                peak_bytes,
            },
        ));
    }
    rows
}

/// Forgets the history of tracebacks `0..count` (the store's ids of the
/// epoch that ends) and the peak set. Called by `state::reset` with every
/// table held, before the store is cleared.
pub(crate) fn clear(count: u32) {
    for id in 0..count {
        let Some(c) = counters(id) else {
            break;
        };
        for counter in c
            .events
            .all()
            .into_iter()
            .chain([&c.peak_blocks, &c.peak_bytes])
        {
            counter.store(0, Ordering::Relaxed);
        }
    }
    PEAK_DIRTY.store(false, Ordering::Relaxed);
    PEAK_MICROS.store(0, Ordering::Relaxed);
}
