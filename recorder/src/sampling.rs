//! Poisson sampling by bytes, as jemalloc's and heapscope's heap profilers
//! do: sample points fall on the stream of allocated bytes at exponentially
//! distributed distances of mean `m`, and a block is traced when at least
//! one point falls in it, with probability `1 - exp(-size / m)`. A snapshot
//! records `m`, and its statistics weigh each block by the inverse of that
//! probability, which makes sizes and counts unbiased.

use crate::tls::ThreadState;

/// Whether a block of `size` bytes is sampled. Costs a subtraction and a
/// compare, except when a sample point is reached.
#[inline(always)]
pub(crate) fn take_sample(state: &ThreadState, size: usize) -> bool {
    let left = state.sample_left.get() - size.min(i64::MAX as usize) as i64;
    if left > 0 {
        state.sample_left.set(left);
        return false;
    }
    sample_point(state, size)
}

#[cold]
fn sample_point(state: &ThreadState, size: usize) -> bool {
    let mean = crate::state::sample_mean().unwrap_or(1);
    if state.sample_left.get() == 0 {
        // First allocation of the thread: draw the first distance, then
        // decide this block against it.
        state.sample_left.set(next_distance(state, mean));
        return take_sample(state, size);
    }
    // The exponential distribution is memoryless, so drawing the next
    // distance from the end of the sampled block is the same process.
    state.sample_left.set(next_distance(state, mean));
    true
}

/// An exponentially distributed distance of mean `mean` bytes, rounded up
/// to a whole byte (at least 1).
///
/// Rounding up is what keeps the sampling unbiased: with `d` the
/// continuous distance, `ceil(d) <= size` holds exactly when `d <= size`
/// for a whole `size`, so a block is sampled with probability
/// `1 - exp(-size / mean)`, the probability its weight divides by; and
/// `ceil(d)` is geometric, as memoryless on whole bytes as `d` is on reals,
/// so the blocks after the first one keep that probability. Truncating
/// instead sampled the first block after each draw with probability
/// `1 - exp(-(size + 1) / mean)`: twice too often for a 1-byte block at a
/// mean of 64, which biased block counts of small blocks upward.
fn next_distance(state: &ThreadState, mean: u64) -> i64 {
    let u = next_uniform(state);
    let d = -u.ln() * mean as f64;
    d.ceil().clamp(1.0, i64::MAX as f64 / 2.0) as i64
}

/// A uniform number in (0, 1], from the thread's xorshift64* generator.
fn next_uniform(state: &ThreadState) -> f64 {
    let mut x = state.rng.get();
    if x == 0 {
        x = seed(state);
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state.rng.set(x);
    let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
    ((r >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

/// A per-thread seed: the state's address (distinct per thread) mixed with
/// the time, never zero.
fn seed(state: &ThreadState) -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mut x = (state as *const ThreadState as u64) ^ now.rotate_left(32);
    x = (x ^ (x >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x | 1
}

#[cfg(test)]
mod tests {
    #[test]
    fn uniform_draws_stay_in_the_unit_interval_and_spread() {
        crate::tls::with(|state| {
            let mut sum = 0.0;
            for _ in 0..10_000 {
                let u = super::next_uniform(state);
                assert!(u > 0.0 && u <= 1.0);
                sum += u;
            }
            let mean = sum / 10_000.0;
            assert!((0.48..0.52).contains(&mean), "{mean}");
        });
    }
}
