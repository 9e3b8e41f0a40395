//! The recorder's global state: whether it is tracing, with which settings,
//! the traced-memory counters, and the control operations (`start`, `stop`,
//! `clear_traces`, ...) that change them.
//!
//! The tracing state is one atomic, the *epoch*: 0 before the environment
//! was read, even when not tracing, odd while tracing. `clear_traces()`
//! adds 2 and `stop()`/`start()` add 1, so every change gives a new value.
//! The hot path reads it once; a block is inserted into the address table
//! only if the epoch, re-read under the shard's lock, is still the one the
//! hot path started with. An allocation racing `stop()` or
//! `clear_traces()` therefore never leaves a trace (or a traceback id) of a
//! finished epoch behind.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering, fence};

use crate::Error;
use crate::lock::SpinLock;
use crate::stacks::{MAX_NFRAME, MAX_RAW, STORE};
use crate::table::{self, AllShards};
use crate::thread_table::{self, Fast, ThreadTable};
use crate::tls::{self, GUARD_CALIBRATE, GUARD_UNTRACED, Guard, ThreadState};
use crate::trailer;
use crate::unwind::{self, Unwinder};

/// See the module documentation.
pub(crate) static EPOCH: AtomicU64 = AtomicU64::new(0);

/// A value of [`EPOCH`]: a counter of tracing sessions in the low 62 bits
/// (odd while tracing), and the flag of `trailer.rs` above it. At one
/// `clear_traces` a nanosecond the counter lasts 146 years; should it ever
/// reach its end, it starts again from 2 and the flags stay as they are.
pub(crate) type Epoch = u64;

/// `EPOCH` bit: in this sampled session, with the system allocator on
/// glibc and a mean of at least [`ALIGNED_SAMPLES_MIN_MEAN`], every
/// sampled block of the global allocator is allocated aligned to
/// [`SAMPLE_ALIGN`] bytes, so that a free of a block at any other
/// address (all but one in 64 of the blocks not sampled) knows from the
/// address alone that there is no trace to remove. Looking that up in the
/// sampling filter instead was a cache miss at most frees: 3 % of the
/// sampled run (docs/BENCHMARKS.md).
pub(crate) const EPOCH_ALIGNED_SAMPLES: Epoch = 1 << 61;
/// The alignment of sampled blocks in an [`EPOCH_ALIGNED_SAMPLES`] session.
pub(crate) const SAMPLE_ALIGN: usize = 1024;
/// The smallest sampling mean whose sessions align sampled blocks.
///
/// An aligned block costs up to [`SAMPLE_ALIGN`] bytes more than the block
/// (glibc's `memalign` takes an aligned piece out of a larger chunk, and the
/// pieces around it rarely fit the next request): a block of `s` bytes is
/// sampled with a chance of about `s / mean`, so the extra memory is up to
/// `SAMPLE_ALIGN / mean` of the bytes allocated, 1.6 % at this mean. At a
/// mean of 64 bytes, a million live 32-byte blocks took 414 MB against
/// 57 MB untraced and 75 MB traced exactly (means of 1 to 16 KiB cost
/// that program little, because the pieces left by `memalign` served its
/// next small blocks, but a program of larger blocks cannot reuse them);
/// below this mean frees consult the sampling filter.
pub(crate) const ALIGNED_SAMPLES_MIN_MEAN: u64 = 64 * 1024;
/// Every flag bit of an [`Epoch`].
const EPOCH_FLAGS: Epoch = trailer::EPOCH_TRAILERS | EPOCH_ALIGNED_SAMPLES;
/// Set when `track(0, ..)` traced a block at an address not aligned to
/// [`SAMPLE_ALIGN`] in an [`EPOCH_ALIGNED_SAMPLES`] session: frees then
/// look every block up, as without the flag. Cleared at `start`.
pub(crate) static TRACKED_UNALIGNED: AtomicBool = AtomicBool::new(false);

/// Whether a free of `addr` in `epoch` (a tracing epoch) certainly has
/// no trace to remove: `epoch` aligns sampled blocks and `addr` is not
/// aligned. The system allocator's hooks only (see `allocator.rs`).
#[inline(always)]
pub(crate) fn surely_unsampled(epoch: Epoch, addr: usize) -> bool {
    epoch & EPOCH_ALIGNED_SAMPLES != 0
        && !addr.is_multiple_of(SAMPLE_ALIGN)
        && !TRACKED_UNALIGNED.load(Ordering::Relaxed)
}

/// The counter part of an [`Epoch`].
const COUNTER_MASK: Epoch = (1 << 61) - 1;

/// The epoch `steps` sessions after `epoch`, with its flags kept: `stop`
/// (from tracing) and `start` (the caller sets the trailer flag) step 1,
/// `clear_traces` 2. Steps are at most 2, so the parity tells tracing.
#[inline]
fn advance(epoch: Epoch, steps: Epoch) -> Epoch {
    let counter = (epoch & COUNTER_MASK) + steps;
    let counter = if counter > COUNTER_MASK {
        // Wrapped: start again above 0 (the epoch before the environment
        // was read), with the same parity.
        2 + (counter & 1)
    } else {
        counter
    };
    (epoch & !COUNTER_MASK) | counter
}

/// Hot-path settings in one word, so that one load gives a consistent set:
/// the number of raw frames to capture, and flags.
static HOT_CONFIG: AtomicU64 = AtomicU64::new(0);
const DEPTH_MASK: u64 = 0xffff;
const DWARF_FLAG: u64 = 1 << 16;
const SAMPLED_FLAG: u64 = 1 << 17;
/// The session records allocation history (`history.rs`).
const HISTORY_FLAG: u64 = 1 << 18;

/// The traceback limit (frames kept after trimming), also when not tracing,
/// as CPython reports the last one set.
static NFRAME: AtomicU32 = AtomicU32::new(1);
/// Mean bytes between samples, 0 when not sampling.
static SAMPLE_MEAN: AtomicU64 = AtomicU64::new(0);
/// Whether snapshots keep the standard library's and the recorder's frames.
static KEEP_INTERNAL: AtomicBool = AtomicBool::new(false);

