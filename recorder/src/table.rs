//! The address table: every live traced block, by address, sharded so that
//! threads allocating at the same time rarely wait for each other.
//!
//! A block is found by its address alone (a free does not know its
//! traceback), so the shard is a function of the address. Blocks of one
//! 64 KiB region share a shard: allocators hand each thread its own regions
//! (glibc arenas, mimalloc and jemalloc thread caches), so two threads
//! mostly touch different shards and their cache lines do not bounce.
//!
//! Each shard's counter of traced bytes changes under the shard's lock,
//! together with its entries, so a snapshot that holds every shard lock sees
//! entries and counters that agree exactly.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use crate::lock::SpinLock;

/// Number of shards (a power of two).
pub(crate) const SHARDS: usize = 128;

/// Heap entries pack the size (low 32 bits) and the traceback id (high 32
/// bits) into one word; a size that does not fit goes to the `other` map.
const SIZE_LIMIT: usize = u32::MAX as usize;

/// A block's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) size: usize,
    pub(crate) traceback: u32,
}

/// One block as a snapshot copies it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Copied {
    pub(crate) domain: u32,
    pub(crate) size: u64,
    pub(crate) traceback: u32,
}

/// Hashes addresses: a folded 128-bit multiply, so that the low bits the
/// hash table uses depend on every bit of the (mostly aligned) address.
#[derive(Clone, Copy, Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = mix(self.0 ^ n);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

impl BuildHasher for AddrHasher {
    type Hasher = AddrHasher;
    #[inline]
    fn build_hasher(&self) -> AddrHasher {
        AddrHasher(0)
    }
}

/// Mixes every bit of `x` into every bit of the result (a folded
/// 128-bit multiply).
#[inline]
pub(crate) fn mix(x: u64) -> u64 {
    let m = u128::from(x) * 0x9E37_79B9_7F4A_7C15u128;
    (m as u64) ^ ((m >> 64) as u64)
}

/// What one shard holds.
pub(crate) struct ShardData {
    /// Heap blocks (domain 0) below 4 GiB: address to `size | tb << 32`.
    heap: HashMap<usize, u64, AddrHasher>,
    /// Everything else: other domains, and heap blocks of 4 GiB or more.
    other: HashMap<(u32, usize), Entry, AddrHasher>,
    /// Sum of the accounted amounts of the shard's blocks (sizes, or
    /// sampling estimates in sampled mode).
    pub(crate) current: u64,
}

/// A shard on its own cache lines, so that shards never share one.
#[repr(align(128))]
pub(crate) struct Shard {
    pub(crate) data: SpinLock<ShardData>,
}

impl Shard {
    const fn new() -> Shard {
        Shard {
            data: SpinLock::new_table(ShardData {
                heap: HashMap::with_hasher(AddrHasher(0)),
                other: HashMap::with_hasher(AddrHasher(0)),
                current: 0,
            }),
        }
    }
}

/// The process-wide table.
pub(crate) static TABLE: [Shard; SHARDS] = [const { Shard::new() }; SHARDS];

/// The index of an address's shard (see the module documentation).
#[inline]
pub(crate) fn shard_index(addr: usize) -> usize {
    (mix((addr >> 16) as u64) >> 32) as usize & (SHARDS - 1)
}

/// The shard of an address.
#[inline]
pub(crate) fn shard_of(addr: usize) -> &'static Shard {
    &TABLE[shard_index(addr)]
}

/// Counting filter of sampled addresses: in sampled mode a free whose slot
/// is zero is certainly of an unsampled block and skips the table.
const FILTER_SLOTS: usize = 1 << 16;
static FILTER: [AtomicU8; FILTER_SLOTS] = [const { AtomicU8::new(0) }; FILTER_SLOTS];
/// Whether the filter is in use (sampled mode). Changed only while every
/// shard is locked and the table empty.
static FILTER_ON: AtomicU32 = AtomicU32::new(0);

#[inline]
fn filter_slot(addr: usize) -> &'static AtomicU8 {
    &FILTER[mix(addr as u64) as usize & (FILTER_SLOTS - 1)]
}

/// Whether a free of `addr` must look in the table.
#[inline]
pub(crate) fn may_be_traced(addr: usize) -> bool {
    FILTER_ON.load(Ordering::Relaxed) == 0 || filter_slot(addr).load(Ordering::Relaxed) != 0
}

fn filter_add(addr: usize) {
    if FILTER_ON.load(Ordering::Relaxed) != 0 {
        let slot = filter_slot(addr);
        // A saturated counter stays saturated: the slot then only costs
        // table lookups, never a missed free.
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            (v < u8::MAX).then_some(v + 1)
        });
    }
}

