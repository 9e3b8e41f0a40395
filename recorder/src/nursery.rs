//! Per-thread nurseries: the blocks a thread allocated most recently, kept
//! in a small table of its own so that allocating and freeing them takes
//! no lock and no atomic read-modify-write.
//!
//! Most blocks die young, and die in the thread that made them (temporary
//! strings, `Vec` growth, per-request buffers). Recording them in the
//! shared address table costs a lock per event, and on x86 the locked
//! instruction also waits for the store buffer to drain, which after the
//! allocator's own stores is most of the recorder's cost. A thread's
//! nursery is written only by its owner with plain (relaxed) stores; a
//! block that survives long enough is *evicted* into the shared table.
//!
//! Other threads only ever take a block *out* of a nursery, when they free
//! it (a block handed to another thread), and they do so with a
//! compare-and-swap on its slot while holding the block's shard lock; the
//! owner evicts a block the same way. A block is therefore always in
//! exactly one place: a nursery slot or the shared table, and moving it
//! between the two happens under its shard lock.
//!
//! Nurseries are used in exact mode only (a block's accounted amount is
//! its size); sampled blocks are rare and go to the shared table.
//!
//! Snapshots (and `clear_traces`, `fork`) need every nursery still. They
//! *freeze* the nurseries: set each one's `frozen` flag, run
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every running
//! thread execute a full memory barrier, then wait until no owner is
//! `busy`. The owner sets `busy` before checking `frozen`; with the
//! membarrier on the freezer's side, either the owner sees `frozen` and
//! backs off, or the freezer sees `busy` and waits (the asymmetric Dekker
//! protocol of liburcu and folly's `asymmetricHeavyBarrier`). Where the
//! system call is missing, owners use a full fence instead: correct, slower.

use std::cell::UnsafeCell;
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering, compiler_fence, fence,
};

use crate::lock::SpinLock;
use crate::table::{self, Copied, Entry, ShardData};

/// Slots per nursery.
pub(crate) const SLOTS: usize = 256;
const INDEX: usize = 2 * SLOTS;
/// Blocks moved to the shared table per eviction, at most.
const EVICT_BATCH: usize = 64;

/// One block: its address (0 when the slot is free) and `size | tb << 32`.
struct Slot {
    addr: AtomicUsize,
    meta: AtomicU64,
}

/// What only the owner (or a freezer, while the owner is kept out)
/// touches.
struct Private {
    /// Open addressing from address to slot + 1 (0: empty).
    index: [u16; INDEX],
    /// Free slots (a stack).
    free: [u16; SLOTS],
    free_len: usize,
    /// The address each slot was indexed under (the slot's own `addr` may
    /// already be 0 when another thread took the block).
    keys: [usize; SLOTS],
    /// Allocation order of each slot's block, for choosing old ones to
    /// evict.
    seq: [u32; SLOTS],
    next_seq: u32,
    /// Incremented by every `clear`, so that an eviction can tell that
    /// the nursery was emptied while it was moving blocks.
    generation: u32,
}

/// A thread's nursery.
pub(crate) struct Nursery {
    busy: AtomicBool,
    frozen: AtomicBool,
    slots: [Slot; SLOTS],
    /// Accounted bytes the owner added minus what it took back itself.
    current: AtomicU64,
    /// Accounted bytes other threads took out (freeing blocks).
    remote_freed: AtomicU64,
    /// Accounted bytes the owner moved into the shared table (written by
    /// the owner alone, under the blocks' shard locks).
    evicted: AtomicU64,
    /// Slots other threads emptied since the owner last reclaimed them;
    /// the owner scans for them only when there are some.
    remote_taken: AtomicU32,
    private: UnsafeCell<Private>,
}

// SAFETY: the shared fields are atomics; `private` is only touched by the
// owner while `busy` (or by a freezer while every owner is kept out), as the
// module documentation explains.
unsafe impl Sync for Nursery {}
// SAFETY: as above.
unsafe impl Send for Nursery {}

/// Every live nursery. Its lock also orders remote frees and freezes.
struct Registry {
    nurseries: Vec<*const Nursery>,
}

// SAFETY: the pointers are to nurseries that stay alive while registered
// (they are unregistered under this lock before being freed).
unsafe impl Send for Registry {}

static REGISTRY: SpinLock<Registry> = SpinLock::new(Registry {
    nurseries: Vec::new(),
});

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

