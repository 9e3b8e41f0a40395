//! The snapshot model: interned strings, frames and tracebacks, and the
//! traces that point at them.
//!
//! A [`Snapshot`] mirrors CPython's `tracemalloc.Snapshot`, but stores every
//! string, frame and traceback once ([`Tables`]) and lets each [`Trace`]
//! refer to its traceback by id. A million traces that share thirty thousand
//! tracebacks therefore cost sixteen bytes each plus the tables, and analysis
//! can work per traceback instead of per trace.

use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// The filename CPython's tracemalloc uses for a frame it knows nothing about.
pub const UNKNOWN_FILENAME: &str = "<unknown>";

/// Index of a string in a snapshot's string table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StringId(pub(crate) u32);

/// Index of a frame in a snapshot's frame table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameId(pub(crate) u32);

/// Index of a traceback in a snapshot's traceback table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TracebackId(pub(crate) u32);

macro_rules! id_index {
    ($($ty:ident),*) => {$(
        impl $ty {
            /// The id as an index into its table.
            #[inline]
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }
    )*};
}
id_index!(StringId, FrameId, TracebackId);

/// One frame of a traceback, owned: what [`Statistic`](crate::Statistic) rows
/// and the public API hand out.
///
/// Cloning is cheap: the strings are reference counted and shared with the
/// snapshot's string table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// Source file, as the producer recorded it (absolute where known).
    pub filename: Arc<str>,
    /// Line number, 0 when unknown.
    pub lineno: u32,
    /// Function name, where the producer knows it (CPython does not record it).
    pub function: Option<Arc<str>>,
}

impl Frame {
    /// A frame without a function name, as CPython records them.
    pub fn new(filename: &str, lineno: u32) -> Frame {
        Frame {
            filename: Arc::from(filename),
            lineno,
            function: None,
        }
    }

    /// Borrowed view of this frame.
    pub fn as_ref(&self) -> FrameRef<'_> {
        FrameRef {
            filename: &self.filename,
            lineno: self.lineno,
            function: self.function.as_deref(),
        }
    }
}

impl fmt::Display for Frame {
    /// `filename:lineno`, as CPython's `Frame.__str__`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

/// A frame borrowed from a snapshot's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameRef<'a> {
    /// Source file.
    pub filename: &'a str,
    /// Line number, 0 when unknown.
    pub lineno: u32,
    /// Function name, where known.
    pub function: Option<&'a str>,
}

impl fmt::Display for FrameRef<'_> {
    /// `filename:lineno`, as CPython's `Frame.__str__`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.filename, self.lineno)
    }
}

/// A traceback, owned: frames most recent first, as tracemalloc records them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Traceback {
    /// Frames, most recent call first. Never empty in a snapshot: a trace
    /// with no frame gets one `<unknown>:0` frame, as in CPython.
    pub frames: Vec<Frame>,
    /// How many frames the stack had before it was truncated to the
    /// traceback limit; `None` where the producer did not record it (CPython
    /// before 3.9, and the group keys of statistics).
    pub total_nframe: Option<u32>,
}

impl Traceback {
    /// The most recent frame, if any.
    pub fn most_recent(&self) -> Option<&Frame> {
        self.frames.first()
    }

    /// The oldest frame, if any.
    pub fn oldest(&self) -> Option<&Frame> {
        self.frames.last()
    }

    /// CPython's ordering of tracebacks: frames compared oldest first, each
    /// by `(filename, lineno)`, a shorter prefix first. Function names and
    /// `total_nframe`, which CPython does not have, only break ties, so the
    /// order is total and deterministic.
    pub fn cmp_cpython(&self, other: &Traceback) -> std::cmp::Ordering {
        let a = self.frames.iter().rev();
        let b = other.frames.iter().rev();
        let by_location = a
            .clone()
            .map(|f| (&*f.filename, f.lineno))
            .cmp(b.clone().map(|f| (&*f.filename, f.lineno)));
        by_location
            .then_with(|| {
                a.map(|f| f.function.as_deref())
                    .cmp(b.map(|f| f.function.as_deref()))
            })
            .then_with(|| self.total_nframe.cmp(&other.total_nframe))
    }

