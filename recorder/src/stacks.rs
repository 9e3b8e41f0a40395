//! The traceback store: every distinct raw traceback (a list of return
//! addresses) stored once, under a 32-bit id that the address table keeps
//! per block.
//!
//! Lookups on the hot path go through a per-thread cache first (see
//! [`intern`]; a hit there is decided by two 64-bit hashes of the frames,
//! not by reading the stored ones), then through the store's index, an
//! open-addressing table from hash to id that is read without the store's
//! lock; only a traceback the store has never seen takes the lock, to be
//! added. (A program can
//! have many more distinct tracebacks than a thread's cache holds: a
//! recursive tree builder makes one per path. With a locked lookup, two
//! such threads spent their time waiting for each other.)
//!
//! To make lock-free reads possible, nothing a reader may hold moves or is
//! freed: frames live in chunks that are never freed (only reused after
//! `clear_traces()`/`stop()`), an index that grows is replaced by a larger
//! one and the old one is kept, and every word is an atomic, so a reader
//! racing a writer reads some value, never undefined behaviour. A reader
//! trusts an index entry only after comparing the stored frames with its
//! own. A reader that raced a reset may see a stale traceback; it then
//! holds an id of an older tracing epoch, and the address table refuses
//! inserts from older epochs.

use std::alloc::Layout;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use crate::lock::SpinLock;
use crate::state::Epoch;
use crate::tls::{CACHE_SIZE, ThreadState};

/// The largest traceback limit `start()` accepts.
pub const MAX_NFRAME: u32 = 256;

/// The most return addresses captured per traceback: the limit plus the
/// frames trimmed at snapshot time (the recorder's, the allocator shim's and
/// the standard library's).
pub(crate) const MAX_RAW: usize = 320;

/// Words in the first frame chunk; chunk `k` holds `CHUNK_BASE << k`.
const CHUNK_BASE: usize = 1 << 14;
/// Entries in the first id chunk; id chunk `k` holds `ID_BASE << k`.
pub(crate) const ID_BASE: usize = 1 << 12;
/// Enough chunks for 2^40 words of frames and 2^40 ids.
pub(crate) const NCHUNKS: usize = 28;
/// Extra words after each frame chunk, so that a stale reader that takes any
/// word of a chunk for a header can read a whole traceback after it without
/// leaving the allocation.
const PAD: usize = MAX_RAW + 1;

const NONE: u32 = u32::MAX;
const COMPLETE_BIT: usize = 1 << 16;
const LEN_MASK: usize = 0xffff;

/// Slots of the first index (512 bytes: a program with few tracebacks
/// keeps a small one); each replacement doubles it.
const INDEX_MIN_SLOTS: usize = 1 << 6;

// An index is a header word holding its number of slots (a power of two),
// followed by the slots. A slot is 0 (empty) or `hash >> 32 << 32 | (id +
// 1)`. At most half of the slots are used, so every probe ends at an empty
// slot.

/// A zeroed index of `slots` slots, or null.
fn index_alloc(slots: usize) -> *mut AtomicU64 {
    let Ok(layout) = Layout::array::<AtomicU64>(slots + 1) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout has a non-zero size; zeroed atomics are valid.
    let table: *mut AtomicU64 = unsafe { std::alloc::alloc_zeroed(layout) }.cast();
    if !table.is_null() {
        // SAFETY: the allocation holds `slots + 1` atomics.
        unsafe { &*table }.store(slots as u64, Ordering::Relaxed);
    }
    table
}

/// The slots of a non-null index.
///
/// # Safety
/// `table` came from [`index_alloc`] (indexes are never freed).
#[inline]
unsafe fn index_slots<'a>(table: *const AtomicU64) -> &'a [AtomicU64] {
    // SAFETY: the header word holds the slot count, written before the
    // index was published (see `Store::publish_index`).
    unsafe {
        let n = (*table).load(Ordering::Relaxed) as usize;
        std::slice::from_raw_parts(table.add(1), n)
    }
}

