//! Trimming tracebacks as a default recording does: a snapshot recorded
//! with every frame kept (the recorder's option for debugging it) becomes
//! the snapshot a default recording would have made, so that memory is
//! attributed to the user's code.
//!
//! The recorder applies these same rules when it takes a snapshot
//! (`recorder/src/symbolize.rs` calls this module), so the viewer's "hide
//! std frames" and a default recording agree: frames are
//! classified ([`classify_frame`]) as the recorder's own, the Rust standard
//! library's, the C runtime's, or the user's; [`default_trim`] then keeps
//! the user's frames (or the standard library's, when a traceback has no
//! user frame).
//!
//! ```
//! use tracemalloc_format::{KeyType, Snapshot};
//!
//! let std_vec = "/rustc/0123abcd/library/alloc/src/vec/mod.rs";
//! let snapshot = Snapshot::from_raw_traces(
//!     5,
//!     [(0, 64, &[(std_vec, 2519), ("src/main.rs", 7)][..], None)],
//! )?;
//! assert!(snapshot.has_untrimmed_frames());
//! let trimmed = snapshot.with_default_trim()?;
//! let top = trimmed.statistics(KeyType::Lineno, false)?;
//! assert_eq!(top[0].traceback.to_string(), "src/main.rs:7");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::model::{
    BuildError, FrameId, FrameRef, HistoryRow, Snapshot, SnapshotBuilder, TracebackId,
};

/// What a frame is, for trimming.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameClass {
    /// The recorder itself, or the allocator shim (`__rust_alloc`, ...).
    Recorder,
    /// Rust's standard library (`std`, `core`, `alloc` and their vendored
    /// dependencies).
    Std,
    /// The C runtime's entry points below `main` and thread starts.
    Runtime,
    /// Everything else: the user's code and its dependencies.
    User,
}

/// Path prefixes of the standard library's sources in official builds'
/// debug info (`/rustc/<commit>/library/...`, `/rust/deps/...`, older
/// `/cargo/registry/...`).
const STD_PREFIXES: &[&str] = &["/rustc/", "/rust/deps/", "/cargo/registry/"];

/// Path fragments of the standard library's sources where they are not
/// remapped: the `rust-src` component, or a toolchain built from source.
const STD_FRAGMENTS: &[&str] = &["/lib/rustlib/src/rust/library/", "/rust/library/"];

/// Crate paths of the standard library's functions, for frames whose file
/// is unknown.
const STD_FUNCTIONS: &[&str] = &[
    "std::",
    "core::",
    "alloc::",
    "<std::",
    "<core::",
    "<alloc::",
    "hashbrown::",
    "<hashbrown::",
    "__rust_try",
];

/// The allocator shim's functions, which call the `#[global_allocator]`.
const ALLOCATOR_SHIMS: &[&str] = &[
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rust_dealloc",
];

/// The C runtime's functions below `main` and thread starts.
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

/// Whether the file name is unknown (the recorder writes none, or
/// CPython's `<unknown>`).
fn unknown_file(filename: &str) -> bool {
    filename.is_empty() || filename == crate::UNKNOWN_FILENAME
}