/// Global estimate of traced memory, behind each thread's unflushed change
/// (see [`note_change`]); only used to notice new peaks.
static APPROX_CURRENT: AtomicI64 = AtomicI64::new(0);
/// Peak traced memory since the last `start`, `clear_traces` or
/// `reset_peak`.
static PEAK: AtomicU64 = AtomicU64::new(0);
/// A thread flushes its unflushed change past this many bytes even when it
/// makes no new peak, which bounds the peak's error with several threads
/// (by this much per other thread, either way). 256 KiB made ripgrep's
/// traced peak on 4 threads 22 % too high (the other threads' unflushed
/// frees); 16 KiB costs nothing measurable (docs/ARCHITECTURE.md).
const FLUSH_THRESHOLD: i64 = 16 * 1024;

/// Net bytes the symbolizer allocated (counted under `GUARD_COUNTED`).
pub(crate) static SYMBOLIZER_BYTES: AtomicI64 = AtomicI64::new(0);

/// State that only control operations touch; its lock serializes them.
pub(crate) struct Control {
    /// Result of checking frame pointers against DWARF, once per process.
    fp_check: Option<Result<(), String>>,
    /// Calibrated leading frames, per unwinder (index: 0 FP, 1 DWARF).
    lead: [Option<usize>; 2],
    /// Whether blocks can have trailers (`trailer::chunk_layout_known`),
    /// once per process.
    chunk_layout_known: Option<bool>,
    atfork_registered: bool,
    fallback_reported: bool,
}

/// The lock order is CONTROL, then the symbol cache, then the traceback
/// store or the address table's shards (the hot path holds at most one of
/// the last two at a time).
pub(crate) static CONTROL: SpinLock<Control> = SpinLock::new(Control {
    fp_check: None,
    lead: [None, None],
    chunk_layout_known: None,
    atfork_registered: false,
    fallback_reported: false,
});

/// The settings of one tracing session; see [`Config`](crate::Config).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) nframe: u32,
    pub(crate) sample_mean: Option<u64>,
    pub(crate) keep_internal: bool,
    pub(crate) unwinder: Unwinder,
    /// Asked for block trailers (`Config::block_trailers`, the default).
    pub(crate) block_trailers: bool,
    /// Records allocation history (`Config::history`).
    pub(crate) history: bool,
}

#[inline(always)]
pub(crate) fn is_tracing_epoch(epoch: Epoch) -> bool {
    epoch & 1 == 1
}

/// Whether tracing is on.
pub(crate) fn is_tracing() -> bool {
    is_tracing_epoch(EPOCH.load(Ordering::Acquire))
}

pub(crate) fn nframe() -> u32 {
    NFRAME.load(Ordering::Relaxed)
}

pub(crate) fn keep_internal() -> bool {
    KEEP_INTERNAL.load(Ordering::Relaxed)
}

/// The sampling mean in use, 0 when not sampling.
#[inline]
pub(crate) fn sample_mean_raw() -> u64 {
    SAMPLE_MEAN.load(Ordering::Relaxed)
}

/// The sampling mean in use, if sampling.
pub(crate) fn sample_mean() -> Option<u64> {
    match SAMPLE_MEAN.load(Ordering::Relaxed) {
        0 => None,
        m => Some(m),
    }
}

/// What a block of `size` bytes adds to traced memory: its size, or in
/// sampled mode the unbiased estimate `size / p` of the bytes it stands
/// for, `p = 1 - exp(-size / mean)` being its chance to be sampled.
#[inline]
pub(crate) fn amount_of(size: usize, sample_mean: u64) -> u64 {
    if sample_mean == 0 {
        return size as u64;
    }
    // The format crate's estimate, so that a snapshot's estimated total is
    // this traced memory exactly.
    tracemalloc_format::sampled_amount(size as u64, sample_mean).0
}

// ---------------------------------------------------------------------------
// Hot path.

/// Records a new block (the guard is off, tracing is on in `epoch`). The
/// sampling countdown is inlined into the allocator: in sampled mode most
/// allocations stop there.
#[inline(always)]
pub(crate) fn on_alloc(state: &ThreadState, addr: usize, size: usize, epoch: Epoch) {
    fence(Ordering::Acquire);
    let config = HOT_CONFIG.load(Ordering::Relaxed);
    if config & SAMPLED_FLAG != 0 && !crate::sampling::take_sample(state, size) {
        return;
    }
    on_alloc_traced(state, addr, size, epoch, config);
}

/// [`on_alloc`] for a block that is traced: out of line, so that the
/// allocator's inlined path stays small. It stands where `on_alloc`'s own
/// frame stood, so the capture in [`record`] is as many frames below the
/// allocating code as before, which the calibrated lead covers.
#[inline(never)]
pub(crate) fn on_alloc_traced(
    state: &ThreadState,
    addr: usize,
    size: usize,
    epoch: Epoch,
    config: u64,
) {
    tls::hook(state, || {
        let filed = record(state, 0, addr, size, epoch, config);
        if history_on(config) {
            count_alloc(state, filed, addr, size, epoch);
        }
    });
}

/// The history's part of [`on_alloc`] and [`record_trailed`]: inlined,
/// behind the caller's test of `history_on`, which the path without
/// history predicts.
#[inline(always)]
fn count_alloc(state: &ThreadState, filed: Option<u32>, addr: usize, size: usize, epoch: Epoch) {
    if let Some(traceback) = filed {
        crate::history::on_alloc(state, traceback, addr, size, epoch);
    }
}

/// Captures the traceback and inserts the block; returns its traceback id
/// if the block was filed. Kept out of line so that the walk starts at a
/// known frame and the hot path stays small.
#[inline(never)]
pub(crate) fn record(
    state: &ThreadState,
    domain: u32,
    addr: usize,
    size: usize,
    epoch: Epoch,
    config: u64,
) -> Option<u32> {
    let traceback = capture(state, epoch, config)?;
    insert(state, domain, addr, size, traceback, epoch).then_some(traceback)
}