/// Bytes of an index of `slots` slots.
fn index_bytes(slots: usize) -> usize {
    (slots + 1) * size_of::<AtomicU64>()
}

/// An index entry for traceback `id` with hash `hash`.
#[inline]
fn index_entry(hash: u64, id: u32) -> u64 {
    (hash >> 32 << 32) | (u64::from(id) + 1)
}

/// The first slot a probe for `hash` (or for an entry, which keeps the
/// same high half) looks at. It uses the hash's high half, not the low
/// bits the per-thread caches index by, so that tracebacks that share a
/// cache entry do not also crowd one part of the index; and an index can
/// be rebuilt from its entries alone.
#[inline]
fn index_home(hash: u64, slots: usize) -> usize {
    (hash >> 32) as usize & (slots - 1)
}

struct Index {
    /// Slots used in the current index.
    index_used: usize,
    /// Bump position: chunk and words used in it.
    chunk: usize,
    used: usize,
    /// Ids handed out in this epoch.
    count: u32,
    /// Bytes of frame chunks, id chunks and indexes allocated (never
    /// freed).
    chunk_bytes: usize,
}

/// The process-wide traceback store.
pub(crate) struct Store {
    index: SpinLock<Index>,
    /// The current index (see [`index_slots`]); null before the first
    /// traceback. Replaced, never freed, under the lock.
    lookup: AtomicPtr<AtomicU64>,
    chunks: [AtomicPtr<AtomicUsize>; NCHUNKS],
    id_chunks: [AtomicPtr<AtomicUsize>; NCHUNKS],
    /// `Index::count`, for readers without the lock (the history's peak
    /// copy, on the hot path): written under the lock after each new id.
    count: AtomicU32,
}

pub(crate) static STORE: Store = Store::new();

/// The chunk holding `n`-th entry of a sequence whose chunk `k` holds
/// `base << k` entries, and the offset in that chunk.
#[inline]
pub(crate) fn chunk_of(n: usize, base: usize) -> (usize, usize) {
    let q = n / base + 1;
    let k = (usize::BITS - 1 - q.leading_zeros()) as usize;
    (k, n - base * ((1 << k) - 1))
}

/// The two hashes of a raw traceback. `index` places it in the store's
/// index and the per-thread caches; `check`, computed with another mix,
/// confirms a per-thread cache hit without reading the stored frames (see
/// [`intern`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hashes {
    pub(crate) index: u64,
    pub(crate) check: u64,
}

/// The unfinished hashes of the frames walked so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hasher {
    index: u64,
    check: u64,
}

const HASH_K1: u64 = 0x9E37_79B9_7F4A_7C15;
const HASH_K2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const HASH_K3: u64 = 0xD6E8_FEB8_6659_FD93;
const HASH_K4: u64 = 0xFF51_AFD7_ED55_8CCD;

impl Hasher {
    /// The state before any frame.
    pub(crate) const SEED: Hasher = Hasher {
        index: 0x243F_6A88_85A3_08D3,
        check: 0x1319_8A2E_0370_7344,
    };

    /// Adds one frame. Each hash's step is a bijection of its state for a
    /// given frame, so two tracebacks of one length that differ in one
    /// frame never collide in either hash. The two steps mix differently
    /// (xor and multiply; add, rotate and multiply by another constant),
    /// so that frames chosen to collide in one do not collide in the
    /// other. The frame-pointer walk calls it as it goes (see
    /// `unwind::walk_frame_pointers`): the multiplications run in the
    /// shadow of the walk's loads.
    #[inline(always)]
    pub(crate) fn step(self, frame: usize) -> Hasher {
        Hasher {
            index: (self.index ^ frame as u64).wrapping_mul(HASH_K1),
            check: self
                .check
                .wrapping_add(frame as u64)
                .rotate_left(29)
                .wrapping_mul(HASH_K3),
        }
    }

