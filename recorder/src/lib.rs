//! # tracemalloc
//!
//! Python's `tracemalloc` for Rust programs: trace every heap allocation
//! with the traceback that made it, take snapshots of the live blocks, and
//! look at them with the tracemalloc-rs viewer or the format crate's
//! statistics. Cheap enough to leave on.
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: tracemalloc::TracingAllocator = tracemalloc::TracingAllocator::system();
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     tracemalloc::start(16)?; // or TRACEMALLOC=16 in the environment
//!     let data: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
//!     tracemalloc::take_snapshot()?.dump("after.tmsnap")?;
//!     drop(data);
//!     Ok(())
//! }
//! ```
//!
//! The functions mirror CPython's module: [`start`], [`stop`],
//! [`is_tracing`], [`get_traceback_limit`], [`get_traced_memory`],
//! [`reset_peak`], [`clear_traces`], [`get_tracemalloc_memory`],
//! [`get_object_traceback`], [`take_snapshot`], and [`track`] /
//! [`untrack`] for memory that does not come from the global allocator
//! (CPython's `PyTraceMalloc_Track`).
//!
//! ## How tracebacks are captured
//!
//! The allocation hook captures return addresses only, by walking frame
//! pointers (a few nanoseconds per frame). Build with
//! `RUSTFLAGS="-C force-frame-pointers=yes"` (or the same in
//! `.cargo/config.toml`); Rust's standard library already has them. Without
//! them the recorder notices at [`start`], says so once on stderr, and uses
//! the DWARF unwinder of the `backtrace` crate instead, which is correct
//! but about fifteen times slower.
//!
//! Symbols (file, line, function, inlined frames) are resolved in
//! [`take_snapshot`], once per distinct address. A trace's frames are then
//! trimmed so that the most recent one is the first frame in the user's
//! code: the recorder's own frames, the allocator shim and the standard
//! library's frames go ([`Config::keep_internal_frames`] keeps them).
//! Release builds need line tables for file and line numbers:
//! `debug = "line-tables-only"` (or more) in `[profile.release]`.
//!
//! ## Environment
//!
//! Read at the first allocation or the first call into this crate,
//! whichever comes first.
//!
//! - `TRACEMALLOC=N`: start tracing with `N` frames at the first allocation.
//! - `TRACEMALLOC_SAMPLE=BYTES`: sample (see [`start_sampled`]) with this
//!   mean.
//! - `TRACEMALLOC_HISTORY=1`: record allocation history (see
//!   [`Config::history`]).
//! - `TRACEMALLOC_SNAPSHOT=PATH`: write a snapshot at exit (`{pid}` is
//!   replaced by the process id).

mod allocator;
mod env;
mod history;
mod lock;
mod periodic;
mod sampling;
mod snapshot;
mod stacks;
mod state;
mod symbolize;
mod table;
pub mod testing;
mod thread_table;
mod tls;
mod trailer;
mod unwind;

use std::path::PathBuf;

pub use allocator::TracingAllocator;
pub use periodic::{PeriodicBuilder, PeriodicSnapshots};
pub use stacks::MAX_NFRAME;
pub use tracemalloc_format::{Frame, Snapshot, Traceback};
pub use unwind::Unwinder;