fn filter_remove(addr: usize) {
    if FILTER_ON.load(Ordering::Relaxed) != 0 {
        let slot = filter_slot(addr);
        let _ = slot.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            (v > 0 && v < u8::MAX).then(|| v - 1)
        });
    }
}

/// The outcome of an insert.
pub(crate) enum Inserted {
    /// Stored; the amount replaced an older entry's (0 if none).
    Yes { replaced: u64 },
    /// Not stored: the epoch changed meanwhile, or memory ran out.
    No,
}

impl ShardData {
    /// Records a block. `amount` is what the block adds to traced memory;
    /// `amount_of` gives a replaced entry's amount from its size.
    pub(crate) fn insert(
        &mut self,
        domain: u32,
        addr: usize,
        entry: Entry,
        amount: u64,
        amount_of: impl Fn(usize) -> u64,
    ) -> Inserted {
        let replaced = if domain == 0 && entry.size < SIZE_LIMIT {
            if self.heap.try_reserve(1).is_err() {
                return Inserted::No;
            }
            let packed = entry.size as u64 | (u64::from(entry.traceback) << 32);
            let old = self.heap.insert(addr, packed);
            // A block of 4 GiB or more at the same address would be stale.
            let big = if self.other.is_empty() {
                None
            } else {
                self.other.remove(&(0, addr))
            };
            old.map(|p| (p & 0xffff_ffff) as usize)
                .or(big.map(|e| e.size))
        } else {
            if self.other.try_reserve(1).is_err() {
                return Inserted::No;
            }
            let old = self.other.insert((domain, addr), entry).map(|e| e.size);
            let small = if domain == 0 {
                self.heap.remove(&addr).map(|p| (p & 0xffff_ffff) as usize)
            } else {
                None
            };
            old.or(small)
        };
        let replaced = match replaced {
            Some(size) => amount_of(size),
            None => {
                if domain == 0 {
                    filter_add(addr);
                }
                0
            }
        };
        self.current = self.current - replaced + amount;
        Inserted::Yes { replaced }
    }

    /// Removes a block; returns its record.
    #[inline]
    pub(crate) fn remove(&mut self, domain: u32, addr: usize) -> Option<Entry> {
        let found = if domain == 0 {
            match self.heap.remove(&addr) {
                Some(p) => Some(Entry {
                    size: (p & 0xffff_ffff) as usize,
                    traceback: (p >> 32) as u32,
                }),
                None if !self.other.is_empty() => self.other.remove(&(0, addr)),
                None => None,
            }
        } else {
            self.other.remove(&(domain, addr))
        };
        if found.is_some() && domain == 0 {
            filter_remove(addr);
        }
        found
    }

    /// Looks a block up.
    pub(crate) fn get(&self, domain: u32, addr: usize) -> Option<Entry> {
        if domain == 0
            && let Some(&p) = self.heap.get(&addr)
        {
            return Some(Entry {
                size: (p & 0xffff_ffff) as usize,
                traceback: (p >> 32) as u32,
            });
        }
        self.other.get(&(domain, addr)).copied()
    }

    /// Number of blocks.
    pub(crate) fn len(&self) -> usize {
        self.heap.len() + self.other.len()
    }

    /// Appends every block to `out`.
    pub(crate) fn copy_into(&self, out: &mut Vec<Copied>) {
        out.extend(self.heap.values().map(|&p| Copied {
            domain: 0,
            size: p & 0xffff_ffff,
            traceback: (p >> 32) as u32,
        }));
        out.extend(self.other.iter().map(|(&(domain, _), e)| Copied {
            domain,
            size: e.size as u64,
            traceback: e.traceback,
        }));
    }

    /// Forgets every block and releases the memory.
    pub(crate) fn clear(&mut self) {
        self.heap = HashMap::with_hasher(AddrHasher(0));
        self.other = HashMap::with_hasher(AddrHasher(0));
        self.current = 0;
    }

    /// Bytes the shard's maps hold.
    pub(crate) fn memory(&self) -> usize {
        hash_map_bytes(self.heap.capacity(), size_of::<(usize, u64)>())
            + hash_map_bytes(self.other.capacity(), size_of::<((u32, usize), Entry)>())
    }
}

/// Bytes a `std` hash map of this capacity allocates: buckets of
/// `entry_size` bytes plus one control byte each, and a group of control
/// bytes of padding (the layout of hashbrown, which `std` uses).
pub(crate) fn hash_map_bytes(capacity: usize, entry_size: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        capacity + 1
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * (entry_size + 1) + 16
}