    /// Finishes both hashes: adds the length and the completeness, then
    /// spreads every bit of `index` into the low ones the caches index by.
    #[inline(always)]
    pub(crate) fn finish(self, len: usize, complete: bool) -> Hashes {
        let tail = ((len as u64) << 1 | u64::from(complete)).wrapping_mul(HASH_K2);
        let mut h = self.index ^ tail;
        h ^= h >> 32;
        h = h.wrapping_mul(HASH_K1);
        h ^= h >> 29;
        let mut c = self.check.wrapping_add(tail);
        c ^= c >> 33;
        c = c.wrapping_mul(HASH_K4);
        c ^= c >> 31;
        Hashes { index: h, check: c }
    }
}

/// Hashes of a raw traceback.
#[inline]
pub(crate) fn hash_frames(frames: &[usize], complete: bool) -> Hashes {
    frames
        .iter()
        .fold(Hasher::SEED, |h, &f| h.step(f))
        .finish(frames.len(), complete)
}

impl Store {
    const fn new() -> Store {
        Store {
            index: SpinLock::new_table(Index {
                index_used: 0,
                chunk: 0,
                used: 0,
                count: 0,
                chunk_bytes: 0,
            }),
            lookup: AtomicPtr::new(std::ptr::null_mut()),
            chunks: [const { AtomicPtr::new(std::ptr::null_mut()) }; NCHUNKS],
            id_chunks: [const { AtomicPtr::new(std::ptr::null_mut()) }; NCHUNKS],
            count: AtomicU32::new(0),
        }
    }

    /// The header word's slot of traceback `id`, if its id chunk exists.
    #[inline]
    fn id_slot(&self, id: u32) -> Option<&AtomicUsize> {
        let (k, off) = chunk_of(id as usize, ID_BASE);
        let chunk = self.id_chunks.get(k)?.load(Ordering::Acquire);
        if chunk.is_null() {
            return None;
        }
        // SAFETY: id chunk `k` holds `ID_BASE << k` atomics, `off` is below
        // that by construction of `chunk_of`, and chunks are never freed.
        Some(unsafe { &*chunk.add(off) })
    }

    /// Whether traceback `id` is exactly `frames` (with this completeness).
    #[cfg(test)]
    fn matches(&self, id: u32, frames: &[usize], complete: bool) -> bool {
        let header = self.header_of(id);
        // SAFETY: from `header_of`.
        !header.is_null() && unsafe { Self::matches_at(header, frames, complete) }
    }

    /// Where traceback `id` is stored (its header word), or null. Valid
    /// for as long as the epoch `id` was interned in.
    #[inline]
    pub(crate) fn header_of(&self, id: u32) -> *const AtomicUsize {
        match self.id_slot(id) {
            Some(slot) => slot.load(Ordering::Acquire) as *const AtomicUsize,
            None => std::ptr::null(),
        }
    }

    /// Whether the traceback stored at `header` is exactly `frames`.
    ///
    /// # Safety
    /// `header` is a non-null pointer from [`Store::header_of`].
    #[inline]
    pub(crate) unsafe fn matches_at(
        header: *const AtomicUsize,
        frames: &[usize],
        complete: bool,
    ) -> bool {
        // SAFETY: a header points at a header word inside a frame chunk,
        // followed by at least `PAD` words of the same allocation; chunks
        // are never freed.
        let word = unsafe { &*header }.load(Ordering::Relaxed);
        let len = word & LEN_MASK;
        if len != frames.len() || (word & COMPLETE_BIT != 0) != complete || len > MAX_RAW {
            return false;
        }
        // SAFETY: `i < len <= MAX_RAW < PAD`, so every word read is
        // inside the chunk's allocation (see above).
        let stored = unsafe { header.add(1) };
        for (i, &f) in frames.iter().enumerate() {
            // SAFETY: as above.
            if unsafe { &*stored.add(i) }.load(Ordering::Relaxed) != f {
                return false;
            }
        }
        true
    }