/// Why a recorder call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `start` with a traceback limit outside `1..=MAX_NFRAME`.
    #[error("the number of frames must be between 1 and {MAX_NFRAME}, not {0}")]
    InvalidNframe(u32),
    /// A sampling mean of 0 bytes.
    #[error("the sampling mean must be at least 1 byte")]
    InvalidSamplingMean,
    /// `start` while tracing, asking for another sampling mode.
    #[error("cannot change sampling while tracing: call tracemalloc::stop() first")]
    SamplingChange,
    /// [`testing::measure`] while tracing is on: the measurement would
    /// clear the running session's traces.
    #[error(
        "tracing is on already: stop it before measuring (a measurement is a tracing session of its own)"
    )]
    AlreadyTracing,
    /// An operation that needs tracing on (CPython raises `RuntimeError`).
    #[error("the tracemalloc module must be tracing memory allocations to take a snapshot")]
    NotTracing,
    /// The recorder could not allocate memory for its own tables.
    #[error("out of memory for the recorder's tables")]
    OutOfMemory,
    /// An analysis of a snapshot was refused (e.g. a history metric of a
    /// snapshot without history).
    #[error(transparent)]
    Analysis(#[from] tracemalloc_format::AnalysisError),
    /// The snapshot could not be built (a table overflowed).
    #[error(transparent)]
    Build(#[from] tracemalloc_format::BuildError),
    /// The snapshot file could not be written.
    #[error(transparent)]
    File(#[from] tracemalloc_format::Error),
    /// A directory or thread needed for periodic snapshots.
    #[error("{}: {source}", path.display())]
    Io {
        /// What could not be created.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Settings for a tracing session, for what [`start`] does not cover.
///
/// ```no_run
/// tracemalloc::Config::new(16)
///     .keep_internal_frames(true)
///     .start()?;
/// # Ok::<(), tracemalloc::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Config {
    settings: state::Settings,
}

impl Config {
    /// Tracing with `nframe` frames per traceback (after trimming).
    pub fn new(nframe: u32) -> Config {
        Config {
            settings: state::Settings {
                nframe,
                sample_mean: None,
                keep_internal: false,
                unwinder: Unwinder::Auto,
                block_trailers: true,
                history: false,
            },
        }
    }

    /// Samples allocations instead of tracing all of them (see
    /// [`start_sampled`]).
    pub fn sampled(mut self, mean_bytes: u64) -> Config {
        self.settings.sample_mean = Some(mean_bytes);
        self
    }

    /// Keeps the recorder's, the allocator shim's and the standard
    /// library's frames in snapshots (they are trimmed by default).
    pub fn keep_internal_frames(mut self, keep: bool) -> Config {
        self.settings.keep_internal = keep;
        self
    }

    /// Chooses the unwinder (default [`Unwinder::Auto`]).
    pub fn unwinder(mut self, unwinder: Unwinder) -> Config {
        self.settings.unwinder = unwinder;
        self
    }

    /// Gives traced blocks an 8-byte trailer at the end of the memory
    /// glibc gave them, which names the place of their record so that
    /// freeing them takes no search (see docs/BENCHMARKS.md, "Block
    /// trailers"). On by default.
    ///
    /// Only with [`TracingAllocator::system`] on glibc, in exact mode, for
    /// blocks of up to 128 KiB with alignments up to 16, and never under
    /// valgrind; elsewhere this setting does nothing. The block pointer
    /// stays glibc's own, so C code may free, reallocate or measure
    /// (`malloc_usable_size`) a block the program allocated in Rust, as in
    /// the untraced program; a block C frees stays traced (see
    /// [`untrack`]). Blocks whose size is 1 to 8 more than a multiple of
    /// 16 take a glibc chunk 16 bytes larger. Takes effect when tracing
    /// starts, not while it is on.
    pub fn block_trailers(mut self, on: bool) -> Config {
        self.settings.block_trailers = on;
        self
    }

    /// The block headers of earlier versions, which C code freeing a Rust
    /// block made glibc abort, are replaced by trailers: this sets
    /// [`Config::block_trailers`].
    #[deprecated(note = "block headers became block trailers: use `Config::block_trailers`")]
    pub fn block_headers(self, on: bool) -> Config {
        self.block_trailers(on)
    }

    /// Records allocation history (off by default): per traceback, the
    /// blocks and bytes allocated since tracing started (or since
    /// [`clear_traces`]), the blocks freed, the temporary blocks (freed by
    /// the thread that allocated them before it allocated anything else,
    /// heaptrack's definition) and the blocks and bytes live at the peak of
    /// traced memory (DHAT's t-gmax; [`reset_peak`] starts a new one).
    /// Snapshots carry it ([`Snapshot::history`]); `tracemalloc-viewer
    /// stats --metric allocated|temporary|peak` shows it.
    ///
    /// A realloc counts as a free of the old block (never temporary) and an
    /// allocation of the new size under the realloc's traceback. Only the
    /// global allocator's blocks count, not [`track`]ed memory.
    ///
    /// In sampled mode ([`Config::sampled`]) every figure is an unbiased
    /// estimate, scaled as the live statistics are: a sampled block counts
    /// `1 / p` blocks and `size / p` bytes, `p` its chance to be sampled.
    /// Takes effect when
    /// tracing starts, not while it is on. `TRACEMALLOC_HISTORY=1` in the
    /// environment turns it on for `TRACEMALLOC`.
    pub fn history(mut self, on: bool) -> Config {
        self.settings.history = on;
        self
    }

    /// Starts tracing with these settings (see [`start`]).
    pub fn start(self) -> Result<(), Error> {
        state::start(self.settings)
    }
}

/// Starts tracing allocations, storing up to `nframe` frames per traceback
/// (1 to [`MAX_NFRAME`]). When already tracing, changes the limit for new
/// allocations, as CPython does.
pub fn start(nframe: u32) -> Result<(), Error> {
    Config::new(nframe).start()
}

/// Starts tracing a sample of the allocations: Poisson sampling by bytes
/// with a mean of `mean_bytes` between samples, so that a block of `size`
/// bytes is traced with probability `1 - exp(-size / mean_bytes)`.
///
/// Snapshots record the mean ([`Metadata::sampling_rate`]) and their
/// statistics scale each block by the inverse of its probability, so
/// expected sizes and counts are unbiased; [`get_traced_memory`] reports
/// the same estimates. Costs next to nothing for the allocations not
/// sampled.
///
/// Each thread counts down the bytes to its next sample. The calling
/// thread's countdown restarts here; another thread that was alive in an
/// earlier sampled session finishes that session's countdown first (its
/// first sample comes after a distance drawn with the earlier mean), so
/// after restarting with a smaller mean about the earlier mean's worth of
/// its first allocations goes unsampled. Resetting every thread's
/// countdown would cost a check on every allocation.
///
/// [`Metadata::sampling_rate`]: tracemalloc_format::Metadata::sampling_rate
pub fn start_sampled(nframe: u32, mean_bytes: u64) -> Result<(), Error> {
    Config::new(nframe).sampled(mean_bytes).start()
}

/// Stops tracing and forgets every trace (as CPython's `stop()`).
pub fn stop() {
    state::stop()
}

/// Whether allocations are being traced.
pub fn is_tracing() -> bool {
    env::init();
    state::is_tracing()
}

/// The traceback limit: the most frames a traceback keeps.
pub fn get_traceback_limit() -> u32 {
    env::init();
    state::nframe()
}

/// `(current, peak)` size of the traced blocks, in bytes; `(0, 0)` when not
/// tracing. The peak is since the last [`start`], [`clear_traces`] or
/// [`reset_peak`]. In sampled mode both are estimates.
///
/// The current size is exact. The peak is exact while one thread
/// allocates; when several allocate at once it may be off by up to 16 KiB
/// per other thread, whose latest changes (allocations or frees) it has
/// not seen yet.
pub fn get_traced_memory() -> (u64, u64) {
    env::init();
    state::traced_memory()
}

/// Sets the peak to the current traced size.
pub fn reset_peak() {
    env::init();
    state::reset_peak()
}

/// Forgets every trace and the peak, and goes on tracing.
pub fn clear_traces() {
    env::init();
    state::clear_traces()
}

/// Memory the recorder uses for itself, in bytes: its address table and
/// traceback store, and the symbolizer's caches (the sum of
/// [`get_tracemalloc_memory_usage`]'s parts).
pub fn get_tracemalloc_memory() -> u64 {
    env::init();
    state::tracemalloc_memory()
}

/// The recorder's own memory, by part (see [`get_tracemalloc_memory_usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemoryUsage {
    /// The shared address table: sampled blocks, blocks of other domains
    /// (`track`), and the blocks of threads that exited; about 20 to 40
    /// bytes each (a hash map of 16-byte entries, between 7/16 and 7/8
    /// full).
    pub address_table: u64,
    /// The per-thread tables, which hold every other live block: in a
    /// block array, 16 to 23 bytes per block with a trailer (an address and
    /// a record per slot, between 5/7 and all in use while the array
    /// grows; after many frees it keeps its size, unless it has 32,768
    /// slots or more and fewer than one in 8 have held a block over as
    /// many of the thread's frees as it has slots: those blocks then move
    /// to the hash table and the array starts again small), or
    /// in a hash table, 20 to 29 bytes per block (16-byte slots, between
    /// 5/9 and 4/5 in use); at least 12 KiB per thread that allocated
    /// while tracing.
    pub thread_tables: u64,
    /// The 8-byte trailers of the blocks that have one (with
    /// `TracingAllocator::system()` on glibc, in exact mode): 8 bytes per
    /// such block listed in a block array. (A block that moved to a hash
    /// table, from an array that emptied, or to the shared table, when its
    /// thread exited, keeps its trailer but is not counted here.) glibc
    /// rounds chunks to 16 bytes, so a trailer costs 16
    /// bytes for half of the sizes and nothing for the others.
    pub block_trailers: u64,
    /// The interned tracebacks (each distinct raw traceback stored once)
    /// and their index, and with [`Config::history`] their history
    /// counters: 64 bytes per traceback id, in chunks of 4096 and more,
    /// and in each thread that counted a traceback 48 bytes per id, in
    /// pages of 256 ids (a thread's own counters, summed when read).
    pub tracebacks: u64,
    /// The symbolizer, counted since the first snapshot: the resolved
    /// frames of each distinct address, and the debug information the
    /// `backtrace` crate parses and keeps to resolve them.
    pub symbolizer: u64,
}

/// The recorder's own memory, by part: what grows with the live blocks
/// (the address table and the per-thread tables), with the distinct tracebacks,
/// and with symbolization.
pub fn get_tracemalloc_memory_usage() -> MemoryUsage {
    env::init();
    state::memory_usage()
}

/// The traceback of the live traced block that starts at `ptr`, if any
/// (CPython's `get_object_traceback`).
pub fn get_object_traceback<T: ?Sized>(ptr: *const T) -> Option<Traceback> {
    snapshot::object_traceback(ptr.cast::<u8>() as usize)
}

/// A snapshot of every live traced block (CPython's `take_snapshot`).
///
/// The snapshot is consistent: a block allocated or freed concurrently is
/// either in it or not, and its metadata's `traced_current` is
/// [`get_traced_memory`]`().0` at that moment. In exact mode the traces'
/// sizes add up exactly to it. In sampled mode ([`start_sampled`]) the
/// traces keep the real sizes of the sampled blocks, which add up to less,
/// while `traced_current` is the estimate: each block's size divided by
/// its chance to be sampled, rounded to whole bytes per block, which is
/// exactly what the snapshot's statistics sum.
/// The snapshot's own memory is not traced. With [`Config::history`] it
/// also carries the allocation history ([`Snapshot::history`]): a row for
/// every traceback that allocated since tracing started or since the last
/// [`clear_traces`], its blocks all freed or not.
pub fn take_snapshot() -> Result<Snapshot, Error> {
    snapshot::take_snapshot()
}

/// Traces `size` bytes at `ptr` in `domain`, with the caller's traceback,
/// for memory that does not come from the global allocator (memory maps,
/// arenas, GPU buffers). Domain 0 is the heap. A block already traced at
/// the same address and domain is replaced (CPython's
/// `PyTraceMalloc_Track`): in domain 0 that includes a block of the
/// global allocator, whose free then removes the new trace. Finding a
/// heap block that carries a trailer (see [`TracingAllocator`]) takes a
/// scan of those blocks, so `track(0, ..)` costs time in proportion to
/// the live blocks; other domains cost a lookup.
#[inline(never)]
pub fn track(domain: u32, ptr: usize, size: usize) -> Result<(), Error> {
    env::init();
    state::track(domain, ptr, size)
}

/// Forgets the block at `ptr` in `domain` (CPython's
/// `PyTraceMalloc_Untrack`). Nothing happens if it is not traced. In
/// domain 0 this also forgets a block of the global allocator (for
/// instance before handing it to C code that frees it), at the cost
/// `track` describes.
pub fn untrack(domain: u32, ptr: usize) -> Result<(), Error> {
    env::init();
    state::untrack(domain, ptr)
}

/// For tests only: runs `f` as the recorder runs its own work, with this
/// thread's re-entrancy guard set (allocations untraced; frees and
/// reallocs still remove the traces of the program's blocks).
#[doc(hidden)]
pub fn __untraced<R>(f: impl FnOnce() -> R) -> R {
    tls::untraced(f)
}

/// For tests only: sets the counter of tracing sessions, which `stop`,
/// `start` and `clear_traces` advance, to `counter` (made even: not
/// tracing), so that a test can run sessions at the edge of its range.
/// Returns `false`, changing nothing, while tracing.
#[doc(hidden)]
pub fn __set_epoch_counter(counter: u64) -> bool {
    env::init();
    state::set_epoch_counter(counter)
}

/// Writes a snapshot to `path` when the process exits (through `exit` or
/// by returning from `main`), if tracing then. `{pid}` in the path is
/// replaced by the process id. Replaces the path of an earlier call and of
/// `TRACEMALLOC_SNAPSHOT`.
pub fn dump_at_exit(path: impl Into<PathBuf>) {
    env::set_exit_path(path.into())
}