/// Captures the caller's traceback and interns it: its id, or `None` when
/// the recorder's memory ran out.
#[inline(always)]
fn capture(state: &ThreadState, epoch: Epoch, config: u64) -> Option<u32> {
    let depth = (config & DEPTH_MASK) as usize;
    // SAFETY: the guard is set, so nothing else on this thread uses the
    // frame buffer until this function returns.
    let buffer = unsafe { &mut *state.frames.get() };
    let buffer = &mut buffer[..depth.min(MAX_RAW)];
    let (n, complete, hash) = if config & DWARF_FLAG != 0 {
        let (n, complete) = unwind::capture_dwarf(buffer);
        (
            n,
            complete,
            crate::stacks::hash_frames(&buffer[..n], complete),
        )
    } else {
        let (n, complete, hash) = unwind::capture_fp(state, buffer);
        (n, complete, hash.finish(n, complete))
    };
    crate::stacks::intern(state, &buffer[..n], complete, hash, epoch)
}

/// Records a new block with a trailer (see `trailer.rs`): captures its
/// traceback, files it in the thread's block array and writes its
/// trailer. Out of line for the same reason as [`record`]; the guard is
/// set.
///
/// # Safety
/// `ptr` is a live block of `size` bytes allocated with a trailer's bytes
/// more (see `trailer::write`).
#[inline(never)]
pub(crate) unsafe fn record_trailed(state: &ThreadState, ptr: *mut u8, size: usize, epoch: Epoch) {
    let config = HOT_CONFIG.load(Ordering::Relaxed);
    let addr = ptr as usize;
    let Some(traceback) = capture(state, epoch, config) else {
        // SAFETY: forwarded from the caller.
        unsafe { trailer::write(ptr, size, None) };
        return;
    };
    // SAFETY: forwarded from the caller.
    if !unsafe { trailer::has_room(ptr, size) } {
        // glibc mapped the chunk (its heap could not grow, or its
        // threshold is lower): no trailer, so an address table.
        let filed = insert(state, 0, addr, size, traceback, epoch);
        if history_on(config) && filed {
            count_alloc(state, Some(traceback), addr, size, epoch);
        }
        return;
    }
    // `None`: not traced (the epoch changed); `Some(None)`: in the shared
    // table; `Some(Some(slot))`: in the block array.
    let mut filed = None;
    let mut fast = false;
    let own = state.table.get();
    if !own.is_null() {
        // SAFETY: see `thread_table`.
        let t = unsafe { &*own };
        if let Fast::Done(slot) = t.add_block(addr, size, traceback, epoch) {
            if slot.is_some() {
                // A thread with a table has registered its exit hook.
                note_change_registered(state, epoch, size as i64);
                filed = Some(slot);
            }
            fast = true;
        }
    }
    if !fast {
        filed = file_trailed_slow(state, addr, size, traceback, epoch);
    }
    // After the block is filed: a free from another thread reads the
    // trailer only once it has the block, which the program hands over
    // after this allocation returns.
    // SAFETY: forwarded from the caller.
    unsafe { trailer::write(ptr, size, filed.flatten()) };
    if history_on(config) && filed.is_some() {
        count_alloc(state, Some(traceback), addr, size, epoch);
    }
}

/// Everything [`record_trailed`] does not inline: waiting for a freezer,
/// making room in or creating the array, and the shared table. `None`:
/// not traced (the epoch changed); `Some(None)`: in the shared table.
#[inline(never)]
fn file_trailed_slow(
    state: &ThreadState,
    addr: usize,
    size: usize,
    traceback: u32,
    epoch: Epoch,
) -> Option<Option<u32>> {
    if let Some(t) = thread_table(state) {
        loop {
            match t.add_block(addr, size, traceback, epoch) {
                Fast::Done(Some(slot)) => {
                    note_change(state, epoch, size as i64);
                    return Some(Some(slot));
                }
                Fast::Done(None) => return None,
                Fast::Frozen => t.wait_unfrozen(),
                Fast::Full => {
                    if !t.make_room() {
                        break;
                    }
                }
            }
        }
    }
    // No table (the thread is exiting) or no memory for a larger array:
    // the shared table takes the block, and its trailer names no slot.
    insert_slow(state, 0, addr, size, traceback, epoch).then_some(None)
}

/// Forgets a block whose trailer names `slot`; returns its record. Its
/// thread's block array at that slot first (inlined into the hook), then
/// every other place a block can be: the thread's hash table (the trailer
/// may be stale), the shared table (where a thread's blocks go when it
/// exits) and the other threads' tables.
#[inline(always)]
pub(crate) fn remove_trailed(
    state: &ThreadState,
    addr: usize,
    slot: u32,
    epoch: Epoch,
) -> Option<table::Entry> {
    let own = state.table.get();
    if !own.is_null() {
        // SAFETY: see `thread_table`.
        let t = unsafe { &*own };
        loop {
            match t.take_block(addr, slot as usize) {
                Fast::Done(Some(entry)) => {
                    // A thread with a table has registered its exit hook.
                    note_change_registered(state, epoch, -(entry.size as i64));
                    return Some(entry);
                }
                Fast::Done(None) | Fast::Full => break,
                Fast::Frozen => t.wait_unfrozen(),
            }
        }
        // Not at its slot: its trailer is stale (its trace was cleared, or
        // replaced by `track`), and the block may have a trace in this
        // thread's hash table, which `remove_shared` does not search.
        if let Some(entry) = take_own_hashed(state, t, epoch, addr) {
            return Some(entry);
        }
    }
    remove_shared(state, 0, addr, epoch, Some(slot))
}

