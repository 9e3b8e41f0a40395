//! From return addresses to frames: symbolization (once per address,
//! cached across snapshots), inline expansion, and trimming of the frames
//! that are not the user's.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use crate::lock::SpinLock;
use crate::tls::{GUARD_COUNTED, Guard};

/// What a frame is, for trimming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Class {
    /// The recorder itself, or the allocator shim (`__rust_alloc`, ...).
    Internal,
    /// Rust's standard library (`std`, `core`, `alloc` and their vendored
    /// dependencies).
    Std,
    /// The C runtime's entry points below `main` and thread starts.
    Runtime,
    /// Everything else: the user's code and its dependencies.
    User,
}

/// One frame, as the symbolizer reports it.
#[derive(Clone, Debug)]
pub(crate) struct SymFrame {
    pub(crate) file: Option<Arc<str>>,
    pub(crate) line: u32,
    pub(crate) function: Option<Arc<str>>,
    pub(crate) class: Class,
}

/// Resolved addresses, innermost inlined frame first.
#[derive(Default)]
pub(crate) struct Symbols {
    by_addr: HashMap<usize, Box<[SymFrame]>>,
    /// Interned strings, so that each file and function name is stored once.
    strings: HashMap<Box<str>, Arc<str>>,
}

static SYMBOLS: SpinLock<Option<Symbols>> = SpinLock::new(None);

/// Runs `f` with the symbol cache, after resolving `addrs` that are not in
/// it yet. The caller holds the untraced guard (or none).
pub(crate) fn with_resolved<R>(
    addrs: impl IntoIterator<Item = usize>,
    f: impl FnOnce(&Symbols) -> R,
) -> R {
    let mut symbols = SYMBOLS.lock();
    {
        // Everything the symbolizer allocates, here and inside the
        // `backtrace` crate's caches, counts as the recorder's memory.
        let _counted = Guard::enter(GUARD_COUNTED);
        let symbols = symbols.get_or_insert_with(Symbols::default);
        for addr in addrs {
            if !symbols.by_addr.contains_key(&addr) {
                let frames = resolve(addr, &mut symbols.strings);
                symbols.by_addr.insert(addr, frames);
            }
        }
    }
    let symbols = symbols.get_or_insert_with(Symbols::default);
    f(symbols)
}

fn intern(strings: &mut HashMap<Box<str>, Arc<str>>, s: &str) -> Arc<str> {
    if let Some(a) = strings.get(s) {
        return Arc::clone(a);
    }
    let a: Arc<str> = Arc::from(s);
    strings.insert(Box::from(s), Arc::clone(&a));
    a
}

fn resolve(addr: usize, strings: &mut HashMap<Box<str>, Arc<str>>) -> Box<[SymFrame]> {
    let mut frames = Vec::new();
    // `resolve` looks up `addr - 1`: a return address points after the
    // call, which may be the next line (or the next function).
    backtrace::resolve(addr as *mut c_void, |symbol| {
        let function = symbol.name().map(|n| format!("{n:#}"));
        let file = symbol.filename().map(|p| p.to_string_lossy().into_owned());
        let line = symbol.lineno().unwrap_or(0);
        let class = classify(file.as_deref(), function.as_deref());
        frames.push(SymFrame {
            file: file.map(|f| intern(strings, &f)),
            line,
            function: function.map(|f| intern(strings, &f)),
            class,
        });
    });
    if frames.is_empty() {
        frames.push(SymFrame {
            file: None,
            line: 0,
            function: None,
            class: Class::User,
        });
    }
    frames.into_boxed_slice()
}

/// Path prefixes of the standard library's sources in official builds'
/// debug info, and fragments where it is not remapped (rust-src, a
/// toolchain built from source).
const STD_PREFIXES: &[&str] = &["/rustc/", "/rust/deps/", "/cargo/registry/"];
const STD_FRAGMENTS: &[&str] = &["/lib/rustlib/src/rust/library/", "/rust/library/"];
const STD_FUNCTIONS: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "<std::",
    "<core::",
    "<alloc::",
    "hashbrown::",
    "<hashbrown::",
    // The compiler's helper for `catch_unwind`, in every thread's start.
    "__rust_try",
];
/// The allocator shim's functions, which call the `#[global_allocator]`
/// (their debug info points at the line declaring it).
const ALLOCATOR_SHIMS: &[&str] = &[
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rust_dealloc",
];
const RUNTIME_FUNCTIONS: &[&str] = &[
    "main",
    "_start",
    "__libc_start_main",
    "__libc_start_main_impl",
    "__libc_start_call_main",
    "start_thread",
    "clone",
    "clone3",
    "__clone",
    "__clone3",
    "thread_start",
];

