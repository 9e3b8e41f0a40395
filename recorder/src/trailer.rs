//! Block trailers: with the system allocator on glibc, a traced block
//! carries the slot of its record in its thread's block array
//! (`thread_table.rs`) in 8 bytes at the end of the memory glibc gave it,
//! so that freeing it finds the record without searching an address table
//! (a cache miss at a random place for every long-lived block).
//!
//! The block pointer is glibc's own, so C code that frees, reallocates or
//! measures (`malloc_usable_size`) a Rust block keeps working, as in the
//! untraced program. (A header in front of the block, which earlier
//! versions had, made glibc abort on such a `free`.)
//!
//! # Where the trailer is
//!
//! A block of `n` bytes (alignment up to 16, `n` up to [`MAX_SIZE`]) is
//! allocated as `n + 8` bytes. glibc keeps each chunk's size in the 8 bytes
//! before the block it returns (low 3 bits: flags), and a chunk in use may
//! use the first 8 bytes of the next chunk, so the usable area is
//! `chunk - 8` bytes (what `malloc_usable_size` says) and its last 8 bytes,
//! at `ptr + chunk - 16`, are the trailer. glibc rounds `n + 8 + 8` up to
//! 16, so those 8 bytes are always past the first `n`: asking for 8 bytes
//! more takes a chunk 16 bytes larger for half of the sizes (`n % 16` from
//! 1 to 8) and the same chunk for the others. A free finds the place again
//! from the chunk size alone, whatever glibc's rounding, and mmapped chunks
//! (flag `IS_MMAPPED`: large blocks, or when the heap cannot grow) have no
//! trailer.
//!
//! # What is in it
//!
//! | bits | contents |
//! |---|---|
//! | 0 to 31 | a check word: a hash of the block's address, its size and a random key of the process |
//! | 32 to 63 | the slot in the owner thread's block array |
//!
//! A free must tell a block with a trailer from one without (allocated
//! before tracing started, while it was off, by C, with an alignment above
//! 16, or under the recorder's guard), and it cannot look the block up to
//! decide: that is the search the trailer avoids. The bytes at the
//! trailer's place of a block without one are the program's data or
//! glibc's leftovers, so the check word decides: it matches by chance once
//! in 2^32 frees. A trailer is trusted only if, besides, the slot it names
//! holds this address in a block array (the array's key is the address),
//! so a stale trailer (the block's trace cleared by `clear_traces`, moved
//! to the shared table at its thread's exit or to its thread's hash table
//! when its array emptied, or taken out by `untrack`; or
//! left in memory by an earlier block at the same address) only sends its
//! free to the slow lookup, which is what a mismatch does too.
//!
//! A block C frees keeps its trace (the recorder does not see C's `free`),
//! and its slot keeps its address. If glibc later gives that address to
//! a block of the same size that is not traced, the old trailer is still
//! in its memory, check word and all, and the slot still holds the
//! address: its free takes the stale trace out, which is right, since the
//! block it described no longer exists.
//!
//! A trailer is written once, when its block is allocated (or reallocated)
//! while tracing: the array never moves a block to another slot while it
//! is listed (see `thread_table.rs`), as rewriting a trailer later could
//! overwrite bytes C code wrote after asking `malloc_usable_size`. C code
//! that does that makes the block's free take the slow lookup, which does
//! not search the arrays: its trace stays until `clear_traces`, as the
//! trace of a block C frees does.
//!
//! This is why trailers are used only when `malloc` is glibc's (checked at
//! `start`: a preloaded jemalloc or tcmalloc keeps no size word in front of
//! its blocks, and valgrind replaces glibc's, see [`chunk_layout_known`]),
//! only by `TracingAllocator::system()`, whose `System` is glibc's `malloc`,
//! and only in exact mode (sampled blocks are few and go to the shared
//! table).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::{self, Epoch};
use crate::tls::{self, GUARD_CALIBRATE, GUARD_COUNTED, GUARD_NONE};