/// Takes `addr` out of this thread's hash table, if there.
#[inline(never)]
fn take_own_hashed(
    state: &ThreadState,
    t: &ThreadTable,
    epoch: Epoch,
    addr: usize,
) -> Option<table::Entry> {
    loop {
        match t.take(addr) {
            Fast::Done(Some(entry)) => {
                note_change_registered(state, epoch, -(entry.size as i64));
                return Some(entry);
            }
            Fast::Done(None) | Fast::Full => return None,
            Fast::Frozen => t.wait_unfrozen(),
        }
    }
}

/// The thread's table, created on first use; `None` at thread exit or
/// when memory ran out. The caller holds the guard.
#[inline]
fn thread_table(state: &ThreadState) -> Option<&'static ThreadTable> {
    let t = state.table.get();
    if !t.is_null() {
        // SAFETY: set from `ThreadTable::create` and only cleared by this
        // thread's exit hook.
        return Some(unsafe { &*t });
    }
    if state.table_retired.get() {
        return None;
    }
    create_thread_table(state)
}

#[cold]
fn create_thread_table(state: &ThreadState) -> Option<&'static ThreadTable> {
    // The exit hook retires the table: register it first.
    if !state.exit_hook.get() {
        tls::register_exit_hook(state);
    }
    let t = ThreadTable::create()?;
    state.table.set(t);
    Some(t)
}

/// Inserts a block whose traceback is interned: into the thread's own
/// table in exact mode, otherwise (sampling, other domains, blocks of
/// 4 GiB or more, a thread past its exit hook) into the shared table.
///
/// The common case, a block going into an existing table that is neither
/// frozen nor full, is inlined into the hook; everything else is
/// [`insert_slow`], out of line, so that the hook saves few registers.
#[inline(always)]
fn insert(
    state: &ThreadState,
    domain: u32,
    addr: usize,
    size: usize,
    traceback: u32,
    epoch: Epoch,
) -> bool {
    let own = state.table.get();
    if !own.is_null() && goes_to_own_table(domain, size, SAMPLE_MEAN.load(Ordering::Relaxed)) {
        // SAFETY: see `thread_table`.
        let t = unsafe { &*own };
        if let Fast::Done(added) = t.add(addr, size, traceback, epoch) {
            if added {
                // A thread with a table has registered its exit hook.
                note_change_registered(state, epoch, size as i64);
            }
            return added;
        }
    }
    insert_slow(state, domain, addr, size, traceback, epoch)
}

/// Whether a block is filed in its thread's table: heap blocks in exact
/// mode whose size fits the table's 32 bits.
#[inline(always)]
fn goes_to_own_table(domain: u32, size: usize, sample_mean: u64) -> bool {
    domain == 0 && sample_mean == 0 && size < u32::MAX as usize
}

/// Everything [`insert`] does not inline: waiting for a freezer, growing
/// or creating the table, and the shared table.
#[inline(never)]
fn insert_slow(
    state: &ThreadState,
    domain: u32,
    addr: usize,
    size: usize,
    traceback: u32,
    epoch: Epoch,
) -> bool {
    let mean = SAMPLE_MEAN.load(Ordering::Relaxed);
    if goes_to_own_table(domain, size, mean)
        && let Some(t) = thread_table(state)
    {
        loop {
            match t.add(addr, size, traceback, epoch) {
                Fast::Done(added) => {
                    if added {
                        note_change(state, epoch, size as i64);
                    }
                    return added;
                }
                Fast::Frozen => t.wait_unfrozen(),
                Fast::Full => {
                    if !t.rebuild() {
                        // Out of memory for a larger table: the shared
                        // table may still take the block.
                        break;
                    }
                }
            }
        }
    }
    let amount = amount_of(size, mean);
    let shard = table::shard_of(addr);
    let mut data = shard.data.lock();
    if EPOCH.load(Ordering::Relaxed) != epoch {
        return false;
    }
    let entry = table::Entry { size, traceback };
    match data.insert(domain, addr, entry, amount, |s| amount_of(s, mean)) {
        table::Inserted::Yes { replaced } => {
            drop(data);
            note_change(state, epoch, amount as i64 - replaced as i64);
            true
        }
        table::Inserted::No => false,
    }
}

/// Forgets a block; returns its record. Looks in the thread's own table
/// first (inlined into the hook), then in the shared table, then in the
/// other threads' tables (a block handed to this thread).
#[inline(always)]
pub(crate) fn remove(
    state: &ThreadState,
    domain: u32,
    addr: usize,
    epoch: Epoch,
) -> Option<table::Entry> {
    let own = state.table.get();
    if domain == 0 && !own.is_null() && SAMPLE_MEAN.load(Ordering::Relaxed) == 0 {
        // SAFETY: see `thread_table`.
        let t = unsafe { &*own };
        loop {
            match t.take(addr) {
                Fast::Done(Some(entry)) => {
                    // A thread with a table has registered its exit hook.
                    note_change_registered(state, epoch, -(entry.size as i64));
                    return Some(entry);
                }
                Fast::Done(None) | Fast::Full => break,
                Fast::Frozen => t.wait_unfrozen(),
            }
        }
    }
    remove_shared(state, domain, addr, epoch, None)
}

/// Everything [`remove`] and [`remove_trailed`] do not inline: the shared
/// table, then the other threads' tables (`slot`: the slot a block's
/// trailer names, looked at in their block arrays first).
#[inline(never)]
fn remove_shared(
    state: &ThreadState,
    domain: u32,
    addr: usize,
    epoch: Epoch,
    slot: Option<u32>,
) -> Option<table::Entry> {
    let mean = SAMPLE_MEAN.load(Ordering::Relaxed);
    let own = state.table.get();
    let shard = table::shard_of(addr);
    let mut data = shard.data.lock();
    let entry = match data.remove(domain, addr) {
        Some(entry) => {
            let amount = amount_of(entry.size, mean);
            data.current -= amount;
            entry
        }
        // Under the shard lock, so that the block cannot move from its
        // thread's table to the shared one meanwhile.
        None if domain == 0 && mean == 0 => thread_table::take_remote(addr, own, slot)?,
        None => return None,
    };
    drop(data);
    note_change(state, epoch, -(amount_of(entry.size, mean) as i64));
    Some(entry)
}

