//! Per-thread tables: every block a thread allocates (in exact mode) is
//! filed in a hash table of that thread's own, so that allocating and
//! freeing take no lock and no atomic read-modify-write.
//!
//! Recording a block in a shared table costs a lock per event, and on x86
//! the locked instruction also waits for the store buffer to drain, which
//! after the allocator's own stores is a large part of the recorder's cost.
//! Most blocks are freed by the thread that made them (temporary strings,
//! `Vec` growth, per-request buffers, and long-lived structures alike), so
//! a thread's table is written by its owner with plain (relaxed) stores.
//!
//! The table is open addressing with linear probing over slots of an
//! address and a packed `size | traceback << 32`. A key is `EMPTY`, a
//! `TOMBSTONE` (a removed block) or a block's address. Other threads only
//! ever take a block *out* of a table, when they free it (a block handed to
//! another thread): holding the registry lock and the block's shard lock,
//! they probe the table and turn the slot's key from the address into a
//! tombstone with a compare-and-swap. A block is therefore always in
//! exactly one place: a thread's table or the shared table, and it moves
//! between them (thread exit, `fork`) under every shard lock and the
//! registry lock.
//!
//! Probing stays correct while another thread searches because an owner
//! only ever changes a slot in ways a search tolerates: an empty or
//! tombstone slot becomes a block (written size first, then the key with
//! release ordering), a block becomes a tombstone, and a tombstone becomes
//! empty only when the slot after it is empty (so no probe sequence of a
//! live block ever crosses an empty slot). Growing or rehashing the table
//! moves every slot: the owner does it holding the registry lock, which
//! keeps remote searches and freezers out.
//!
//! Blocks with a trailer (`trailer.rs`) go to the table's *block array*
//! instead: the array keeps each block's address (the *keys*, one half of
//! the array) and its record (`size | traceback << 32`, the other half),
//! and the trailer names the block's slot, so the owner frees it by
//! clearing that slot, without a search. Slots are handed out in
//! allocation order and holes reused through a free list; another thread
//! freeing such a block turns its key into `REMOTE_HOLE` with a
//! compare-and-swap, under the registry lock. A block never changes slot
//! while it is listed: its trailer, in memory the program owns, is written
//! only when the block is allocated (writing it later could overwrite
//! bytes C code wrote after a `malloc_usable_size`). So the array grows by
//! copying every slot to the same index of a larger one, and remote holes
//! join the free list when the owner runs out of slots, both holding the
//! registry lock. It shrinks when it is cleared, and when a large array
//! has stayed nearly empty over many of its owner's frees: its last
//! blocks move to the hash table, where their frees find them once the
//! slots their trailers name no longer hold them
//! ([`ThreadTable::shrink_array`]).
//!
//! Tables are used in exact mode only (a block's accounted amount is its
//! size); sampled blocks are rare and go to the shared table.
//!
//! Snapshots (and `clear_traces`, `fork`) need every table still. They
//! *freeze* the tables: set each one's `frozen` flag, run
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every running
//! thread execute a full memory barrier, then wait until no owner is
//! `busy`. The owner sets `busy` before checking `frozen`; with the
//! membarrier on the freezer's side, either the owner sees `frozen` and
//! backs off, or the freezer sees `busy` and waits (the asymmetric Dekker
//! protocol of liburcu and folly's `asymmetricHeavyBarrier`). Where the
//! system call is missing, owners use a full fence instead: correct, slower.

use std::alloc::Layout;
use std::cell::UnsafeCell;
use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, compiler_fence, fence,
};

use crate::lock::SpinLock;
use crate::state::Epoch;
use crate::table::{self, Copied, Entry, ShardData};

/// Slots of a new (or cleared) table.
const MIN_CAPACITY: usize = 256;
const EMPTY: usize = 0;
const TOMBSTONE: usize = 1;

/// A table is rebuilt when more than 4/5 of its slots are in use (blocks
/// and tombstones); the rebuilt one is sized for its blocks to fill 5/9 of
/// it. Between the two, a block costs 16 / 0.8 = 20 to 16 / 0.56 = 29
/// bytes, and a search probes a few slots on average.
const MAX_USED_NUM: usize = 4;
const MAX_USED_DEN: usize = 5;
const REBUILT_LOAD_NUM: usize = 5;
const REBUILT_LOAD_DEN: usize = 9;

/// Slots of a new (or cleared) block array.
const MIN_ARR: usize = 512;
/// A block array of at least this many slots (512 KiB) in which fewer than
/// one slot in [`SHRINK_RATIO`] held a block over as many of its owner's
/// frees as it has slots gives its blocks to the hash table and starts
/// again at [`MIN_ARR`] (see [`sparse_free`] and
/// [`ThreadTable::shrink_array`]).
const SHRINK_MIN_ARR: usize = 1 << 15;
/// The same for a hash table of at least this many slots (64 KiB), which
/// is rebuilt for its blocks (see [`ThreadTable::take`]).
const SHRINK_MIN_SLOTS: usize = 1 << 12;
const SHRINK_RATIO: usize = 8;
/// The owner's block count below which a table (or array) of `capacity`
/// slots is sparse: fewer blocks than one slot in [`SHRINK_RATIO`], for a
/// table of at least `min` slots; 0 (never) for a smaller one.
fn sparse_below(capacity: usize, min: usize) -> usize {
    if capacity >= min {
        capacity / SHRINK_RATIO
    } else {
        0
    }
}

/// Counts an owner's free that left its table (or array) of `capacity`
/// slots sparse (see [`sparse_below`]) in `streak`, the frees since it
/// last rose to the threshold; whether the table has been sparse long
/// enough to shrink: over as many frees as it has slots. A program that
/// builds and drops a large structure again and again refills the table
/// before that, and keeps it, instead of shrinking it at each drop and
/// growing it again at each build on fresh pages (which cost 5 % to 12 %
/// of the benchmark's run). The block counts are the owner's, which
/// include the blocks other threads took out until the owner rebuilds:
/// the test costs one comparison per allocation and free, and errs on
/// keeping the table.
#[cold]
#[inline(never)]
fn sparse_free(streak: &mut usize, capacity: usize) -> bool {
    *streak += 1;
    *streak >= capacity
}

/// A block array slot taken by another thread: a hole outside the free
/// list, reclaimed when the array is rebuilt. Holes are odd, addresses are
/// not.
const REMOTE_HOLE: usize = 3;

/// A hole of the owner's free list, linking to `next` (a slot plus one, or
/// 0 at the end).
#[inline(always)]
fn free_hole(next: usize) -> usize {
    (next << 2) | 1
}

/// Whether a block array slot holds a block.
#[inline(always)]
fn is_block(v: usize) -> bool {
    v != 0 && v & 1 == 0
}

/// The layout of a block array of `capacity` slots: the keys, then the
/// records from the returned offset.
fn arr_layout(capacity: usize) -> Option<(Layout, usize)> {
    let keys = Layout::array::<AtomicUsize>(capacity).ok()?;
    let records = Layout::array::<AtomicU64>(capacity).ok()?;
    keys.extend(records).ok()
}

/// A zeroed block array (no blocks); null if memory ran out. The caller
/// holds the re-entrancy guard.
fn alloc_arr(capacity: usize) -> *mut AtomicUsize {
    debug_assert!(capacity >= MIN_ARR);
    let Some((layout, _)) = arr_layout(capacity) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a non-zero size (`capacity >= MIN_ARR`); zeroed atomics are
    // valid, and a zero key is neither a block nor a linked hole.
    unsafe { std::alloc::alloc_zeroed(layout).cast() }
}

/// # Safety
/// `arr` came from `alloc_arr(capacity)` and nothing uses it any more.
unsafe fn free_arr(arr: *mut AtomicUsize, capacity: usize) {
    if let Some((layout, _)) = arr_layout(capacity) {
        // SAFETY: allocated with this layout (the caller's contract).
        unsafe { std::alloc::dealloc(arr.cast(), layout) };
    }
}

