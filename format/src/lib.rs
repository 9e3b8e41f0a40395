//! # tracemalloc-format
//!
//! The data half of tracemalloc-rs: the snapshot model shared by the
//! recorder and the viewer, the `.tmsnap` file format, a reader for CPython
//! `tracemalloc` snapshot pickles, and every analysis the viewer and the CLI
//! show (filters, grouping, comparison, size formatting), with CPython's
//! semantics.
//!
//! ```
//! use tracemalloc_format::{Filter, KeyType, Snapshot};
//!
//! let snapshot = Snapshot::from_raw_traces(
//!     1,
//!     [(0, 30, &[("a.py", 2)][..], None), (0, 66, &[("b.py", 1)][..], None)],
//! )?;
//! let only_a = snapshot.filter_traces(&[Filter::new(true, "a.*").into()]);
//! let top = only_a.statistics(KeyType::Lineno, false)?;
//! assert_eq!(top[0].to_string(), "a.py:2: size=30 B, count=1, average=30 B");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! This crate is pure data code: it has no UI, unwinding or symbolization
//! dependency (see docs/ARCHITECTURE.md).

pub mod annotate;
pub mod dhat;
mod error;
pub mod export;
mod filter;
pub mod flame;
pub mod fnmatch;
mod io;
mod model;
pub mod pickle;
pub mod pipeline;
pub mod pprof;
pub mod rows;
mod size;
mod stats;
pub mod timeline;
pub mod tmsnap;
pub mod trim;

pub use error::{Error, ErrorKind};
pub use filter::{DomainFilter, Filter, TraceFilter};
pub use io::{LoadOptions, SnapshotKind, detect_kind, write_atomically};
pub use model::{
    BuildError, Frame, FrameId, FrameRef, History, HistoryRow, Metadata, Snapshot, SnapshotBuilder,
    StringId, Tables, Timestamp, Trace, Traceback, TracebackId, UNKNOWN_FILENAME,
};
pub use size::{format_bytes, format_bytes_diff, format_size};
pub use stats::{
    AnalysisError, KeyType, Metric, SAMPLED_BLOCK_UNIT, Statistic, StatisticDiff, Totals,
    blocks_of_units, sampled_amount,
};
