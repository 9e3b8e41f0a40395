//! Block headers: with the system allocator on glibc, a traced block
//! carries its record in 16 bytes in front of it, so that freeing it finds
//! the record next to the memory it frees instead of searching an address
//! table (a cache miss at a random place for every long-lived block).
//!
//! `TracingAllocator::system()` asks the inner allocator for `size + 16`
//! bytes aligned to 16 and hands out the address 16 bytes in. The header:
//!
//! | bytes before the block | contents |
//! |---|---|
//! | 16 to 9 | the traced size (low 32 bits) and the traceback id (high 32 bits) |
//! | 8 to 1 | the slot in the owner thread's block array (high 32 bits), and `MARK` (bit 3) |
//!
//! A free must tell a block with a header from one without (allocated
//! before tracing started, while it was off, in sampled mode, or with an
//! alignment above 16), and it cannot look the block up to decide: that is
//! the search the header avoids. glibc keeps each chunk's size in the 8
//! bytes before the block it returns, and chunk sizes are multiples of 16,
//! so bit 3 of that word is always clear; a header's second word has it
//! set. This is why headers are used only when `malloc` is glibc's (checked
//! at `start`: a preloaded jemalloc or tcmalloc makes no such promise, and
//! neither does valgrind, see [`chunk_layout_known`]).
//!
//! Headers are used only in sessions that ask for them
//! (`Config::block_headers`): a block with one starts 16 bytes into the
//! inner allocation, so C code that frees, reallocates or measures it
//! (common in FFI code, though undefined behaviour by Rust's rules) hands
//! glibc a pointer it did not return, and glibc aborts.
//!
//! A block with a header is never given back while its block array may
//! still list it: its free takes it out first, even under the re-entrancy
//! guard. Only where that cannot be done (a signal handler interrupting the
//! recorder, see `tls::frees_looked_up`) is the block kept instead.
//!
//! The block array (`thread_table.rs`) lists each thread's blocks with a
//! header, for snapshots; the slot in the header lets a free clear its
//! entry without a search. A header whose slot is `NO_SLOT`, or whose slot
//! does not hold the block (after `clear_traces`, or once its thread has
//! exited and its blocks moved to the shared table), is looked up the slow
//! way.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::{self, Epoch, is_tracing_epoch};
use crate::table::Entry;
use crate::tls::{self, GUARD_CALIBRATE, GUARD_COUNTED, GUARD_NONE};

/// Bytes in front of a block with a header, which is also their alignment.
pub(crate) const HEADER: usize = 16;
/// Set in a header's second word; clear in glibc's chunk size.
const MARK: u64 = 1 << 3;
/// The slot of a block with a header that is not in a block array.
pub(crate) const NO_SLOT: u32 = u32::MAX;
/// The largest block given a header: its size is kept in 32 bits.
pub(crate) const MAX_SIZE: usize = u32::MAX as usize - 1;

/// `EPOCH` bit: new blocks get a header in this tracing epoch.
pub(crate) const EPOCH_HEADERS: Epoch = 1 << 62;
/// `EPOCH` bit, never cleared once set: blocks with a header may exist,
/// so every free reads the word in front of its block.
pub(crate) const EPOCH_HEADERS_SEEN: Epoch = 1 << 63;

/// Whether a new block of `layout` gets a header in `epoch`, a tracing
/// epoch (the caller checked).
#[inline(always)]
pub(crate) fn gives_header(epoch: Epoch, layout: Layout) -> bool {
    epoch & EPOCH_HEADERS != 0 && layout.align() <= HEADER && layout.size() <= MAX_SIZE
}

/// Whether the block at `ptr` has a header.
///
/// # Safety
/// `ptr` is a live block of the system allocator, which is glibc's
/// (`EPOCH_HEADERS_SEEN` is set only then).
#[inline(always)]
pub(crate) unsafe fn has_header(ptr: *mut u8) -> bool {
    // SAFETY: glibc's chunk header, or ours, is in the 8 bytes before
    // every block it hands out; both are 8-aligned and mapped.
    unsafe { ptr.sub(8).cast::<u64>().read() & MARK != 0 }
}