    /// Copies traceback `id` into `out` (cleared first) and returns whether
    /// the capture reached the bottom of the stack.
    pub(crate) fn read(&self, id: u32, out: &mut Vec<usize>) -> bool {
        out.clear();
        let Some(slot) = self.id_slot(id) else {
            return true;
        };
        let header = slot.load(Ordering::Acquire) as *const AtomicUsize;
        if header.is_null() {
            return true;
        }
        // SAFETY: as in `matches`.
        let word = unsafe { &*header }.load(Ordering::Relaxed);
        let len = (word & LEN_MASK).min(MAX_RAW);
        for i in 0..len {
            // SAFETY: as in `matches`.
            out.push(unsafe { &*header.add(1 + i) }.load(Ordering::Relaxed));
        }
        word & COMPLETE_BIT != 0
    }

    /// The current index's slots (none before the first traceback).
    #[inline]
    fn current_index(&self) -> &[AtomicU64] {
        let table = self.lookup.load(Ordering::Acquire);
        if table.is_null() {
            return &[];
        }
        // SAFETY: published by `publish_index` and never freed.
        unsafe { index_slots(table) }
    }

    /// The id of `frames` if the store has it, without taking the lock.
    /// `None` also when an entry was added after the index was read: the
    /// caller then asks [`Store::intern_locked`].
    #[inline]
    pub(crate) fn lookup(&self, frames: &[usize], complete: bool, hash: u64) -> Option<u32> {
        self.find(self.current_index(), frames, complete, hash).ok()
    }

    /// Probes `slots` for `frames`: `Ok(id)` when found, otherwise
    /// `Err(i)` with `i` the empty slot where the probe ended (or the
    /// number of slots if there was none, which only a reader racing a
    /// reset that zeroes the index can see).
    #[inline]
    fn find(
        &self,
        slots: &[AtomicU64],
        frames: &[usize],
        complete: bool,
        hash: u64,
    ) -> Result<u32, usize> {
        if slots.is_empty() {
            return Err(0);
        }
        let mask = slots.len() - 1;
        let tag = hash >> 32;
        let mut i = index_home(hash, slots.len());
        // Bounded by the slot count: an index is at most half full, but a
        // reader must not trust that of memory it races with.
        for _ in 0..slots.len() {
            // Acquire: pairs with the Release store of an entry, made after
            // its traceback's header was published.
            let entry = slots[i].load(Ordering::Acquire);
            if entry == 0 {
                return Err(i);
            }
            if entry >> 32 == tag {
                let id = (entry as u32).wrapping_sub(1);
                let header = self.header_of(id);
                // SAFETY: from `header_of`.
                if !header.is_null() && unsafe { Self::matches_at(header, frames, complete) } {
                    return Ok(id);
                }
            }
            i = (i + 1) & mask;
        }
        Err(slots.len())
    }

    /// The id of `frames`, storing them if new: found without the lock
    /// when the store has them, added under it otherwise. `None` when the
    /// recorder's own memory could not be allocated or the ids ran out:
    /// the caller then leaves the block untraced rather than failing the
    /// allocation. Out of line: the hot path calls it only when the
    /// thread's cache misses.
    #[inline(never)]
    pub(crate) fn intern(&self, frames: &[usize], complete: bool, hash: u64) -> Option<u32> {
        match self.lookup(frames, complete, hash) {
            Some(id) => Some(id),
            None => self.intern_locked(frames, complete, hash),
        }
    }

