//! Capturing return addresses: a frame-pointer walk checked against the
//! thread's stack bounds, or the `backtrace` crate's DWARF unwinder when the
//! program has no frame pointers.

use std::ffi::c_void;

use crate::stacks::Hasher;
use crate::tls::ThreadState;

/// Which unwinder captures tracebacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unwinder {
    /// Use frame pointers when [`start`](crate::start) finds that they work
    /// in this program, the DWARF unwinder otherwise (the default).
    Auto,
    /// Walk frame pointers: a few nanoseconds per frame. Frames of code
    /// built without them are skipped or end the traceback early.
    FramePointers,
    /// Unwind with DWARF call-frame information through the `backtrace`
    /// crate: works without frame pointers, at about 15 times the cost.
    Dwarf,
}

/// Whether this target has a frame-pointer walker at all.
pub(crate) const FP_SUPPORTED: bool = cfg!(all(
    any(target_arch = "x86_64", target_arch = "aarch64"),
    any(target_os = "linux", target_os = "android")
));

/// The frame pointer of the calling function (of the function this is
/// inlined into), or 0 where unsupported.
#[inline(always)]
pub(crate) fn frame_pointer() -> usize {
    #[allow(unused_mut)]
    let mut fp: usize = 0;
    #[cfg(all(
        target_arch = "x86_64",
        any(target_os = "linux", target_os = "android")
    ))]
    // SAFETY: reads a register; no memory access, no side effect.
    unsafe {
        std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    #[cfg(all(
        target_arch = "aarch64",
        any(target_os = "linux", target_os = "android")
    ))]
    // SAFETY: reads a register; no memory access, no side effect.
    unsafe {
        std::arch::asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags));
    }
    fp
}

