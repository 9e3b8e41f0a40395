//! A spin lock that never allocates and can be taken and released by hand,
//! which the `fork()` handlers need.
//!
//! `std::sync::Mutex` would do on the hot path too, but its guard cannot be
//! carried from a `pthread_atfork` "prepare" handler to the "parent" and
//! "child" handlers, and a poisoned lock would be one more failure mode
//! inside an allocator.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// A mutual-exclusion lock that spins, then yields the CPU.
///
/// Critical sections on the hot path are a few hash-table operations long,
/// so spinning is cheaper than parking; the yield keeps a waiter from
/// burning its time slice when the holder was preempted (two cores).
pub(crate) struct SpinLock<T> {
    locked: AtomicBool,
    /// A table lock: counted in the holder's thread state (see
    /// `tls::frees_looked_up`).
    table: bool,
    data: UnsafeCell<T>,
}

// SAFETY: the lock hands out access to `data` to one thread at a time, so
// sharing the lock is as safe as sending the data.
unsafe impl<T: Send> Sync for SpinLock<T> {}
// SAFETY: as above; the lock owns its data.
unsafe impl<T: Send> Send for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// An unlocked lock.
    pub(crate) const fn new(data: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            table: false,
            data: UnsafeCell::new(data),
        }
    }

    /// An unlocked lock over tables that a free looks blocks up in (the
    /// shards, the registry of thread tables, the traceback store): each
    /// thread counts those it holds, so that a free made while holding one
    /// does not take it again.
    pub(crate) const fn new_table(data: T) -> SpinLock<T> {
        SpinLock {
            locked: AtomicBool::new(false),
            table: true,
            data: UnsafeCell::new(data),
        }
    }

    /// Counts a table lock this thread takes (before taking it: a signal
    /// handler that interrupts the taking must already see it) or releases
    /// (after).
    #[inline]
    fn count(&self, delta: i32) {
        if self.table {
            crate::tls::with(|state| {
                state
                    .table_locks
                    .set(state.table_locks.get().wrapping_add_signed(delta));
            });
        }
    }

    /// Takes the lock, waiting as long as needed.
    #[inline]
    pub(crate) fn lock(&self) -> SpinGuard<'_, T> {
        self.raw_lock();
        SpinGuard { lock: self }
    }

    /// Takes the lock without making a guard (for the fork handlers, which
    /// release it in another function).
    #[inline]
    pub(crate) fn raw_lock(&self) {
        self.count(1);
        if self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return;
        }
        self.lock_slow();
    }

    #[cold]
    fn lock_slow(&self) {
        let mut spins = 0u32;
        loop {
            // Wait on a plain load so that waiting does not bounce the cache
            // line between cores.
            while self.locked.load(Ordering::Relaxed) {
                if spins < 64 {
                    std::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
            if self
                .locked
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return;
            }
        }
    }

    /// Releases a lock taken with [`SpinLock::raw_lock`].
    ///
    /// # Safety
    /// The caller took the lock with `raw_lock` and holds no guard to it.
    #[inline]
    pub(crate) unsafe fn raw_unlock(&self) {
        self.locked.store(false, Ordering::Release);
        self.count(-1);
    }

    /// Resets the lock to unlocked without knowing who holds it: for the
    /// child of `fork()`, where only the forking thread survives.
    ///
    /// # Safety
    /// No other thread of this process may be using the lock, which holds
    /// in a child process right after `fork()`.
    pub(crate) unsafe fn force_unlock(&self) {
        self.locked.store(false, Ordering::Release);
        // The child's only thread took every lock in the `fork()`
        // "prepare" handler, which counted it.
        self.count(-1);
    }

    /// The data, for a caller that holds the lock by other means.
    ///
    /// # Safety
    /// The caller holds the lock (e.g. through `raw_lock`) for as long as the
    /// reference lives.
    // The lock, not the borrow, makes the access exclusive, as in
    // `SpinGuard::deref_mut`.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn data_unchecked(&self) -> &mut T {
        // SAFETY: the caller holds the lock, so no one else accesses the data.
        unsafe { &mut *self.data.get() }
    }
}

/// Access to a locked [`SpinLock`]'s data; unlocks when dropped.
pub(crate) struct SpinGuard<'a, T> {
    lock: &'a SpinLock<T>,
}

impl<T> Deref for SpinGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for SpinGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard exists only while this thread holds the lock.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for SpinGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.locked.store(false, Ordering::Release);
        self.lock.count(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn lock_excludes_other_threads() {
        let lock = Arc::new(SpinLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        // A read-modify-write that loses updates without
                        // mutual exclusion.
                        let mut g = lock.lock();
                        let v = *g;
                        std::hint::black_box(&v);
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*lock.lock(), 40_000);
    }

    #[test]
    fn table_locks_count_themselves_in_their_holder() {
        let held = || crate::tls::with(|s| s.table_locks.get());
        let table = SpinLock::new_table(0);
        let other = SpinLock::new(0);
        assert_eq!(held(), 0);
        {
            let _g = table.lock();
            let _o = other.lock();
            assert_eq!(held(), 1, "only the table lock counts");
        }
        assert_eq!(held(), 0);
        table.raw_lock();
        assert_eq!(held(), 1);
        // SAFETY: taken just above; `force_unlock` is the fork child's.
        unsafe { table.force_unlock() };
        assert_eq!(held(), 0);
    }

    #[test]
    fn raw_lock_and_unlock_pair_up() {
        let lock = SpinLock::new(1);
        lock.raw_lock();
        // SAFETY: taken just above, no guard exists.
        unsafe {
            *lock.data_unchecked() += 1;
            lock.raw_unlock();
        }
        assert_eq!(*lock.lock(), 2);
    }
}
