//! From return addresses to frames: symbolization (once per address,
//! cached across snapshots within [`CACHE_BUDGET`]), inline expansion, and
//! trimming of the frames that are not the user's.
//!
//! On Linux the addresses are resolved by [`elf`], which streams the debug
//! information of the units that hold them; elsewhere by the `backtrace`
//! crate, whose parsed debug information is released after each batch.

use std::collections::HashMap;
use std::sync::Arc;

use tracemalloc_format::FrameRef;
use tracemalloc_format::trim::{FrameClass, classify_frame, default_trim};

use crate::lock::SpinLock;
use crate::tls::{GUARD_COUNTED, Guard};

#[cfg(any(target_os = "linux", target_os = "android"))]
mod elf;

#[cfg(any(target_os = "linux", target_os = "android"))]
use elf::resolve as resolve_batch;

/// What the cache of resolved addresses may hold between two snapshots,
/// in bytes (estimated from its entries' sizes): beyond it, the cache is
/// emptied once the snapshot that filled it is built. A few thousand
/// distinct return addresses, what a large program's snapshot needs, take
/// well under a megabyte.
pub(crate) const CACHE_BUDGET: usize = 8 << 20;

/// One frame, as the symbolizer reports it.
#[derive(Clone, Debug)]
pub(crate) struct SymFrame {
    pub(crate) file: Option<Arc<str>>,
    pub(crate) line: u32,
    pub(crate) function: Option<Arc<str>>,
    pub(crate) class: FrameClass,
}

/// Resolved addresses, innermost inlined frame first.
pub(crate) struct Symbols {
    by_addr: HashMap<usize, Box<[SymFrame]>>,
    /// Interned strings, so that each file and function name is stored once.
    strings: HashMap<Box<str>, Arc<str>>,
    /// The recorder's source folder as this binary's debug info names it
    /// (see [`own_dir_from`]), once the first batch has found it.
    own_dir: Option<Option<String>>,
    /// The estimated heap bytes of `by_addr` and `strings`.
    bytes: usize,
    /// The most `bytes` kept between snapshots.
    budget: usize,
}

static SYMBOLS: SpinLock<Option<Symbols>> = SpinLock::new(None);

impl Symbols {
    fn new(budget: usize) -> Symbols {
        Symbols {
            by_addr: HashMap::new(),
            strings: HashMap::new(),
            own_dir: None,
            bytes: 0,
            budget,
        }
    }

    /// Resolves the addresses of `addrs` that are not cached yet.
    fn resolve_missing(&mut self, addrs: impl IntoIterator<Item = usize>) {
        let mut missing: Vec<usize> = addrs
            .into_iter()
            .filter(|a| !self.by_addr.contains_key(a))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        if missing.is_empty() {
            return;
        }
        // The first batch also finds the recorder's own folder, needed to
        // classify the frames: one pass over the debug information.
        let probe = self.own_dir.is_none().then(own_probe);
        let mut batch = missing.clone();
        batch.extend(probe);
        let mut resolved = resolve_batch(&batch);
        if probe.is_some() {
            let own = resolved.pop().unwrap_or_default();
            self.own_dir = Some(own_dir_from(&own));
        }
        for (addr, raw) in missing.into_iter().zip(resolved) {
            let frames = self.frames(raw);
            self.bytes += ENTRY_BYTES + frames.len() * size_of::<SymFrame>();
            self.by_addr.insert(addr, frames);
        }
    }

    /// Interns and classifies an address's frames; an address nothing is
    /// known about gets one frame without file or function.
    fn frames(&mut self, raw: Vec<RawFrame>) -> Box<[SymFrame]> {
        if raw.is_empty() {
            return Box::new([SymFrame {
                file: None,
                line: 0,
                function: None,
                class: FrameClass::User,
            }]);
        }
        raw.into_iter()
            .map(|f| SymFrame {
                class: classify(
                    f.file.as_deref(),
                    f.function.as_deref(),
                    self.own_dir.as_ref().and_then(Option::as_deref),
                ),
                file: f.file.map(|s| self.intern(&s)),
                line: f.line,
                function: f.function.map(|s| self.intern(&s)),
            })
            .collect()
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(Box::from(s), Arc::clone(&a));
        // The key's bytes, the shared copy with its two counts, the entry.
        self.bytes += 2 * s.len() + 2 * size_of::<usize>() + ENTRY_BYTES;
        a
    }

    /// Empties the cache if it holds more than its budget.
    fn trim_to_budget(&mut self) {
        if self.bytes > self.budget {
            self.by_addr = HashMap::new();
            self.strings = HashMap::new();
            self.bytes = 0;
        }
    }
}

/// A hash map entry's own bytes, as an estimate: a key and a boxed value
/// (two words each at most), plus the table's control byte and its load
/// factor rounded up.
const ENTRY_BYTES: usize = 6 * size_of::<usize>();