/// Puts back a block whose realloc failed.
pub(crate) fn reinsert(state: &ThreadState, addr: usize, entry: table::Entry, epoch: Epoch) {
    // Inserting may allocate (a larger table): the recorder's memory.
    tls::hook(state, || {
        insert(state, 0, addr, entry.size, entry.traceback, epoch)
    });
}

/// Forgets the trace of a block that is freed (or reallocated) while this
/// thread's guard is set, where `tls::frees_looked_up` allows it: a free
/// removes its trace whoever makes it. `slot`: the slot its trailer names.
/// Returns its record.
#[cold]
pub(crate) fn forget_guarded_free(
    state: &ThreadState,
    addr: usize,
    slot: Option<u32>,
    epoch: Epoch,
) -> Option<table::Entry> {
    if is_sampled(hot_config()) && !table::may_be_traced(addr) {
        return None;
    }
    tls::hook(state, || remove_any(state, addr, slot, epoch))
}

/// Forgets a heap block: [`remove_trailed`] if its trailer names a slot,
/// [`remove`] otherwise.
#[inline(always)]
pub(crate) fn remove_any(
    state: &ThreadState,
    addr: usize,
    slot: Option<u32>,
    epoch: Epoch,
) -> Option<table::Entry> {
    match slot {
        Some(slot) => remove_trailed(state, addr, slot, epoch),
        None => remove(state, 0, addr, epoch),
    }
}

/// Counts a change of traced memory made by this thread, and updates the
/// peak.
///
/// An exact peak needs the exact total after every change, and a shared
/// counter updated on every allocation would bounce its cache line between
/// cores. So each thread keeps its change to itself and adds it to the
/// shared estimate only when it would make a new peak, or grows past
/// `FLUSH_THRESHOLD`. With one thread allocating, estimate plus own change
/// is the exact total, so the peak is exact; with several, each other
/// thread's unflushed change (at most the threshold) may be missing from it.
#[inline]
fn note_change(state: &ThreadState, epoch: Epoch, delta: i64) {
    if !state.exit_hook.get() {
        tls::register_exit_hook(state);
    }
    note_change_registered(state, epoch, delta);
}

/// [`note_change`] for a thread whose exit hook is registered.
#[inline(always)]
fn note_change_registered(state: &ThreadState, epoch: Epoch, delta: i64) {
    // Changes of an older epoch were cleared with its traces.
    let mut pending = state.pending.get();
    if state.pending_epoch.get() != epoch {
        state.pending_epoch.set(epoch);
        pending = 0;
    }
    let pending = pending + delta;
    if delta > 0 {
        let estimate = APPROX_CURRENT.load(Ordering::Relaxed) + pending;
        if estimate > PEAK.load(Ordering::Relaxed) as i64 || pending > FLUSH_THRESHOLD {
            flush(state, pending);
            return;
        }
    } else if pending < -FLUSH_THRESHOLD {
        flush(state, pending);
        return;
    }
    state.pending.set(pending);
}

#[inline]
fn flush(state: &ThreadState, pending: i64) {
    state.pending.set(0);
    let now = APPROX_CURRENT.fetch_add(pending, Ordering::Relaxed) + pending;
    if now > 0
        && PEAK.fetch_max(now as u64, Ordering::Relaxed) < now as u64
        && history_on(hot_config())
    {
        crate::history::new_peak();
    }
}

/// Called by a thread's exit hook.
pub(crate) fn flush_pending_at_exit() {
    tls::with(|state| {
        if state.pending_epoch.get() == EPOCH.load(Ordering::Relaxed) {
            let pending = state.pending.replace(0);
            APPROX_CURRENT.fetch_add(pending, Ordering::Relaxed);
        }
    });
}

#[inline]
pub(crate) fn hot_config() -> u64 {
    HOT_CONFIG.load(Ordering::Relaxed)
}

#[inline]
pub(crate) fn is_sampled(config: u64) -> bool {
    config & SAMPLED_FLAG != 0
}

/// Whether the session records allocation history (`history.rs`).
#[inline(always)]
pub(crate) fn history_on(config: u64) -> bool {
    config & HISTORY_FLAG != 0
}

// ---------------------------------------------------------------------------
// Control operations.