    /// Lines like CPython's `Traceback.format(limit, most_recent_first)`:
    /// `  File "a.py", line 2` per frame (`, in function` appended where the
    /// function is known, as Python's `traceback` module prints it), each
    /// followed by the stripped source line when `source_line` returns one.
    ///
    /// `limit` keeps the `limit` most recent frames when positive; when zero
    /// or negative it slices as CPython's code does (`frames[:limit]`):
    /// nothing for 0, all but the `-limit` most recent frames otherwise
    /// (CPython's documentation says "the abs(limit) oldest frames", which
    /// only agrees for two-frame tracebacks).
    pub fn format(
        &self,
        limit: Option<i64>,
        most_recent_first: bool,
        mut source_line: impl FnMut(&str, u32) -> Option<String>,
    ) -> Vec<String> {
        // CPython works on the oldest-first sequence, so do the same.
        let oldest_first: Vec<&Frame> = self.frames.iter().rev().collect();
        let n = oldest_first.len() as i64;
        let slice: &[&Frame] = match limit {
            Some(limit) if limit > 0 => &oldest_first[(n - limit).max(0) as usize..],
            // Python's `self[:limit]`: nothing for 0, all but the `-limit`
            // most recent frames when negative.
            Some(0) => &[],
            Some(limit) => &oldest_first[..(n + limit).max(0) as usize],
            None => &oldest_first,
        };
        let ordered: Vec<&Frame> = if most_recent_first {
            slice.iter().rev().copied().collect()
        } else {
            slice.to_vec()
        };
        let mut lines = Vec::new();
        for frame in ordered {
            let mut line = format!("  File \"{}\", line {}", frame.filename, frame.lineno);
            // Python's own tracebacks end with `, in function`; CPython's
            // tracemalloc frames have no function, so their lines stay
            // exactly tracemalloc's. Without it, two Rust tracebacks that
            // differ only in a function (several functions at line 0 of
            // one file) would print the same lines.
            if let Some(function) = &frame.function {
                line.push_str(", in ");
                line.push_str(function);
            }
            lines.push(line);
            if let Some(line) = source_line(&frame.filename, frame.lineno) {
                let line = line.trim();
                if !line.is_empty() {
                    lines.push(format!("    {line}"));
                }
            }
        }
        lines
    }
}

impl fmt::Display for Traceback {
    /// The oldest frame, exactly as CPython's `Traceback.__str__` (which
    /// prints `self[0]` of its oldest-first sequence).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.oldest() {
            Some(frame) => frame.fmt(f),
            None => Ok(()),
        }
    }
}

/// One live memory block: where it lives (domain), how big it is, and the
/// traceback that allocated it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Trace {
    /// Address space: 0 is the heap; other domains are memory tracked by
    /// hand (`PyTraceMalloc_Track`, `tracemalloc::track`).
    pub domain: u32,
    /// Size of the block in bytes.
    pub size: u64,
    /// The allocating traceback, in the snapshot's traceback table.
    pub traceback: TracebackId,
}

/// What the blocks of one traceback (in one domain) did between the start
/// of tracing (or the last `clear_traces()`) and the snapshot: how many were
/// allocated and freed, how many were temporary, and how many were live at
/// the peak.
///
/// The recorder fills it; CPython's pickles have nothing like it, so a
/// snapshot read from one has no [`History`] at all rather than rows of
/// zeros. For sampled recordings every field is an unbiased estimate,
/// scaled as the live statistics are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HistoryRow {
    /// Address space, as in [`Trace::domain`].
    pub domain: u32,
    /// The allocating traceback, in the snapshot's traceback table.
    pub traceback: TracebackId,
    /// Blocks allocated.
    pub allocated_blocks: u64,
    /// Bytes allocated, every block counted at the size it was allocated
    /// with.
    pub allocated_bytes: u64,
    /// Blocks freed.
    pub freed_blocks: u64,
    /// Temporary blocks: freed by the thread that allocated them with no
    /// other allocation by that thread in between (heaptrack's definition).
    pub temporary_blocks: u64,
    /// Bytes of the temporary blocks.
    pub temporary_bytes: u64,
    /// Blocks live at the moment of the peak (DHAT's t-gmax).
    pub peak_blocks: u64,
    /// Bytes live at the moment of the peak.
    pub peak_bytes: u64,
}

impl HistoryRow {
    /// The counters in column order: allocated blocks and bytes, freed
    /// blocks, temporary blocks and bytes, peak blocks and bytes.
    pub fn counters(&self) -> [u64; 7] {
        [
            self.allocated_blocks,
            self.allocated_bytes,
            self.freed_blocks,
            self.temporary_blocks,
            self.temporary_bytes,
            self.peak_blocks,
            self.peak_bytes,
        ]
    }

    /// A row with every counter zero.
    pub fn new(domain: u32, traceback: TracebackId) -> HistoryRow {
        HistoryRow {
            domain,
            traceback,
            allocated_blocks: 0,
            allocated_bytes: 0,
            freed_blocks: 0,
            temporary_blocks: 0,
            temporary_bytes: 0,
            peak_blocks: 0,
            peak_bytes: 0,
        }
    }
}