/// The records half of the block array `arr` of `capacity` slots.
///
/// # Safety
/// `arr` came from `alloc_arr(capacity)` and is still allocated.
#[inline(always)]
unsafe fn arr_records(arr: *mut AtomicUsize, capacity: usize) -> *const AtomicU64 {
    // As `arr_layout` computes it, without its overflow checks (it
    // succeeded when the array was made).
    let offset = (capacity * size_of::<AtomicUsize>()).next_multiple_of(align_of::<AtomicU64>());
    // SAFETY: the records start `offset` bytes into the allocation.
    unsafe { arr.cast::<u8>().add(offset).cast() }
}

/// A zeroed array of `capacity` values; null if memory ran out. The
/// caller holds the re-entrancy guard.
///
/// # Safety
/// `capacity` is not zero, and all-zero bytes are a valid `T`.
pub(crate) unsafe fn alloc_zeroed_array<T>(capacity: usize) -> *mut T {
    let Ok(layout) = Layout::array::<T>(capacity) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a non-zero size (the caller's contract).
    unsafe { std::alloc::alloc_zeroed(layout).cast() }
}

/// # Safety
/// `array` came from `alloc_zeroed_array::<T>(capacity)` and nothing uses
/// it any more.
pub(crate) unsafe fn free_array<T>(array: *mut T, capacity: usize) {
    if let Ok(layout) = Layout::array::<T>(capacity) {
        // SAFETY: allocated with this layout (see the caller's contract).
        unsafe { std::alloc::dealloc(array.cast(), layout) };
    }
}

/// One slot: the block's address (or `EMPTY`, `TOMBSTONE`) and
/// `size | tb << 32`.
struct Slot {
    key: AtomicUsize,
    meta: AtomicU64,
}

/// What only the owner (or a thread holding the registry lock while the
/// owner is kept out) touches.
struct Private {
    /// Slots that are not empty: blocks and tombstones.
    used: usize,
    /// Blocks the owner added minus the ones it took out itself; the
    /// table holds `owned - remote_taken` blocks.
    owned: usize,
    /// The array's free list: the first hole's slot plus one, or 0.
    arr_free: usize,
    /// Blocks the owner added to the array minus the ones it took out
    /// itself; the array holds `arr_owned - arr_remote_taken` blocks.
    arr_owned: usize,
    /// The hash table's [`sparse_below`] and sparse streak (see
    /// [`sparse_free`]), and the same for the block array.
    sparse_below: usize,
    sparse_frees: usize,
    arr_sparse_below: usize,
    arr_sparse_frees: usize,
}

/// A thread's table.
pub(crate) struct ThreadTable {
    busy: AtomicBool,
    frozen: AtomicBool,
    /// The slot array and its length. Replaced only by the owner, holding
    /// the registry lock.
    slots: AtomicPtr<Slot>,
    capacity: AtomicUsize,
    /// Accounted bytes the owner added minus what it took back itself.
    current: AtomicU64,
    /// Accounted bytes other threads took out (freeing blocks).
    remote_freed: AtomicU64,
    /// Blocks other threads took out since the table was last rebuilt.
    remote_taken: AtomicUsize,
    /// The thread's blocks with a trailer (see `trailer.rs`), by slot: the
    /// keys (the block's address, a hole of the owner's free list, or
    /// `REMOTE_HOLE`), then the records (see [`arr_records`]). Replaced
    /// only by the owner, holding the registry lock.
    arr: AtomicPtr<AtomicUsize>,
    arr_cap: AtomicUsize,
    /// Slots handed out so far, holes included.
    arr_len: AtomicUsize,
    /// Blocks other threads took out of the array since it was last
    /// rebuilt.
    arr_remote_taken: AtomicUsize,
    /// The thread's allocation history counters (`history.rs`), written
    /// by the owner only, read under the registry lock.
    pub(crate) history: crate::history::Local,
    private: UnsafeCell<Private>,
}

// SAFETY: the shared fields are atomics; `private` is only touched by the
// owner while `busy` or while holding the registry lock (or by a freezer
// while every owner is kept out), as the module documentation explains.
unsafe impl Sync for ThreadTable {}
// SAFETY: as above.
unsafe impl Send for ThreadTable {}

/// Every live table. Its lock also orders remote frees, rebuilds and
/// freezes.
struct Registry {
    tables: Vec<*const ThreadTable>,
}

// SAFETY: the pointers are to tables that stay alive while registered
// (they are unregistered under this lock before being freed).
unsafe impl Send for Registry {}

static REGISTRY: SpinLock<Registry> = SpinLock::new_table(Registry { tables: Vec::new() });

/// Whether `membarrier` works here (decided once at the first `start`).
static MEMBARRIER: AtomicBool = AtomicBool::new(false);

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

/// Registers the process for expedited membarriers (once).
pub(crate) fn init_membarrier() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: a system call with integer arguments; failure is reported
        // through the return value.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                0,
            )
        };
        MEMBARRIER.store(rc == 0, Ordering::Release);
    }
}

fn heavy_barrier() {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if MEMBARRIER.load(Ordering::Acquire) {
        // SAFETY: as in `init_membarrier`.
        let rc =
            unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) };
        if rc == 0 {
            return;
        }
    }
    fence(Ordering::SeqCst);
}

/// Where a probe for `addr` starts in a table of `capacity` slots: the
/// hash scaled to the capacity (which need not be a power of two).
#[inline]
fn home(addr: usize, capacity: usize) -> usize {
    ((u128::from(table::mix(addr as u64)) * capacity as u128) >> 64) as usize
}

#[inline]
fn next(i: usize, capacity: usize) -> usize {
    if i + 1 == capacity { 0 } else { i + 1 }
}

#[inline]
fn pack(size: usize, traceback: u32) -> u64 {
    size as u64 | (u64::from(traceback) << 32)
}

#[inline]
fn unpack(meta: u64) -> Entry {
    Entry {
        size: (meta & 0xffff_ffff) as usize,
        traceback: (meta >> 32) as u32,
    }
}

/// A zeroed (all `EMPTY`) slot array; null if memory ran out. The caller
/// holds the re-entrancy guard.
fn alloc_slots(capacity: usize) -> *mut Slot {
    debug_assert!(capacity >= MIN_CAPACITY);
    // SAFETY: `capacity` is at least `MIN_CAPACITY`, so the size is not
    // zero; zeroed memory is a valid array of empty slots.
    unsafe { alloc_zeroed_array(capacity) }
}

/// The outcome of trying the owner's fast path.
pub(crate) enum Fast<T> {
    Done(T),
    /// A freezer holds the table: wait, then try again.
    Frozen,
    /// Too full: rebuild (`rebuild`), then try again.
    Full,
}