/// The header's two words of the block at `addr`.
///
/// # Safety
/// `addr` is a live block with a header.
#[inline(always)]
unsafe fn words<'a>(addr: usize) -> (&'a AtomicU64, &'a AtomicU64) {
    // SAFETY: the header is the 16 bytes before the block, 16-aligned,
    // inside the allocation; only atomics access them while the block is
    // traced.
    unsafe {
        (
            &*((addr - HEADER) as *const AtomicU64),
            &*((addr - 8) as *const AtomicU64),
        )
    }
}

/// The record in the header of the block at `addr`.
///
/// # Safety
/// As [`words`].
#[inline(always)]
pub(crate) unsafe fn entry(addr: usize) -> Entry {
    // SAFETY: forwarded.
    let w = unsafe { words(addr) }.0.load(Ordering::Relaxed);
    Entry {
        size: (w & 0xffff_ffff) as usize,
        traceback: (w >> 32) as u32,
    }
}

/// The block-array slot in the header of the block at `addr`.
///
/// # Safety
/// As [`words`].
#[inline(always)]
pub(crate) unsafe fn slot(addr: usize) -> u32 {
    // SAFETY: forwarded.
    (unsafe { words(addr) }.1.load(Ordering::Relaxed) >> 32) as u32
}

/// Writes the record of the block at `addr`.
///
/// # Safety
/// As [`words`].
#[inline(always)]
pub(crate) unsafe fn set_entry(addr: usize, size: usize, traceback: u32) {
    // SAFETY: forwarded.
    unsafe { words(addr) }.0.store(
        size as u64 | (u64::from(traceback) << 32),
        Ordering::Relaxed,
    );
}

/// Writes the block-array slot of the block at `addr`.
///
/// # Safety
/// As [`words`].
#[inline(always)]
pub(crate) unsafe fn set_slot(addr: usize, slot: u32) {
    // SAFETY: forwarded.
    unsafe { words(addr) }
        .1
        .store((u64::from(slot) << 32) | MARK, Ordering::Relaxed);
}

