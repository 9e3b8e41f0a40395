//! The part of dhat-rs's API that its example programs use, twice: once
//! over dhat-rs itself ([`real`]) and once over the recorder ([`ours`]), so
//! that one program's source, compiled with `use ...::real as dhat;` or
//! `use ...::ours as dhat;` in front of it, runs under either profiler with
//! the same lines allocating.
//!
//! Each writes its profile into the current directory when its `Profiler`
//! is dropped: dhat-rs its `dhat-heap.json`, the recorder a snapshot with
//! its allocation history in [`OUR_FILE`]; [`crate::dhat_compare`] reads
//! both.

/// The file the recorder's `Profiler` writes, in the current directory.
pub const OUR_FILE: &str = "tracemalloc-heap.tmsnap";

/// The file dhat-rs writes, in the current directory (its default).
pub const DHAT_FILE: &str = "dhat-heap.json";

/// dhat-rs itself, with two changes for the comparison.
///
/// - Testing mode (`Profiler::builder().testing()`) saves no profile
///   unless an assertion fails, so this builder ignores it, and
///   `dhat::assert_eq!` is the standard `assert_eq!` (dhat-rs's compares
///   the same way; in testing mode a failure would also save a profile).
/// - dhat-rs keeps 10 frames per backtrace by default, counting the
///   allocator's own frames. The builder asks for every frame, as
///   dhat-rs's own tests do (`trim_backtraces(Some(usize::MAX))`), so that
///   a backtrace reaches the user's line however deep below it the
///   allocation is. The counts do not depend on it (the programs compared
///   here give the same tables at the default).
pub mod real {
    use std::path::PathBuf;

    pub use dhat::{Alloc, HeapStats};

    /// dhat-rs's heap profiler, running until dropped.
    #[derive(Debug)]
    pub struct Profiler {
        _inner: dhat::Profiler,
    }

    impl Profiler {
        /// Starts heap profiling with the defaults of this shim.
        pub fn new_heap() -> Profiler {
            Profiler::builder().build()
        }

        /// A builder, as dhat-rs's.
        pub fn builder() -> ProfilerBuilder {
            ProfilerBuilder { file_name: None }
        }
    }

    /// Settings of a [`Profiler`].
    #[derive(Debug)]
    pub struct ProfilerBuilder {
        file_name: Option<PathBuf>,
    }

    impl ProfilerBuilder {
        /// Ignored: testing mode would save no profile (see the module
        /// documentation).
        pub fn testing(self) -> ProfilerBuilder {
            self
        }

        /// Where to write the profile instead of `dhat-heap.json`.
        pub fn file_name(mut self, path: impl Into<PathBuf>) -> ProfilerBuilder {
            self.file_name = Some(path.into());
            self
        }

        /// Starts profiling, with every frame of each backtrace kept.
        pub fn build(self) -> Profiler {
            let mut builder = dhat::Profiler::builder().trim_backtraces(Some(usize::MAX));
            if let Some(path) = self.file_name {
                builder = builder.file_name(path);
            }
            Profiler {
                _inner: builder.build(),
            }
        }
    }

    pub use crate::__dhat_shim_assert_eq as assert_eq;
}

/// `dhat::assert_eq!` of both shims: the standard assertion (neither shim
/// has dhat-rs's testing mode, which only changes what a failure saves).
#[doc(hidden)]
#[macro_export]
macro_rules! __dhat_shim_assert_eq {
    ($left:expr, $right:expr $(,)?) => {
        ::std::assert_eq!($left, $right)
    };
    ($left:expr, $right:expr, $($arg:tt)+) => {
        ::std::assert_eq!($left, $right, $($arg)+)
    };
}

/// The recorder behind dhat-rs's names: `dhat::Alloc` is the
/// [`tracemalloc::TracingAllocator`] (a type and a constant of that name,
/// so that `static ALLOC: dhat::Alloc = dhat::Alloc;` declares it without
/// a wrapper whose frame would sit between the allocator and the program),
/// and a `Profiler` traces with allocation history from its creation to
/// its drop, when it writes the snapshot to [`OUR_FILE`](super::OUR_FILE).
pub mod ours {
    use std::path::PathBuf;

