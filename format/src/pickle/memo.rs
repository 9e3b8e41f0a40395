//! The unpickler's memo, compact for what snapshot pickles memoize.
//!
//! CPython's pickler memoizes every tuple, so a snapshot of a million
//! traces has over a million memo entries, nearly all of them trace tuples
//! and frame tuples that are never fetched again (each is used once, in its
//! list or traceback); the entries that are fetched, a million times, are
//! the tracebacks and file names scattered among them. A plain `Vec` of
//! entries would make nearly every fetch a cache miss. Here each block of
//! 64 ids has two bit masks: a trace bit marks "the next converted trace",
//! which the reader recomputes from the bit's rank instead of storing it; a
//! cold bit marks a frame, stored in an array of its own; every other
//! entry goes to the hot array. Fetches of tracebacks then touch a few
//! hundred kilobytes, and storing a trace costs one bit instead of eight
//! bytes of freshly faulted memory.
//!
//! Any id order works: ids past the end go to a sparse map (only a
//! hand-made pickle skips ids) and stores to an id already used go to an
//! override map, checked first (only a hand-made pickle reuses ids). Map
//! entries cost some forty bytes each, so together they are limited to
//! [`MAX_OUT_OF_ORDER`].

use rustc_hash::FxHashMap;

use super::machine::{Shape, Value};

/// Memo entries stored out of order (past the end, or a second time) that
/// a pickle may make. CPython's picklers never make any: they number
/// entries from 0 up, each once.
pub(crate) const MAX_OUT_OF_ORDER: usize = 1 << 16;

/// 64 consecutive ids. Every id below the memo's `len` is a trace bit, a
/// cold bit or a hot entry, so the index of the block's first hot entry
/// is `64 * block - traces_base - cold_base`.
#[derive(Clone, Copy, Debug)]
struct Block {
    /// Bit `i` set: id `64 * block + i` holds the trace `traces_base +
    /// (trace bits below i)`.
    trace_mask: u64,
    /// Bit `i` set: id `64 * block + i` is in `cold` at `cold_base +
    /// (cold bits below i)`.
    cold_mask: u64,
    traces_base: u32,
    cold_base: u32,
}

/// Where an entry below `len` is stored.
#[derive(Clone, Copy, Debug)]
enum Slot {
    Hot(usize),
    Cold(usize),
    Trace(u32),
}

#[derive(Debug, Default)]
pub(crate) struct Memo {
    /// Ids `0..len` are stored through `blocks`.
    len: usize,
    blocks: Vec<Block>,
    /// The entries fetched again in practice: strings and tracebacks.
    hot: Vec<Value>,
    /// Frames, which CPython's pickles never fetch again.
    cold: Vec<Value>,
    /// Trace entries stored as bits so far; the next one must hold this
    /// trace index to be stored as a bit.
    implicit_traces: u32,
    /// The shape of every trace stored as a bit.
    trace_shape: Option<Shape>,
    /// Ids below `len` stored a second time.
    overrides: FxHashMap<usize, Value>,
    /// Ids stored past `len`.
    sparse: FxHashMap<usize, Value>,
}

impl Memo {
    /// The id `MEMOIZE` stores at: the number of entries, as in CPython.
    #[inline]
    pub(crate) fn next_id(&self) -> usize {
        self.len + self.sparse.len()
    }