/// Starts tracing, or changes the limit when already tracing (as CPython).
pub(crate) fn start(settings: Settings) -> Result<(), Error> {
    if settings.nframe == 0 || settings.nframe > MAX_NFRAME {
        return Err(Error::InvalidNframe(settings.nframe));
    }
    if settings.sample_mean == Some(0) {
        return Err(Error::InvalidSamplingMean);
    }
    crate::env::init();
    let _guard = Guard::enter(GUARD_UNTRACED);
    let mut control = CONTROL.lock();
    let epoch = EPOCH.load(Ordering::Acquire);
    let dwarf = choose_unwinder(&mut control, settings.unwinder);
    let lead_index = usize::from(dwarf);
    if is_tracing_epoch(epoch) {
        if sample_mean() != settings.sample_mean {
            return Err(Error::SamplingChange);
        }
        let lead = control.lead[lead_index].unwrap_or(MAX_RAW);
        NFRAME.store(settings.nframe, Ordering::Relaxed);
        KEEP_INTERNAL.store(settings.keep_internal, Ordering::Relaxed);
        // History is the session's, as sampling is: kept as it was.
        let settings = Settings {
            history: history_on(hot_config()),
            ..settings
        };
        set_hot_config(settings, dwarf, lead);
        return Ok(());
    }
    if !control.atfork_registered {
        control.atfork_registered = true;
        register_atfork();
        thread_table::init_membarrier();
    }
    {
        let mut shards = AllShards::lock();
        let frozen = thread_table::freeze_all();
        for data in shards.iter_mut() {
            data.clear();
        }
        frozen.clear();
        table::set_filter(settings.sample_mean.is_some());
    }
    NFRAME.store(settings.nframe, Ordering::Relaxed);
    SAMPLE_MEAN.store(settings.sample_mean.unwrap_or(0), Ordering::Relaxed);
    // The calling thread's countdown may have been drawn for another mean
    // in an earlier session: a fresh draw makes its first sample point
    // follow this session's mean. Other threads keep theirs until their
    // next sample point, which changes nothing when the mean is the same
    // (the distance is memoryless) and otherwise puts their first sample
    // point at a distance drawn with the earlier mean (`start_sampled`
    // documents it).
    tls::with(|state| state.sample_left.set(0));
    KEEP_INTERNAL.store(settings.keep_internal, Ordering::Relaxed);
    APPROX_CURRENT.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    // Capture everything until calibrated: correct, only slower.
    set_hot_config(settings, dwarf, MAX_RAW);
    // Blocks get trailers when asked for (the default), in exact mode,
    // where the word before each block is known to be glibc's chunk size
    // (and the global allocator is `TracingAllocator::system()`, which the
    // hooks know); sampled blocks are few and go to the shared table.
    let trailers = settings.block_trailers
        && settings.sample_mean.is_none()
        && *control
            .chunk_layout_known
            .get_or_insert_with(trailer::chunk_layout_known);
    if trailers {
        trailer::init_key();
    }
    // In sampled mode, where `malloc` is glibc's and the mean is large
    // enough for alignment to cost little memory, sampled blocks are
    // allocated aligned (see `EPOCH_ALIGNED_SAMPLES`).
    let aligned_samples = settings
        .sample_mean
        .is_some_and(|mean| mean >= ALIGNED_SAMPLES_MIN_MEAN)
        && *control
            .chunk_layout_known
            .get_or_insert_with(trailer::chunk_layout_known);
    TRACKED_UNALIGNED.store(false, Ordering::Relaxed);
    // From 0 (the environment not read yet), the first session is 3.
    let mut next = advance(epoch.max(2) & !EPOCH_FLAGS, 1);
    if trailers {
        next |= trailer::EPOCH_TRAILERS;
    }
    if aligned_samples {
        next |= EPOCH_ALIGNED_SAMPLES;
    }
    EPOCH.store(next, Ordering::Release);
    let lead = match control.lead[lead_index] {
        Some(lead) => lead,
        None => {
            let lead = calibrate(dwarf);
            control.lead[lead_index] = Some(lead);
            lead
        }
    };
    set_hot_config(settings, dwarf, lead);
    Ok(())
}

fn set_hot_config(settings: Settings, dwarf: bool, lead: usize) {
    let depth = raw_depth(settings.nframe, lead);
    let mut config = depth as u64;
    if dwarf {
        config |= DWARF_FLAG;
    }
    if settings.sample_mean.is_some() {
        config |= SAMPLED_FLAG;
    }
    if settings.history {
        config |= HISTORY_FLAG;
    }
    HOT_CONFIG.store(config, Ordering::Relaxed);
}

/// Raw frames to capture so that `nframe` remain after trimming: the
/// calibrated leading frames (recorder, allocator shim, standard library),
/// plus a margin for standard-library frames between the user's own (an
/// iterator adapter calling a closure, a thread's entry point).
pub(crate) fn raw_depth(nframe: u32, lead: usize) -> usize {
    let nframe = nframe as usize;
    (lead + nframe + 1 + nframe / 8).min(MAX_RAW)
}

/// Decides between frame pointers and DWARF; returns whether DWARF.
fn choose_unwinder(control: &mut Control, wanted: Unwinder) -> bool {
    match wanted {
        Unwinder::Dwarf => true,
        Unwinder::FramePointers => !unwind::FP_SUPPORTED,
        Unwinder::Auto => {
            let check = control
                .fp_check
                .get_or_insert_with(|| tls::with(unwind::check_frame_pointers));
            if let Err(why) = check {
                if !control.fallback_reported {
                    control.fallback_reported = true;
                    let hint = if cfg!(tracemalloc_fp_flag) {
                        "some code on the stack was built without frame pointers"
                    } else {
                        "the program was built without -C force-frame-pointers=yes"
                    };
                    eprintln!(
                        "tracemalloc: frame pointers do not work here ({hint}: {why}); \
                         using the slower DWARF unwinder instead"
                    );
                }
                true
            } else {
                false
            }
        }
    }
}

/// Measures how many frames the recorder, the allocator shim and the
/// standard library put above the caller of a typical allocation, in this
/// build: allocations made by [`calibration_probe`] are captured (not
/// traced) and the depth at which the probe's own frame appears is kept.
fn calibrate(dwarf: bool) -> usize {
    let _guard = Guard::enter(GUARD_CALIBRATE);
    let target = if dwarf {
        calibration_probe as *const () as usize
    } else {
        0
    };
    tls::with(|state| {
        state.calib_target.set(target);
        state.calib_depth.set(0);
        state.calib_dwarf.set(dwarf);
    });
    calibration_probe();
    let depth = tls::with(|state| {
        state.calib_target.set(0);
        state.calib_depth.get()
    });
    // `depth` counts the probe's own frame; what is above it is the lead.
    // Found nothing (an unusual build): capture generously.
    if depth == 0 { 32 } else { depth - 1 }
}