/// Runs `f` with the symbol cache, after resolving `addrs` that are not in
/// it yet. The caller holds the untraced guard (or none).
pub(crate) fn with_resolved<R>(
    addrs: impl IntoIterator<Item = usize>,
    f: impl FnOnce(&Symbols) -> R,
) -> R {
    with_resolved_budget(CACHE_BUDGET, addrs, f)
}

fn with_resolved_budget<R>(
    budget: usize,
    addrs: impl IntoIterator<Item = usize>,
    f: impl FnOnce(&Symbols) -> R,
) -> R {
    let mut guard = SYMBOLS.lock();
    {
        // Everything the symbolizer allocates counts as the recorder's
        // memory.
        let _counted = Guard::enter(GUARD_COUNTED);
        let symbols = guard.get_or_insert_with(|| Symbols::new(budget));
        symbols.budget = budget;
        symbols.resolve_missing(addrs);
    }
    let Some(symbols) = guard.as_mut() else {
        unreachable!("the cache was created above")
    };
    let result = f(symbols);
    let _counted = Guard::enter(GUARD_COUNTED);
    symbols.trim_to_budget();
    result
}

/// The address whose frames name the recorder's source folder: one past
/// the entry point of a function of this file (resolution looks up the
/// byte before the address it is given, as a return address follows its
/// call), so its first instruction.
fn own_probe() -> usize {
    own_dir_from as fn(&[RawFrame]) -> Option<String> as usize + 1
}

/// The folder of the recorder's sources as the debug info of the running
/// binary names it, from the frames of [`own_probe`].
///
/// The path compiled into the recorder (`CARGO_MANIFEST_DIR`) is the one
/// on the build machine; with `--remap-path-prefix` (as the demo
/// snapshots use) or a binary built elsewhere, the debug info says
/// something else, and only the debug info itself tells what.
fn own_dir_from(frames: &[RawFrame]) -> Option<String> {
    // The first frame reported is the innermost: this function's own
    // code, not a caller it might be inlined into.
    let path = frames.first()?.file.as_deref()?.replace('\\', "/");
    // A bare `src/` (the package's own folder remapped to nothing) would
    // also be every other package's, the user's too: only a folder that
    // names the package is the recorder's alone.
    let dir = path.strip_suffix("symbolize.rs")?;
    dir.ends_with("/src/").then(|| dir.to_owned())
}

/// Resolution by the `backtrace` crate, where [`elf`] does not apply.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn resolve_batch(addrs: &[usize]) -> Vec<Vec<RawFrame>> {
    let out = addrs.iter().map(|&addr| backtrace_frames(addr)).collect();
    // The `backtrace` crate keeps the debug information it parsed for the
    // next lookup, tens of megabytes for a large binary, for the life of
    // the process: the answers are cached above instead.
    backtrace::clear_symbol_cache();
    out
}

/// The frames the `backtrace` crate reports for a return address (it looks
/// up `addr - 1`: a return address points after the call, which may be the
/// next line or the next function). On Linux, the tests compare [`elf`]
/// with it.
#[cfg(any(test, not(any(target_os = "linux", target_os = "android"))))]
fn backtrace_frames(addr: usize) -> Vec<RawFrame> {
    let mut frames = Vec::new();
    backtrace::resolve(addr as *mut std::ffi::c_void, |symbol| {
        frames.push(RawFrame {
            function: symbol.name().map(|n| format!("{n:#}")),
            file: symbol.filename().map(|p| p.to_string_lossy().into_owned()),
            line: symbol.lineno().unwrap_or(0),
        });
    });
    frames
}

/// One frame of a resolved address, owned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RawFrame {
    /// The demangled function name (without its hash).
    function: Option<String>,
    /// The source file, as the debug information names it.
    file: Option<String>,
    /// The line, 0 when unknown.
    line: u32,
}

/// The recorder's own sources, as the build machine names them. Inlined
/// frames of optimized builds carry short function names (`on_alloc`, not
/// `tracemalloc::state::on_alloc`), so the file is what tells them apart.
const RECORDER_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

/// Classifies a frame by its file (where known) and function: the format
/// crate's rules ([`classify_frame`], which the viewer also uses to trim a
/// snapshot recorded with every frame), plus the recorder's own source
/// folder, under the path the build machine gave it or the one the debug
/// info gives it (`own_dir`), which the format crate cannot know.
pub(crate) fn classify(
    file: Option<&str>,
    function: Option<&str>,
    own_dir: Option<&str>,
) -> FrameClass {
    if let Some(f) = file {
        let f = f.replace('\\', "/");
        if f.starts_with(RECORDER_SRC) || own_dir.is_some_and(|d| f.starts_with(d)) {
            return FrameClass::Recorder;
        }
    }
    classify_frame(FrameRef {
        filename: file.unwrap_or(tracemalloc_format::UNKNOWN_FILENAME),
        lineno: 0,
        function,
    })
}