/// The recorder's own sources, as its debug info names them. Inlined
/// frames of optimized builds carry short function names (`on_alloc`, not
/// `tracemalloc::state::on_alloc`), so the file is what tells them apart.
const RECORDER_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");

/// Classifies a frame by its file (where known) and function.
pub(crate) fn classify(file: Option<&str>, function: Option<&str>) -> Class {
    if file.is_some_and(|f| f.starts_with(RECORDER_SRC)) {
        return Class::Internal;
    }
    if let Some(f) = function {
        // The C `main` that calls Rust's runtime has no debug info; the
        // user's `main` of an optimized build is also just `main`.
        if RUNTIME_FUNCTIONS.contains(&f) && (f != "main" || file.is_none()) {
            return Class::Runtime;
        }
        let f = f.strip_prefix('<').unwrap_or(f);
        if f.starts_with("tracemalloc::")
            || f.starts_with("__rustc::")
            || f.starts_with("__rg_")
            || f.starts_with("__rdl_")
            || ALLOCATOR_SHIMS.contains(&f)
        {
            return Class::Internal;
        }
    }
    match file {
        Some(path) => {
            let path = path.replace('\\', "/");
            if STD_PREFIXES.iter().any(|p| path.starts_with(p))
                || STD_FRAGMENTS.iter().any(|p| path.contains(p))
            {
                return Class::Std;
            }
        }
        None => {
            if let Some(f) = function
                && STD_FUNCTIONS.iter().any(|p| f.starts_with(p))
            {
                return Class::Std;
            }
        }
    }
    Class::User
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

/// Leaves the user's frames: everything up to the last frame of the
/// recorder or the allocator shim goes (the capture machinery above the
/// allocation), then every standard-library and C-runtime frame, then
/// trailing frames with neither file nor function (where a frame-pointer
/// chain left Rust code). A traceback with no user frame at all keeps its
/// standard-library frames, so that its memory still shows where it was
/// allocated.
pub(crate) fn trim(frames: &mut Vec<&SymFrame>) {
    if let Some(last_internal) = frames.iter().rposition(|f| f.class == Class::Internal) {
        frames.drain(..=last_internal);
    }
    let has_user = frames.iter().any(|f| f.class == Class::User);
    if has_user {
        frames.retain(|f| f.class == Class::User);
    } else {
        frames.retain(|f| f.class == Class::Std);
    }
    while frames
        .last()
        .is_some_and(|f| f.file.is_none() && f.function.is_none())
    {
        frames.pop();
    }
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
            class: classify(file, function),
        }
    }

    #[test]
    fn classification() {
        let c = classify;
        assert_eq!(
            c(
                Some("/work/tracemalloc/recorder/src/state.rs"),
                Some("tracemalloc::state::record")
            ),
            Class::Internal
        );
        assert_eq!(
            c(
                Some("/x/src/lib.rs"),
                Some(
                    "<tracemalloc::TracingAllocator<A> as core::alloc::global::GlobalAlloc>::alloc"
                )
            ),
            Class::Internal
        );
        assert_eq!(
            c(Some("/x/src/main.rs"), Some("__rust_alloc")),
            Class::Internal
        );
        let own = format!("{RECORDER_SRC}state.rs");
        assert_eq!(c(Some(&own), Some("on_alloc")), Class::Internal);
        assert_eq!(
            c(Some("/x/src/main.rs"), Some("__rustc::__rust_alloc")),
            Class::Internal
        );
        assert_eq!(
            c(
                Some("./csu/../sysdeps/nptl/libc_start_call_main.h"),
                Some("__libc_start_call_main")
            ),
            Class::Runtime
        );
        assert_eq!(
            c(
                Some("/rustc/abc/library/alloc/src/raw_vec.rs"),
                Some("alloc::raw_vec::finish_grow")
            ),
            Class::Std
        );
        assert_eq!(
            c(Some("/rust/deps/hashbrown-0.15.2/src/raw/mod.rs"), None),
            Class::Std
        );
        assert_eq!(c(None, Some("std::rt::lang_start_internal")), Class::Std);
        assert_eq!(c(None, Some("__libc_start_call_main")), Class::Runtime);
        assert_eq!(c(None, Some("main")), Class::Runtime);
        assert_eq!(
            c(
                Some("/rustc/h/library/std/src/sys/backtrace.rs"),
                Some("__rust_begin_short_backtrace<fn()>")
            ),
            Class::Std
        );
        assert_eq!(c(Some("/p/src/main.rs"), Some("main")), Class::User);
        assert_eq!(c(Some("/p/src/main.rs"), Some("demo::main")), Class::User);
        // A user crate whose name starts like ours is the user's.
        assert_eq!(
            c(Some("/p/src/lib.rs"), Some("tracemalloc_tests::helper")),
            Class::User
        );
        assert_eq!(c(None, None), Class::User);
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
