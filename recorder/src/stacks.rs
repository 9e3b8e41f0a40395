//! The traceback store: every distinct raw traceback (a list of return
//! addresses) stored once, under a 32-bit id that the address table keeps
//! per block.
//!
//! Lookups on the hot path go through a per-thread cache first (see
//! [`intern`]), which reads the store without taking its lock; only a
//! traceback the thread has not seen recently takes the store's lock. To make
//! lock-free reads possible, stored frames never move: they live in chunks
//! that are never freed (only reused after `clear_traces()`/`stop()`), and
//! every word is an atomic, so a reader racing a writer reads some value,
//! never undefined behaviour. A reader that raced a reset may see a stale
//! traceback; it then holds an id of an older tracing epoch, and the
//! address table refuses inserts from older epochs.

use std::alloc::Layout;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use crate::lock::SpinLock;
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
const ID_BASE: usize = 1 << 12;
/// Enough chunks for 2^40 words of frames and 2^40 ids.
const NCHUNKS: usize = 28;
/// Extra words after each frame chunk, so that a stale reader that takes any
/// word of a chunk for a header can read a whole traceback after it without
/// leaving the allocation.
const PAD: usize = MAX_RAW + 1;

const NONE: u32 = u32::MAX;
const COMPLETE_BIT: usize = 1 << 16;
const LEN_MASK: usize = 0xffff;

/// A hasher for keys that already are good hashes.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this keeps the hasher total anyway.
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdentityBuild = BuildHasherDefault<IdentityHasher>;

struct Index {
    /// Traceback hash to the newest id with that hash.
    by_hash: HashMap<u64, u32, IdentityBuild>,
    /// Id to the next older id with the same hash, or `NONE`.
    next_same_hash: Vec<u32>,
    /// Bump position: chunk and words used in it.
    chunk: usize,
    used: usize,
    /// Ids handed out in this epoch.
    count: u32,
    /// Bytes of frame and id chunks allocated (never freed).
    chunk_bytes: usize,
}

/// The process-wide traceback store.
pub(crate) struct Store {
    index: SpinLock<Index>,
    chunks: [AtomicPtr<AtomicUsize>; NCHUNKS],
    id_chunks: [AtomicPtr<AtomicUsize>; NCHUNKS],
}

pub(crate) static STORE: Store = Store::new();

/// The chunk holding `n`-th entry of a sequence whose chunk `k` holds
/// `base << k` entries, and the offset in that chunk.
#[inline]
fn chunk_of(n: usize, base: usize) -> (usize, usize) {
    let q = n / base + 1;
    let k = (usize::BITS - 1 - q.leading_zeros()) as usize;
    (k, n - base * ((1 << k) - 1))
}

/// Where the traceback hash starts, before any frame.
pub(crate) const HASH_SEED: u64 = 0x243F_6A88_85A3_08D3;
const HASH_K1: u64 = 0x9E37_79B9_7F4A_7C15;
const HASH_K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// Adds one frame to a traceback hash. A step is a bijection of the state
/// for a given frame, so two tracebacks that differ in one frame never
/// collide before the final mix; the frame-pointer walk calls it as it
/// goes (see `unwind::walk_frame_pointers`).
#[inline(always)]
pub(crate) fn hash_step(hash: u64, frame: usize) -> u64 {
    (hash ^ frame as u64).wrapping_mul(HASH_K1)
}

/// Finishes a traceback hash: adds the length and the completeness, then
/// spreads every bit into the low ones the caches index by.
#[inline(always)]
pub(crate) fn hash_finish(hash: u64, len: usize, complete: bool) -> u64 {
    let mut h = hash ^ ((len as u64) << 1 | u64::from(complete)).wrapping_mul(HASH_K2);
    h ^= h >> 32;
    h = h.wrapping_mul(HASH_K1);
    h ^= h >> 29;
    h
}

/// Hash of a raw traceback.
#[inline]
pub(crate) fn hash_frames(frames: &[usize], complete: bool) -> u64 {
    let hash = frames.iter().fold(HASH_SEED, |h, &f| hash_step(h, f));
    hash_finish(hash, frames.len(), complete)
}