/// A snapshot's allocation history: a [`HistoryRow`] per traceback that
/// allocated anything since tracing started, live or freed, and when the
/// peak was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// One row per (domain, traceback), in the order the producer wrote
    /// them.
    pub(crate) rows: Vec<HistoryRow>,
    /// When the traced memory reached the peak that the rows' peak columns
    /// describe, where the producer recorded it.
    pub peak_timestamp: Option<Timestamp>,
}

impl History {
    /// The rows, in the order the producer wrote them.
    pub fn rows(&self) -> &[HistoryRow] {
        &self.rows
    }

    /// Every column's sum, in one row whose domain and traceback mean
    /// nothing.
    pub fn total(&self) -> HistoryRow {
        let mut total = HistoryRow::new(0, TracebackId(0));
        for row in &self.rows {
            // The builder keeps every column's sum under 2^63, so these
            // additions cannot overflow.
            total.allocated_blocks += row.allocated_blocks;
            total.allocated_bytes += row.allocated_bytes;
            total.freed_blocks += row.freed_blocks;
            total.temporary_blocks += row.temporary_blocks;
            total.temporary_bytes += row.temporary_bytes;
            total.peak_blocks += row.peak_blocks;
            total.peak_bytes += row.peak_bytes;
        }
        total
    }
}

/// A point in time, in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    /// Microseconds since 1970-01-01T00:00:00Z.
    pub unix_micros: i64,
}

impl Timestamp {
    /// The current time of the system clock.
    pub fn now() -> Timestamp {
        let micros = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Timestamp {
            unix_micros: micros,
        }
    }