    /// Stores `v` at `id`; `false` (and nothing stored) when that would
    /// make more than [`MAX_OUT_OF_ORDER`] entries out of order.
    ///
    /// The caller guarantees that there are fewer than `u32::MAX` entries
    /// (each takes an opcode byte, and inputs are smaller than 4 GiB).
    #[inline]
    #[must_use]
    pub(crate) fn put(&mut self, id: usize, v: Value) -> bool {
        if id != self.len {
            let map = if id < self.len {
                &mut self.overrides
            } else {
                &mut self.sparse
            };
            if map.len() >= MAX_OUT_OF_ORDER / 2 && !map.contains_key(&id) {
                return false;
            }
            map.insert(id, v);
            return true;
        }
        if !self.sparse.is_empty() {
            self.sparse.remove(&id);
        }
        let bit = id % 64;
        if bit == 0 {
            self.blocks.push(Block {
                trace_mask: 0,
                cold_mask: 0,
                traces_base: self.implicit_traces,
                cold_base: self.cold.len() as u32,
            });
        }
        let Some(block) = self.blocks.last_mut() else {
            // Unreachable: a block was just pushed if there was none.
            return false;
        };
        match v {
            Value::Trace(k, shape)
                if k == self.implicit_traces && self.trace_shape.is_none_or(|s| s == shape) =>
            {
                self.trace_shape = Some(shape);
                block.trace_mask |= 1 << bit;
                self.implicit_traces += 1;
            }
            Value::Frame(_) => {
                block.cold_mask |= 1 << bit;
                self.cold.push(v);
            }
            _ => self.hot.push(v),
        }
        self.len += 1;
        true
    }

    /// Stores the trace `k` at the next id, as `MEMOIZE` does: the same as
    /// `put(next_id(), Value::Trace(k, shape))`, in a few instructions when
    /// the trace continues the run of traces (the case of every trace
    /// CPython writes).
    #[inline(always)]
    #[must_use]
    pub(crate) fn memoize_trace(&mut self, k: u32, shape: Shape) -> bool {
        let bit = self.len % 64;
        // The common case: the next trace, inside the current block, with
        // nothing out of order (`sparse` would change the id).
        if k == self.implicit_traces
            && bit != 0
            && self.trace_shape == Some(shape)
            && self.sparse.is_empty()
            && let Some(block) = self.blocks.last_mut()
        {
            block.trace_mask |= 1 << bit;
            self.implicit_traces += 1;
            self.len += 1;
            return true;
        }
        self.put(self.next_id(), Value::Trace(k, shape))
    }

    /// Replaces the value stored at `id` (which must hold a value) by
    /// another representation of the same object, a traceback tuple by its
    /// interned traceback. Only values stored in the arrays or the maps are
    /// replaced, never a trace bit, so no entry is added.
    pub(crate) fn replace(&mut self, id: usize, v: Value) {
        if id >= self.len {
            if let Some(slot) = self.sparse.get_mut(&id) {
                *slot = v;
            }
            return;
        }
        if !self.overrides.is_empty()
            && let Some(slot) = self.overrides.get_mut(&id)
        {
            *slot = v;
            return;
        }
        let slot = match self.slot(id) {
            Some(Slot::Hot(i)) => self.hot.get_mut(i),
            Some(Slot::Cold(i)) => self.cold.get_mut(i),
            Some(Slot::Trace(_)) | None => None,
        };
        if let Some(slot) = slot {
            *slot = v;
        }
    }

    /// The value stored at `id`, if any.
    #[inline(always)]
    pub(crate) fn get(&self, id: usize) -> Option<Value> {
        if id >= self.len {
            return self.sparse.get(&id).copied();
        }
        if !self.overrides.is_empty()
            && let Some(&v) = self.overrides.get(&id)
        {
            return Some(v);
        }
        match self.slot(id)? {
            Slot::Hot(i) => self.hot.get(i).copied(),
            Slot::Cold(i) => self.cold.get(i).copied(),
            Slot::Trace(k) => Some(Value::Trace(k, self.trace_shape?)),
        }
    }