impl Store {
    const fn new() -> Store {
        Store {
            index: SpinLock::new(Index {
                by_hash: HashMap::with_hasher(BuildHasherDefault::new()),
                next_same_hash: Vec::new(),
                chunk: 0,
                used: 0,
                count: 0,
                chunk_bytes: 0,
            }),
            chunks: [const { AtomicPtr::new(std::ptr::null_mut()) }; NCHUNKS],
            id_chunks: [const { AtomicPtr::new(std::ptr::null_mut()) }; NCHUNKS],
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
    /// Lock-free; see the module documentation for why this is sound.
    #[inline]
    pub(crate) fn matches(&self, id: u32, frames: &[usize], complete: bool) -> bool {
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

    /// The id of `frames`, storing them if new. `None` when the recorder's
    /// own memory could not be allocated or the ids ran out: the caller
    /// then leaves the block untraced rather than failing the allocation.
    pub(crate) fn intern_locked(&self, frames: &[usize], complete: bool, hash: u64) -> Option<u32> {
        debug_assert!(frames.len() <= MAX_RAW);
        let mut index = self.index.lock();
        let mut id = index.by_hash.get(&hash).copied().unwrap_or(NONE);
        let head = id;
        while id != NONE {
            if self.matches(id, frames, complete) {
                return Some(id);
            }
            id = index
                .next_same_hash
                .get(id as usize)
                .copied()
                .unwrap_or(NONE);
        }
        let id = index.count;
        if id == NONE {
            return None;
        }
        index.next_same_hash.try_reserve(1).ok()?;
        index.by_hash.try_reserve(1).ok()?;
        let slot = self.ensure_id_slot(&mut index, id)?;
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
        // visible to a lock-free reader that finds it with Acquire.
        slot.store(header as usize, Ordering::Release);
        index.next_same_hash.push(head);
        index.by_hash.insert(hash, id);
        index.count += 1;
        Some(id)
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
        index.by_hash = HashMap::with_hasher(BuildHasherDefault::new());
        index.next_same_hash = Vec::new();
        index.chunk = 0;
        index.used = 0;
        index.count = 0;
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

    /// Bytes the store holds: chunks plus its index.
    pub(crate) fn memory(&self) -> usize {
        let index = self.index.lock();
        index.chunk_bytes
            + crate::table::hash_map_bytes(index.by_hash.capacity(), size_of::<(u64, u32)>())
            + index.next_same_hash.capacity() * size_of::<u32>()
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
#[inline]
pub(crate) fn intern(
    state: &ThreadState,
    frames: &[usize],
    complete: bool,
    hash: u64,
    epoch: u32,
) -> Option<u32> {
    // SAFETY: only this thread touches its cache, and nothing else borrows
    // it while the recorder's guard is set.
    let cache = unsafe { &mut *state.cache.get() };
    let entry = &mut cache[hash as usize & (CACHE_SIZE - 1)];
    // The entry keeps where its traceback is stored, so that checking it
    // is one read of the frames, not a walk from the id first.
    if entry.hash == hash
        && entry.epoch == epoch
        && !entry.header.is_null()
        // SAFETY: `header` came from `header_of` in this epoch.
        && unsafe { Store::matches_at(entry.header, frames, complete) }
    {
        return Some(entry.id);
    }
    let id = STORE.intern_locked(frames, complete, hash)?;
    let header = STORE.header_of(id);
    *entry = crate::tls::CacheEntry {
        hash,
        id,
        epoch,
        header,
    };
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let ha = hash_frames(&a, true);
        let id_a = store.intern_locked(&a, true, ha).unwrap();
        assert_eq!(store.intern_locked(&a, true, ha), Some(id_a));
        let id_b = store
            .intern_locked(&b, true, hash_frames(&b, true))
            .unwrap();
        let id_a_partial = store
            .intern_locked(&a, false, hash_frames(&a, false))
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
    fn many_tracebacks_span_several_chunks() {
        let store = Store::new();
        let _guard = crate::tls::Guard::enter(crate::tls::GUARD_UNTRACED);
        let mut ids = Vec::new();
        for i in 0..20_000usize {
            let frames = [i, i * 7, i * 13, 99];
            ids.push(
                store
                    .intern_locked(&frames, true, hash_frames(&frames, true))
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
}