impl ThreadTable {
    /// A new, registered table; `None` if memory ran out. The caller holds
    /// the re-entrancy guard.
    pub(crate) fn create() -> Option<&'static ThreadTable> {
        let slots = alloc_slots(MIN_CAPACITY);
        if slots.is_null() {
            return None;
        }
        let arr = alloc_arr(MIN_ARR);
        if arr.is_null() {
            // SAFETY: just allocated, never shared.
            unsafe { free_array(slots, MIN_CAPACITY) };
            return None;
        }
        let table = Box::new(ThreadTable {
            busy: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            slots: AtomicPtr::new(slots),
            capacity: AtomicUsize::new(MIN_CAPACITY),
            current: AtomicU64::new(0),
            remote_freed: AtomicU64::new(0),
            remote_taken: AtomicUsize::new(0),
            arr: AtomicPtr::new(arr),
            arr_cap: AtomicUsize::new(MIN_ARR),
            arr_len: AtomicUsize::new(0),
            arr_remote_taken: AtomicUsize::new(0),
            history: crate::history::Local::new(),
            private: UnsafeCell::new(Private {
                used: 0,
                owned: 0,
                arr_free: 0,
                arr_owned: 0,
                sparse_below: 0,
                sparse_frees: 0,
                arr_sparse_below: 0,
                arr_sparse_frees: 0,
            }),
        });
        let table: &'static ThreadTable = Box::leak(table);
        let mut registry = REGISTRY.lock();
        if registry.tables.try_reserve(1).is_err() {
            drop(registry);
            // SAFETY: never shared; made by `alloc_slots` and `Box::new`
            // just above.
            unsafe { table.free() };
            return None;
        }
        registry.tables.push(table);
        Some(table)
    }

    /// Frees the slots and the table itself.
    ///
    /// # Safety
    /// The table is unregistered (or was never registered) and nothing
    /// uses it any more.
    unsafe fn free(&'static self) {
        let slots = self.slots.load(Ordering::Relaxed);
        let capacity = self.capacity.load(Ordering::Relaxed);
        // SAFETY: the caller's contract; `slots` has `capacity` slots, and
        // the block array `arr_cap`.
        unsafe {
            free_array(slots, capacity);
            free_arr(
                self.arr.load(Ordering::Relaxed),
                self.arr_cap.load(Ordering::Relaxed),
            );
            self.history.free();
            drop(Box::from_raw((self as *const ThreadTable).cast_mut()));
        }
    }

    /// The slot array.
    #[inline]
    fn slots(&self) -> (&[Slot], usize) {
        let capacity = self.capacity.load(Ordering::Acquire);
        let slots = self.slots.load(Ordering::Acquire);
        // SAFETY: `slots` points to `capacity` slots, and the caller is the
        // owner (who alone replaces them), holds the registry lock (which a
        // replacement needs), or froze the table.
        (
            unsafe { std::slice::from_raw_parts(slots, capacity) },
            capacity,
        )
    }

    /// Enters an owner operation; `false` if frozen (nothing entered).
    #[inline]
    fn enter(&self) -> bool {
        // Never nested: the owner enters only under `GUARD_HOOK`, and a
        // signal handler that interrupts it sees that guard and stays out
        // (an inner `leave` would clear `busy` while the outer operation
        // still changes the table). Checked in every debug build's test.
        debug_assert!(!self.busy.load(Ordering::Relaxed), "nested table operation");
        debug_assert_eq!(
            crate::tls::with(|s| s.guard.get()),
            crate::tls::GUARD_HOOK,
            "a table operation outside a hook"
        );
        self.busy.store(true, Ordering::Relaxed);
        if MEMBARRIER.load(Ordering::Relaxed) {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
        if self.frozen.load(Ordering::Acquire) {
            self.busy.store(false, Ordering::Release);
            return false;
        }
        true
    }

    #[inline]
    fn leave(&self) {
        compiler_fence(Ordering::SeqCst);
        self.busy.store(false, Ordering::Release);
    }

    /// Waits while a freezer holds the table.
    #[cold]
    pub(crate) fn wait_unfrozen(&self) {
        while self.frozen.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }

    /// Adds a block (owner only). `Frozen` or `Full`: the caller waits or
    /// grows, then tries again. `Done(false)`: the epoch changed, the
    /// block is not traced.
    #[inline]
    pub(crate) fn add(&self, addr: usize, size: usize, traceback: u32, epoch: Epoch) -> Fast<bool> {
        if !self.enter() {
            return Fast::Frozen;
        }
        // Entered, no reset can happen before `leave` (a reset freezes
        // first), so an unchanged epoch stays unchanged until then.
        if crate::state::EPOCH.load(Ordering::Relaxed) != epoch {
            self.leave();
            return Fast::Done(false);
        }
        // SAFETY: entered: the owner alone touches `private`.
        let private = unsafe { &mut *self.private.get() };
        let (slots, capacity) = self.slots();
        if (private.used + 1) * MAX_USED_DEN > capacity * MAX_USED_NUM {
            self.leave();
            return Fast::Full;
        }
        // At most 4/5 of the slots are in use, so the probe ends.
        let mut i = home(addr, capacity);
        loop {
            // Acquire: a tombstone may come from another thread's
            // compare-and-swap, which read the slot's size first.
            let key = slots[i].key.load(Ordering::Acquire);
            if key == EMPTY {
                private.used += 1;
                break;
            }
            if key == TOMBSTONE {
                break;
            }
            i = next(i, capacity);
        }
        slots[i]
            .meta
            .store(pack(size, traceback), Ordering::Relaxed);
        slots[i].key.store(addr, Ordering::Release);
        private.owned += 1;
        if private.owned == private.sparse_below {
            // Back at the threshold: a sparse streak starts again.
            private.sparse_frees = 0;
        }
        let current = self.current.load(Ordering::Relaxed);
        self.current
            .store(current.wrapping_add(size as u64), Ordering::Relaxed);
        self.leave();
        Fast::Done(true)
    }

    /// Takes a block out if it is in this table (owner only).
    /// `Done(None)`: not here.
    #[inline(always)]
    pub(crate) fn take(&self, addr: usize) -> Fast<Option<Entry>> {
        if !self.enter() {
            return Fast::Frozen;
        }
        let (slots, capacity) = self.slots();
        let mut i = home(addr, capacity);
        loop {
            let key = slots[i].key.load(Ordering::Acquire);
            if key == addr {
                break;
            }
            if key == EMPTY {
                self.leave();
                return Fast::Done(None);
            }
            i = next(i, capacity);
        }
        let entry = unpack(slots[i].meta.load(Ordering::Relaxed));
        // SAFETY: entered.
        let private = unsafe { &mut *self.private.get() };
        // Nobody else can take this block now: only the thread freeing it
        // would, and that is this one.
        if slots[next(i, capacity)].key.load(Ordering::Relaxed) == EMPTY {
            // The end of a probe run: this slot and the tombstones just
            // before it can be empty again (see the module documentation).
            slots[i].key.store(EMPTY, Ordering::Release);
            private.used -= 1;
            let mut j = i;
            loop {
                j = if j == 0 { capacity - 1 } else { j - 1 };
                // Only live keys change under other threads (they turn into
                // tombstones), so a tombstone read here stays one.
                if j == i || slots[j].key.load(Ordering::Relaxed) != TOMBSTONE {
                    break;
                }
                slots[j].key.store(EMPTY, Ordering::Release);
                private.used -= 1;
            }
        } else {
            slots[i].key.store(TOMBSTONE, Ordering::Release);
        }
        private.owned -= 1;
        // A large table whose blocks went but for a few is rebuilt for
        // those: without it, a burst of allocations freed but for a few
        // would keep the table's size until `clear_traces`.
        let shrink = private.owned < private.sparse_below
            && sparse_free(&mut private.sparse_frees, capacity);
        let current = self.current.load(Ordering::Relaxed);
        self.current
            .store(current.wrapping_sub(entry.size as u64), Ordering::Relaxed);
        self.leave();
        if shrink {
            // Out of memory for the smaller table: this one stays.
            self.rebuild();
        }
        Fast::Done(Some(entry))
    }

    /// The block array's keys and records of the slots handed out so far.
    #[inline(always)]
    fn arr_slots(&self) -> (&[AtomicUsize], &[AtomicU64]) {
        let len = self.arr_len.load(Ordering::Acquire);
        let arr = self.arr.load(Ordering::Acquire);
        let capacity = self.arr_cap.load(Ordering::Acquire);
        // SAFETY: `arr` holds `arr_cap >= len` slots; it is replaced only
        // by the owner holding the registry lock, and the caller is the
        // owner, holds that lock, or froze the table.
        unsafe {
            (
                std::slice::from_raw_parts(arr, len),
                std::slice::from_raw_parts(arr_records(arr, capacity), len),
            )
        }
    }

    /// Files a block with a trailer in the block array (owner only): its
    /// slot. `Frozen` or `Full`: the caller waits or calls
    /// [`ThreadTable::make_room`], then tries again. `Done(None)`: the
    /// epoch changed, the block is not traced.
    #[inline(always)]
    pub(crate) fn add_block(
        &self,
        addr: usize,
        size: usize,
        traceback: u32,
        epoch: Epoch,
    ) -> Fast<Option<u32>> {
        if !self.enter() {
            return Fast::Frozen;
        }
        if crate::state::EPOCH.load(Ordering::Relaxed) != epoch {
            self.leave();
            return Fast::Done(None);
        }
        // SAFETY: entered: the owner alone touches `private`.
        let private = unsafe { &mut *self.private.get() };
        let arr = self.arr.load(Ordering::Relaxed);
        let capacity = self.arr_cap.load(Ordering::Relaxed);
        let slot = if private.arr_free != 0 {
            let slot = private.arr_free - 1;
            // SAFETY: free-list holes are below `arr_len <= arr_cap`.
            private.arr_free = unsafe { &*arr.add(slot) }.load(Ordering::Relaxed) >> 2;
            slot
        } else {
            let len = self.arr_len.load(Ordering::Relaxed);
            if len == capacity {
                self.leave();
                return Fast::Full;
            }
            // A searcher that sees the new length before the address reads
            // 0 there, which is not a block.
            self.arr_len.store(len + 1, Ordering::Release);
            len
        };
        // SAFETY: `slot < arr_len <= arr_cap`. The record first: the key's
        // release store publishes it to searchers and freezers.
        unsafe {
            (*arr_records(arr, capacity).add(slot)).store(pack(size, traceback), Ordering::Relaxed);
            (*arr.add(slot)).store(addr, Ordering::Release);
        }
        private.arr_owned += 1;
        if private.arr_owned == private.arr_sparse_below {
            private.arr_sparse_frees = 0;
        }
        let current = self.current.load(Ordering::Relaxed);
        self.current
            .store(current.wrapping_add(size as u64), Ordering::Relaxed);
        self.leave();
        // The array never has more than `u32::MAX - 1` slots (see
        // `make_room`), so the slot fits, and differs from `NO_SLOT`.
        Fast::Done(Some(slot as u32))
    }

    /// Takes the block at `addr` out of the block array if it is at `slot`
    /// (owner only): its record. `Done(None)`: not there.
    #[inline(always)]
    pub(crate) fn take_block(&self, addr: usize, slot: usize) -> Fast<Option<Entry>> {
        if !self.enter() {
            return Fast::Frozen;
        }
        let len = self.arr_len.load(Ordering::Relaxed);
        let arr = self.arr.load(Ordering::Relaxed);
        // SAFETY: checked below `arr_len <= arr_cap` first.
        if slot >= len || unsafe { &*arr.add(slot) }.load(Ordering::Relaxed) != addr {
            self.leave();
            return Fast::Done(None);
        }
        let capacity = self.arr_cap.load(Ordering::Relaxed);
        // SAFETY: `slot < len <= arr_cap`.
        let entry =
            unpack(unsafe { &*arr_records(arr, capacity).add(slot) }.load(Ordering::Relaxed));
        // SAFETY: entered.
        let private = unsafe { &mut *self.private.get() };
        // Nobody else can take this block now: only the thread freeing it
        // would, and that is this one.
        // SAFETY: `slot < len`.
        unsafe { &*arr.add(slot) }.store(free_hole(private.arr_free), Ordering::Release);
        private.arr_free = slot + 1;
        private.arr_owned -= 1;
        // As in `take`.
        let shrink = private.arr_owned < private.arr_sparse_below
            && sparse_free(&mut private.arr_sparse_frees, capacity);
        let current = self.current.load(Ordering::Relaxed);
        self.current
            .store(current.wrapping_sub(entry.size as u64), Ordering::Relaxed);
        self.leave();
        if shrink {
            // Out of memory for the hash table: the array stays as it is.
            self.shrink_array();
        }
        Fast::Done(Some(entry))
    }

    /// Makes room in a full block array (owner only, not entered), without
    /// moving any block from its slot (see the module documentation): the
    /// holes other threads left join the free list, and when they are
    /// fewer than 1/8 of the slots the array is copied into one 7/5 as
    /// large. `false` if memory ran out.
    ///
    /// Without holes, the blocks fill 5/7 to all of the array, so a block
    /// costs 16 to 22.4 bytes of array (an 8-byte key and an 8-byte record)
    /// besides its trailer. After many frees the array keeps its size
    /// (its holes are reused) until `clear_traces` or `stop`, unless it is
    /// large and stays nearly empty (see [`ThreadTable::shrink_array`]).
    #[cold]
    pub(crate) fn make_room(&self) -> bool {
        // The registry lock keeps out other threads' searches and
        // freezers, the only others that read the array.
        let registry = REGISTRY.lock();
        // SAFETY: the owner, holding the registry lock.
        let private = unsafe { &mut *self.private.get() };
        let remote = self.arr_remote_taken.load(Ordering::Relaxed);
        let old_capacity = self.arr_cap.load(Ordering::Relaxed);
        if remote * 8 < old_capacity {
            let capacity =
                (old_capacity + old_capacity * 2 / 5).min(crate::trailer::NO_SLOT as usize);
            if capacity <= old_capacity {
                return false;
            }
            let fresh = alloc_arr(capacity);
            if fresh.is_null() {
                return false;
            }
            let (keys, records) = self.arr_slots();
            // SAFETY: `fresh` has `capacity` slots, more than `keys.len()`.
            let fresh_records = unsafe { arr_records(fresh, capacity) };
            for (i, (k, r)) in keys.iter().zip(records).enumerate() {
                // SAFETY: `i < keys.len() < capacity`.
                unsafe {
                    (*fresh_records.add(i)).store(r.load(Ordering::Relaxed), Ordering::Relaxed);
                    (*fresh.add(i)).store(k.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
            let old = self.arr.swap(fresh, Ordering::Release);
            self.arr_cap.store(capacity, Ordering::Release);
            private.arr_sparse_below = sparse_below(capacity, SHRINK_MIN_ARR);
            private.arr_sparse_frees = 0;
            // SAFETY: replaced above; other threads read the array only
            // under the registry lock (held until the end) or while frozen.
            unsafe { free_arr(old, old_capacity) };
        }
        if remote > 0 {
            let (keys, _) = self.arr_slots();
            for (i, k) in keys.iter().enumerate() {
                if k.load(Ordering::Relaxed) == REMOTE_HOLE {
                    k.store(free_hole(private.arr_free), Ordering::Relaxed);
                    private.arr_free = i + 1;
                }
            }
            private.arr_owned -= remote;
            self.arr_remote_taken.store(0, Ordering::Relaxed);
        }
        drop(registry);
        true
    }

    /// Rebuilds the table (owner only, not entered) with room for its
    /// blocks and without tombstones: larger when it is full, smaller when
    /// most of its blocks went (see [`ThreadTable::take`]). `false` if
    /// memory ran out.
    #[cold]
    #[inline(never)]
    pub(crate) fn rebuild(&self) -> bool {
        // The registry lock keeps out other threads' searches and
        // freezers, the only others that read the slots.
        let registry = REGISTRY.lock();
        // SAFETY: the owner, holding the registry lock.
        let private = unsafe { &mut *self.private.get() };
        // As in `shrink_array`: a shrink that ran out of memory is tried
        // again only after as many sparse frees.
        private.sparse_frees = 0;
        let Some((old, old_capacity)) = self.rehash(private, std::iter::empty(), 0) else {
            return false;
        };
        drop(registry);
        // SAFETY: replaced by `rehash`; other threads read slots only under
        // the registry lock (released after the replacement) or while
        // frozen.
        unsafe { free_array(old, old_capacity) };
        true
    }

    /// Replaces the slot array by one sized for its blocks and the `extra`
    /// blocks of `more` (address and packed record), without tombstones.
    /// Returns the old array and its capacity, for the caller to free
    /// once it released the registry lock; `None` if memory ran out
    /// (nothing changed). The caller is the owner, not entered, holding
    /// the registry lock.
    fn rehash(
        &self,
        private: &mut Private,
        more: impl Iterator<Item = (usize, u64)>,
        extra: usize,
    ) -> Option<(*mut Slot, usize)> {
        let live = private.owned - self.remote_taken.load(Ordering::Relaxed);
        let (old, old_capacity) = self.slots();
        let capacity = ((live + extra) * REBUILT_LOAD_DEN / REBUILT_LOAD_NUM + 1).max(MIN_CAPACITY);
        let fresh = alloc_slots(capacity);
        if fresh.is_null() {
            return None;
        }
        // SAFETY: just allocated with `capacity` slots, not shared yet.
        let new = unsafe { std::slice::from_raw_parts(fresh, capacity) };
        let mut blocks = 0;
        let kept = old.iter().filter_map(|slot| {
            let key = slot.key.load(Ordering::Relaxed);
            (key > TOMBSTONE).then(|| (key, slot.meta.load(Ordering::Relaxed)))
        });
        for (key, meta) in kept.chain(more) {
            // At most 5/9 of the slots fill, so the probe ends.
            let mut i = home(key, capacity);
            while new[i].key.load(Ordering::Relaxed) != EMPTY {
                i = next(i, capacity);
            }
            new[i].meta.store(meta, Ordering::Relaxed);
            new[i].key.store(key, Ordering::Relaxed);
            blocks += 1;
        }
        debug_assert_eq!(blocks, live + extra);
        let old_ptr = self.slots.swap(fresh, Ordering::Release);
        self.capacity.store(capacity, Ordering::Release);
        private.used = blocks;
        private.owned = blocks;
        private.sparse_below = sparse_below(capacity, SHRINK_MIN_SLOTS);
        private.sparse_frees = 0;
        self.remote_taken.store(0, Ordering::Relaxed);
        Some((old_ptr, old_capacity))
    }

    /// Gives the block array's blocks to the hash table and replaces the
    /// array by an empty one of [`MIN_ARR`] slots (owner only, not
    /// entered), once fewer than one slot in [`SHRINK_RATIO`] of a large
    /// array has held a block for a long while ([`sparse_free`]): the
    /// array never moves a block to another slot, so without this a burst
    /// of allocations that the program then frees but for a few would keep
    /// the whole array until `clear_traces`.
    ///
    /// The blocks keep their trailers, which now name slots that do not
    /// hold them, as after `clear_traces`: their owner's free finds the
    /// slot empty or another block's and looks in its hash table next
    /// (`state::remove_trailed`), and another thread's free searches the
    /// hash tables after the arrays (`take_remote`). The cost, once per
    /// array that emptied, is a pass over the array, paid for by the frees
    /// that emptied it. `false` if memory ran out (nothing changed).
    #[cold]
    #[inline(never)]
    fn shrink_array(&self) -> bool {
        // As in `make_room`: other threads read the array only under this
        // lock or while frozen.
        let registry = REGISTRY.lock();
        // SAFETY: the owner, holding the registry lock.
        let private = unsafe { &mut *self.private.get() };
        let capacity = self.arr_cap.load(Ordering::Relaxed);
        let blocks = private.arr_owned - self.arr_remote_taken.load(Ordering::Relaxed);
        // Whatever happens, the next shrink needs as many sparse frees
        // again (after running out of memory, not one attempt per free).
        private.arr_sparse_frees = 0;
        if capacity < SHRINK_MIN_ARR || blocks * SHRINK_RATIO >= capacity {
            return true;
        }
        let fresh = alloc_arr(MIN_ARR);
        if fresh.is_null() {
            return false;
        }
        let (keys, records) = self.arr_slots();
        let arrayed = keys.iter().zip(records).filter_map(|(k, r)| {
            let k = k.load(Ordering::Relaxed);
            is_block(k).then(|| (k, r.load(Ordering::Relaxed)))
        });
        let Some((old_slots, old_capacity)) = self.rehash(private, arrayed, blocks) else {
            drop(registry);
            // SAFETY: just allocated, never shared.
            unsafe { free_arr(fresh, MIN_ARR) };
            return false;
        };
        let old_arr = self.arr.swap(fresh, Ordering::Release);
        self.arr_cap.store(MIN_ARR, Ordering::Release);
        self.arr_len.store(0, Ordering::Release);
        self.arr_remote_taken.store(0, Ordering::Relaxed);
        private.arr_free = 0;
        private.arr_owned = 0;
        private.arr_sparse_below = 0;
        drop(registry);
        // SAFETY: both replaced above; other threads read them only under
        // the registry lock, released after the replacement, or while
        // frozen.
        unsafe {
            free_array(old_slots, old_capacity);
            free_arr(old_arr, capacity);
        }
        true
    }

    /// Moves every block into the shared table and unregisters the table
    /// (thread exit, under the re-entrancy guard). The memory is freed.
    ///
    /// Every shard lock and the registry lock are held throughout, as a
    /// snapshot holds them: no snapshot, other thread's free or `clear`
    /// (which may replace the slots) sees the blocks half moved.
    pub(crate) fn retire(&'static self) {
        let mut shards = table::AllShards::lock();
        let mut registry = REGISTRY.lock();
        for (addr, entry) in self.blocks() {
            // A failed insert (out of memory) drops the trace.
            let _ = shards
                .of(addr)
                .insert(0, addr, entry, entry.size as u64, |size| size as u64);
        }
        // The thread's history counts go on in the shared counters, under
        // the lock every reader of the tables holds.
        self.history.merge_into_shared();
        registry.tables.retain(|&t| !std::ptr::eq(t, self));
        drop(registry);
        drop(shards);
        // SAFETY: unregistered above under the registry lock, so no other
        // thread holds it; its owner is exiting.
        unsafe { self.free() };
    }

    /// Searches for `addr` (the table is frozen, or the caller holds the
    /// registry lock): its slot index.
    fn find(&self, addr: usize) -> Option<usize> {
        let (slots, capacity) = self.slots();
        let mut i = home(addr, capacity);
        loop {
            match slots[i].key.load(Ordering::Acquire) {
                k if k == addr => return Some(i),
                EMPTY => return None,
                _ => i = next(i, capacity),
            }
        }
    }

    /// The table's blocks, as `(address, entry)`: the hash table's, then
    /// the block array's (the table is frozen, or the caller holds the
    /// registry lock).
    fn blocks(&self) -> impl Iterator<Item = (usize, Entry)> + '_ {
        let (slots, _) = self.slots();
        let hashed = slots.iter().filter_map(|slot| {
            let key = slot.key.load(Ordering::Acquire);
            (key > TOMBSTONE).then(|| (key, unpack(slot.meta.load(Ordering::Relaxed))))
        });
        let (keys, records) = self.arr_slots();
        let arrayed = keys.iter().zip(records).filter_map(|(k, r)| {
            let k = k.load(Ordering::Acquire);
            is_block(k).then(|| (k, unpack(r.load(Ordering::Relaxed))))
        });
        hashed.chain(arrayed)
    }

    /// Blocks in the table: in the hash table and in the block array.
    fn block_count(&self) -> usize {
        // SAFETY: only called on a frozen table with no owner inside, with
        // the registry lock held (see `Frozen`).
        let private = unsafe { &*self.private.get() };
        private.owned - self.remote_taken.load(Ordering::Acquire) + private.arr_owned
            - self.arr_remote_taken.load(Ordering::Acquire)
    }
}

/// Takes `addr` out of whichever other thread's table holds it, for a
/// thread that is not its owner. The caller holds the block's shard lock.
/// A block with a trailer (`slot`: the slot its trailer names) is looked
/// for in the block arrays at that slot first.
pub(crate) fn take_remote(
    addr: usize,
    skip: *const ThreadTable,
    slot: Option<u32>,
) -> Option<Entry> {
    let registry = REGISTRY.lock();
    if let Some(slot) = slot {
        let slot = slot as usize;
        for &t in &registry.tables {
            if std::ptr::eq(t, skip) {
                continue;
            }
            // SAFETY: as below.
            let t = unsafe { &*t };
            let (keys, records) = t.arr_slots();
            let (Some(k), Some(r)) = (keys.get(slot), records.get(slot)) else {
                continue;
            };
            // Read before the compare-and-swap, as below (the owner reuses
            // a remote hole only under the registry lock, but the record
            // is the block's only while its key is).
            let record = r.load(Ordering::Relaxed);
            if k.compare_exchange(addr, REMOTE_HOLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let entry = unpack(record);
                t.remote_freed
                    .fetch_add(entry.size as u64, Ordering::AcqRel);
                t.arr_remote_taken.fetch_add(1, Ordering::Release);
                return Some(entry);
            }
        }
    }
    for &t in &registry.tables {
        if std::ptr::eq(t, skip) {
            continue;
        }
        // SAFETY: registered tables are alive while the registry lock is
        // held, and their slots are not replaced meanwhile.
        let t = unsafe { &*t };
        let Some(i) = t.find(addr) else {
            continue;
        };
        let (slots, _) = t.slots();
        // Read before the compare-and-swap: once the slot is a tombstone,
        // its owner may reuse it.
        let meta = slots[i].meta.load(Ordering::Relaxed);
        if slots[i]
            .key
            .compare_exchange(addr, TOMBSTONE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let entry = unpack(meta);
            t.remote_freed
                .fetch_add(entry.size as u64, Ordering::AcqRel);
            t.remote_taken.fetch_add(1, Ordering::Release);
            return Some(entry);
        }
    }
    None
}

/// Takes the block at `addr` out of whichever block array lists it
/// (`track` and `untrack` of the heap), by a scan of every array under the
/// registry lock, which keeps owners from growing them and threads from
/// exiting meanwhile. `addr` may be any address: the block's memory is not
/// read. Its trailer keeps naming the slot, which no longer holds it.
pub(crate) fn take_trailed_by_scan(addr: usize) -> Option<Entry> {
    let registry = REGISTRY.lock();
    for &t in &registry.tables {
        // SAFETY: registered tables are alive while the registry lock is
        // held, and their arrays are not replaced meanwhile.
        let t = unsafe { &*t };
        let (keys, records) = t.arr_slots();
        for (k, r) in keys.iter().zip(records) {
            if k.load(Ordering::Relaxed) == addr {
                let record = r.load(Ordering::Relaxed);
                if k.compare_exchange(addr, REMOTE_HOLE, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    let entry = unpack(record);
                    t.remote_freed
                        .fetch_add(entry.size as u64, Ordering::AcqRel);
                    t.arr_remote_taken.fetch_add(1, Ordering::Release);
                    return Some(entry);
                }
            }
        }
    }
    None
}

/// Every table held still; see the module documentation. Unfreezes when
/// dropped.
pub(crate) struct Frozen {
    registry: crate::lock::SpinGuard<'static, Registry>,
}

/// Freezes every table. The caller holds every shard lock.
pub(crate) fn freeze_all() -> Frozen {
    let registry = REGISTRY.lock();
    freeze(&registry);
    Frozen { registry }
}

fn freeze(registry: &Registry) {
    for &t in &registry.tables {
        // SAFETY: registered, and the registry is locked.
        unsafe { &*t }.frozen.store(true, Ordering::Relaxed);
    }
    heavy_barrier();
    fence(Ordering::SeqCst);
    for &t in &registry.tables {
        // SAFETY: as above.
        let t = unsafe { &*t };
        while t.busy.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }
}

fn unfreeze(registry: &Registry) {
    for &t in &registry.tables {
        // SAFETY: registered, and the registry is locked.
        unsafe { &*t }.frozen.store(false, Ordering::Release);
    }
}

/// `fork()` "prepare": locks the registry and freezes every table. The
/// caller holds every shard lock.
pub(crate) fn fork_prepare() {
    REGISTRY.raw_lock();
    // SAFETY: locked just above.
    freeze(unsafe { REGISTRY.data_unchecked() });
}

/// `fork()` "parent": undoes [`fork_prepare`].
///
/// # Safety
/// `fork_prepare` ran on this thread and was not undone.
pub(crate) unsafe fn fork_parent() {
    // SAFETY: the registry is locked by `fork_prepare`.
    unfreeze(unsafe { REGISTRY.data_unchecked() });
    // SAFETY: as above.
    unsafe { REGISTRY.raw_unlock() };
}

/// `fork()` "child": the other threads' tables have no owner any more;
/// their blocks move into the shared table (whose shard locks the caller
/// holds, through `shard_data`) and they are forgotten. Their memory is
/// left alone: it belongs to a heap the child inherited, and freeing here
/// would be the only allocator call in a fork handler.
///
/// # Safety
/// `fork_prepare` ran before the fork; the caller holds every shard lock.
pub(crate) unsafe fn fork_child(
    keep: *const ThreadTable,
    shard_data: &mut dyn FnMut(usize) -> *mut ShardData,
) {
    // SAFETY: the registry is locked by `fork_prepare`; only this thread
    // exists.
    let registry = unsafe { REGISTRY.data_unchecked() };
    for &t in &registry.tables {
        if std::ptr::eq(t, keep) {
            continue;
        }
        // SAFETY: registered.
        let t = unsafe { &*t };
        for (addr, e) in t.blocks() {
            // SAFETY: the caller holds every shard lock.
            let data = unsafe { &mut *shard_data(addr) };
            let _ = data.insert(0, addr, e, e.size as u64, |size| size as u64);
        }
        t.history.merge_into_shared();
    }
    registry.tables.retain(|&t| std::ptr::eq(t, keep));
    unfreeze(registry);
    // SAFETY: the child's only thread took it in `fork_prepare`.
    unsafe { REGISTRY.force_unlock() };
}

/// Runs `f` with every registered table, holding the registry lock (which
/// keeps them alive). The caller holds the re-entrancy guard.
pub(crate) fn with_tables<R>(f: impl FnOnce(&mut dyn Iterator<Item = &ThreadTable>) -> R) -> R {
    let registry = REGISTRY.lock();
    // SAFETY: registered tables live while the registry is locked.
    let mut tables = registry.tables.iter().map(|&t| unsafe { &*t });
    f(&mut tables)
}

impl Frozen {
    /// Every registered table.
    pub(crate) fn tables(&self) -> impl Iterator<Item = &ThreadTable> {
        // SAFETY: registered tables live while the registry is locked,
        // which `self` does.
        self.registry.tables.iter().map(|&t| unsafe { &*t })
    }

    /// Bytes the tables use: hash tables and block arrays.
    pub(crate) fn memory(&self) -> usize {
        self.tables()
            .map(|t| {
                size_of::<ThreadTable>()
                    + t.capacity.load(Ordering::Acquire) * size_of::<Slot>()
                    + t.arr_cap.load(Ordering::Acquire)
                        * (size_of::<AtomicUsize>() + size_of::<AtomicU64>())
            })
            .sum()
    }

    /// Bytes of the tables' history counters (`history::Local`), which
    /// grow with the tracebacks each thread counted, not with its blocks.
    pub(crate) fn history_memory(&self) -> usize {
        self.tables().map(|t| t.history.memory()).sum()
    }

    /// Number of blocks in the block arrays: the traced blocks with a
    /// trailer (see `trailer.rs`).
    pub(crate) fn trailed_len(&self) -> usize {
        self.tables()
            .map(|t| {
                // SAFETY: frozen with no owner inside, and the registry
                // lock keeps out remote frees and rebuilds.
                let private = unsafe { &*t.private.get() };
                private.arr_owned - t.arr_remote_taken.load(Ordering::Acquire)
            })
            .sum()
    }

    /// Traced bytes in the tables.
    pub(crate) fn current(&self) -> u64 {
        self.tables()
            .map(|t| {
                t.current
                    .load(Ordering::Acquire)
                    .wrapping_sub(t.remote_freed.load(Ordering::Acquire))
            })
            .fold(0u64, u64::wrapping_add)
    }

    /// Number of blocks in the tables, from their counts: a snapshot
    /// holds every lock while it copies, and counting by scanning every
    /// slot would double that time.
    pub(crate) fn len(&self) -> usize {
        self.tables().map(ThreadTable::block_count).sum()
    }

    /// Appends every block to `out`.
    pub(crate) fn copy_into(&self, out: &mut Vec<Copied>) {
        for t in self.tables() {
            out.extend(t.blocks().map(|(_, e)| Copied {
                domain: 0,
                size: e.size as u64,
                traceback: e.traceback,
            }));
        }
    }

    /// Looks a block up.
    pub(crate) fn get(&self, addr: usize) -> Option<Entry> {
        self.tables().find_map(|t| {
            if let Some(i) = t.find(addr) {
                return Some(unpack(t.slots().0[i].meta.load(Ordering::Relaxed)));
            }
            let (keys, records) = t.arr_slots();
            keys.iter()
                .position(|k| k.load(Ordering::Relaxed) == addr)
                .map(|i| unpack(records[i].load(Ordering::Relaxed)))
        })
    }

    /// Empties every table (`clear_traces`, `stop`); large ones shrink
    /// back to their first size. The caller holds the re-entrancy guard.
    pub(crate) fn clear(&self) {
        for t in self.tables() {
            let (slots, capacity) = t.slots();
            let fresh = if capacity > MIN_CAPACITY {
                alloc_slots(MIN_CAPACITY)
            } else {
                std::ptr::null_mut()
            };
            if fresh.is_null() {
                for slot in slots {
                    slot.key.store(EMPTY, Ordering::Relaxed);
                }
            } else {
                let old = t.slots.swap(fresh, Ordering::Release);
                t.capacity.store(MIN_CAPACITY, Ordering::Release);
                // SAFETY: replaced above; frozen, with the registry locked,
                // nobody else reads the old slots.
                unsafe { free_array(old, capacity) };
            }
            let arr_capacity = t.arr_cap.load(Ordering::Relaxed);
            let fresh = if arr_capacity > MIN_ARR {
                alloc_arr(MIN_ARR)
            } else {
                std::ptr::null_mut()
            };
            if fresh.is_null() {
                for k in t.arr_slots().0 {
                    k.store(0, Ordering::Relaxed);
                }
            } else {
                let old = t.arr.swap(fresh, Ordering::Release);
                t.arr_cap.store(MIN_ARR, Ordering::Release);
                // SAFETY: replaced above; frozen, with the registry locked,
                // nobody else reads the old array.
                unsafe { free_arr(old, arr_capacity) };
            }
            // The blocks keep their trailers; a free finds no block at the
            // slot they name (or another block there) and is not counted.
            t.arr_len.store(0, Ordering::Release);
            t.arr_remote_taken.store(0, Ordering::Relaxed);
            t.current.store(0, Ordering::Relaxed);
            t.remote_freed.store(0, Ordering::Relaxed);
            t.remote_taken.store(0, Ordering::Relaxed);
            // SAFETY: frozen with no owner inside (see `freeze_all`).
            let private = unsafe { &mut *t.private.get() };
            private.used = 0;
            private.owned = 0;
            private.arr_free = 0;
            private.arr_owned = 0;
            private.sparse_below = sparse_below(t.slots().1, SHRINK_MIN_SLOTS);
            private.sparse_frees = 0;
            private.arr_sparse_below =
                sparse_below(t.arr_cap.load(Ordering::Relaxed), SHRINK_MIN_ARR);
            private.arr_sparse_frees = 0;
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        unfreeze(&self.registry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adds a block, growing the table when it is full.
    fn add(t: &ThreadTable, addr: usize, size: usize, epoch: Epoch) {
        loop {
            // Table operations run under `GUARD_HOOK` (see `enter`).
            match crate::tls::with(|s| crate::tls::hook(s, || t.add(addr, size, 7, epoch))) {
                Fast::Done(added) => {
                    assert!(added, "the epoch did not change");
                    return;
                }
                Fast::Full => assert!(t.rebuild(), "memory for a larger table"),
                Fast::Frozen => t.wait_unfrozen(),
            }
        }
    }

    fn take(t: &ThreadTable, addr: usize) -> Option<Entry> {
        loop {
            match crate::tls::with(|s| crate::tls::hook(s, || t.take(addr))) {
                Fast::Done(found) => return found,
                Fast::Frozen => t.wait_unfrozen(),
                Fast::Full => unreachable!("take never reports a full table"),
            }
        }
    }

    #[test]
    fn churn_keeps_the_table_small_and_every_block_findable() {
        let epoch = crate::state::EPOCH.load(Ordering::Relaxed);
        let t = ThreadTable::create().unwrap();
        let addr = |i: usize| 0x10_0000 + i * 48;
        let size = |i: usize| i % 100 + 1;
        const LIVE: usize = 10_000;
        for i in 0..LIVE {
            add(t, addr(i), size(i), epoch);
        }
        // A queue of 10,000 live blocks: the oldest goes, a new one comes,
        // which leaves tombstones all over the table.
        for i in LIVE..20 * LIVE {
            let old = i - LIVE;
            let entry = take(t, addr(old)).expect("a live block is found");
            assert_eq!((entry.size, entry.traceback), (size(old), 7));
            add(t, addr(i), size(i), epoch);
        }
        // Rebuilt for 10,000 blocks to fill 5/9 of it, at most.
        let capacity = t.capacity.load(Ordering::Relaxed);
        assert!(capacity <= LIVE * 9 / 5 + 1, "{capacity} slots");
        let live: Vec<(usize, Entry)> = t.blocks().collect();
        assert_eq!(live.len(), LIVE);
        for i in 19 * LIVE..20 * LIVE {
            assert!(t.find(addr(i)).is_some(), "block {i}");
        }
        assert!(t.find(addr(19 * LIVE - 1)).is_none());
        assert!(take(t, addr(5)).is_none(), "a freed block is gone");
        for i in 19 * LIVE..20 * LIVE {
            assert!(take(t, addr(i)).is_some());
        }
        assert_eq!(t.blocks().count(), 0);
        // Empty: nothing moves to the shared table.
        t.retire();
    }

    #[test]
    fn a_large_hash_table_that_stays_nearly_empty_shrinks() {
        let epoch = crate::state::EPOCH.load(Ordering::Relaxed);
        let t = ThreadTable::create().unwrap();
        let addr = |i: usize| 0x20_0000 + i * 48;
        const N: usize = 40_000;
        for i in 0..N {
            add(t, addr(i), i % 50 + 1, epoch);
        }
        let capacity = t.capacity.load(Ordering::Relaxed);
        assert!(capacity >= SHRINK_MIN_SLOTS, "{capacity}");
        for i in (0..N).filter(|i| i % 100 != 0) {
            assert_eq!(take(t, addr(i)).map(|e| e.size), Some(i % 50 + 1));
        }
        // In a sparse table a removal mostly empties its slot instead of
        // leaving a tombstone, so no rebuild for tombstones comes: the
        // table shrinks once it has stayed sparse over as many frees as it
        // has slots.
        assert_eq!(t.capacity.load(Ordering::Relaxed), capacity);
        let mut churn = 0;
        while t.capacity.load(Ordering::Relaxed) == capacity {
            let a = 0x9000_0000 + (churn % 1000) * 48;
            add(t, a, 8, epoch);
            assert_eq!(take(t, a).map(|e| e.size), Some(8));
            churn += 1;
            assert!(churn <= capacity, "no shrink after {churn} frees");
        }
        let kept: Vec<usize> = (0..N).step_by(100).collect();
        let small = t.capacity.load(Ordering::Relaxed);
        assert!(small <= kept.len() * 2, "{small} slots");
        for &i in &kept {
            assert_eq!(take(t, addr(i)).map(|e| e.size), Some(i % 50 + 1));
        }
        assert_eq!(t.blocks().count(), 0);
        t.retire();
    }

    /// Files a block in the block array, making room when it is full.
    fn add_block(t: &ThreadTable, addr: usize, size: usize, epoch: Epoch) -> u32 {
        loop {
            match crate::tls::with(|s| crate::tls::hook(s, || t.add_block(addr, size, 7, epoch))) {
                Fast::Done(Some(slot)) => return slot,
                Fast::Done(None) => panic!("the epoch did not change"),
                Fast::Full => assert!(t.make_room(), "memory for a larger array"),
                Fast::Frozen => t.wait_unfrozen(),
            }
        }
    }

    fn take_block(t: &ThreadTable, addr: usize, slot: u32) -> Option<Entry> {
        loop {
            match crate::tls::with(|s| crate::tls::hook(s, || t.take_block(addr, slot as usize))) {
                Fast::Done(found) => return found,
                Fast::Frozen => t.wait_unfrozen(),
                Fast::Full => unreachable!("take_block never reports a full array"),
            }
        }
    }

    #[test]
    fn the_block_array_grows_and_reuses_holes_without_moving_blocks() {
        let epoch = crate::state::EPOCH.load(Ordering::Relaxed);
        let t = ThreadTable::create().unwrap();
        let addr = |i: usize| 0x20_0000 + i * 64;
        // Slots in allocation order, through several growths: each block
        // stays at its slot with its record.
        let slots: Vec<u32> = (0..3000)
            .map(|i| add_block(t, addr(i), i + 1, epoch))
            .collect();
        assert_eq!(slots, (0..3000).collect::<Vec<u32>>());
        let capacity = t.arr_cap.load(Ordering::Relaxed);
        assert!(
            (3000..3000 * 7 / 5 + MIN_ARR).contains(&capacity),
            "{capacity}"
        );
        assert!(take_block(t, addr(1), 3).is_none(), "not at that slot");
        let mut live: Vec<(usize, u32)> = Vec::new();
        for i in 0..3000usize {
            if i % 2 == 0 {
                let entry = take_block(t, addr(i), i as u32).expect("at its slot");
                assert_eq!((entry.size, entry.traceback), (i + 1, 7));
            } else if i < 1000 {
                // Another thread's free (no table skipped).
                let entry = take_remote(addr(i), std::ptr::null(), Some(i as u32));
                assert_eq!(entry.map(|e| e.size), Some(i + 1), "block {i}");
            } else {
                live.push((addr(i), i as u32));
            }
        }
        // The owner's holes are reused first, then the array fills up to
        // its capacity, then the other threads' holes are reclaimed instead
        // of growing it.
        let mut next = 3000;
        for _ in 0..1500 + (capacity - 3000) {
            let slot = add_block(t, addr(next), 1, epoch);
            assert!(slot.is_multiple_of(2) || slot >= 3000, "slot {slot}");
            live.push((addr(next), slot));
            next += 1;
        }
        let slot = add_block(t, addr(next), 1, epoch);
        assert!(
            !slot.is_multiple_of(2) && slot < 1000,
            "a reclaimed hole, not {slot}"
        );
        live.push((addr(next), slot));
        assert_eq!(t.arr_cap.load(Ordering::Relaxed), capacity, "not grown");
        assert_eq!(t.blocks().count(), live.len());
        for (a, slot) in live {
            assert!(take_block(t, a, slot).is_some(), "{a:#x} at {slot}");
        }
        assert_eq!(t.blocks().count(), 0);
        t.retire();
    }

    #[test]
    fn a_large_array_that_empties_gives_its_last_blocks_to_the_hash_table() {
        let epoch = crate::state::EPOCH.load(Ordering::Relaxed);
        let t = ThreadTable::create().unwrap();
        let addr = |i: usize| 0x40_0000 + i * 64;
        let size = |i: usize| i % 100 + 1;
        const N: usize = 50_000;
        let slots: Vec<u32> = (0..N)
            .map(|i| add_block(t, addr(i), size(i), epoch))
            .collect();
        let capacity = t.arr_cap.load(Ordering::Relaxed);
        assert!(capacity >= SHRINK_MIN_ARR, "{capacity}");
        // Every block but one in 100 is freed, one in 20 of them by another
        // thread (no table skipped). (The owner's count of its blocks
        // includes those until it rebuilds: with many more of them the
        // array would not count as sparse.)
        let kept: Vec<usize> = (0..N).step_by(100).collect();
        for i in (0..N).filter(|i| i % 100 != 0) {
            let entry = if i % 20 == 1 {
                take_remote(addr(i), std::ptr::null(), Some(slots[i]))
            } else {
                take_block(t, addr(i), slots[i])
            };
            assert_eq!(entry.map(|e| e.size), Some(size(i)), "block {i}");
        }
        // Sparse for a few thousand frees only: the array keeps its size.
        assert_eq!(t.arr_cap.load(Ordering::Relaxed), capacity);
        // The thread goes on with temporaries for a while, then allocates
        // enough blocks to bring the array back to the threshold: the
        // sparse streak starts again.
        let temporary = |a: usize| {
            let slot = add_block(t, a, 8, epoch);
            assert_eq!(take_block(t, a, slot).map(|e| e.size), Some(8));
        };
        for i in 0..capacity / 2 {
            temporary(0x8000_0000 + (i % 1000) * 64);
        }
        let refill: Vec<(usize, u32)> = (0..capacity / SHRINK_RATIO)
            .map(|i| {
                let a = 0x9000_0000 + i * 64;
                (a, add_block(t, a, 4, epoch))
            })
            .collect();
        for &(a, slot) in &refill {
            assert_eq!(take_block(t, a, slot).map(|e| e.size), Some(4));
        }
        assert_eq!(t.arr_cap.load(Ordering::Relaxed), capacity);
        // Once the array has been sparse over as many of its owner's frees
        // as it has slots, it starts again small and its blocks go to the
        // hash table.
        let mut churn = 0;
        while t.arr_cap.load(Ordering::Relaxed) != MIN_ARR {
            temporary(0x8000_0000 + (churn % 1000) * 64);
            churn += 1;
            assert!(churn <= capacity, "no shrink after {churn} frees");
        }
        // The streak restarted at the refill: the frees before it do not
        // count (without the restart, about 3/8 of the slots would do).
        assert!(churn > capacity * 3 / 4, "shrank after {churn} frees");
        assert_eq!(t.arr_len.load(Ordering::Relaxed), 0);
        let capacity = t.capacity.load(Ordering::Relaxed);
        // The hash table took the array's last blocks, sized for them.
        assert!(capacity <= kept.len() * 2, "{capacity} hash slots");
        let mut listed: Vec<(usize, usize)> = t.blocks().map(|(a, e)| (a, e.size)).collect();
        listed.sort_unstable();
        let expected: Vec<(usize, usize)> = kept.iter().map(|&i| (addr(i), size(i))).collect();
        assert_eq!(listed, expected);
        // A new block takes slot 0 again, the slot block 0's trailer names.
        assert_eq!(add_block(t, 0x9000_0000, 5, epoch), 0);
        for (j, &i) in kept.iter().enumerate() {
            // Not at the slot its trailer names any more ...
            assert!(take_block(t, addr(i), slots[i]).is_none(), "block {i}");
            // ... but in the hash table, for its owner and for others.
            let entry = if j % 2 == 0 {
                take(t, addr(i))
            } else {
                take_remote(addr(i), std::ptr::null(), Some(slots[i]))
            };
            assert_eq!(entry.map(|e| e.size), Some(size(i)), "block {i}");
        }
        assert_eq!(take_block(t, 0x9000_0000, 0).map(|e| e.size), Some(5));
        assert_eq!(t.blocks().count(), 0);
        t.retire();
    }
}