/// Whether a path is one of the recorder's sources: the `tracemalloc`
/// crate as Cargo unpacks it (`.../tracemalloc-0.1.0/src/...`), or this
/// repository's `recorder/src/`, relative (debug info remapped to the
/// repository, as the demo snapshots are) or under a folder named after
/// the project.
pub fn is_recorder_path(path: &str) -> bool {
    let path = path.replace('\\', "/");
    if path.starts_with("recorder/src/") {
        return true;
    }
    if let Some(at) = path.find("/recorder/src/")
        && path[..at].contains("tracemalloc")
    {
        return true;
    }
    let parts: Vec<&str> = path.split('/').collect();
    parts.windows(2).any(|w| {
        w[1] == "src"
            && w[0]
                .strip_prefix("tracemalloc-")
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Classifies a frame by its file (where known) and function, as the
/// recorder does.
pub fn classify_frame(frame: FrameRef<'_>) -> FrameClass {
    let file = (!unknown_file(frame.filename)).then_some(frame.filename);
    if file.is_some_and(is_recorder_path) {
        return FrameClass::Recorder;
    }
    if let Some(f) = frame.function {
        // The C `main` that calls Rust's runtime has no debug info; the
        // user's `main` of an optimized build is also just `main`.
        if RUNTIME_FUNCTIONS.contains(&f) && (f != "main" || file.is_none()) {
            return FrameClass::Runtime;
        }
        let f = f.strip_prefix('<').unwrap_or(f);
        if f.starts_with("tracemalloc::")
            || f.starts_with("__rustc::")
            || f.starts_with("__rg_")
            || f.starts_with("__rdl_")
            || ALLOCATOR_SHIMS.contains(&f)
        {
            return FrameClass::Recorder;
        }
    }
    match file {
        Some(path) => {
            let path = path.replace('\\', "/");
            if STD_PREFIXES.iter().any(|p| path.starts_with(p))
                || STD_FRAGMENTS.iter().any(|p| path.contains(p))
            {
                return FrameClass::Std;
            }
            // dhat-rs shortens every path to its last three components
            // (`src/vec/mod.rs`), which no longer says whose file it is: for
            // a relative path the function decides, as for an unknown file.
            let relative = !path.starts_with('/') && path.get(1..3) != Some(":/");
            if relative && frame.function.is_some_and(is_std_function) {
                return FrameClass::Std;
            }
        }
        None => {
            if frame.function.is_some_and(is_std_function) {
                return FrameClass::Std;
            }
        }
    }
    FrameClass::User
}

/// Whether a function is the standard library's: in one of its crates, or
/// its implementation of one of its traits for a type without a crate path
/// (a primitive or a generic parameter: `<u8 as alloc::vec::spec_from_elem
/// ::SpecFromElem>::from_elem`), which only the standard library can write.
fn is_std_function(function: &str) -> bool {
    if STD_FUNCTIONS.iter().any(|p| function.starts_with(p)) {
        return true;
    }
    function
        .strip_prefix('<')
        .and_then(|rest| rest.split_once(" as "))
        .is_some_and(|(ty, tr)| {
            !ty.contains("::")
                && ["std::", "core::", "alloc::"]
                    .iter()
                    .any(|p| tr.starts_with(p))
        })
}

/// Whether a frame has neither file nor function (where a frame-pointer
/// chain left Rust code).
fn is_empty_frame(frame: FrameRef<'_>) -> bool {
    unknown_file(frame.filename) && frame.function.is_none()
}

/// Which frames of a traceback (most recent first, given as their classes
/// and whether each is empty) a default recording keeps: everything up to
/// the last frame of the recorder or the allocator shim before the user's
/// first frame goes (the capture machinery above the allocation), then
/// every standard-library and C-runtime frame, then trailing empty frames.
/// A traceback with no user frame keeps its standard-library frames, so
/// that its memory still shows where it was allocated.
///
/// Recorder frames below the first user frame are the user's callers, as
/// when a test's closure runs inside `tracemalloc::testing::measure`: the
/// user's frames above them stay.
pub fn default_trim(frames: &[(FrameClass, bool)]) -> Vec<bool> {
    let mut keep = vec![true; frames.len()];
    let is = |class: FrameClass| move |f: &(FrameClass, bool)| f.0 == class;
    // The capture machinery ends at the last recorder frame before the
    // first user frame that follows a recorder frame (the unwinder's own
    // frames above the recorder may count as user frames).
    if let Some(first_recorder) = frames.iter().position(is(FrameClass::Recorder)) {
        let end = frames[first_recorder..]
            .iter()
            .position(is(FrameClass::User))
            .map_or(frames.len(), |i| first_recorder + i);
        if let Some(last) = frames[..end].iter().rposition(is(FrameClass::Recorder)) {
            keep[..=last].fill(false);
        }
    }
    let has_user = frames
        .iter()
        .zip(&keep)
        .any(|(f, &k)| k && f.0 == FrameClass::User);
    let wanted = if has_user {
        FrameClass::User
    } else {
        FrameClass::Std
    };
    for (k, f) in keep.iter_mut().zip(frames) {
        *k = *k && f.0 == wanted;
    }
    for (k, f) in keep.iter_mut().zip(frames).rev() {
        if !*k {
            continue;
        }
        if f.1 {
            *k = false;
        } else {
            break;
        }
    }
    keep
}

impl Snapshot {
    /// Whether [`Snapshot::with_default_trim`] would change any traceback
    /// the traces use: whether the snapshot was recorded with frames a
    /// default recording leaves out.
    pub fn has_untrimmed_frames(&self) -> bool {
        let tables = self.tables();
        let mut used = vec![false; tables.traceback_count()];
        for t in self.traces() {
            used[t.traceback.index()] = true;
        }
        let mut classes = FrameClasses::new(self);
        // Most snapshots (CPython's, default recordings) have only user
        // frames: then nothing is trimmed, whatever the tracebacks.
        let mut frame_used = vec![false; tables.frame_count()];
        for tb in tables.traceback_ids().filter(|tb| used[tb.index()]) {
            for &f in tables.traceback_frames(tb) {
                frame_used[f.index()] = true;
            }
        }
        let all_user = tables
            .frame_ids()
            .filter(|f| frame_used[f.index()])
            .all(|f| classes.of(&[f])[0] == (FrameClass::User, false));
        if all_user {
            return false;
        }
        tables
            .traceback_ids()
            .filter(|tb| used[tb.index()])
            .any(|tb| {
                let frames = classes.of(tables.traceback_frames(tb));
                default_trim(&frames).iter().any(|&k| !k)
            })
    }

    /// The snapshot a default recording would have made: each traceback
    /// trimmed by [`default_trim`], with the same traces, limit and
    /// metadata. Tracebacks whose frames become equal group together; a
    /// traceback left with no frame
    /// becomes `<unknown>:0`, as the recorder writes it. Each
    /// `total_nframe` drops by the number of frames left out.
    pub fn with_default_trim(&self) -> Result<Snapshot, BuildError> {
        let tables = self.tables();
        let mut classes = FrameClasses::new(self);
        let mut builder = SnapshotBuilder::new(self.traceback_limit());
        builder.reserve_traces(self.traces().len());
        let mut frame_map: Vec<Option<FrameId>> = vec![None; tables.frame_count()];
        let mut tb_map: Vec<Option<TracebackId>> = vec![None; tables.traceback_count()];
        let mut kept: Vec<FrameId> = Vec::new();
        // The trimmed traceback of `old_tb`, interned once per traceback.
        let mut trimmed = |builder: &mut SnapshotBuilder, old_tb: TracebackId| {
            if let Some(tb) = tb_map[old_tb.index()] {
                return Ok(tb);
            }
            let frames = tables.traceback_frames(old_tb);
            let keep = default_trim(&classes.of(frames));
            kept.clear();
            for (&f, k) in frames.iter().zip(keep) {
                if !k {
                    continue;
                }
                let mapped = match frame_map[f.index()] {
                    Some(id) => id,
                    None => {
                        let frame = tables.frame(f);
                        let id =
                            builder.intern_frame(frame.filename, frame.lineno, frame.function)?;
                        frame_map[f.index()] = Some(id);
                        id
                    }
                };
                kept.push(mapped);
            }
            let removed = (frames.len() - kept.len()) as u32;
            let total = tables
                .traceback_total_nframe(old_tb)
                .map(|n| n.saturating_sub(removed));
            let tb = builder.intern_traceback(&kept, total)?;
            tb_map[old_tb.index()] = Some(tb);
            Ok::<TracebackId, BuildError>(tb)
        };
        for trace in self.traces() {
            let tb = trimmed(&mut builder, trace.traceback)?;
            builder.push_trace(trace.domain, trace.size, tb)?;
        }
        // History rows follow their tracebacks; two rows whose tracebacks
        // trim to the same frames stay two rows, which every analysis adds
        // up as it adds up two traces.
        if let Some(history) = self.history() {
            builder.set_history(history.peak_timestamp);
            for row in history.rows() {
                let traceback = trimmed(&mut builder, row.traceback)?;
                builder.push_history(HistoryRow { traceback, ..*row })?;
            }
        }
        Ok(builder.finish(self.metadata().clone()))
    }
}

/// Each frame's class and emptiness, computed once per frame.
struct FrameClasses<'a> {
    snapshot: &'a Snapshot,
    cache: Vec<Option<(FrameClass, bool)>>,
}

impl<'a> FrameClasses<'a> {
    fn new(snapshot: &'a Snapshot) -> FrameClasses<'a> {
        FrameClasses {
            snapshot,
            cache: vec![None; snapshot.tables().frame_count()],
        }
    }

    fn of(&mut self, frames: &[FrameId]) -> Vec<(FrameClass, bool)> {
        let tables = self.snapshot.tables();
        frames
            .iter()
            .map(|&f| {
                *self.cache[f.index()].get_or_insert_with(|| {
                    let frame = tables.frame(f);
                    (classify_frame(frame), is_empty_frame(frame))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Frame, KeyType, Metadata};

    fn c(filename: &str, function: Option<&str>) -> FrameClass {
        classify_frame(FrameRef {
            filename,
            lineno: 1,
            function,
        })
    }

    /// The recorder's classification tests (recorder/src/symbolize.rs),
    /// with an unknown file written as `<unknown>`.
    #[test]
    fn frames_are_classified_as_the_recorder_does() {
        use FrameClass::*;
        assert_eq!(
            c(
                "/x/src/lib.rs",
                Some(
                    "<tracemalloc::TracingAllocator<A> as core::alloc::global::GlobalAlloc>::alloc"
                )
            ),
            Recorder
        );
        assert_eq!(c("/x/src/main.rs", Some("__rust_alloc")), Recorder);
        assert_eq!(c("/x/src/main.rs", Some("__rustc::__rust_alloc")), Recorder);
        assert_eq!(
            c(
                "./csu/../sysdeps/nptl/libc_start_call_main.h",
                Some("__libc_start_call_main")
            ),
            Runtime
        );
        assert_eq!(
            c(
                "/rustc/abc/library/alloc/src/raw_vec.rs",
                Some("alloc::raw_vec::finish_grow")
            ),
            Std
        );
        assert_eq!(c("/rust/deps/hashbrown-0.15.2/src/raw/mod.rs", None), Std);
        assert_eq!(c("<unknown>", Some("std::rt::lang_start_internal")), Std);
        assert_eq!(c("", Some("__libc_start_call_main")), Runtime);
        assert_eq!(c("<unknown>", Some("main")), Runtime);
        assert_eq!(c("/p/src/main.rs", Some("main")), User);
        assert_eq!(c("/p/src/main.rs", Some("demo::main")), User);
        assert_eq!(c("/p/src/lib.rs", Some("tracemalloc_tests::helper")), User);
        assert_eq!(c("<unknown>", None), User);
        // Not remapped, or on Windows.
        assert_eq!(
            c(
                "/home/me/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/lib/rustlib/src/rust/library/std/src/rt.rs",
                None
            ),
            Std
        );
        assert_eq!(c(r"\rustc\abc\library\core\src\ops\function.rs", None), Std);
        // The recorder's sources, wherever they were built.
        assert_eq!(
            c(
                "recorder/src/periodic.rs",
                Some("builder<&std::path::PathBuf>")
            ),
            Recorder
        );
        assert_eq!(
            c(
                "/home/me/tracemalloc-rs/recorder/src/state.rs",
                Some("on_alloc")
            ),
            Recorder
        );
        assert_eq!(
            c(
                "/home/me/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tracemalloc-0.1.0/src/lib.rs",
                None
            ),
            Recorder
        );
        assert_eq!(c("/home/me/app/recorder/src/lib.rs", None), User);
        // dhat-rs's shortened paths: the function decides.
        assert_eq!(
            c(
                "src/raw_vec/mod.rs",
                Some("alloc::raw_vec::RawVec<T,A>::grow_one")
            ),
            Std
        );
        assert_eq!(
            c(
                "src/vec/spec_from_elem.rs",
                Some("<u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem")
            ),
            Std
        );
        assert_eq!(c("src/main.rs", Some("make_dhat_rs::keep")), User);
        assert_eq!(
            c(
                "src/main.rs",
                Some("<app::Config as core::fmt::Display>::fmt")
            ),
            User
        );
        // An absolute path is trusted, whatever the function's name.
        assert_eq!(c("/p/src/core/mod.rs", Some("core::helper")), User);
        assert_eq!(c("/home/me/tracemalloc-format/src/lib.rs", None), User);
    }

    #[test]
    fn trimming_leaves_the_users_frames() {
        use FrameClass::*;
        let frames = [
            (User, false),     // backtrace::trace, above the recorder
            (Recorder, false), // tracemalloc::state::record
            (Recorder, false), // __rust_alloc
            (Std, false),
            (User, false), // demo::work
            (Std, false),
            (User, false), // demo::main
            (Std, false),
            (Runtime, false),
            (User, true), // no file, no function
        ];
        let keep = default_trim(&frames);
        let kept: Vec<usize> = (0..frames.len()).filter(|&i| keep[i]).collect();
        assert_eq!(kept, [4, 6]);
        // No user frame: the standard library's stay.
        let keep = default_trim(&[
            (Recorder, false),
            (Std, false),
            (Runtime, false),
            (Std, false),
        ]);
        assert_eq!(keep, [false, true, false, true]);
        // Recorder frames below the user's (a closure measured by
        // `tracemalloc::testing::measure`) end no capture: the user's
        // frames above them stay.
        let keep = default_trim(&[
            (User, false),     // backtrace::trace
            (Recorder, false), // the allocation hook
            (Std, false),
            (User, false),     // the measured closure
            (Recorder, false), // tracemalloc::testing::measure
            (User, false),     // the test
        ]);
        assert_eq!(keep, [false, false, false, true, false, true]);
        // Trailing empty frames go even after a user frame.
        let keep = default_trim(&[(User, false), (User, true), (User, true)]);
        assert_eq!(keep, [true, false, false]);
    }

    const VEC: &str = "/rustc/abc/library/alloc/src/vec/mod.rs";
    const RAW: &str = "/rustc/abc/library/alloc/src/raw_vec.rs";

    fn snapshot() -> Snapshot {
        let mut b = SnapshotBuilder::new(4);
        let shim = b
            .intern_frame("/app/src/main.rs", 1, Some("__rust_alloc"))
            .unwrap();
        let raw = b
            .intern_frame(RAW, 10, Some("alloc::raw_vec::grow"))
            .unwrap();
        let vec = b
            .intern_frame(VEC, 20, Some("alloc::vec::Vec<T>::push"))
            .unwrap();
        let user1 = b.intern_frame("src/a.rs", 3, Some("app::a")).unwrap();
        let user2 = b.intern_frame("src/main.rs", 9, Some("app::main")).unwrap();
        let rt = b
            .intern_frame("<unknown>", 0, Some("__libc_start_call_main"))
            .unwrap();
        // Two tracebacks that differ only in what a default recording
        // leaves out, one without any user frame.
        let t1 = b
            .intern_traceback(&[shim, raw, vec, user1, user2, rt], Some(6))
            .unwrap();
        let t2 = b.intern_traceback(&[vec, user1, user2], Some(5)).unwrap();
        let t3 = b.intern_traceback(&[raw, vec], Some(2)).unwrap();
        b.push_trace(0, 100, t1).unwrap();
        b.push_trace(1, 10, t2).unwrap();
        b.push_trace(0, 7, t3).unwrap();
        b.finish(Metadata {
            pid: Some(42),
            ..Metadata::default()
        })
    }

    #[test]
    fn trimmed_snapshots_keep_user_frames_and_merge() {
        let snap = snapshot();
        assert!(snap.has_untrimmed_frames());
        let trimmed = snap.with_default_trim().unwrap();
        assert!(
            !trimmed.has_untrimmed_frames(),
            "trimming twice changes nothing"
        );
        assert_eq!(trimmed.metadata().pid, Some(42));
        assert_eq!(trimmed.traceback_limit(), 4);
        assert_eq!(
            trimmed
                .traces()
                .iter()
                .map(|t| (t.domain, t.size))
                .collect::<Vec<_>>(),
            [(0, 100), (1, 10), (0, 7)]
        );
        let tb1 = trimmed.traceback(trimmed.traces()[0].traceback);
        assert_eq!(
            tb1.frames,
            [
                Frame {
                    function: Some("app::a".into()),
                    ..Frame::new("src/a.rs", 3)
                },
                Frame {
                    function: Some("app::main".into()),
                    ..Frame::new("src/main.rs", 9)
                },
            ]
        );
        assert_eq!(tb1.total_nframe, Some(2));
        // t1 and t2 now have the same frames, so their 110 bytes group
        // together.
        let tb2 = trimmed.traceback(trimmed.traces()[1].traceback);
        assert_eq!(tb2.frames, tb1.frames);
        let by_tb = trimmed.statistics(KeyType::Traceback, false).unwrap();
        assert_eq!(by_tb[0].size, 110);
        // The traceback without a user frame keeps its std frames.
        let tb3 = trimmed.traceback(trimmed.traces()[2].traceback);
        assert_eq!(tb3.frames.len(), 2);
        assert_eq!(&*tb3.frames[0].filename, RAW);
        let by_line = trimmed.statistics(KeyType::Lineno, false).unwrap();
        assert_eq!(by_line[0].traceback.to_string(), "src/a.rs:3");
        assert_eq!(by_line[0].size, 110);
    }

    #[test]
    fn snapshots_of_default_recordings_stay_as_they_are() {
        let snap = Snapshot::from_raw_traces(
            1,
            [
                (0, 5, &[("a.py", 1)][..], None),
                (0, 6, &[(RAW, 1)][..], None),
            ],
        )
        .unwrap();
        // An all-std traceback is what a default recording keeps.
        assert!(!snap.has_untrimmed_frames());
        let same = snap.with_default_trim().unwrap();
        assert_eq!(
            same.statistics(KeyType::Traceback, false).unwrap(),
            snap.statistics(KeyType::Traceback, false).unwrap()
        );
    }
}