impl Symbols {
    /// The frames of one raw traceback, most recent first, as a snapshot
    /// shows them: inline frames expanded, then trimmed (unless
    /// `keep_internal`), then cut to `nframe`. Also returns the total
    /// number of frames before the cut, when the capture was complete.
    pub(crate) fn expand<'a>(
        &'a self,
        raw: &[usize],
        complete: bool,
        nframe: usize,
        keep_internal: bool,
        out: &mut Vec<&'a SymFrame>,
    ) -> Option<u32> {
        out.clear();
        for addr in raw {
            if let Some(frames) = self.by_addr.get(addr) {
                out.extend(frames.iter());
            }
        }
        if !keep_internal {
            trim(out);
        }
        let total = out.len();
        out.truncate(nframe);
        complete.then(|| u32::try_from(total).unwrap_or(u32::MAX))
    }
}

/// Leaves the user's frames, by the format crate's [`default_trim`] (so
/// that a snapshot recorded with every frame and trimmed in the viewer
/// shows what a default recording shows): everything up to the last frame
/// of the recorder or the allocator shim goes (the capture machinery above
/// the allocation), then every standard-library and C-runtime frame, then
/// trailing frames with neither file nor function (where a frame-pointer
/// chain left Rust code). A traceback with no user frame at all keeps its
/// standard-library frames, so that its memory still shows where it was
/// allocated.
pub(crate) fn trim(frames: &mut Vec<&SymFrame>) {
    let classes: Vec<(FrameClass, bool)> = frames
        .iter()
        .map(|f| (f.class, f.file.is_none() && f.function.is_none()))
        .collect();
    let keep = default_trim(&classes);
    let mut keep = keep.iter();
    frames.retain(|_| keep.next().copied().unwrap_or(false));
}

/// Takes the cache's lock for `fork()`.
pub(crate) fn lock_for_fork() {
    SYMBOLS.raw_lock();
}