    /// Where the entry of `id` (below `len`) is.
    #[inline(always)]
    fn slot(&self, id: usize) -> Option<Slot> {
        let block_index = id / 64;
        let block = *self.blocks.get(block_index)?;
        let bit = id % 64;
        let below = (1u64 << bit) - 1;
        if (block.trace_mask >> bit) & 1 != 0 {
            let rank = (block.trace_mask & below).count_ones();
            Some(Slot::Trace(block.traces_base + rank))
        } else if (block.cold_mask >> bit) & 1 != 0 {
            let rank = (block.cold_mask & below).count_ones() as usize;
            Some(Slot::Cold(block.cold_base as usize + rank))
        } else {
            // Every earlier id of the block that is not a bit is hot.
            let bits_below = ((block.trace_mask | block.cold_mask) & below).count_ones() as usize;
            let hot_base = 64 * block_index - block.traces_base as usize - block.cold_base as usize;
            Some(Slot::Hot(hot_base + bit - bits_below))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memo behaves as a map from id to value, whatever the order of
    /// the stores and whatever is stored.
    #[test]
    fn behaves_like_a_map() {
        let mut memo = Memo::default();
        let mut model = std::collections::HashMap::new();
        {
            let mut store = |id: usize, v: Value| {
                assert!(memo.put(id, v));
                model.insert(id, v);
            };
            let mut k = 0;
            for i in 0..300usize {
                let v = match i % 7 {
                    3 => Value::Int(i as i32),
                    5 => Value::Frame(crate::model::FrameId(i as u32)),
                    _ => {
                        k += 1;
                        Value::Trace(k - 1, Shape::TotalNframe)
                    }
                };
                store(i, v);
            }
            // A trace out of order, one of another shape, an override of a
            // trace bit and a sparse id.
            store(300, Value::Trace(5, Shape::TotalNframe));
            store(301, Value::Trace(k, Shape::Domain));
            store(10, Value::Str(1));
            store(400, Value::Str(2));
        }
        // MEMOIZE counts the sparse entry, as CPython's memo length does.
        assert_eq!(memo.next_id(), 303);
        // Filling the gap reaches the sparse id, which the fill overwrites.
        for id in 302..=400 {
            assert!(memo.put(id, Value::Int(-(id as i32))));
            model.insert(id, Value::Int(-(id as i32)));
        }
        assert_eq!(memo.next_id(), 401);
        for id in 0..450 {
            assert_eq!(memo.get(id), model.get(&id).copied(), "id {id}");
        }
        // `memoize_trace` stores where `put(next_id())` would.
        let mut fast = Memo::default();
        let mut slow = Memo::default();
        for i in 0..200u32 {
            let (k, shape) = match i % 50 {
                7 => (1000 + i, Shape::TotalNframe),
                9 => (i, Shape::Domain),
                _ => (i, Shape::TotalNframe),
            };
            if i % 30 == 29 {
                assert!(fast.put(fast.next_id(), Value::Str(i)));
                assert!(slow.put(slow.next_id(), Value::Str(i)));
            }
            assert!(fast.memoize_trace(k, shape));
            assert!(slow.put(slow.next_id(), Value::Trace(k, shape)));
        }
        assert_eq!(fast.next_id(), slow.next_id());
        for id in 0..fast.next_id() + 2 {
            assert_eq!(fast.get(id), slow.get(id), "id {id}");
        }

        // Replacing keeps the map view, wherever the value is stored (only
        // traceback tuples are ever replaced, so never a trace).
        for id in [3, 5, 10, 17, 302, 400] {
            assert!(!matches!(model[&id], Value::Trace(..)));
            memo.replace(id, Value::Str(id as u32));
            model.insert(id, Value::Str(id as u32));
        }
        for id in 0..450 {
            assert_eq!(
                memo.get(id),
                model.get(&id).copied(),
                "id {id} after replace"
            );
        }
        // The traces in order took a bit each, not a slot, and frames went
        // to the cold array.
        assert_eq!(memo.cold.len(), 43);
        // Hot: the 43 ints, the two traces out of order, the 99 ints of the
        // gap.
        assert_eq!(memo.hot.len(), 43 + 2 + 99);
        // Out-of-order entries are limited.
        let mut memo = Memo::default();
        for i in 0..MAX_OUT_OF_ORDER / 2 {
            assert!(memo.put(10 + 2 * i, Value::Int(1)));
        }
        assert!(!memo.put(1, Value::Int(1)));
        assert!(
            memo.put(10, Value::Int(2)),
            "an existing entry can be stored again"
        );
        assert!(memo.put(0, Value::Int(1)), "in order is always fine");
    }
}