/// The inner allocator's layout for a block of `size` bytes with a header.
#[inline(always)]
fn outer(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

/// `alloc` and `alloc_zeroed` of a block that gets a header.
///
/// # Safety
/// As `GlobalAlloc::alloc`; [`gives_header`] is true.
#[inline(never)]
pub(crate) unsafe fn alloc<A: GlobalAlloc>(
    inner: &A,
    layout: Layout,
    epoch: Epoch,
    zeroed: bool,
) -> *mut u8 {
    tls::with(|state| {
        let guard = state.guard.get();
        if guard != GUARD_NONE {
            // The recorder's own memory: no header.
            // SAFETY: forwarded from the caller.
            let ptr = unsafe {
                if zeroed {
                    inner.alloc_zeroed(layout)
                } else {
                    inner.alloc(layout)
                }
            };
            if guard == GUARD_COUNTED {
                crate::allocator::count_own(layout.size() as i64);
            } else if guard == GUARD_CALIBRATE {
                // Called from here, so that the calibrated depth is that of
                // `state::record_headed` below.
                state::calibration_capture(state);
            }
            return ptr;
        }
        let Some(outer) = outer(layout.size()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size.
        let raw = unsafe {
            if zeroed {
                inner.alloc_zeroed(outer)
            } else {
                inner.alloc(outer)
            }
        };
        if raw.is_null() {
            return raw;
        }
        // SAFETY: the allocation is `HEADER` bytes longer than the block.
        let ptr = unsafe { raw.add(HEADER) };
        // SAFETY: `ptr` is a new block with room for a header.
        tls::hook(state, || unsafe {
            state::record_headed(state, ptr as usize, layout.size(), epoch)
        });
        ptr
    })
}

/// `dealloc` of a block with a header.
///
/// # Safety
/// As `GlobalAlloc::dealloc`; [`has_header`] is true.
#[inline(never)]
pub(crate) unsafe fn dealloc<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    epoch: Epoch,
) {
    // SAFETY: forwarded from the caller.
    if is_tracing_epoch(epoch) && !unsafe { forget_freed(ptr, layout.size(), epoch) } {
        return;
    }
    // SAFETY: the block was allocated `HEADER` bytes in, with this layout
    // (`outer` succeeded then, for the same size).
    unsafe {
        inner.dealloc(
            ptr.sub(HEADER),
            Layout::from_size_align_unchecked(layout.size() + HEADER, HEADER),
        );
    }
}

/// Forgets the trace of a block with a header that is being freed; `false`
/// if the block must not go back to the inner allocator.
///
/// The free is recorded before the block goes back (see
/// `TracingAllocator::dealloc`), whoever frees it: also under the guard
/// (the symbolizer dropping a cache the program filled). Only where this
/// thread's table is in use, or a table lock held (a signal handler that
/// interrupted the recorder: `tls::frees_looked_up`), it cannot be taken
/// out; the block is then kept, traced, rather than listed in a block
/// array after its memory went back.
///
/// # Safety
/// `ptr` is a live block with a header, being freed.
#[inline(always)]
unsafe fn forget_freed(ptr: *mut u8, size: usize, epoch: Epoch) -> bool {
    tls::with(|state| {
        let guard = state.guard.get();
        if guard != GUARD_NONE && !tls::frees_looked_up(state, guard) {
            return false;
        }
        // SAFETY: forwarded from the caller.
        let old = tls::hook(state, || unsafe {
            state::remove_headed(state, ptr as usize, epoch)
        });
        match old {
            // A session with history gives no header, but a block with one
            // from an earlier session may have been traced again by a
            // realloc in this one.
            Some(entry) => crate::allocator::count_history_free(
                state,
                ptr as usize,
                entry,
                guard == GUARD_NONE,
                epoch,
            ),
            // Not traced (made by the symbolizer's realloc): its memory.
            None if guard == GUARD_COUNTED => crate::allocator::count_own(-(size as i64)),
            None => {}
        }
        true
    })
}

/// `realloc` of a block with a header. As CPython, the trace takes the new
/// size and the traceback of the realloc.
///
/// # Safety
/// As `GlobalAlloc::realloc`; [`has_header`] is true.
#[inline(never)]
pub(crate) unsafe fn realloc<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
    epoch: Epoch,
) -> *mut u8 {
    let Some(new_outer) = outer(new_size) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the block was allocated `HEADER` bytes in, with this layout.
    let (raw, old_outer) = unsafe {
        (
            ptr.sub(HEADER),
            Layout::from_size_align_unchecked(layout.size() + HEADER, HEADER),
        )
    };
    if !is_tracing_epoch(epoch) {
        // SAFETY: forwarded from the caller.
        let new = unsafe { inner.realloc(raw, old_outer, new_outer.size()) };
        if new.is_null() {
            return new;
        }
        // SAFETY: the header moved with the block; it is no longer traced.
        unsafe {
            let ptr = new.add(HEADER);
            set_slot(ptr as usize, NO_SLOT);
            return ptr;
        }
    }
    tls::with(|state| {
        let guard = state.guard.get();
        if guard != GUARD_NONE && !tls::frees_looked_up(state, guard) {
            // The old block cannot be taken out of its table here (see
            // `forget_freed`): it stays, and the caller gets a copy.
            // SAFETY: forwarded from the caller.
            return unsafe { realloc_by_copy(inner, ptr, layout.size(), new_outer) };
        }
        // The old block's trace goes first: a moving realloc frees the old
        // address, which another thread may then get and record.
        // SAFETY: forwarded from the caller.
        let old = tls::hook(state, || unsafe {
            state::remove_headed(state, ptr as usize, epoch)
        });
        // SAFETY: forwarded from the caller.
        let new = unsafe { inner.realloc(raw, old_outer, new_outer.size()) };
        if new.is_null() {
            // The old block is still the caller's: trace it again.
            if let Some(old) = old {
                // Filing may allocate (a larger array): the recorder's.
                // SAFETY: the old block is live and has its header.
                tls::hook(state, || unsafe {
                    state::refile_headed(state, ptr as usize, old, epoch)
                });
            }
            return new;
        }
        if let Some(old) = old {
            // As in `forget_freed`; the free half of a realloc.
            crate::allocator::count_history_free(state, ptr as usize, old, false, epoch);
        }
        // SAFETY: the allocation is `HEADER` bytes longer than the block.
        let ptr = unsafe { new.add(HEADER) } as usize;
        if guard != GUARD_NONE {
            // Made under the guard: not traced, as any such allocation.
            // SAFETY: a live block with room for a header.
            unsafe { set_slot(ptr, NO_SLOT) };
            if guard == GUARD_COUNTED {
                let freed = if old.is_some() {
                    0
                } else {
                    layout.size() as i64
                };
                crate::allocator::count_own(new_size as i64 - freed);
            }
        } else if new_size <= MAX_SIZE && epoch & EPOCH_HEADERS != 0 {
            // SAFETY: a live block with room for a header.
            tls::hook(state, || unsafe {
                state::record_headed(state, ptr, new_size, epoch)
            });
        } else {
            // SAFETY: as above; an address table takes the block.
            unsafe { set_slot(ptr, NO_SLOT) };
            state::on_alloc(state, ptr, new_size, epoch);
        }
        ptr as *mut u8
    })
}