#[inline]
fn index_hash(addr: usize) -> usize {
    let m = u128::from(addr as u64) * 0x9E37_79B9_7F4A_7C15u128;
    ((m as u64) ^ ((m >> 64) as u64)) as usize & (INDEX - 1)
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

/// The outcome of trying the owner's fast path.
pub(crate) enum Fast<T> {
    Done(T),
    /// A freezer holds the nursery: wait, then try again.
    Frozen,
    /// No free slot: evict, then try again.
    Full,
}

impl Nursery {
    /// A new, registered nursery; `None` if memory ran out. The caller
    /// holds the re-entrancy guard.
    pub(crate) fn create() -> Option<&'static Nursery> {
        let layout = std::alloc::Layout::new::<Nursery>();
        // SAFETY: the layout has a non-zero size. Zeroed memory is a valid
        // `Nursery`: atomics at 0, empty slots, an empty index; the free
        // stack is filled below before the nursery is shared.
        let nursery = unsafe {
            let ptr = std::alloc::alloc_zeroed(layout).cast::<Nursery>();
            if ptr.is_null() {
                return None;
            }
            &*ptr
        };
        // SAFETY: not yet shared with anyone.
        let private = unsafe { &mut *nursery.private.get() };
        for (i, f) in private.free.iter_mut().enumerate() {
            *f = (SLOTS - 1 - i) as u16;
        }
        private.free_len = SLOTS;
        let mut registry = REGISTRY.lock();
        if registry.nurseries.try_reserve(1).is_err() {
            drop(registry);
            // SAFETY: allocated above with this layout, never shared.
            unsafe { std::alloc::dealloc((nursery as *const Nursery).cast_mut().cast(), layout) };
            return None;
        }
        registry.nurseries.push(nursery);
        Some(nursery)
    }

    /// Enters an owner operation; `false` if frozen (nothing entered).
    #[inline]
    fn enter(&self) -> bool {
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

    /// Waits while a freezer holds the nursery.
    #[cold]
    pub(crate) fn wait_unfrozen(&self) {
        while self.frozen.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }

    /// Adds a block (owner only). `Frozen` or `Full`: the caller waits or
    /// evicts, then tries again. `Done(false)`: the epoch changed, the
    /// block is not traced.
    #[inline]
    pub(crate) fn add(&self, addr: usize, size: usize, traceback: u32, epoch: u32) -> Fast<bool> {
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
        if private.free_len == 0 {
            self.leave();
            return Fast::Full;
        }
        private.free_len -= 1;
        let slot_index = private.free[private.free_len] as usize;
        let slot = &self.slots[slot_index];
        slot.meta.store(pack(size, traceback), Ordering::Relaxed);
        slot.addr.store(addr, Ordering::Release);
        private.seq[slot_index] = private.next_seq;
        private.next_seq = private.next_seq.wrapping_add(1);
        private.keys[slot_index] = addr;
        // Each slot off the free stack has exactly one index entry, so the
        // index (twice the slots) is at most half full and this ends. An
        // older entry for the same address (a block another thread took,
        // whose address was reused) stays until `reclaim`; lookups check
        // the slot's address and skip it.
        let mut i = index_hash(addr);
        while private.index[i] != 0 {
            i = (i + 1) & (INDEX - 1);
        }
        private.index[i] = (slot_index + 1) as u16;
        let current = self.current.load(Ordering::Relaxed);
        self.current
            .store(current.wrapping_add(size as u64), Ordering::Relaxed);
        self.leave();
        Fast::Done(true)
    }

    /// Takes a block out if it is in this nursery (owner only).
    /// `Done(None)`: not here.
    #[inline]
    pub(crate) fn take(&self, addr: usize) -> Fast<Option<Entry>> {
        if !self.enter() {
            return Fast::Frozen;
        }
        // SAFETY: entered.
        let private = unsafe { &mut *self.private.get() };
        let mut i = index_hash(addr);
        let found = loop {
            let v = private.index[i] as usize;
            if v == 0 {
                break None;
            }
            if private.keys[v - 1] == addr && self.slots[v - 1].addr.load(Ordering::Acquire) == addr
            {
                break Some((i, v - 1));
            }
            i = (i + 1) & (INDEX - 1);
        };
        let Some((at, slot_index)) = found else {
            self.leave();
            return Fast::Done(None);
        };
        let slot = &self.slots[slot_index];
        let entry = unpack(slot.meta.load(Ordering::Relaxed));
        // Nobody else can take this block now: only the thread freeing it
        // would, and that is this one.
        slot.addr.store(0, Ordering::Release);
        index_remove(private, at);
        private.free[private.free_len] = slot_index as u16;
        private.free_len += 1;
        let current = self.current.load(Ordering::Relaxed);
        self.current
            .store(current.wrapping_sub(entry.size as u64), Ordering::Relaxed);
        self.leave();
        Fast::Done(Some(entry))
    }

    /// Moves the oldest blocks into the shared table and reclaims slots
    /// emptied by other threads (owner only, not entered). `epoch` is the
    /// caller's: blocks are only moved while it is current.
    /// Returns how many blocks it moved.
    #[cold]
    pub(crate) fn evict(&self, epoch: u32) -> usize {
        // 1. Choose victims, entered.
        let mut victims = [(0usize, 0usize, 0u64); EVICT_BATCH];
        let mut n = 0;
        if !self.enter() {
            self.wait_unfrozen();
            return 0;
        }
        let generation;
        {
            // SAFETY: entered.
            let private = unsafe { &mut *self.private.get() };
            generation = private.generation;
            // The full scan is only worth it when another thread emptied
            // slots; a count taken before it can only over-report (a take
            // counted after the scan saw it costs one extra scan later).
            if self.remote_taken.swap(0, Ordering::Acquire) != 0 {
                self.reclaim(private);
            }
            if private.free_len < SLOTS / 4 {
                let horizon = private.next_seq.wrapping_sub((SLOTS / 2) as u32);
                for s in 0..SLOTS {
                    let addr = self.slots[s].addr.load(Ordering::Acquire);
                    // Older than the last SLOTS / 2 additions.
                    if addr != 0 && (horizon.wrapping_sub(private.seq[s]) as i32) >= 0 {
                        victims[n] = (s, addr, self.slots[s].meta.load(Ordering::Relaxed));
                        n += 1;
                        if n == EVICT_BATCH {
                            break;
                        }
                    }
                }
            }
        }
        self.leave();
        // 2. Move them under their shard locks (not entered: a freezer may
        // hold every shard lock and wait for `busy` to clear). Blocks
        // allocated close together share a 64 KiB region and so a shard:
        // sorted by shard, most batches take only a few locks.
        let victims = &mut victims[..n];
        victims.sort_unstable_by_key(|v| table::shard_index(v.1));
        let mut moved = [false; EVICT_BATCH];
        let mut at = 0;
        for group in victims.chunk_by(|a, b| table::shard_index(a.1) == table::shard_index(b.1)) {
            self.move_to_table(group, &mut moved[at..at + group.len()], epoch);
            at += group.len();
        }
        // 3. Free the slots of the moved blocks, entered, unless a `clear`
        // emptied the nursery meanwhile (it freed every slot itself). Slots
        // whose block another thread took first are counted in
        // `remote_taken` and reclaimed by a later scan.
        if !self.enter() {
            // A freezer holds the nursery: the moved blocks' slots are
            // found by the next scan.
            self.remote_taken.fetch_add(1, Ordering::Relaxed);
            return moved.iter().filter(|&&m| m).count();
        }
        // SAFETY: entered.
        let private = unsafe { &mut *self.private.get() };
        if private.generation == generation {
            for (&(s, addr, _), _) in victims.iter().zip(moved).filter(|(_, m)| *m) {
                let mut i = index_hash(addr);
                while private.index[i] as usize != s + 1 {
                    i = (i + 1) & (INDEX - 1);
                }
                index_remove(private, i);
                private.free[private.free_len] = s as u16;
                private.free_len += 1;
            }
        }
        self.leave();
        moved.iter().filter(|&&m| m).count()
    }

    /// Moves blocks `(slot, address, meta)` of one shard from this
    /// nursery into the shared table, those still there, under the
    /// shard's lock (owner only); `moved` tells which were.
    fn move_to_table(&self, victims: &[(usize, usize, u64)], moved: &mut [bool], epoch: u32) {
        let Some(&(_, first, _)) = victims.first() else {
            return;
        };
        let mut data = table::shard_of(first).data.lock();
        let same_epoch = crate::state::EPOCH.load(Ordering::Relaxed) == epoch;
        let mut evicted = 0;
        for (&(s, addr, meta), moved) in victims.iter().zip(moved) {
            // Every other thread that empties a slot (a remote free, a
            // freezer's `clear`) holds the block's shard lock, which this
            // thread holds now: the slot cannot change meanwhile, and a
            // plain load and store do what a compare-and-swap would.
            let slot = &self.slots[s].addr;
            if slot.load(Ordering::Acquire) != addr {
                continue;
            }
            slot.store(0, Ordering::Release);
            *moved = true;
            let entry = unpack(meta);
            evicted += entry.size as u64;
            if same_epoch {
                // A failed insert (out of memory) drops the trace.
                let _ = data.insert(0, addr, entry, entry.size as u64, |size| size as u64);
            }
        }
        // Under the lock, so that a snapshot (which holds every shard lock)
        // sees each block counted exactly once: in the table, or in the
        // nursery. Only the owner writes `evicted`.
        let total = self.evicted.load(Ordering::Relaxed);
        self.evicted
            .store(total.wrapping_add(evicted), Ordering::Release);
        drop(data);
    }

    /// Frees the slots whose block left (taken by another thread or
    /// evicted): their index entries go and the slots return to the stack.
    fn reclaim(&self, private: &mut Private) {
        let mut i = 0;
        while i < INDEX {
            let v = private.index[i] as usize;
            if v != 0 && self.slots[v - 1].addr.load(Ordering::Acquire) == 0 {
                index_remove(private, i);
                private.free[private.free_len] = (v - 1) as u16;
                private.free_len += 1;
                // `index_remove` may have moved another entry into `i`.
                continue;
            }
            i += 1;
        }
    }

    /// Moves every block into the shared table and unregisters the
    /// nursery (thread exit). The memory is freed.
    pub(crate) fn retire(&'static self) {
        let epoch = crate::state::EPOCH.load(Ordering::Acquire);
        for s in 0..SLOTS {
            let addr = self.slots[s].addr.load(Ordering::Acquire);
            if addr != 0 {
                let meta = self.slots[s].meta.load(Ordering::Relaxed);
                self.move_to_table(&[(s, addr, meta)], &mut [false], epoch);
            }
        }
        let mut registry = REGISTRY.lock();
        registry.nurseries.retain(|&n| !std::ptr::eq(n, self));
        drop(registry);
        let layout = std::alloc::Layout::new::<Nursery>();
        // SAFETY: allocated in `create` with this layout; unregistered
        // above under the registry lock, so no other thread holds it.
        unsafe { std::alloc::dealloc((self as *const Nursery).cast_mut().cast(), layout) };
    }
}

fn index_remove(private: &mut Private, at: usize) {
    // Backward-shift deletion keeps probe sequences unbroken without
    // tombstones (the index is private, so entries may move).
    let mut hole = at;
    let mut i = (at + 1) & (INDEX - 1);
    loop {
        let v = private.index[i];
        if v == 0 {
            break;
        }
        // The home of the entry at `i` is where its address hashes; it can
        // fill the hole if the hole lies between home and `i`.
        let home = private_home(private, v as usize - 1);
        let dist_hole = hole.wrapping_sub(home) & (INDEX - 1);
        let dist_i = i.wrapping_sub(home) & (INDEX - 1);
        if dist_hole <= dist_i {
            private.index[hole] = v;
            hole = i;
        }
        i = (i + 1) & (INDEX - 1);
    }
    private.index[hole] = 0;
}

/// Where an indexed slot's address hashes to.
fn private_home(private: &Private, slot: usize) -> usize {
    index_hash(private.keys[slot])
}

/// Takes `addr` out of whichever nursery holds it, for a thread that is
/// not its owner. The caller holds the block's shard lock.
pub(crate) fn take_remote(addr: usize, skip: *const Nursery) -> Option<Entry> {
    let registry = REGISTRY.lock();
    for &n in &registry.nurseries {
        if std::ptr::eq(n, skip) {
            continue;
        }
        // SAFETY: registered nurseries are alive while the registry lock
        // is held.
        let n = unsafe { &*n };
        for slot in &n.slots {
            if slot.addr.load(Ordering::Acquire) == addr {
                let meta = slot.meta.load(Ordering::Relaxed);
                if slot
                    .addr
                    .compare_exchange(addr, 0, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    let entry = unpack(meta);
                    n.remote_freed
                        .fetch_add(entry.size as u64, Ordering::AcqRel);
                    n.remote_taken.fetch_add(1, Ordering::Release);
                    return Some(entry);
                }
            }
        }
    }
    None
}

/// Every nursery held still; see the module documentation. Unfreezes when
/// dropped.
pub(crate) struct Frozen {
    registry: crate::lock::SpinGuard<'static, Registry>,
}

/// Freezes every nursery. The caller holds every shard lock.
pub(crate) fn freeze_all() -> Frozen {
    let registry = REGISTRY.lock();
    freeze(&registry);
    Frozen { registry }
}

fn freeze(registry: &Registry) {
    for &n in &registry.nurseries {
        // SAFETY: registered, and the registry is locked.
        unsafe { &*n }.frozen.store(true, Ordering::Relaxed);
    }
    heavy_barrier();
    fence(Ordering::SeqCst);
    for &n in &registry.nurseries {
        // SAFETY: as above.
        let n = unsafe { &*n };
        while n.busy.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
    }
}

fn unfreeze(registry: &Registry) {
    for &n in &registry.nurseries {
        // SAFETY: registered, and the registry is locked.
        unsafe { &*n }.frozen.store(false, Ordering::Release);
    }
}

/// `fork()` "prepare": locks the registry and freezes every nursery. The
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

/// `fork()` "child": the other threads' nurseries have no owner any more;
/// their blocks move into the shared table (whose shard locks the caller
/// holds, through `shard_data`) and they are forgotten. Their memory is
/// left alone: it belongs to a heap the child inherited, and freeing here
/// would be the only allocator call in a fork handler.
///
/// # Safety
/// `fork_prepare` ran before the fork; the caller holds every shard lock.
pub(crate) unsafe fn fork_child(
    keep: *const Nursery,
    shard_data: &mut dyn FnMut(usize) -> *mut ShardData,
) {
    // SAFETY: the registry is locked by `fork_prepare`; only this thread
    // exists.
    let registry = unsafe { REGISTRY.data_unchecked() };
    for &n in &registry.nurseries {
        if std::ptr::eq(n, keep) {
            continue;
        }
        // SAFETY: registered.
        let n = unsafe { &*n };
        for slot in &n.slots {
            let addr = slot.addr.load(Ordering::Acquire);
            if addr != 0 {
                let e = unpack(slot.meta.load(Ordering::Relaxed));
                // SAFETY: the caller holds every shard lock.
                let data = unsafe { &mut *shard_data(addr) };
                let _ = data.insert(0, addr, e, e.size as u64, |size| size as u64);
            }
        }
    }
    registry.nurseries.retain(|&n| std::ptr::eq(n, keep));
    unfreeze(registry);
    // SAFETY: the child's only thread took it in `fork_prepare`.
    unsafe { REGISTRY.force_unlock() };
}

/// Bytes the nurseries use.
pub(crate) fn memory() -> usize {
    REGISTRY.lock().nurseries.len() * size_of::<Nursery>()
}

impl Frozen {
    fn nurseries(&self) -> impl Iterator<Item = &Nursery> {
        // SAFETY: registered nurseries live while the registry is locked,
        // which `self` does.
        self.registry.nurseries.iter().map(|&n| unsafe { &*n })
    }

    /// Traced bytes in the nurseries.
    pub(crate) fn current(&self) -> u64 {
        self.nurseries()
            .map(|n| {
                n.current
                    .load(Ordering::Acquire)
                    .wrapping_sub(n.remote_freed.load(Ordering::Acquire))
                    .wrapping_sub(n.evicted.load(Ordering::Acquire))
            })
            .fold(0u64, u64::wrapping_add)
    }

    /// Number of blocks in the nurseries.
    pub(crate) fn len(&self) -> usize {
        self.nurseries()
            .map(|n| {
                n.slots
                    .iter()
                    .filter(|s| s.addr.load(Ordering::Acquire) != 0)
                    .count()
            })
            .sum()
    }

    /// Appends every block to `out`.
    pub(crate) fn copy_into(&self, out: &mut Vec<Copied>) {
        for n in self.nurseries() {
            for slot in &n.slots {
                if slot.addr.load(Ordering::Acquire) != 0 {
                    let e = unpack(slot.meta.load(Ordering::Relaxed));
                    out.push(Copied {
                        domain: 0,
                        size: e.size as u64,
                        traceback: e.traceback,
                    });
                }
            }
        }
    }

    /// Looks a block up.
    pub(crate) fn get(&self, addr: usize) -> Option<Entry> {
        self.nurseries().find_map(|n| {
            n.slots
                .iter()
                .find(|s| s.addr.load(Ordering::Acquire) == addr)
                .map(|s| unpack(s.meta.load(Ordering::Relaxed)))
        })
    }

    /// Empties every nursery (`clear_traces`, `stop`).
    pub(crate) fn clear(&self) {
        for n in self.nurseries() {
            for slot in &n.slots {
                slot.addr.store(0, Ordering::Relaxed);
            }
            n.current.store(0, Ordering::Relaxed);
            n.remote_freed.store(0, Ordering::Relaxed);
            n.evicted.store(0, Ordering::Relaxed);
            n.remote_taken.store(0, Ordering::Relaxed);
            // SAFETY: frozen with no owner inside (see `freeze_all`).
            let private = unsafe { &mut *n.private.get() };
            private.generation = private.generation.wrapping_add(1);
            private.index = [0; INDEX];
            for (i, f) in private.free.iter_mut().enumerate() {
                *f = (SLOTS - 1 - i) as u16;
            }
            private.free_len = SLOTS;
        }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        unfreeze(&self.registry);
    }
}