/// Bytes of a trailer, which the inner allocator is asked for on top.
pub(crate) const TRAILER: usize = 8;
/// The largest block given a trailer: glibc's default threshold for
/// serving blocks by `mmap` (larger ones are few, and their chunks have
/// another layout).
pub(crate) const MAX_SIZE: usize = 128 * 1024;
/// The largest alignment given a trailer: glibc's own. A larger one comes
/// from `posix_memalign`, whose chunk may keep slack in front of the block.
pub(crate) const MAX_ALIGN: usize = 16;
/// A slot no block array reaches (arrays stay below it).
pub(crate) const NO_SLOT: u32 = u32::MAX;
/// glibc's flag, in a chunk's size word, of a chunk served by `mmap`.
const IS_MMAPPED: u64 = 0x2;
/// glibc's three flag bits in a chunk's size word.
const FLAGS: u64 = 0x7;

/// `EPOCH` bit: new blocks get a trailer in this tracing epoch, and frees
/// look for one. Arrays are cleared when tracing starts, so blocks with a
/// trailer from an earlier session need no lookup of their own.
pub(crate) const EPOCH_TRAILERS: Epoch = 1 << 62;

/// The random key of the check word, chosen at the first `start`.
static KEY: AtomicU64 = AtomicU64::new(0);

/// Chooses the key of the check word, once per process (the caller holds
/// the control lock).
pub(crate) fn init_key() {
    if KEY.load(Ordering::Relaxed) != 0 {
        return;
    }
    let mut key = 0u64;
    #[cfg(target_os = "linux")]
    // SAFETY: `getrandom` writes at most 8 bytes into `key`.
    unsafe {
        libc::getrandom((&raw mut key).cast(), size_of::<u64>(), libc::GRND_NONBLOCK);
    }
    if key == 0 {
        // No random bytes (an old kernel): the time and the stack's place
        // still differ from run to run.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        key = crate::table::mix(nanos ^ ((&raw const key) as u64) ^ u64::from(std::process::id()));
    }
    KEY.store(key | 1, Ordering::Relaxed);
}

/// Whether a new block of `layout` gets a trailer in `epoch`, a tracing
/// epoch (the caller checked).
#[inline(always)]
pub(crate) fn gives_trailer(epoch: Epoch, layout: Layout) -> bool {
    epoch & EPOCH_TRAILERS != 0 && may_have(layout)
}

/// Whether a block of `layout` may have a trailer.
#[inline(always)]
pub(crate) fn may_have(layout: Layout) -> bool {
    layout.align() <= MAX_ALIGN && layout.size() <= MAX_SIZE
}

/// The check word of the block at `addr` of `size` bytes.
#[inline(always)]
fn check(addr: usize, size: usize) -> u32 {
    // Blocks are 16-aligned below 2^48 and sizes below 2^18: rotated by 16,
    // the size takes bits 48 to 63 and 0 to 1, which the address leaves
    // clear, so distinct pairs give distinct words before the key and the
    // mixing.
    let x = addr as u64 ^ (size as u64).rotate_right(16) ^ KEY.load(Ordering::Relaxed);
    (crate::table::mix(x) >> 32) as u32
}

/// Where the trailer of the block at `ptr` of `size` bytes is, from its
/// chunk's size word; `None` if it cannot have one (an mmapped chunk, or
/// no 8 bytes past `size`).
///
/// # Safety
/// `ptr` is a live block of glibc's `malloc` (`EPOCH_TRAILERS` is set only
/// where `malloc` is glibc's) with an alignment up to 16.
#[inline(always)]
unsafe fn place(ptr: *mut u8, size: usize) -> Option<*mut u64> {
    // The compiler knows `malloc` and `__rust_alloc`, and where it sees
    // the call that returned `ptr` (the allocator's code is inlined into
    // the program's), it takes the block to be exactly the bytes asked
    // for: an access before or past them would be undefined behaviour to
    // it, and a release build of a test dropped the trailer's write and
    // read that way. Laundered through an `asm!` block, the pointer is one the
    // compiler knows nothing of, so the accesses below are to memory it
    // cannot see, which they are: glibc's chunk and its usable area.
    let ptr = launder(ptr);
    // SAFETY: glibc's chunk size is in the 8 bytes before every block it
    // hands out (the caller's contract); 8-aligned and mapped.
    let word = unsafe { ptr.wrapping_sub(8).cast::<u64>().read() };
    let chunk = (word & !FLAGS) as usize;
    if word & IS_MMAPPED != 0 || chunk < size + 2 * TRAILER {
        return None;
    }
    // The usable area is `chunk - 8` bytes from `ptr`, and these are its
    // last 8, past the block's `size` (checked above); the address is
    // 8-aligned as `ptr` and `chunk` are.
    Some(ptr.wrapping_add(chunk - 2 * TRAILER).cast())
}