/// The current thread's stack as `[lo, hi)`, cached in the thread state;
/// `(1, 1)` when it cannot be found (the walk then captures nothing).
#[inline]
pub(crate) fn stack_bounds(state: &ThreadState) -> (usize, usize) {
    let hi = state.stack_hi.get();
    if hi != 0 {
        return (state.stack_lo.get(), hi);
    }
    let (lo, hi) = query_stack_bounds().unwrap_or((1, 1));
    state.stack_lo.set(lo);
    state.stack_hi.set(hi);
    (lo, hi)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[cold]
fn query_stack_bounds() -> Option<(usize, usize)> {
    // SAFETY: `attr` is initialized by `pthread_getattr_np` before use and
    // destroyed once; the out-pointers are valid locals. glibc allocates
    // inside with its own malloc, never through Rust's global allocator.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(libc::pthread_self(), &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 || addr.is_null() || size == 0 {
            return None;
        }
        let lo = addr as usize;
        Some((lo, lo.checked_add(size)?))
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[cold]
fn query_stack_bounds() -> Option<(usize, usize)> {
    None
}

/// Walks the frame-pointer chain starting at the frame record `fp`, storing
/// return addresses into `out` and hashing them on the way (see
/// [`Hasher::step`]). Returns how many were stored,
/// whether the walk ended by itself (rather than by filling `out`), and
/// the unfinished hash.
///
/// Every record is checked before it is read: inside `[fp, hi)`, 8-byte
/// aligned, and each strictly above the previous one, so the walk only ever
/// reads the live part of the current stack. A chain broken by code without
/// frame pointers ends the walk; it cannot crash it.
///
/// The hash is computed here rather than in a second pass because the walk
/// is a chain of dependent loads: the multiplications run in their shadow.
///
/// # Safety
/// `fp` is the current function's frame pointer (or any address) and
/// `[fp, hi)` is mapped, readable stack memory of the current thread.
#[inline(always)]
pub(crate) unsafe fn walk_frame_pointers(
    mut fp: usize,
    hi: usize,
    out: &mut [usize],
) -> (usize, bool, Hasher) {
    const WORD: usize = size_of::<usize>();
    let limit = hi.saturating_sub(2 * WORD);
    let mut hash = Hasher::SEED;
    if out.is_empty() {
        // No room for even one frame: the walk did not end by itself.
        return (0, false, hash);
    }
    if fp > limit || !fp.is_multiple_of(WORD) {
        return (0, true, hash);
    }
    let mut n = 0;
    loop {
        let record = fp as *const usize;
        // SAFETY: `fp` is aligned and `start <= fp <= hi - 16` (checked
        // above for the first record, below for every next one, which is
        // strictly above the previous), so both words are in the
        // caller-guaranteed readable range.
        let (next, ret) = unsafe { (record.read(), record.add(1).read()) };
        if ret < 4096 {
            return (n, true, hash);
        }
        // SAFETY: `n < out.len()`: checked on entry and before every step.
        unsafe { *out.get_unchecked_mut(n) = ret };
        n += 1;
        hash = hash.step(ret);
        if next <= fp || next > limit || !next.is_multiple_of(WORD) {
            return (n, true, hash);
        }
        if n == out.len() {
            return (n, false, hash);
        }
        fp = next;
    }
}

/// Captures the caller's return addresses by walking frame pointers; the
/// third value is the unfinished hash of what was captured.
#[inline(always)]
pub(crate) fn capture_fp(state: &ThreadState, out: &mut [usize]) -> (usize, bool, Hasher) {
    let (lo, hi) = stack_bounds(state);
    let fp = frame_pointer();
    if fp < lo || fp >= hi {
        // A signal handler on an alternate stack, or unknown bounds.
        return (0, true, Hasher::SEED);
    }
    // SAFETY: `fp` is this function's frame (inlined into the capture site)
    // inside the current thread's stack, and everything from it to the top
    // of the stack is live, mapped memory.
    unsafe { walk_frame_pointers(fp, hi, out) }
}

/// How many return addresses a capture from here collects up to and
/// including the one that returns into the function whose frame record is
/// at `target` (0 if it is not on the stack). For calibration.
#[inline(always)]
pub(crate) fn depth_of_frame(state: &ThreadState, target: usize) -> usize {
    let (lo, hi) = stack_bounds(state);
    let mut fp = frame_pointer();
    if fp < lo || fp >= hi {
        return 0;
    }
    let limit = hi.saturating_sub(2 * size_of::<usize>());
    let mut depth = 0;
    while depth < crate::stacks::MAX_RAW {
        if fp == target {
            return depth;
        }
        if fp > limit || !fp.is_multiple_of(size_of::<usize>()) {
            return 0;
        }
        // SAFETY: `fp` is inside the current thread's live stack and
        // aligned, as in `walk_frame_pointers`.
        let next = unsafe { (fp as *const usize).read() };
        if next <= fp {
            return 0;
        }
        fp = next;
        depth += 1;
    }
    0
}

/// Captures return addresses with the DWARF unwinder.
#[inline(never)]
pub(crate) fn capture_dwarf(out: &mut [usize]) -> (usize, bool) {
    let mut n = 0;
    let mut complete = true;
    // SAFETY: on the platforms with a DWARF unwinder this is
    // `_Unwind_Backtrace`, which is thread-safe; the lock `trace` adds only
    // matters for Windows' dbghelp. The closure does not allocate.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            if n == out.len() {
                complete = false;
                return false;
            }
            out[n] = frame.ip() as usize;
            n += 1;
            true
        });
    }
    (n, complete)
}

/// Checks that frame-pointer walks give the same frames as the DWARF
/// unwinder for the current stack, over every frame that is in the main
/// executable (the Rust code; the C library below `main` has no frame
/// pointers and need not agree). Returns why not, if not.
#[inline(never)]
pub(crate) fn check_frame_pointers(state: &ThreadState) -> Result<(), String> {
    if !FP_SUPPORTED {
        return Err("this target has no frame-pointer walker".into());
    }
    let mut fp_frames = [0usize; 64];
    let (n, _, _) = capture_fp(state, &mut fp_frames);
    let fp_frames = &fp_frames[..n];
    let mut dwarf = [0usize; 96];
    let (m, _) = capture_dwarf(&mut dwarf);
    let dwarf = &dwarf[..m];
    let Some(&first) = fp_frames.first() else {
        return Err("the frame-pointer walk found no frame".into());
    };
    let Some(start) = dwarf.iter().position(|&ip| ip == first) else {
        return Err("the frame-pointer walk does not find the caller".into());
    };
    let exe = main_executable_text();
    for (i, &ip) in dwarf[start..].iter().enumerate() {
        if !exe.iter().any(|&(lo, hi)| lo <= ip && ip < hi) {
            break;
        }
        if fp_frames.get(i) != Some(&ip) {
            return Err(format!(
                "frame {i} differs from the DWARF unwinder's ({:#x} instead of {ip:#x})",
                fp_frames.get(i).copied().unwrap_or(0)
            ));
        }
    }
    Ok(())
}