    /// From a `SystemTime`, e.g. a file's modification time.
    pub fn from_system_time(time: std::time::SystemTime) -> Timestamp {
        let micros = match time.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Timestamp {
            unix_micros: micros,
        }
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds: `2026-11-23T19:41:00.123456Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.unix_micros.div_euclid(1_000_000);
        let micros = self.unix_micros.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60
        )
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month,
/// day). Howard Hinnant's `civil_from_days`, which is exact for every i64
/// day count that fits a year in i64.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// What is known about where and when a snapshot was taken. Every field is
/// optional because CPython's pickles carry none of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The `.tmsnap` format version the snapshot was read from, or the
    /// current version for a snapshot made in memory; `None` for CPython
    /// pickles.
    pub format_version: Option<u32>,
    /// What wrote it, e.g. `tracemalloc-rs 0.1.0` or `CPython 3.9+ tracemalloc`.
    pub producer: Option<String>,
    /// Process id of the traced program.
    pub pid: Option<u32>,
    /// Command line of the traced program, program name first.
    pub command_line: Option<Vec<String>>,
    /// When the snapshot was taken.
    pub timestamp: Option<Timestamp>,
    /// Traced memory (bytes) at snapshot time: `get_traced_memory()[0]`.
    pub traced_current: Option<u64>,
    /// Peak traced memory (bytes) at snapshot time: `get_traced_memory()[1]`.
    pub traced_peak: Option<u64>,
    /// Memory the recorder itself used (bytes): `get_tracemalloc_memory()`.
    pub tracemalloc_memory: Option<u64>,
    /// Mean bytes between samples when the recorder sampled allocations.
    /// Trace sizes are then the sampled blocks' real sizes, and statistics
    /// scale each block by `1 / (1 - exp(-size / rate))` so that expected
    /// sizes and counts are unbiased.
    pub sampling_rate: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FrameRecord {
    pub(crate) filename: StringId,
    pub(crate) lineno: u32,
    pub(crate) function: Option<StringId>,
}

/// The interned tables of a snapshot. Shared (behind an `Arc`) between a
/// snapshot and every snapshot filtered from it.
#[derive(Debug, Default)]
pub struct Tables {
    pub(crate) strings: Vec<Arc<str>>,
    pub(crate) frames: Vec<FrameRecord>,
    /// `tb_offsets[i]..tb_offsets[i + 1]` is traceback `i`'s range in
    /// `tb_frames`; one more entry than there are tracebacks.
    pub(crate) tb_offsets: Vec<u32>,
    pub(crate) tb_frames: Vec<FrameId>,
    pub(crate) tb_total_nframe: Vec<Option<u32>>,
}

impl Tables {
    /// Number of distinct strings.
    pub fn string_count(&self) -> usize {
        self.strings.len()
    }

    /// Number of distinct frames.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// Number of distinct tracebacks.
    pub fn traceback_count(&self) -> usize {
        self.tb_total_nframe.len()
    }

    /// A string of the table.
    ///
    /// # Panics
    /// If `id` does not come from this snapshot.
    pub fn string(&self, id: StringId) -> &str {
        &self.strings[id.index()]
    }

    /// The shared string, for owned frames.
    pub(crate) fn arc_string(&self, id: StringId) -> Arc<str> {
        Arc::clone(&self.strings[id.index()])
    }

    /// A frame of the table.
    ///
    /// # Panics
    /// If `id` does not come from this snapshot.
    pub fn frame(&self, id: FrameId) -> FrameRef<'_> {
        let rec = self.frames[id.index()];
        FrameRef {
            filename: self.string(rec.filename),
            lineno: rec.lineno,
            function: rec.function.map(|f| self.string(f)),
        }
    }

    /// An owned copy of a frame (cheap: the strings are shared).
    pub fn owned_frame(&self, id: FrameId) -> Frame {
        let rec = self.frames[id.index()];
        Frame {
            filename: self.arc_string(rec.filename),
            lineno: rec.lineno,
            function: rec.function.map(|f| self.arc_string(f)),
        }
    }

    pub(crate) fn frame_record(&self, id: FrameId) -> FrameRecord {
        self.frames[id.index()]
    }

    /// The frame ids of a traceback, most recent first.
    ///
    /// # Panics
    /// If `id` does not come from this snapshot.
    pub fn traceback_frames(&self, id: TracebackId) -> &[FrameId] {
        let start = self.tb_offsets[id.index()] as usize;
        let end = self.tb_offsets[id.index() + 1] as usize;
        &self.tb_frames[start..end]
    }

    /// The frame count before truncation, where recorded.
    pub fn traceback_total_nframe(&self, id: TracebackId) -> Option<u32> {
        self.tb_total_nframe[id.index()]
    }

    /// An owned copy of a traceback.
    pub fn owned_traceback(&self, id: TracebackId) -> Traceback {
        Traceback {
            frames: self
                .traceback_frames(id)
                .iter()
                .map(|&f| self.owned_frame(f))
                .collect(),
            total_nframe: self.traceback_total_nframe(id),
        }
    }

    /// Every string id, in table order.
    pub fn string_ids(&self) -> impl ExactSizeIterator<Item = StringId> + use<> {
        (0..self.strings.len() as u32).map(StringId)
    }

    /// Every frame id, in table order.
    pub fn frame_ids(&self) -> impl ExactSizeIterator<Item = FrameId> + use<> {
        (0..self.frames.len() as u32).map(FrameId)
    }

    /// Every traceback id, in table order.
    pub fn traceback_ids(&self) -> impl ExactSizeIterator<Item = TracebackId> + use<> {
        (0..self.tb_total_nframe.len() as u32).map(TracebackId)
    }

    /// Bytes the tables take in memory (approximately: heap blocks are
    /// counted at their requested size).
    pub fn heap_size(&self) -> usize {
        let strings: usize = self
            .strings
            .iter()
            .map(|s| s.len() + 2 * size_of::<usize>())
            .sum();
        strings
            + self.strings.capacity() * size_of::<Arc<str>>()
            + self.frames.capacity() * size_of::<FrameRecord>()
            + self.tb_offsets.capacity() * size_of::<u32>()
            + self.tb_frames.capacity() * size_of::<FrameId>()
            + self.tb_total_nframe.capacity() * size_of::<Option<u32>>()
    }
}

/// A snapshot of live memory blocks, as CPython's `tracemalloc.Snapshot`.
///
/// The tables are shared: [`Snapshot::filter_traces`] returns a snapshot
/// that points at the same tables and owns only its list of traces.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub(crate) tables: Arc<Tables>,
    pub(crate) traces: Vec<Trace>,
    pub(crate) traceback_limit: u32,
    pub(crate) metadata: Metadata,
    /// `None` where the producer recorded no allocation history (CPython's
    /// pickles, version 1 files, recorders with history off).
    pub(crate) history: Option<History>,
}

impl Snapshot {
    /// The traces (live blocks), in the order the producer wrote them.
    pub fn traces(&self) -> &[Trace] {
        &self.traces
    }

    /// Maximum number of frames stored per traceback when recording.
    pub fn traceback_limit(&self) -> u32 {
        self.traceback_limit
    }

    /// What is known about the snapshot.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The allocation history, where the producer recorded one.
    pub fn history(&self) -> Option<&History> {
        self.history.as_ref()
    }

    /// Mutable metadata, e.g. to stamp a timestamp before writing.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The interned strings, frames and tracebacks.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// The shared tables, to build a snapshot over the same tables.
    pub fn shared_tables(&self) -> &Arc<Tables> {
        &self.tables
    }

    /// An owned copy of a trace's traceback.
    pub fn traceback(&self, id: TracebackId) -> Traceback {
        self.tables.owned_traceback(id)
    }

    /// Sum of the sizes of all traces, in bytes (the real sizes, not the
    /// sampling estimates).
    pub fn total_size(&self) -> u64 {
        self.traces.iter().map(|t| t.size).sum()
    }

    /// A snapshot with the same tables, limit and metadata but other traces
    /// and history rows. Every trace and row must refer to a traceback of
    /// these tables; `history_rows` must be `None` exactly when this
    /// snapshot has no history.
    pub(crate) fn with_traces(
        &self,
        traces: Vec<Trace>,
        history_rows: Option<Vec<HistoryRow>>,
    ) -> Snapshot {
        debug_assert_eq!(history_rows.is_some(), self.history.is_some());
        Snapshot {
            tables: Arc::clone(&self.tables),
            traces,
            traceback_limit: self.traceback_limit,
            metadata: self.metadata.clone(),
            history: self
                .history
                .as_ref()
                .zip(history_rows)
                .map(|(h, rows)| History {
                    rows,
                    peak_timestamp: h.peak_timestamp,
                }),
        }
    }
}

/// Builds a [`Snapshot`], interning every string, frame and traceback so
/// that none is stored twice.
///
/// Readers, the recorder and tests all build snapshots through this type, so
/// the interning invariant holds for every snapshot.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    tables: Tables,
    string_index: FxHashMap<Arc<str>, StringId>,
    frame_index: FxHashMap<FrameRecord, FrameId>,
    /// Key: the traceback's frame ids followed by its encoded total_nframe
    /// (0 for none, n + 1 for n), so that lookups need no allocation.
    traceback_index: FxHashMap<Box<[u32]>, TracebackId>,
    key_scratch: Vec<u32>,
    traces: Vec<Trace>,
    traceback_limit: u32,
    unknown_frame: Option<FrameId>,
    total_size: u64,
    history: Option<History>,
    /// Each history column's sum so far, checked as `total_size` is.
    history_sums: [u64; 7],
}

/// Why a snapshot could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A table grew past what a 32-bit id can address.
    #[error("too many distinct {0} for one snapshot (at most 4294967294)")]
    TableFull(&'static str),
    /// The traces add up to more than 2^63 - 1 bytes, which no real process
    /// has; refusing it keeps every sum and difference exact.
    #[error("the traces add up to more than 2^63 - 1 bytes")]
    TotalTooLarge,
    /// A column of the allocation history adds up to more than 2^63 - 1.
    #[error("a column of the allocation history adds up to more than 2^63 - 1")]
    HistoryTooLarge,
}

impl SnapshotBuilder {
    /// A builder for a snapshot recorded with this traceback limit.
    pub fn new(traceback_limit: u32) -> SnapshotBuilder {
        let mut builder = SnapshotBuilder::default();
        builder.tables.tb_offsets.push(0);
        builder.traceback_limit = traceback_limit;
        builder
    }

    /// Changes the traceback limit (some readers learn it last).
    pub fn set_traceback_limit(&mut self, traceback_limit: u32) {
        self.traceback_limit = traceback_limit;
    }

    /// Reserves room for `additional` more traces.
    pub fn reserve_traces(&mut self, additional: usize) {
        self.traces.reserve(additional);
    }

    /// The interned strings, frames and tracebacks so far.
    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Interns a string.
    pub fn intern_str(&mut self, s: &str) -> Result<StringId, BuildError> {
        if let Some(&id) = self.string_index.get(s) {
            return Ok(id);
        }
        let id = StringId(next_id(self.tables.strings.len(), "strings")?);
        let shared: Arc<str> = Arc::from(s);
        self.tables.strings.push(Arc::clone(&shared));
        self.string_index.insert(shared, id);
        Ok(id)
    }

    /// Interns a frame whose strings are already interned.
    ///
    /// # Panics
    /// If a string id does not come from this builder.
    pub fn intern_frame_ids(
        &mut self,
        filename: StringId,
        lineno: u32,
        function: Option<StringId>,
    ) -> Result<FrameId, BuildError> {
        assert!(filename.index() < self.tables.strings.len());
        if let Some(f) = function {
            assert!(f.index() < self.tables.strings.len());
        }
        let rec = FrameRecord {
            filename,
            lineno,
            function,
        };
        if let Some(&id) = self.frame_index.get(&rec) {
            return Ok(id);
        }
        let id = FrameId(next_id(self.tables.frames.len(), "frames")?);
        self.tables.frames.push(rec);
        self.frame_index.insert(rec, id);
        Ok(id)
    }

    /// Interns a frame.
    pub fn intern_frame(
        &mut self,
        filename: &str,
        lineno: u32,
        function: Option<&str>,
    ) -> Result<FrameId, BuildError> {
        let filename = self.intern_str(filename)?;
        let function = function.map(|f| self.intern_str(f)).transpose()?;
        self.intern_frame_ids(filename, lineno, function)
    }

    /// Interns a traceback given its frames, most recent first.
    ///
    /// An empty traceback becomes the single frame `<unknown>:0`, as CPython
    /// records a block allocated with no Python frame, so analysis can rely
    /// on every traceback having a most recent frame.
    ///
    /// # Panics
    /// If a frame id does not come from this builder.
    pub fn intern_traceback(
        &mut self,
        frames: &[FrameId],
        total_nframe: Option<u32>,
    ) -> Result<TracebackId, BuildError> {
        let unknown;
        let frames = if frames.is_empty() {
            unknown = [self.unknown_frame()?];
            &unknown[..]
        } else {
            frames
        };
        self.key_scratch.clear();
        for f in frames {
            assert!(f.index() < self.tables.frames.len());
            self.key_scratch.push(f.0);
        }
        self.key_scratch
            .push(total_nframe.map_or(0, |n| n.saturating_add(1)));
        if let Some(&id) = self.traceback_index.get(&self.key_scratch[..]) {
            return Ok(id);
        }
        let id = TracebackId(next_id(self.tables.tb_total_nframe.len(), "tracebacks")?);
        let end = self.tables.tb_frames.len() + frames.len();
        let end = u32::try_from(end).map_err(|_| BuildError::TableFull("traceback frames"))?;
        self.tables.tb_frames.extend_from_slice(frames);
        self.tables.tb_offsets.push(end);
        self.tables.tb_total_nframe.push(total_nframe);
        self.traceback_index
            .insert(self.key_scratch.clone().into_boxed_slice(), id);
        Ok(id)
    }

    fn unknown_frame(&mut self) -> Result<FrameId, BuildError> {
        if let Some(id) = self.unknown_frame {
            return Ok(id);
        }
        let id = self.intern_frame(UNKNOWN_FILENAME, 0, None)?;
        self.unknown_frame = Some(id);
        Ok(id)
    }

    /// Adds a trace.
    ///
    /// # Panics
    /// If the traceback id does not come from this builder.
    pub fn push_trace(
        &mut self,
        domain: u32,
        size: u64,
        traceback: TracebackId,
    ) -> Result<(), BuildError> {
        assert!(traceback.index() < self.tables.tb_total_nframe.len());
        self.total_size = self
            .total_size
            .checked_add(size)
            .filter(|&total| total <= i64::MAX as u64)
            .ok_or(BuildError::TotalTooLarge)?;
        self.traces.push(Trace {
            domain,
            size,
            traceback,
        });
        Ok(())
    }

    /// Adds many traces at once, checking each as
    /// [`push_trace`](Self::push_trace) does. When the builder holds no
    /// trace yet it keeps the vector itself, so a reader that collects its
    /// traces first (the pickle reader, a million of them) does not copy
    /// them. On error no trace is added.
    ///
    /// # Panics
    /// If a traceback id does not come from this builder.
    pub fn extend_traces(&mut self, traces: Vec<Trace>) -> Result<(), BuildError> {
        let traceback_count = self.tables.tb_total_nframe.len();
        let mut total = self.total_size;
        for trace in &traces {
            assert!(trace.traceback.index() < traceback_count);
            total = total
                .checked_add(trace.size)
                .filter(|&total| total <= i64::MAX as u64)
                .ok_or(BuildError::TotalTooLarge)?;
        }
        self.total_size = total;
        if self.traces.is_empty() {
            self.traces = traces;
        } else {
            self.traces.extend_from_slice(&traces);
        }
        Ok(())
    }

    /// Declares that the producer recorded an allocation history, so that
    /// the snapshot has one even if no row is added (nothing was
    /// allocated), and sets when its peak was.
    pub fn set_history(&mut self, peak_timestamp: Option<Timestamp>) {
        self.history
            .get_or_insert_with(History::default)
            .peak_timestamp = peak_timestamp;
    }

    /// Adds a row of allocation history (and declares that the snapshot has
    /// a history, as [`set_history`](Self::set_history) does).
    ///
    /// # Panics
    /// If the traceback id does not come from this builder.
    ///
    /// Each column of the history adds up to at most 2^63 - 1, as the
    /// traces' sizes do, so that every sum and difference of the analysis is
    /// exact; a row that would break that is refused.
    pub fn push_history(&mut self, row: HistoryRow) -> Result<(), BuildError> {
        assert!(row.traceback.index() < self.tables.tb_total_nframe.len());
        let mut sums = self.history_sums;
        for (sum, value) in sums.iter_mut().zip(row.counters()) {
            *sum = sum
                .checked_add(value)
                .filter(|&s| s <= i64::MAX as u64)
                .ok_or(BuildError::HistoryTooLarge)?;
        }
        self.history_sums = sums;
        self.history
            .get_or_insert_with(History::default)
            .rows
            .push(row);
        Ok(())
    }

    /// Number of traces added so far.
    pub fn trace_count(&self) -> usize {
        self.traces.len()
    }

    /// The finished snapshot.
    pub fn finish(mut self, metadata: Metadata) -> Snapshot {
        // The indexes are only needed while building; the tables are kept
        // exactly sized because snapshots can be large and long-lived.
        self.tables.strings.shrink_to_fit();
        self.tables.frames.shrink_to_fit();
        self.tables.tb_offsets.shrink_to_fit();
        self.tables.tb_frames.shrink_to_fit();
        self.tables.tb_total_nframe.shrink_to_fit();
        Snapshot {
            tables: Arc::new(self.tables),
            traces: self.traces,
            traceback_limit: self.traceback_limit,
            metadata,
            history: self.history.map(|mut h| {
                h.rows.shrink_to_fit();
                h
            }),
        }
    }
}

impl Snapshot {
    /// Builds a snapshot from CPython-style raw traces, as
    /// `tracemalloc.Snapshot(traces, traceback_limit)` does: each trace is
    /// `(domain, size, frames most recent first, total_nframe)`.
    pub fn from_raw_traces<'a>(
        traceback_limit: u32,
        traces: impl IntoIterator<Item = (u32, u64, &'a [(&'a str, u32)], Option<u32>)>,
    ) -> Result<Snapshot, BuildError> {
        let mut builder = SnapshotBuilder::new(traceback_limit);
        let mut frames = Vec::new();
        for (domain, size, raw_frames, total_nframe) in traces {
            frames.clear();
            for &(filename, lineno) in raw_frames {
                frames.push(builder.intern_frame(filename, lineno, None)?);
            }
            let tb = builder.intern_traceback(&frames, total_nframe)?;
            builder.push_trace(domain, size, tb)?;
        }
        Ok(builder.finish(Metadata::default()))
    }
}

/// The id of the next entry of a table of `len` entries. `u32::MAX` is
/// kept free so that analysis can use it as a "none" marker.
fn next_id(len: usize, what: &'static str) -> Result<u32, BuildError> {
    match u32::try_from(len) {
        Ok(id) if id < u32::MAX => Ok(id),
        _ => Err(BuildError::TableFull(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_stores_each_string_frame_and_traceback_once() {
        let mut b = SnapshotBuilder::new(5);
        let f1 = b.intern_frame("a.py", 2, None).unwrap();
        let f2 = b.intern_frame("a.py", 2, None).unwrap();
        let f3 = b.intern_frame("a.py", 3, Some("a.py")).unwrap();
        assert_eq!(f1, f2);
        assert_ne!(f1, f3);
        let t1 = b.intern_traceback(&[f1, f3], Some(4)).unwrap();
        let t2 = b.intern_traceback(&[f1, f3], Some(4)).unwrap();
        let t3 = b.intern_traceback(&[f1, f3], None).unwrap();
        assert_eq!(t1, t2);
        assert_ne!(t1, t3);
        b.push_trace(0, 10, t1).unwrap();
        b.push_trace(0, 10, t2).unwrap();
        let snap = b.finish(Metadata::default());
        // "a.py" is both a filename and a function name: stored once.
        assert_eq!(snap.tables().string_count(), 1);
        assert_eq!(snap.tables().frame_count(), 2);
        assert_eq!(snap.tables().traceback_count(), 2);
        assert_eq!(snap.traces().len(), 2);
        let tb = snap.traceback(t1);
        assert_eq!(tb.frames[0], Frame::new("a.py", 2));
        assert_eq!(tb.frames[1].function.as_deref(), Some("a.py"));
        assert_eq!(tb.total_nframe, Some(4));
    }

    #[test]
    fn totals_past_i64_max_are_refused() {
        let mut b = SnapshotBuilder::new(1);
        let t = b.intern_traceback(&[], None).unwrap();
        b.push_trace(0, i64::MAX as u64, t).unwrap();
        assert_eq!(b.push_trace(0, 1, t), Err(BuildError::TotalTooLarge));
        assert_eq!(b.trace_count(), 1);
    }

    #[test]
    fn extend_traces_checks_like_push_trace() {
        let mut b = SnapshotBuilder::new(1);
        let t = b.intern_traceback(&[], None).unwrap();
        let trace = |size| Trace {
            domain: 0,
            size,
            traceback: t,
        };
        b.extend_traces(vec![trace(1), trace(2)]).unwrap();
        b.push_trace(0, 3, t).unwrap();
        b.extend_traces(vec![trace(4)]).unwrap();
        assert_eq!(
            b.extend_traces(vec![trace(5), trace(i64::MAX as u64)]),
            Err(BuildError::TotalTooLarge)
        );
        let snap = b.finish(Metadata::default());
        let sizes: Vec<u64> = snap.traces().iter().map(|t| t.size).collect();
        assert_eq!(sizes, vec![1, 2, 3, 4], "the failed call added nothing");
    }

    #[test]
    fn empty_traceback_becomes_unknown_frame() {
        let mut b = SnapshotBuilder::new(1);
        let t = b.intern_traceback(&[], Some(0)).unwrap();
        let snap = b.finish(Metadata::default());
        let tb = snap.traceback(t);
        assert_eq!(tb.frames, vec![Frame::new("<unknown>", 0)]);
    }

    #[test]
    fn traceback_display_is_the_oldest_frame_like_cpython() {
        // CPython: str(Traceback((("new.py", 5), ("old.py", 1)))) == "old.py:1"
        let tb = Traceback {
            frames: vec![Frame::new("new.py", 5), Frame::new("old.py", 1)],
            total_nframe: None,
        };
        assert_eq!(tb.to_string(), "old.py:1");
    }

    #[test]
    fn traceback_format_matches_cpython_slicing() {
        // Frames most recent first: c (newest), b, a (oldest).
        let tb = Traceback {
            frames: vec![
                Frame::new("c.py", 3),
                Frame::new("b.py", 2),
                Frame::new("a.py", 1),
            ],
            total_nframe: None,
        };
        let none = |_: &str, _: u32| None;
        let file = |f: &str| format!("  File \"{f}\", line {}", f.as_bytes()[0] - b'a' + 1);
        assert_eq!(
            tb.format(None, false, none),
            vec![file("a.py"), file("b.py"), file("c.py")]
        );
        assert_eq!(
            tb.format(Some(2), false, none),
            vec![file("b.py"), file("c.py")]
        );
        // Checked against CPython 3.11: format(limit=-2) and limit=0.
        assert_eq!(tb.format(Some(-2), false, none), vec![file("a.py")]);
        assert_eq!(
            tb.format(Some(-1), false, none),
            vec![file("a.py"), file("b.py")]
        );
        assert_eq!(tb.format(Some(-5), false, none), Vec::<String>::new());
        assert_eq!(tb.format(Some(0), false, none), Vec::<String>::new());
        assert_eq!(
            tb.format(Some(2), true, none),
            vec![file("c.py"), file("b.py")]
        );
        let src = |_: &str, n: u32| Some(format!("  line_{n}  "));
        assert_eq!(
            tb.format(Some(1), false, src),
            vec![file("c.py"), "    line_3".to_string()]
        );
    }

    /// Rust frames name their function, so two tracebacks whose only
    /// difference is an older frame's function (both at line 0 of one
    /// file, as symbolizers give for code without line tables) print
    /// different lines.
    #[test]
    fn traceback_format_names_known_functions() {
        let traceback = |outer: &str| Traceback {
            frames: vec![
                Frame {
                    function: Some(Arc::from("app::leaf")),
                    ..Frame::new("src/leaf.rs", 7)
                },
                Frame {
                    function: Some(Arc::from(outer)),
                    ..Frame::new("src/lib.rs", 0)
                },
            ],
            total_nframe: None,
        };
        let none = |_: &str, _: u32| None;
        let a = traceback("app::first");
        let b = traceback("app::second");
        assert_eq!(
            a.format(None, false, none),
            vec![
                "  File \"src/lib.rs\", line 0, in app::first".to_string(),
                "  File \"src/leaf.rs\", line 7, in app::leaf".to_string(),
            ]
        );
        assert_ne!(a.format(None, false, none), b.format(None, false, none));
    }

    #[test]
    fn timestamp_formats_rfc3339_utc() {
        let t = Timestamp {
            unix_micros: 1_795_462_860_123_456,
        };
        assert_eq!(t.to_string(), "2026-11-23T19:41:00.123456Z");
        let epoch = Timestamp { unix_micros: 0 };
        assert_eq!(epoch.to_string(), "1970-01-01T00:00:00.000000Z");
        let before = Timestamp { unix_micros: -1 };
        assert_eq!(before.to_string(), "1969-12-31T23:59:59.999999Z");
        let leap = Timestamp {
            unix_micros: 951_782_400_000_000,
        };
        assert_eq!(leap.to_string(), "2000-02-29T00:00:00.000000Z");
    }
}