/// The typical allocation sites of Rust code, one after the other.
#[inline(never)]
fn calibration_probe() {
    use std::collections::{BTreeMap, HashMap};
    use std::hint::black_box;
    tls::with(|state| {
        if !state.calib_dwarf.get() {
            state.calib_target.set(unwind::frame_pointer());
        }
    });
    let mut v: Vec<u64> = Vec::new();
    for i in 0..40 {
        v.push(black_box(i));
    }
    let s = format!("{}-{}", black_box(12), black_box("x"));
    let mut st = String::with_capacity(black_box(8));
    st.push_str(&s);
    st.push_str("more than eight bytes");
    let b = Box::new(black_box([0u8; 40]));
    let mut h = HashMap::new();
    for i in 0..20 {
        h.insert(black_box(i), i);
    }
    let mut t = BTreeMap::new();
    for i in 0..20 {
        t.insert(black_box(i), i);
    }
    let c: Vec<String> = (0..3).map(|i| black_box(i).to_string()).collect();
    let z = vec![0u8; black_box(64)];
    black_box((v, s, st, b, h, t, c, z));
}

/// The calibration step of the allocation hook: finds the probe's frame
/// in the current stack and keeps the largest depth seen.
#[cold]
pub(crate) fn calibration_capture(state: &ThreadState) {
    let target = state.calib_target.get();
    if target == 0 {
        return;
    }
    let depth = if state.calib_dwarf.get() {
        let mut depth = 0;
        let mut found = 0;
        // SAFETY: `_Unwind_Backtrace` is thread-safe; see `capture_dwarf`.
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                depth += 1;
                if frame.symbol_address() as usize == target {
                    found = depth;
                    return false;
                }
                depth < MAX_RAW
            });
        }
        // The DWARF walk starts inside `backtrace` itself, which the
        // snapshot trims like the recorder's frames.
        found
    } else {
        unwind::depth_of_frame(state, target)
    };
    if depth > state.calib_depth.get() {
        state.calib_depth.set(depth);
    }
}

/// Stops tracing and forgets every trace, as CPython's `stop()`.
pub(crate) fn stop() {
    crate::env::init();
    let _guard = Guard::enter(GUARD_UNTRACED);
    let _control = CONTROL.lock();
    let epoch = EPOCH.load(Ordering::Acquire);
    if !is_tracing_epoch(epoch) {
        return;
    }
    reset(advance(epoch, 1));
}

/// Forgets every trace and the peak, tracing on (CPython's `clear_traces`).
pub(crate) fn clear_traces() {
    let _guard = Guard::enter(GUARD_UNTRACED);
    let _control = CONTROL.lock();
    let epoch = EPOCH.load(Ordering::Acquire);
    if !is_tracing_epoch(epoch) {
        return;
    }
    reset(advance(epoch, 2));
}

/// Moves to `new_epoch` with no trace. With every shard locked, the store
/// is cleared before the epoch changes: a thread that sees the new epoch
/// therefore interns into the cleared store, and a thread still in the old
/// epoch is refused by the shard it waits for.
fn reset(new_epoch: Epoch) {
    let mut shards = AllShards::lock();
    let frozen = thread_table::freeze_all();
    crate::history::clear(STORE.count());
    STORE.clear();
    EPOCH.store(new_epoch, Ordering::Release);
    for data in shards.iter_mut() {
        data.clear();
    }
    frozen.clear();
    drop(frozen);
    drop(shards);
    APPROX_CURRENT.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
}

/// See [`crate::__set_epoch_counter`].
pub(crate) fn set_epoch_counter(counter: u64) -> bool {
    let _guard = Guard::enter(GUARD_UNTRACED);
    let _control = CONTROL.lock();
    let epoch = EPOCH.load(Ordering::Acquire);
    if is_tracing_epoch(epoch) {
        return false;
    }
    let flags = epoch & EPOCH_FLAGS;
    reset((counter & COUNTER_MASK & !1) | flags);
    true
}

/// `(current, peak)` traced memory; `(0, 0)` when not tracing.
pub(crate) fn traced_memory() -> (u64, u64) {
    if !is_tracing() {
        return (0, 0);
    }
    // Every table is held still below: an allocation of this thread (a
    // signal handler's) must not wait for its own table.
    let _guard = Guard::enter(GUARD_UNTRACED);
    let mut shards = AllShards::lock();
    let frozen = thread_table::freeze_all();
    let current: u64 = shards.iter_mut().map(|d| d.current).sum::<u64>() + frozen.current();
    drop(frozen);
    drop(shards);
    (current, PEAK.load(Ordering::Relaxed).max(current))
}

/// Sets the peak to the current traced memory.
pub(crate) fn reset_peak() {
    if !is_tracing() {
        return;
    }
    let _guard = Guard::enter(GUARD_UNTRACED);
    let (current, _) = traced_memory();
    PEAK.store(current, Ordering::Relaxed);
    if history_on(hot_config()) {
        crate::history::reset_peak();
    }
}

/// Memory the recorder itself uses, in bytes.
pub(crate) fn tracemalloc_memory() -> u64 {
    let usage = memory_usage();
    usage.address_table
        + usage.thread_tables
        + usage.block_trailers
        + usage.tracebacks
        + usage.symbolizer
}

/// Memory the recorder itself uses, by part.
pub(crate) fn memory_usage() -> crate::MemoryUsage {
    // As in `traced_memory`.
    let _guard = Guard::enter(GUARD_UNTRACED);
    let mut shards = AllShards::lock();
    let address_table: usize = shards.iter_mut().map(|d| d.memory()).sum();
    let frozen = thread_table::freeze_all();
    let (thread_tables, trailed) = (frozen.memory(), frozen.trailed_len());
    let history = frozen.history_memory();
    drop(frozen);
    drop(shards);
    crate::MemoryUsage {
        address_table: address_table as u64,
        thread_tables: thread_tables as u64,
        block_trailers: (trailed * trailer::TRAILER) as u64,
        tracebacks: (STORE.memory() + history) as u64,
        symbolizer: SYMBOLIZER_BYTES.load(Ordering::Relaxed).max(0) as u64,
    }
}