/// Releases the lock taken by [`lock_for_fork`].
///
/// # Safety
/// `lock_for_fork` was called on this thread and not yet undone.
pub(crate) unsafe fn unlock_after_fork() {
    // SAFETY: forwarded from the caller.
    unsafe { SYMBOLS.raw_unlock() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(file: Option<&str>, function: Option<&str>) -> SymFrame {
        SymFrame {
            file: file.map(Arc::from),
            line: 1,
            function: function.map(Arc::from),
            class: classify(file, function, None),
        }
    }

    #[test]
    fn the_cache_keeps_to_its_budget() {
        let addrs = [
            classify as fn(Option<&str>, Option<&str>, Option<&str>) -> FrameClass as usize + 1,
            trim as fn(&mut Vec<&SymFrame>) as usize + 1,
            own_probe as fn() -> usize as usize + 1,
        ];
        let mut symbols = Symbols::new(usize::MAX);
        symbols.resolve_missing(addrs);
        let full = symbols.bytes;
        assert_eq!(symbols.by_addr.len(), 3);
        assert!(full > 3 * ENTRY_BYTES, "{full}");
        let name = |s: &Symbols, a| s.by_addr[&a][0].function.as_deref().map(str::to_owned);
        assert_eq!(
            name(&symbols, addrs[1]).as_deref(),
            Some("tracemalloc::symbolize::trim")
        );
        // Cached addresses are not resolved (nor counted) again.
        symbols.resolve_missing(addrs);
        assert_eq!(symbols.bytes, full);
        symbols.trim_to_budget();
        assert_eq!(symbols.bytes, full);
        // Over the budget, everything goes; the next snapshot resolves
        // its addresses again, to the same frames.
        symbols.budget = full - 1;
        symbols.trim_to_budget();
        assert_eq!(symbols.bytes, 0);
        assert!(symbols.by_addr.is_empty() && symbols.strings.is_empty());
        symbols.resolve_missing(addrs);
        assert_eq!(symbols.bytes, full);

        // Through the entry point: the snapshot's closure sees every
        // address, whatever the budget.
        let names = with_resolved_budget(1, addrs, |s| addrs.map(|a| name(s, a)));
        assert!(names.iter().all(Option::is_some), "{names:?}");
    }

    #[test]
    fn classification() {
        let c = |file, function| classify(file, function, None);
        assert_eq!(
            c(
                Some("/work/tracemalloc/recorder/src/state.rs"),
                Some("tracemalloc::state::record")
            ),
            FrameClass::Recorder
        );
        assert_eq!(
            c(
                Some("/x/src/lib.rs"),
                Some(
                    "<tracemalloc::TracingAllocator<A> as core::alloc::global::GlobalAlloc>::alloc"
                )
            ),
            FrameClass::Recorder
        );
        assert_eq!(
            c(Some("/x/src/main.rs"), Some("__rust_alloc")),
            FrameClass::Recorder
        );
        let own = format!("{RECORDER_SRC}state.rs");
        assert_eq!(c(Some(&own), Some("on_alloc")), FrameClass::Recorder);
        assert_eq!(
            c(Some("/x/src/main.rs"), Some("__rustc::__rust_alloc")),
            FrameClass::Recorder
        );
        assert_eq!(
            c(
                Some("./csu/../sysdeps/nptl/libc_start_call_main.h"),
                Some("__libc_start_call_main")
            ),
            FrameClass::Runtime
        );
        assert_eq!(
            c(
                Some("/rustc/abc/library/alloc/src/raw_vec.rs"),
                Some("alloc::raw_vec::finish_grow")
            ),
            FrameClass::Std
        );
        assert_eq!(
            c(Some("/rust/deps/hashbrown-0.15.2/src/raw/mod.rs"), None),
            FrameClass::Std
        );
        assert_eq!(
            c(None, Some("std::rt::lang_start_internal")),
            FrameClass::Std
        );
        assert_eq!(c(None, Some("__libc_start_call_main")), FrameClass::Runtime);
        assert_eq!(c(None, Some("main")), FrameClass::Runtime);
        assert_eq!(
            c(
                Some("/rustc/h/library/std/src/sys/backtrace.rs"),
                Some("__rust_begin_short_backtrace<fn()>")
            ),
            FrameClass::Std
        );
        assert_eq!(c(Some("/p/src/main.rs"), Some("main")), FrameClass::User);
        assert_eq!(
            c(Some("/p/src/main.rs"), Some("demo::main")),
            FrameClass::User
        );
        // A user crate whose name starts like ours is the user's.
        assert_eq!(
            c(Some("/p/src/lib.rs"), Some("tracemalloc_tests::helper")),
            FrameClass::User
        );
        assert_eq!(c(None, None), FrameClass::User);
    }

    #[test]
    fn the_recorder_finds_its_own_sources_in_the_debug_info() {
        // The tests are built with debug info and without path remapping,
        // so the folder found at run time is the one compiled in.
        let frames = resolve_batch(&[own_probe()]);
        assert_eq!(own_dir_from(&frames[0]).as_deref(), Some(RECORDER_SRC));
    }

    #[test]
    fn remapped_recorder_sources_are_the_recorders() {
        // Under `--remap-path-prefix=/build/x=/src`, neither the compiled-in
        // path nor the format crate's name-based guess recognizes the
        // inlined hot path; the folder read from the debug info does.
        let own = Some("/src/recorder-copy/src/");
        let file = Some("/src/recorder-copy/src/state.rs");
        assert_eq!(classify(file, Some("on_alloc"), None), FrameClass::User);
        assert_eq!(classify(file, Some("on_alloc"), own), FrameClass::Recorder);
        // The demo script's remapping to relative paths is the format
        // crate's case, which the viewer shares.
        assert_eq!(
            classify(Some("recorder/src/state.rs"), Some("on_alloc"), None),
            FrameClass::Recorder
        );
        assert_eq!(
            classify(Some("src/main.rs"), Some("leaky_service::main"), own),
            FrameClass::User
        );
    }

    #[test]
    fn trimming_leaves_the_users_frames() {
        let bt = frame(Some("/r/backtrace/src/lib.rs"), Some("backtrace::trace"));
        let rec = frame(Some("/r/src/state.rs"), Some("tracemalloc::state::record"));
        let shim = frame(Some("/p/src/main.rs"), Some("__rust_alloc"));
        let std1 = frame(
            Some("/rustc/h/library/alloc/src/raw_vec.rs"),
            Some("alloc::x"),
        );
        let user1 = frame(Some("/p/src/main.rs"), Some("demo::work"));
        let std2 = frame(
            Some("/rustc/h/library/core/src/iter.rs"),
            Some("core::iter::x"),
        );
        let user2 = frame(Some("/p/src/main.rs"), Some("demo::main"));
        let rt = frame(None, Some("__libc_start_call_main"));
        let junk = frame(None, None);
        let mut frames = vec![
            &bt, &rec, &shim, &std1, &user1, &std2, &user2, &std1, &rt, &junk,
        ];
        trim(&mut frames);
        let names: Vec<_> = frames.iter().map(|f| f.function.as_deref()).collect();
        assert_eq!(names, [Some("demo::work"), Some("demo::main")]);

        // No user frame: the standard library's stay.
        let mut frames = vec![&rec, &std1, &std2, &rt];
        trim(&mut frames);
        assert_eq!(frames.len(), 2);
    }
}