    /// [`Store::intern`] under the lock.
    fn intern_locked(&self, frames: &[usize], complete: bool, hash: u64) -> Option<u32> {
        debug_assert!(frames.len() <= MAX_RAW);
        let mut index = self.index.lock();
        // Indexes are replaced only under the lock: this is the current one,
        // and a search of it is final.
        let mut slots = self.current_index();
        let mut at = match self.find(slots, frames, complete, hash) {
            Ok(id) => return Some(id),
            Err(at) => at,
        };
        let id = index.count;
        if id == NONE {
            return None;
        }
        if (index.index_used + 1) * 2 > slots.len() {
            slots = self.publish_index(&mut index, slots)?;
            at = Self::empty_slot(slots, hash)?;
        }
        let id_slot = self.ensure_id_slot(&mut index, id)?;
        let header = self.bump(&mut index, frames.len() + 1)?;
        // SAFETY: `bump` returned room for `frames.len() + 1` words in a
        // live chunk.
        unsafe {
            for (i, &f) in frames.iter().enumerate() {
                (*header.add(1 + i)).store(f, Ordering::Relaxed);
            }
            let word = frames.len() | if complete { COMPLETE_BIT } else { 0 };
            (*header).store(word, Ordering::Relaxed);
        }
        // Publishing the header pointer with Release makes the words above
        // visible to a lock-free reader that finds it with Acquire; the
        // entry's Release store below does the same for the id.
        id_slot.store(header as usize, Ordering::Release);
        slots[at].store(index_entry(hash, id), Ordering::Release);
        index.index_used += 1;
        index.count += 1;
        self.count.store(index.count, Ordering::Release);
        Some(id)
    }