/// `realloc` of a block with a header that must stay where it is (see
/// `forget_freed`): a new block with a header, untraced, and a copy.
///
/// # Safety
/// `ptr` is a live block with a header of `size` bytes.
#[cold]
unsafe fn realloc_by_copy<A: GlobalAlloc>(
    inner: &A,
    ptr: *mut u8,
    size: usize,
    new_outer: Layout,
) -> *mut u8 {
    // SAFETY: `new_outer` has a non-zero size.
    let raw = unsafe { inner.alloc(new_outer) };
    if raw.is_null() {
        return raw;
    }
    // SAFETY: the new allocation has room for a header and
    // `new_outer.size() - HEADER` bytes; the old block holds `size`.
    unsafe {
        let new = raw.add(HEADER);
        std::ptr::copy_nonoverlapping(ptr, new, size.min(new_outer.size() - HEADER));
        set_slot(new as usize, NO_SLOT);
        new
    }
}

/// Whether the word before every block of the system allocator is glibc's
/// chunk size, which headers rely on (see the module documentation):
/// `malloc` is glibc's, and the program does not run under valgrind.
///
/// Valgrind replaces `malloc` by redirecting code, not symbols, so the
/// symbol check passes under it, while the word before a block is then
/// valgrind's redzone: reading it is an invalid read, and freeing a
/// header's block at `ptr - 16` an invalid free. Its client request
/// `RUNNING_ON_VALGRIND` tells.
pub(crate) fn chunk_layout_known() -> bool {
    malloc_is_glibc() && !running_on_valgrind()
}

/// Valgrind's `RUNNING_ON_VALGRIND` client request: a sequence of
/// rotations that leave the register as it was (a no-op on the CPU),
/// which valgrind's JIT recognises and answers in the result register.
/// The rotations and register choices are those of `valgrind.h`.
pub(crate) fn running_on_valgrind() -> bool {
    const VG_USERREQ_RUNNING_ON_VALGRIND: u64 = 0x1001;
    // The request and its five arguments.
    let args: [u64; 6] = [VG_USERREQ_RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0];
    #[allow(unused_mut)]
    let mut result: u64 = 0;
    #[cfg(target_arch = "x86_64")]
    // SAFETY: four rotations of `rdi` by 128 bits in all (no change), and
    // an exchange of `rbx` with itself; valgrind reads `args` through
    // `rax` and writes the answer to `rdx`.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            inout("rdi") 0u64 => _,
        );
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: four rotations of `x12` by 128 bits in all (no change), and
    // an `orr` of `x10` with itself; valgrind reads `args` through `x4`
    // and writes the answer to `x3`.
    unsafe {
        std::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            in("x4") args.as_ptr(),
            inout("x3") result,
            inout("x12") 0u64 => _,
        );
    }
    std::hint::black_box(&args);
    result != 0
}

/// Whether `malloc` here is glibc's (see [`chunk_layout_known`]).
fn malloc_is_glibc() -> bool {
    #[cfg(all(
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        // SAFETY: `dlopen` with `RTLD_NOLOAD` only looks up an object that
        // is already loaded; the handle is closed after use.
        unsafe {
            let libc_handle =
                libc::dlopen(c"libc.so.6".as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
            if libc_handle.is_null() {
                return false;
            }
            let glibc = libc::dlsym(libc_handle, c"malloc".as_ptr());
            let used = libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr());
            libc::dlclose(libc_handle);
            !glibc.is_null() && glibc == used
        }
    }
    #[cfg(not(all(
        target_os = "linux",
        target_env = "gnu",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        false
    }
}