/// `ptr` as a pointer the compiler cannot trace to the allocation it came
/// from (see [`place`]): its address goes out as an exposed integer,
/// through an empty `asm!` block, and comes back with the exposed
/// provenance (glibc's chunk, which `malloc` exposed to the program).
/// Cheaper than `std::hint::black_box`, which goes through the stack.
#[inline(always)]
fn launder(ptr: *mut u8) -> *mut u8 {
    #[allow(unused_mut)]
    let mut addr = ptr.expose_provenance();
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    // SAFETY: no instructions; the register holds the same address after.
    unsafe {
        std::arch::asm!(
            "/* {0} */",
            inout(reg) addr,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    // Trailers are only used on these two (see `malloc_is_glibc`); the
    // others still compile.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let addr = std::hint::black_box(addr);
    std::ptr::with_exposed_provenance_mut(addr)
}

/// The slot named by the trailer of the block at `ptr` of `size` bytes,
/// if its check word matches; the slot must still be checked to hold the
/// block (see the module documentation).
///
/// # Safety
/// As [`place`]; `size` is at most `MAX_SIZE` (`may_have` of its layout).
#[inline(always)]
pub(crate) unsafe fn find(ptr: *mut u8, size: usize) -> Option<u32> {
    // SAFETY: forwarded from the caller.
    let at = unsafe { place(ptr, size) }?;
    // SAFETY: inside the block's usable area, past its `size` bytes, which
    // no Rust reference covers; the caller owns the block (it frees it).
    let word = unsafe { at.read() };
    (word as u32 == check(ptr as usize, size)).then_some((word >> 32) as u32)
}

/// Whether the block at `ptr` of `size` bytes has room for a trailer
/// (glibc did not map its chunk).
///
/// # Safety
/// As [`place`].
#[inline(always)]
pub(crate) unsafe fn has_room(ptr: *mut u8, size: usize) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { place(ptr, size) }.is_some()
}

/// Writes the trailer of the block at `ptr` of `size` bytes: `slot`, or
/// with `None` a check word that never matches.
///
/// # Safety
/// `ptr` is a live block of glibc's `malloc`, allocated with
/// [`TRAILER`] bytes more than `size`, which is at most `MAX_SIZE`, with
/// an alignment up to 16; the caller owns it.
#[inline(always)]
pub(crate) unsafe fn write(ptr: *mut u8, size: usize, slot: Option<u32>) {
    // SAFETY: forwarded from the caller.
    if let Some(at) = unsafe { place(ptr, size) } {
        let check = check(ptr as usize, size);
        let word = match slot {
            Some(slot) => u64::from(check) | (u64::from(slot) << 32),
            None => u64::from(!check),
        };
        // SAFETY: as in `find`.
        unsafe { at.write(word) };
    }
}

/// `alloc` and `alloc_zeroed` of a block that gets a trailer.
///
/// # Safety
/// As `GlobalAlloc::alloc`; [`gives_trailer`] is true, and `inner` is
/// `System` on glibc (see the module documentation).
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
            // The recorder's own memory: no trailer.
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
                // `state::record_trailed` below.
                state::calibration_capture(state);
            }
            return ptr;
        }
        // `size <= MAX_SIZE`: no overflow, and a valid layout.
        let outer = Layout::from_size_align(layout.size() + TRAILER, layout.align());
        let Ok(outer) = outer else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size.
        let ptr = unsafe {
            if zeroed {
                inner.alloc_zeroed(outer)
            } else {
                inner.alloc(outer)
            }
        };
        if ptr.is_null() {
            return ptr;
        }
        // SAFETY: a new block with room for a trailer.
        tls::hook(state, || unsafe {
            state::record_trailed(state, ptr, layout.size(), epoch)
        });
        ptr
    })
}

/// Whether the word before every block of the system allocator is glibc's
/// chunk size, which trailers rely on (see the module documentation):
/// `malloc` is glibc's, and the program does not run under valgrind.
///
/// Valgrind replaces `malloc` by redirecting code, not symbols, so the
/// symbol check passes under it, while the word before a block is then
/// valgrind's redzone: reading it is an invalid read, and the trailer's
/// place computed from it could be anywhere. Its client request
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