/// Address ranges of the main executable's executable segments.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn main_executable_text() -> Vec<(usize, usize)> {
    unsafe extern "C" fn callback(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: `data` is the `Vec` passed below, and `info` is valid for
        // the duration of the callback as `dl_iterate_phdr` promises.
        unsafe {
            let ranges = &mut *data.cast::<Vec<(usize, usize)>>();
            let info = &*info;
            for i in 0..usize::from(info.dlpi_phnum) {
                let phdr = &*info.dlpi_phdr.add(i);
                if phdr.p_type == libc::PT_LOAD && phdr.p_flags & libc::PF_X != 0 {
                    let lo = info.dlpi_addr as usize + phdr.p_vaddr as usize;
                    ranges.push((lo, lo + phdr.p_memsz as usize));
                }
            }
        }
        // The first object is the main executable: stop after it.
        1
    }
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    // SAFETY: the callback only reads the headers it is given and writes
    // to `ranges`, which outlives the call.
    unsafe {
        libc::dl_iterate_phdr(
            Some(callback),
            (&mut ranges as *mut Vec<(usize, usize)>).cast(),
        );
    }
    ranges
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn main_executable_text() -> Vec<(usize, usize)> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_chain_stops_the_walk() {
        // A fake stack: records at 0, 4 and 8 (in words), the last pointing
        // backwards, which must end the walk.
        let mut stack = [0usize; 16];
        let base = stack.as_ptr() as usize;
        let word = size_of::<usize>();
        stack[0] = base + 4 * word;
        stack[1] = 0x1111;
        stack[4] = base + 8 * word;
        stack[5] = 0x2222;
        stack[8] = base; // backwards
        stack[9] = 0x3333;
        let hi = base + stack.len() * word;
        let mut out = [0usize; 8];
        // The walk reads the array through an integer address: keep the
        // writes from being optimized away.
        std::hint::black_box(&mut stack);
        // SAFETY: the whole fake stack is readable.
        let (n, complete, hash) = unsafe { walk_frame_pointers(base, hi, &mut out) };
        assert_eq!(&out[..n], &[0x1111, 0x2222, 0x3333]);
        assert!(complete);
        // The hash built during the walk is the one of the frames stored.
        assert_eq!(
            hash.finish(n, complete),
            crate::stacks::hash_frames(&out[..n], complete)
        );

        // A record outside the bounds is not read at all.
        stack[8] = base + 100 * word;
        std::hint::black_box(&mut stack);
        // SAFETY: as above.
        let (n, _, _) = unsafe { walk_frame_pointers(base, hi, &mut out) };
        assert_eq!(n, 3);
        // A misaligned pointer ends the walk too.
        stack[4] = base + 8 * word + 1;
        std::hint::black_box(&mut stack);
        // SAFETY: as above.
        let (n, _, _) = unsafe { walk_frame_pointers(base, hi, &mut out) };
        assert_eq!(n, 2);
        // A full buffer means an incomplete walk.
        stack[4] = base + 8 * word;
        stack[8] = 0;
        std::hint::black_box(&mut stack);
        let mut small = [0usize; 2];
        // SAFETY: as above.
        let (n, complete, _) = unsafe { walk_frame_pointers(base, hi, &mut small) };
        assert_eq!((n, complete), (2, false));
        // SAFETY: as above.
        let (n, complete, _) = unsafe { walk_frame_pointers(base, hi, &mut []) };
        assert_eq!((n, complete), (0, false));
    }

    #[test]
    fn this_test_binary_has_working_frame_pointers() {
        // The workspace builds with -C force-frame-pointers=yes
        // (.cargo/config.toml); a RUSTFLAGS without it makes this fail,
        // which is the point: the check must notice.
        if FP_SUPPORTED && std::env::var_os("RUSTFLAGS").is_none() {
            crate::tls::with(check_frame_pointers).unwrap();
        }
    }
}