/// Turns the counting filter on (sampled mode) or off. Called with every
/// shard locked and the table empty.
pub(crate) fn set_filter(on: bool) {
    for slot in &FILTER {
        slot.store(0, Ordering::Relaxed);
    }
    FILTER_ON.store(u32::from(on), Ordering::Relaxed);
}

/// Every shard locked, in index order (the one lock order of the table).
pub(crate) struct AllShards {
    _private: (),
}

impl AllShards {
    /// Locks every shard.
    pub(crate) fn lock() -> AllShards {
        for shard in &TABLE {
            shard.data.raw_lock();
        }
        AllShards { _private: () }
    }

    /// The data of `addr`'s shard.
    pub(crate) fn of(&mut self, addr: usize) -> &mut ShardData {
        // SAFETY: as in `iter_mut`.
        unsafe { TABLE[shard_index(addr)].data.data_unchecked() }
    }

    /// The shards' data.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut ShardData> {
        TABLE.iter().map(|shard| {
            // SAFETY: `self` exists only while every shard is locked by this
            // thread, and `&mut self` makes the references exclusive.
            unsafe { shard.data.data_unchecked() }
        })
    }
}

impl Drop for AllShards {
    fn drop(&mut self) {
        for shard in TABLE.iter().rev() {
            // SAFETY: `lock` took every shard and no guard refers to them.
            unsafe { shard.data.raw_unlock() };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> ShardData {
        ShardData {
            heap: HashMap::with_hasher(AddrHasher(0)),
            other: HashMap::with_hasher(AddrHasher(0)),
            current: 0,
        }
    }

    fn id(size: usize) -> u64 {
        size as u64
    }

    #[test]
    fn insert_replace_remove_keep_the_counter_exact() {
        let mut d = data();
        let e = |size, traceback| Entry { size, traceback };
        assert!(matches!(
            d.insert(0, 0x1000, e(10, 1), 10, id),
            Inserted::Yes { replaced: 0 }
        ));
        assert!(matches!(
            d.insert(0, 0x2000, e(5, 2), 5, id),
            Inserted::Yes { replaced: 0 }
        ));
        assert_eq!(d.current, 15);
        // The same address again replaces the stale entry.
        assert!(matches!(
            d.insert(0, 0x1000, e(7, 3), 7, id),
            Inserted::Yes { replaced: 10 }
        ));
        assert_eq!(d.current, 12);
        // Other domains and huge blocks live apart but count the same.
        let huge = SIZE_LIMIT + 1;
        d.insert(0, 0x3000, e(huge, 4), huge as u64, id);
        d.insert(7, 0x1000, e(100, 5), 100, id);
        assert_eq!(d.len(), 4);
        assert_eq!(d.get(0, 0x1000), Some(e(7, 3)));
        assert_eq!(d.get(7, 0x1000), Some(e(100, 5)));
        assert_eq!(d.remove(0, 0x3000), Some(e(huge, 4)));
        assert_eq!(d.remove(0, 0x3000), None);
        assert_eq!(d.remove(7, 0x1000), Some(e(100, 5)));
        let mut out = Vec::new();
        d.copy_into(&mut out);
        let mut sizes: Vec<u64> = out.iter().map(|c| c.size).collect();
        sizes.sort();
        assert_eq!(sizes, [5, 7]);
        d.clear();
        assert_eq!(d.len(), 0);
        assert_eq!(d.current, 0);
    }

    #[test]
    fn a_huge_block_replaces_a_small_one_at_the_same_address() {
        let mut d = data();
        let e = |size, traceback| Entry { size, traceback };
        d.insert(0, 0x1000, e(10, 1), 10, id);
        let huge = SIZE_LIMIT + 5;
        assert!(matches!(
            d.insert(0, 0x1000, e(huge, 2), huge as u64, id),
            Inserted::Yes { replaced: 10 }
        ));
        assert_eq!(d.len(), 1);
        assert_eq!(d.current, huge as u64);
    }

    #[test]
    fn hash_map_bytes_follows_hashbrown() {
        let mut m: HashMap<usize, u64, AddrHasher> = HashMap::with_hasher(AddrHasher(0));
        assert_eq!(hash_map_bytes(m.capacity(), 16), 0);
        m.insert(1, 1);
        assert_eq!(m.capacity(), 3);
        assert_eq!(hash_map_bytes(m.capacity(), 16), 4 * 17 + 16);
        for i in 0..1000 {
            m.insert(i, 0);
        }
        assert_eq!(m.capacity(), 1792);
        assert_eq!(hash_map_bytes(m.capacity(), 16), 2048 * 17 + 16);
    }
}