/// Records an allocation made by hand (`track`). A trace at the same
/// address and domain is replaced: for the heap, also a block with a
/// trailer, whose slot then no longer holds it, so that its free finds the
/// new trace.
pub(crate) fn track(domain: u32, addr: usize, size: usize) -> Result<(), Error> {
    let epoch = EPOCH.load(Ordering::Acquire);
    if !is_tracing_epoch(epoch) {
        return Err(Error::NotTracing);
    }
    let config = HOT_CONFIG.load(Ordering::Relaxed);
    tls::with(|state| {
        if state.guard.get() != tls::GUARD_NONE {
            return Ok(());
        }
        tls::hook(state, || {
            forget(state, domain, addr, epoch);
            if is_sampled(config) && !crate::sampling::take_sample(state, size) {
                return Ok(());
            }
            if domain == 0 && surely_unsampled(epoch, addr) {
                // A heap block the hooks would take for unsampled.
                TRACKED_UNALIGNED.store(true, Ordering::Relaxed);
            }
            let stored = record(state, domain, addr, size, epoch, config).is_some();
            if stored || EPOCH.load(Ordering::Relaxed) != epoch {
                Ok(())
            } else {
                Err(Error::OutOfMemory)
            }
        })
    })
}

/// Forgets an allocation recorded by hand (`untrack`), or a heap block.
pub(crate) fn untrack(domain: u32, addr: usize) -> Result<(), Error> {
    let epoch = EPOCH.load(Ordering::Acquire);
    if !is_tracing_epoch(epoch) {
        return Err(Error::NotTracing);
    }
    tls::with(|state| {
        if state.guard.get() == tls::GUARD_NONE {
            tls::hook(state, || forget(state, domain, addr, epoch));
        }
    });
    Ok(())
}

/// Forgets whatever trace `addr` has in `domain`, wherever it is (the
/// caller holds `GUARD_HOOK`). `addr` may be any address: a block with a
/// trailer is found by scanning the block arrays, not by reading the
/// trailer.
fn forget(state: &ThreadState, domain: u32, addr: usize, epoch: Epoch) {
    if remove(state, domain, addr, epoch).is_some() {
        return;
    }
    if domain == 0
        && epoch & trailer::EPOCH_TRAILERS != 0
        && let Some(entry) = thread_table::take_trailed_by_scan(addr)
    {
        note_change(state, epoch, -(entry.size as i64));
    }
}

// ---------------------------------------------------------------------------
// fork()

fn register_atfork() {
    #[cfg(unix)]
    // SAFETY: the handlers are `extern "C"` functions that only take and
    // release the recorder's locks.
    unsafe {
        libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
    }
}

/// Takes every recorder lock, so that the child does not inherit one held
/// by a thread that does not exist there. The order is the lock order.
extern "C" fn fork_prepare() {
    CONTROL.raw_lock();
    crate::symbolize::lock_for_fork();
    STORE.lock_for_fork();
    for shard in &table::TABLE {
        shard.data.raw_lock();
    }
    thread_table::fork_prepare();
}

extern "C" fn fork_parent() {
    // SAFETY: `fork_prepare` took exactly these locks on this thread.
    unsafe {
        thread_table::fork_parent();
        for shard in table::TABLE.iter().rev() {
            shard.data.raw_unlock();
        }
        STORE.unlock_after_fork();
        crate::symbolize::unlock_after_fork();
        CONTROL.raw_unlock();
    }
}

extern "C" fn fork_child() {
    // Moving the other threads' blocks into the shared table may grow it: that
    // allocation must not be traced (the store's lock is still held).
    let _guard = Guard::enter(GUARD_UNTRACED);
    // SAFETY: the child has only this thread, which took the locks in
    // `fork_prepare`.
    unsafe {
        let keep = tls::with(|state| state.table.get());
        thread_table::fork_child(keep, &mut |addr| {
            table::shard_of(addr).data.data_unchecked()
        });
        for shard in table::TABLE.iter().rev() {
            shard.data.force_unlock();
        }
        STORE.unlock_after_fork();
        crate::symbolize::unlock_after_fork();
        CONTROL.force_unlock();
    }
    // The other threads' unflushed changes are gone with them.
    APPROX_CURRENT.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_amounts_are_unbiased_estimates() {
        assert_eq!(amount_of(100, 0), 100);
        // A block much larger than the mean is almost surely sampled.
        assert_eq!(amount_of(10_000_000, 1000), 10_000_000);
        // A tiny block stands for about `mean` bytes.
        let a = amount_of(1, 1_000_000);
        assert!((999_000..=1_001_000).contains(&a), "{a}");
        // The size of a block equal to the mean: p = 1 - 1/e.
        let expected = (1000.0 / (1.0 - (-1.0f64).exp())).round() as u64;
        assert_eq!(amount_of(1000, 1000), expected);
    }

    #[test]
    fn the_epoch_counter_never_reaches_the_flags() {
        let flags = trailer::EPOCH_TRAILERS;
        // Past the 30- and 32-bit edges of the old counter: plain steps.
        for edge in [1u64 << 30, 1 << 32] {
            let tracing = flags | (edge - 1);
            assert_eq!(advance(tracing, 2), flags | (edge + 1));
            assert_eq!(advance(tracing, 1), flags | edge);
            assert!(is_tracing_epoch(advance(tracing, 2)));
            assert!(!is_tracing_epoch(advance(tracing, 1)));
        }
        // At the end of the 62-bit counter: it starts again above 0, the
        // parity (tracing or not) and the flags as they were.
        for flags in [0, flags] {
            let last_tracing = flags | COUNTER_MASK;
            assert_eq!(advance(last_tracing, 2), flags | 3);
            assert_eq!(advance(last_tracing, 1), flags | 2);
            assert_eq!(advance(flags | (COUNTER_MASK - 1), 1), flags | COUNTER_MASK);
            assert_eq!(advance(flags | (COUNTER_MASK - 1), 2), flags | 2);
        }
    }

    #[test]
    fn raw_depth_adds_lead_and_margin_within_the_buffer() {
        assert_eq!(raw_depth(1, 4), 6);
        assert_eq!(raw_depth(16, 4), 23);
        assert_eq!(raw_depth(256, 100), MAX_RAW);
    }
}