    /// The global allocator: the recorder's.
    pub type Alloc = tracemalloc::TracingAllocator;

    /// The global allocator's value, so that `dhat::Alloc` names it as it
    /// names dhat-rs's unit struct.
    #[allow(non_upper_case_globals)]
    pub const Alloc: Alloc = tracemalloc::TracingAllocator::system();

    /// Traces every allocation, with its whole traceback and the
    /// allocation history, until dropped.
    #[derive(Debug)]
    pub struct Profiler {
        file_name: PathBuf,
    }

    impl Profiler {
        /// Starts tracing.
        pub fn new_heap() -> Profiler {
            Profiler::builder().build()
        }

        /// A builder, as dhat-rs's.
        pub fn builder() -> ProfilerBuilder {
            ProfilerBuilder { file_name: None }
        }
    }

    impl Drop for Profiler {
        /// Takes the snapshot, stops tracing and writes the snapshot, as
        /// dhat-rs writes its profile when its profiler is dropped.
        fn drop(&mut self) {
            let written = tracemalloc::take_snapshot()
                .map_err(|e| e.to_string())
                .and_then(|snapshot| {
                    tracemalloc::stop();
                    snapshot.dump(&self.file_name).map_err(|e| e.to_string())
                });
            if let Err(e) = written {
                // A profile that is not written fails the program, as a
                // failed assertion would.
                eprintln!("tracemalloc: {}: {e}", self.file_name.display());
                std::process::exit(1);
            }
        }
    }

    /// Settings of a [`Profiler`].
    #[derive(Debug)]
    pub struct ProfilerBuilder {
        file_name: Option<PathBuf>,
    }

    impl ProfilerBuilder {
        /// Ignored, as in [`real`](super::real).
        pub fn testing(self) -> ProfilerBuilder {
            self
        }

        /// Where to write the snapshot instead of
        /// [`OUR_FILE`](super::OUR_FILE).
        pub fn file_name(mut self, path: impl Into<PathBuf>) -> ProfilerBuilder {
            self.file_name = Some(path.into());
            self
        }

        /// Starts tracing, with every frame kept up to
        /// [`tracemalloc::MAX_NFRAME`]. Panics if tracing cannot start
        /// (dhat-rs panics when a second profiler starts).
        pub fn build(self) -> Profiler {
            // The path is made before tracing starts: made after, it would
            // be a block of the profile (dhat-rs does not count its own).
            let file_name = self
                .file_name
                .unwrap_or_else(|| PathBuf::from(super::OUR_FILE));
            if let Err(e) = tracemalloc::Config::new(tracemalloc::MAX_NFRAME)
                .history(true)
                .start()
            {
                panic!("tracemalloc: cannot start tracing: {e}");
            }
            Profiler { file_name }
        }
    }

    /// The recorder's figures under the names of dhat-rs's `HeapStats`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct HeapStats {
        /// Blocks allocated since tracing started.
        pub total_blocks: u64,
        /// Bytes allocated since tracing started.
        pub total_bytes: u64,
        /// Blocks live now.
        pub curr_blocks: usize,
        /// Bytes live now.
        pub curr_bytes: usize,
        /// Blocks live at the peak of traced memory.
        pub max_blocks: usize,
        /// Bytes live at the peak of traced memory.
        pub max_bytes: usize,
    }

    impl HeapStats {
        /// The figures now, from a snapshot (which the recorder does not
        /// trace). Panics when not tracing, as dhat-rs's does without a
        /// profiler.
        pub fn get() -> HeapStats {
            let snapshot = match tracemalloc::take_snapshot() {
                Ok(snapshot) => snapshot,
                Err(e) => panic!("tracemalloc: no heap statistics: {e}"),
            };
            let Some(history) = snapshot.history() else {
                panic!("tracemalloc: the snapshot has no allocation history");
            };
            let total = history.total();
            let live = snapshot.totals();
            HeapStats {
                total_blocks: total.allocated_blocks,
                total_bytes: total.allocated_bytes,
                curr_blocks: live.count as usize,
                curr_bytes: live.size as usize,
                max_blocks: total.peak_blocks as usize,
                max_bytes: total.peak_bytes as usize,
            }
        }
    }

    pub use crate::__dhat_shim_assert_eq as assert_eq;
}