    /// The empty slot a new entry for `hash` goes to (under the lock).
    fn empty_slot(slots: &[AtomicU64], hash: u64) -> Option<usize> {
        let mask = slots.len() - 1;
        let mut i = index_home(hash, slots.len());
        for _ in 0..slots.len() {
            if slots[i].load(Ordering::Relaxed) == 0 {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Replaces the current index, `old`, by one twice as large (at least
    /// `INDEX_MIN_SLOTS`) holding the same entries, and returns its slots.
    /// The old one is kept: readers may still be probing it.
    #[cold]
    fn publish_index(&self, index: &mut Index, old: &[AtomicU64]) -> Option<&[AtomicU64]> {
        let count = (old.len() * 2).max(INDEX_MIN_SLOTS);
        let table = index_alloc(count);
        if table.is_null() {
            return None;
        }
        index.chunk_bytes += index_bytes(count);
        // SAFETY: just allocated with `count` slots.
        let slots = unsafe { index_slots(table) };
        for entry in old {
            let entry = entry.load(Ordering::Relaxed);
            if entry != 0 {
                // An entry keeps the high half of its hash, all a position
                // needs (see `index_home`).
                slots[Self::empty_slot(slots, entry)?].store(entry, Ordering::Relaxed);
            }
        }
        // Release: the entries copied above are visible to a reader that
        // loads the new index with Acquire.
        self.lookup.store(table, Ordering::Release);
        Some(slots)
    }

    fn ensure_id_slot(&self, index: &mut Index, id: u32) -> Option<&AtomicUsize> {
        let (k, _) = chunk_of(id as usize, ID_BASE);
        let ptr = self.id_chunks.get(k)?;
        if ptr.load(Ordering::Acquire).is_null() {
            let words = ID_BASE << k;
            let chunk = alloc_words(words)?;
            index.chunk_bytes += words * size_of::<AtomicUsize>();
            ptr.store(chunk, Ordering::Release);
        }
        if crate::state::history_on(crate::state::hot_config()) {
            // The history counters of these ids, before any id of the
            // chunk is handed out (see `history.rs`).
            index.chunk_bytes += crate::history::ensure_chunk(k)?;
        }
        self.id_slot(id)
    }

    /// Room for `words` consecutive words in the current frame chunk,
    /// moving to the next chunk when it is full.
    fn bump(&self, index: &mut Index, words: usize) -> Option<*mut AtomicUsize> {
        loop {
            let k = index.chunk;
            let cap = CHUNK_BASE << k;
            let ptr = self.chunks.get(k)?;
            let mut chunk = ptr.load(Ordering::Acquire);
            if chunk.is_null() {
                chunk = alloc_words(cap + PAD)?;
                index.chunk_bytes += (cap + PAD) * size_of::<AtomicUsize>();
                ptr.store(chunk, Ordering::Release);
            }
            if index.used + words <= cap {
                // SAFETY: `used + words <= cap`, inside the allocation.
                let at = unsafe { chunk.add(index.used) };
                index.used += words;
                return Some(at);
            }
            index.chunk += 1;
            index.used = 0;
        }
    }

    /// Forgets every traceback (the chunks are kept for reuse). Readers
    /// still holding ids of the old epoch read stale but valid memory.
    pub(crate) fn clear(&self) {
        let mut index = self.index.lock();
        index.index_used = 0;
        for slot in self.current_index() {
            slot.store(0, Ordering::Relaxed);
        }
        index.chunk = 0;
        index.used = 0;
        index.count = 0;
        self.count.store(0, Ordering::Release);
        // Stale header pointers must not survive into the new epoch, where
        // the same id will point elsewhere once it is reused.
        for (k, ptr) in self.id_chunks.iter().enumerate() {
            let chunk = ptr.load(Ordering::Acquire);
            if chunk.is_null() {
                break;
            }
            for off in 0..(ID_BASE << k) {
                // SAFETY: `off` is inside id chunk `k`.
                unsafe { &*chunk.add(off) }.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Number of tracebacks stored in this epoch.
    pub(crate) fn count(&self) -> u32 {
        self.index.lock().count
    }

    /// [`Store::count`] without the lock: ids below it are handed out (a
    /// new one may be handed out meanwhile).
    pub(crate) fn count_unlocked(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Bytes the store holds: chunks plus its index.
    pub(crate) fn memory(&self) -> usize {
        let index = self.index.lock();
        index.chunk_bytes
    }

    /// Takes the lock for `fork()` (see `state::fork_prepare`).
    pub(crate) fn lock_for_fork(&self) {
        self.index.raw_lock();
    }

    /// Releases the lock taken by [`Store::lock_for_fork`].
    ///
    /// # Safety
    /// `lock_for_fork` was called and not yet undone.
    pub(crate) unsafe fn unlock_after_fork(&self) {
        // SAFETY: forwarded from the caller.
        unsafe { self.index.raw_unlock() }
    }
}

/// Allocates `words` zeroed atomics through the global allocator (the
/// caller holds the re-entrancy guard, so they go to the inner allocator
/// untraced). Never freed.
fn alloc_words(words: usize) -> Option<*mut AtomicUsize> {
    let layout = Layout::array::<AtomicUsize>(words).ok()?;
    // SAFETY: the layout has a non-zero size (words > 0).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    (!ptr.is_null()).then_some(ptr.cast())
}

/// The id of a raw traceback whose [`hash_frames`] is `hash`: from the
/// thread's cache when it was seen recently in this epoch, from the store
/// otherwise.
///
/// A cache hit is decided by both hashes, 128 bits, without reading the
/// frames the store keeps: reading them cost 4 to 5 % of the traced run
/// (docs/BENCHMARKS.md), their cache lines competing with the program's.
/// Two different tracebacks of one length that differ in a single frame
/// never have the same hashes (see [`Hasher::step`]); others do with a
/// chance of about 2^-128 per pair, far below that of a memory error. The
/// store itself (a cache miss) still compares the frames.
#[inline]
pub(crate) fn intern(
    state: &ThreadState,
    frames: &[usize],
    complete: bool,
    hash: Hashes,
    epoch: Epoch,
) -> Option<u32> {
    // SAFETY: only this thread touches its cache, and nothing else borrows
    // it while the recorder's guard is set.
    let cache = unsafe { &mut *state.cache.get() };
    let entry = &mut cache[hash.index as usize & (CACHE_SIZE - 1)];
    // An unused entry has epoch 0, never a tracing epoch.
    if entry.hash == hash && entry.epoch == epoch {
        return Some(entry.id);
    }
    let id = match guess_after_miss(state, frames, complete) {
        Some(id) => id,
        None => STORE.intern(frames, complete, hash.index)?,
    };
    state.last_missed.set(id);
    *entry = crate::tls::CacheEntry { hash, id, epoch };
    Some(id)
}

/// A miss of the thread's cache tries the id stored after the one its
/// previous miss resolved to, before the store's index: code that makes
/// many distinct tracebacks (building a tree, a recursive descent) makes
/// them again in the same order the next time it runs, and the id after
/// the previous one is then one read of the frames already in cache,
/// where the index is a cache miss at a random place. The guess is only
/// ever taken when the frames match, so it never changes which id a
/// traceback gets; only ids below the store's count are tried, so a slot
/// left from before a `clear_traces` is never read as this epoch's.
#[inline]
fn guess_after_miss(state: &ThreadState, frames: &[usize], complete: bool) -> Option<u32> {
    let guess = state.last_missed.get().wrapping_add(1);
    if guess >= STORE.count_unlocked() {
        return None;
    }
    let header = STORE.header_of(guess);
    // SAFETY: a non-null header from `header_of`.
    (!header.is_null() && unsafe { Store::matches_at(header, frames, complete) }).then_some(guess)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The store's hash of a traceback.
    fn index_hash(frames: &[usize], complete: bool) -> u64 {
        hash_frames(frames, complete).index
    }

    #[test]
    fn chunk_of_covers_every_index_once() {
        let mut expected = (0, 0);
        for n in 0..100 {
            assert_eq!(chunk_of(n, 4), expected, "{n}");
            expected.1 += 1;
            if expected.1 == 4 << expected.0 {
                expected = (expected.0 + 1, 0);
            }
        }
    }

    #[test]
    fn interning_is_by_content_and_completeness() {
        // A private store: the global one belongs to the recorder.
        let store = Store::new();
        let _guard = crate::tls::Guard::enter(crate::tls::GUARD_UNTRACED);
        let a = [1usize, 2, 3];
        let b = [1usize, 2, 4];
        let ha = index_hash(&a, true);
        let id_a = store.intern_locked(&a, true, ha).unwrap();
        assert_eq!(store.intern_locked(&a, true, ha), Some(id_a));
        let id_b = store.intern_locked(&b, true, index_hash(&b, true)).unwrap();
        let id_a_partial = store
            .intern_locked(&a, false, index_hash(&a, false))
            .unwrap();
        assert_ne!(id_a, id_b);
        assert_ne!(id_a, id_a_partial);
        // A forced hash collision still tells the contents apart.
        let id_b_colliding = store.intern_locked(&b, true, ha).unwrap();
        assert_ne!(id_b_colliding, id_a);
        assert!(store.matches(id_a, &a, true));
        assert!(!store.matches(id_a, &b, true));
        let mut out = Vec::new();
        assert!(!store.read(id_a_partial, &mut out));
        assert_eq!(out, a);
        store.clear();
        assert_eq!(store.count(), 0);
        assert!(!store.matches(id_a, &a, true));
    }

    #[test]
    fn tracebacks_one_frame_apart_never_share_a_hash() {
        // What lets the per-thread cache trust its two hashes: a step is a
        // bijection of each hash for a given frame, so changing one frame
        // (anywhere, to anything) changes both hashes. Frames here look
        // like return addresses of one executable.
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..2_000 {
            let len = (next() % 24 + 1) as usize;
            let frames: Vec<usize> = (0..len)
                .map(|_| 0x5555_5555_0000 + (next() % 0x40_0000) as usize)
                .collect();
            let original = hash_frames(&frames, true);
            let mut changed = frames.clone();
            let at = (next() % len as u64) as usize;
            changed[at] ^= 1 << (next() % 24);
            let other = hash_frames(&changed, true);
            assert_ne!(original.index, other.index, "{frames:x?} at {at}");
            assert_ne!(original.check, other.check, "{frames:x?} at {at}");
            // Completeness and length are part of both hashes.
            let partial = hash_frames(&frames, false);
            assert_ne!(original.index, partial.index);
            assert_ne!(original.check, partial.check);
            let shorter = hash_frames(&frames[..len - 1], true);
            assert_ne!(original.index, shorter.index);
            assert_ne!(original.check, shorter.check);
        }
    }

    #[test]
    fn many_tracebacks_span_several_chunks() {
        let store = Store::new();
        let _guard = crate::tls::Guard::enter(crate::tls::GUARD_UNTRACED);
        let mut ids = Vec::new();
        for i in 0..20_000usize {
            let frames = [i, i * 7, i * 13, 99];
            ids.push(
                store
                    .intern_locked(&frames, true, index_hash(&frames, true))
                    .unwrap(),
            );
        }
        let mut out = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            store.read(id, &mut out);
            assert_eq!(out, [i, i * 7, i * 13, 99]);
        }
        assert_eq!(store.count(), 20_000);
    }

    #[test]
    fn the_lock_free_index_finds_every_traceback_across_growth_and_clear() {
        let store = Store::new();
        let _guard = crate::tls::Guard::enter(crate::tls::GUARD_UNTRACED);
        let frames_of = |i: usize| [i + 1, i * 31, 7];
        let hash_of = |i: usize| index_hash(&frames_of(i), true);
        assert_eq!(store.lookup(&frames_of(0), true, hash_of(0)), None);
        // 5,000 tracebacks replace the first index (64 slots) eight times.
        let ids: Vec<u32> = (0..5_000)
            .map(|i| {
                store
                    .intern_locked(&frames_of(i), true, hash_of(i))
                    .unwrap()
            })
            .collect();
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(
                store.lookup(&frames_of(i), true, hash_of(i)),
                Some(id),
                "{i}"
            );
            // The same frames with the other completeness are another
            // traceback, not stored.
            let partial = index_hash(&frames_of(i), false);
            assert_eq!(store.lookup(&frames_of(i), false, partial), None);
        }
        assert_eq!(store.lookup(&frames_of(5_000), true, hash_of(5_000)), None);
        // Two tracebacks under one hash are both found.
        let other = [1usize, 2, 3];
        let shared = hash_of(17);
        let id_other = store.intern_locked(&other, true, shared).unwrap();
        assert_eq!(store.lookup(&other, true, shared), Some(id_other));
        assert_eq!(store.lookup(&frames_of(17), true, shared), Some(ids[17]));
        // Growth keeps the index at most half full.
        let slots = store.current_index();
        let used = slots
            .iter()
            .filter(|s| s.load(Ordering::Relaxed) != 0)
            .count();
        assert_eq!(used, 5_001);
        assert!(used * 2 <= slots.len(), "{used} of {}", slots.len());
        store.clear();
        assert_eq!(store.lookup(&frames_of(3), true, hash_of(3)), None);
        let id = store
            .intern_locked(&frames_of(9), true, hash_of(9))
            .unwrap();
        assert_eq!(id, 0);
        assert_eq!(store.lookup(&frames_of(9), true, hash_of(9)), Some(0));
        assert_eq!(store.lookup(&frames_of(0), true, hash_of(0)), None);
    }

    #[test]
    fn threads_interning_the_same_tracebacks_agree_on_every_id() {
        let store = Store::new();
        let frames_of = |i: usize| [i + 1, 5, i * 3];
        let n = 6_000;
        // Each thread looks up without the lock first while the other one
        // adds tracebacks and replaces the index.
        let run = |reverse: bool| {
            let _guard = crate::tls::Guard::enter(crate::tls::GUARD_UNTRACED);
            let mut ids = vec![0u32; n];
            for k in 0..n {
                let i = if reverse { n - 1 - k } else { k };
                let frames = frames_of(i);
                let hash = index_hash(&frames, true);
                ids[i] = store.intern(&frames, true, hash).unwrap();
            }
            ids
        };
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| run(false));
            let b = s.spawn(|| run(true));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(a, b);
        assert_eq!(store.count() as usize, n);
        let _guard = crate::tls::Guard::enter(crate::tls::GUARD_UNTRACED);
        let mut out = Vec::new();
        for (i, &id) in a.iter().enumerate() {
            store.read(id, &mut out);
            assert_eq!(out, frames_of(i));
        }
    }
}
