//! pprof export: a snapshot as a heap profile in Google's `profile.proto`
//! format, the format of Go's heap profiles, read by `go tool pprof`,
//! Grafana Pyroscope, Parca, Polar Signals and speedscope.
//!
//! The profile has one sample per traceback (and domain): its frames as
//! locations, most recent first, and the values of [`SampleType`]
//! (`inuse_objects` in blocks, `inuse_space` in bytes, as Go names them;
//! `alloc_objects` and `alloc_space` too when the snapshot has an
//! allocation history).
//! Every frame of the snapshot's frame table that a sample uses becomes one
//! [`proto::Location`] with one [`proto::Line`]; each distinct
//! (function, file) becomes one [`proto::Function`]. A frame without a
//! function name (CPython records none) is named `file:line`, as the folded
//! stacks name it (`crate::export::folded_frame_name`).
//!
//! Sampled snapshots are scaled as the statistics scale them: each block
//! counts `1 / P(sampled)` times, so the profile holds the same unbiased
//! estimates as `tracemalloc-viewer stats` (see [`SampleType`] for the
//! rounding). The timestamp becomes `time_nanos`; the producer, command
//! line, process id, traced memory, sampling rate and traceback limit
//! become comments (`go tool pprof -comments`).
//!
//! The messages are declared in Rust with `prost`'s derive (no `protoc` at
//! build time) and gzipped with `flate2`, as pprof files usually are
//! (docs/ARCHITECTURE.md says why these crates).
//!
//! ```
//! use tracemalloc_format::Snapshot;
//! use tracemalloc_format::pprof;
//!
//! let s = Snapshot::from_raw_traces(5, [(0, 64, &[("leak.py", 9), ("main.py", 1)][..], None)])?;
//! let profile = pprof::profile(&s);
//! assert_eq!(profile.string_table[0], "");
//! assert_eq!(profile.sample[0].value, vec![1, 64]); // inuse_objects, inuse_space
//! assert_eq!(profile.sample[0].location_id.len(), 2); // leak.py:9, then main.py:1
//! let gzipped: Vec<u8> = pprof::to_bytes(&s, pprof::Encoding::Gzip)?;
//! assert_eq!(gzipped[..2], [0x1f, 0x8b]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Write};
use std::path::Path;

use prost::Message;
use rustc_hash::FxHashMap;

use crate::error::{Error, ErrorKind};
use crate::io::write_atomically;
use crate::model::{FrameId, Snapshot, StringId, TracebackId};

/// The messages of `profile.proto`
/// (<https://github.com/google/pprof/blob/main/proto/profile.proto>), the
/// fields this crate writes, with the same numbers. Every `int64` that
/// names a string is an index into [`Profile::string_table`].
pub mod proto {
    /// A whole profile.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        /// What each value of a sample measures, in order.
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        /// The samples: a stack and its values.
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        /// Binary mappings (none: frames are already symbolized).
        #[prost(message, repeated, tag = "3")]
        pub mapping: Vec<Mapping>,
        /// The locations the samples refer to by id.
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        /// The functions the lines refer to by id.
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        /// Every string, each once; index 0 is always "".
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        /// A regular expression of frames to drop (string index, 0: none).
        #[prost(int64, tag = "7")]
        pub drop_frames: i64,
        /// A regular expression of frames to keep (string index, 0: all).
        #[prost(int64, tag = "8")]
        pub keep_frames: i64,
        /// When the profile was taken, in nanoseconds since the Unix epoch.
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        /// How long the profile covers, in nanoseconds (0: an instant).
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        /// What the sampling period counts.
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        /// The sampling period, in `period_type` units.
        #[prost(int64, tag = "12")]
        pub period: i64,
        /// Free-form comments (string indices).
        #[prost(int64, repeated, tag = "13")]
        pub comment: Vec<i64>,
        /// The sample type shown by default (string index of its type).
        #[prost(int64, tag = "14")]
        pub default_sample_type: i64,
    }

    /// A kind of value and its unit (string indices).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        /// The name, e.g. `inuse_space`.
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        /// The unit, e.g. `bytes`.
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    /// One stack and its values.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Location ids, the leaf (most recent call) first.
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        /// One value per [`Profile::sample_type`].
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        /// Extra labels, e.g. the domain.
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    /// A label of a sample: a string or a number under a key.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// The key (string index).
        #[prost(int64, tag = "1")]
        pub key: i64,
        /// A string value (string index), or 0.
        #[prost(int64, tag = "2")]
        pub str: i64,
        /// A numeric value.
        #[prost(int64, tag = "3")]
        pub num: i64,
        /// The unit of `num` (string index), or 0.
        #[prost(int64, tag = "4")]
        pub num_unit: i64,
    }

    /// A binary loaded in the process (declared for completeness; this
    /// crate writes none).
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Mapping {
        /// Unique nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// Start address.
        #[prost(uint64, tag = "2")]
        pub memory_start: u64,
        /// End address.
        #[prost(uint64, tag = "3")]
        pub memory_limit: u64,
        /// Offset in the file.
        #[prost(uint64, tag = "4")]
        pub file_offset: u64,
        /// The file (string index).
        #[prost(int64, tag = "5")]
        pub filename: i64,
        /// Its build id (string index).
        #[prost(int64, tag = "6")]
        pub build_id: i64,
    }

    /// A place in the code: here one frame, so one line.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        /// Unique nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// The mapping (0: none).
        #[prost(uint64, tag = "2")]
        pub mapping_id: u64,
        /// The instruction address (0: unknown).
        #[prost(uint64, tag = "3")]
        pub address: u64,
        /// The source lines, the innermost inlined call first.
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }

    /// A source line of a location.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        /// The function (id of a [`Function`]).
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        /// The line number (0: unknown).
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    /// A function: its name and file.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        /// Unique nonzero id.
        #[prost(uint64, tag = "1")]
        pub id: u64,
        /// The name shown (string index).
        #[prost(int64, tag = "2")]
        pub name: i64,
        /// The name as the system knows it (string index).
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        /// The source file (string index).
        #[prost(int64, tag = "4")]
        pub filename: i64,
        /// The first line of the function (0: unknown).
        #[prost(int64, tag = "5")]
        pub start_line: i64,
    }
}

/// The values each sample carries, named and measured as in Go's heap
/// profiles: the live blocks always, and what was allocated when the
/// snapshot has an allocation history.
///
/// Sampled snapshots: each live block counts `1 / P(sampled)` times, and
/// each sample (a domain and traceback) holds the statistics' own integer
/// estimate for it (bytes rounded per block, blocks rounded per sample, as
/// the recorder rounds them), so samples add up to the statistics' groups
/// and the profile's total to [`Snapshot::totals`] exactly. The history of a sampled recording is already
/// made of estimates (docs/FORMAT.md), so `alloc_*` values are its rows'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleType {
    /// Live blocks.
    InuseObjects,
    /// Live bytes.
    InuseSpace,
    /// Blocks allocated since tracing started, freed or not.
    AllocObjects,
    /// Bytes allocated since tracing started, freed or not.
    AllocSpace,
}

impl SampleType {
    /// The live sample types, which every profile has, in its order.
    pub const LIVE: [SampleType; 2] = [SampleType::InuseObjects, SampleType::InuseSpace];

    /// The allocation-history sample types, which follow the live ones
    /// when the snapshot has a history.
    pub const HISTORY: [SampleType; 2] = [SampleType::AllocObjects, SampleType::AllocSpace];

    /// The sample type's name and unit, as Go names them.
    pub fn name(self) -> (&'static str, &'static str) {
        match self {
            SampleType::InuseObjects => ("inuse_objects", "count"),
            SampleType::InuseSpace => ("inuse_space", "bytes"),
            SampleType::AllocObjects => ("alloc_objects", "count"),
            SampleType::AllocSpace => ("alloc_space", "bytes"),
        }
    }

    /// The sample types of a snapshot's profile, in order.
    pub fn of_snapshot(snapshot: &Snapshot) -> Vec<SampleType> {
        let mut types = SampleType::LIVE.to_vec();
        if snapshot.history().is_some() {
            types.extend(SampleType::HISTORY);
        }
        types
    }
}

/// The sample type `go tool pprof` and the backends show first.
const DEFAULT_SAMPLE_TYPE: SampleType = SampleType::InuseSpace;

/// How [`to_bytes`] and [`write`] encode the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// gzip-compressed protobuf (`.pb.gz`), what pprof tools usually
    /// exchange.
    Gzip,
    /// Plain protobuf (`.pb`); pprof readers accept both.
    Plain,
}

impl Encoding {
    /// The encoding a file name asks for: `.pb` is plain, anything else
    /// (`.pb.gz`, `.pprof`) gzip.
    pub fn for_path(path: &Path) -> Encoding {
        let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase());
        match name {
            Some(name) if name.ends_with(".pb") => Encoding::Plain,
            _ => Encoding::Gzip,
        }
    }
}

/// Whether a file name asks for a pprof profile: it ends in `.pb.gz`,
/// `.pb` or `.pprof` (any case).
pub fn is_pprof_path(path: &Path) -> bool {
    path.file_name().is_some_and(|name| {
        let name = name.to_string_lossy().to_lowercase();
        name.ends_with(".pb.gz") || name.ends_with(".pb") || name.ends_with(".pprof")
    })
}

/// The string table under construction: each string once, "" at index 0.
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: FxHashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut strings = Strings::default();
        strings.intern("");
        strings
    }

    fn intern(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), i);
        i
    }
}

/// One sample's sums: the live blocks and bytes (estimates for sampled
/// snapshots, the statistics' own), and the allocated blocks and bytes of
/// the history.
#[derive(Clone, Copy, Default)]
struct Sums {
    live: [u64; 2],
    allocated: [u64; 2],
}

/// The snapshot as a pprof profile (see the module documentation).
/// Samples are ordered by domain then traceback id, locations by frame id,
/// functions and strings by first use, so the same snapshot always gives
/// the same bytes.
pub fn profile(snapshot: &Snapshot) -> proto::Profile {
    let tables = snapshot.tables();
    let metadata = snapshot.metadata();
    let rate = metadata.sampling_rate;

    // Sum the traces and history rows per (domain, traceback): one pass
    // over each. A traceback whose blocks were all freed has a sample with
    // nothing in use and what it allocated.
    let mut index: FxHashMap<(u32, TracebackId), usize> = FxHashMap::default();
    let mut sums: Vec<((u32, TracebackId), Sums)> = Vec::new();
    // The sums of `key`, added at the end the first time it is seen.
    fn sum_of<'a>(
        index: &mut FxHashMap<(u32, TracebackId), usize>,
        sums: &'a mut Vec<((u32, TracebackId), Sums)>,
        key: (u32, TracebackId),
    ) -> &'a mut Sums {
        let slot = *index.entry(key).or_insert_with(|| {
            sums.push((key, Sums::default()));
            sums.len() - 1
        });
        &mut sums[slot].1
    }
    // The statistics' own live amounts (per (domain, traceback) estimates
    // in a sampled snapshot), so that samples add up to the statistics'
    // groups exactly. A snapshot's sizes add up to at most i64::MAX (the
    // builder checks), so exact sums cannot overflow.
    snapshot.for_each_live(|domain, tb, amount| {
        let totals = amount.totals();
        let sum = sum_of(&mut index, &mut sums, (domain, tb));
        sum.live[0] += totals.count;
        sum.live[1] += totals.size;
    });
    for row in snapshot.history().map_or(&[][..], |h| h.rows()) {
        // Each history column adds up to at most i64::MAX (the builder
        // checks), so these sums cannot overflow either.
        let sum = sum_of(&mut index, &mut sums, (row.domain, row.traceback));
        sum.allocated[0] += row.allocated_blocks;
        sum.allocated[1] += row.allocated_bytes;
    }
    sums.sort_unstable_by_key(|&(key, _)| key);

    let types = SampleType::of_snapshot(snapshot);
    let mut strings = Strings::new();
    let sample_type = types
        .iter()
        .map(|metric| {
            let (name, unit) = metric.name();
            proto::ValueType {
                r#type: strings.intern(name),
                unit: strings.intern(unit),
            }
        })
        .collect();

    // Location ids are frame index + 1 (0 means "none" in pprof); only the
    // frames that samples use are written.
    let mut used_frames = vec![false; tables.frame_count()];
    let domain_key = strings.intern("domain");
    let samples = sums
        .iter()
        .map(|&((domain, traceback), sum)| {
            let frames = tables.traceback_frames(traceback);
            for frame in frames {
                used_frames[frame.index()] = true;
            }
            let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            let mut value: Vec<i64> = sum.live.map(to_i64).to_vec();
            if types.len() > SampleType::LIVE.len() {
                value.extend(sum.allocated.map(to_i64));
            }
            let label = if domain == 0 {
                Vec::new()
            } else {
                vec![proto::Label {
                    key: domain_key,
                    num: i64::from(domain),
                    ..Default::default()
                }]
            };
            proto::Sample {
                location_id: frames.iter().map(|f| f.index() as u64 + 1).collect(),
                value,
                label,
            }
        })
        .collect();

    let mut functions: Vec<proto::Function> = Vec::new();
    let mut function_ids: FxHashMap<(Option<StringId>, StringId, u32), u64> = FxHashMap::default();
    let mut locations = Vec::new();
    for (i, _) in used_frames.iter().enumerate().filter(|&(_, used)| *used) {
        let id = FrameId(i as u32);
        let frame = tables.frame(id);
        let record = tables.frames[i];
        // Frames without a function are named by their line, so the key of
        // their function includes it; named functions are one per file.
        let key = match record.function {
            Some(_) => (record.function, record.filename, 0),
            None => (None, record.filename, frame.lineno),
        };
        let function_id = *function_ids.entry(key).or_insert_with(|| {
            let name = match frame.function {
                Some(name) => strings.intern(name),
                None => strings.intern(&frame.to_string()),
            };
            let id = functions.len() as u64 + 1;
            functions.push(proto::Function {
                id,
                name,
                system_name: name,
                filename: strings.intern(frame.filename),
                start_line: 0,
            });
            id
        });
        locations.push(proto::Location {
            id: i as u64 + 1,
            mapping_id: 0,
            address: 0,
            line: vec![proto::Line {
                function_id,
                line: i64::from(frame.lineno),
            }],
        });
    }

    let comment = comments(snapshot)
        .iter()
        .map(|c| strings.intern(c))
        .collect();
    let period_type = proto::ValueType {
        r#type: strings.intern("space"),
        unit: strings.intern("bytes"),
    };
    let default_sample_type = strings.intern(DEFAULT_SAMPLE_TYPE.name().0);
    proto::Profile {
        sample_type,
        sample: samples,
        mapping: Vec::new(),
        location: locations,
        function: functions,
        string_table: strings.table,
        drop_frames: 0,
        keep_frames: 0,
        time_nanos: metadata
            .timestamp
            .map_or(0, |t| t.unix_micros.saturating_mul(1000)),
        duration_nanos: 0,
        period_type: Some(period_type),
        // Every byte is recorded when not sampling: a period of one byte.
        period: rate.map_or(1, |r| i64::try_from(r).unwrap_or(i64::MAX)),
        comment,
        default_sample_type,
    }
}

/// What the snapshot says about itself, one comment each, in a fixed order.
fn comments(snapshot: &Snapshot) -> Vec<String> {
    let m = snapshot.metadata();
    let mut out = Vec::new();
    if let Some(producer) = &m.producer {
        out.push(format!("producer: {producer}"));
    }
    if let Some(command_line) = &m.command_line {
        out.push(format!("command line: {}", command_line.join(" ")));
    }
    if let Some(pid) = m.pid {
        out.push(format!("pid: {pid}"));
    }
    if let Some(timestamp) = m.timestamp {
        out.push(format!("taken at: {timestamp}"));
    }
    if let Some(current) = m.traced_current {
        out.push(format!("traced memory: {current} bytes"));
    }
    if let Some(peak) = m.traced_peak {
        out.push(format!("traced peak: {peak} bytes"));
    }
    if let Some(memory) = m.tracemalloc_memory {
        out.push(format!("recorder memory: {memory} bytes"));
    }
    match m.sampling_rate {
        Some(rate) => out.push(format!(
            "sampling: one sample per {rate} bytes on average; values are unbiased estimates \
             (each block scaled by 1 / P(sampled))"
        )),
        None => out.push("sampling: off (every block recorded)".to_owned()),
    }
    out.push(format!("traceback limit: {}", snapshot.traceback_limit()));
    out.push(format!(
        "written by tracemalloc-format {}",
        env!("CARGO_PKG_VERSION")
    ));
    out
}

/// The snapshot as the bytes of a pprof file.
pub fn to_bytes(snapshot: &Snapshot, encoding: Encoding) -> io::Result<Vec<u8>> {
    let bytes = profile(snapshot).encode_to_vec();
    match encoding {
        Encoding::Plain => Ok(bytes),
        Encoding::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(bytes.len() / 4),
                flate2::Compression::default(),
            );
            gz.write_all(&bytes)?;
            gz.finish()
        }
    }
}

/// Writes the snapshot as a pprof file, atomically (temporary file and
/// rename, as [`Snapshot::dump`]); the encoding follows the file name
/// ([`Encoding::for_path`]).
pub fn write(snapshot: &Snapshot, path: &Path) -> Result<(), Error> {
    let bytes = to_bytes(snapshot, Encoding::for_path(path))
        .map_err(|e| Error::new(path, ErrorKind::Write(e)))?;
    write_atomically(path, &bytes).map_err(|e| Error::new(path, ErrorKind::Write(e)))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::{KeyType, Metadata, SnapshotBuilder, Timestamp};

    fn decode(bytes: &[u8]) -> proto::Profile {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .unwrap();
        proto::Profile::decode(plain.as_slice()).unwrap()
    }

    fn string(p: &proto::Profile, i: i64) -> &str {
        &p.string_table[i as usize]
    }

    /// A sample's frames as `function file:line`, leaf first.
    fn stack(p: &proto::Profile, sample: &proto::Sample) -> Vec<String> {
        sample
            .location_id
            .iter()
            .map(|&id| {
                let loc = p.location.iter().find(|l| l.id == id).unwrap();
                let line = &loc.line[0];
                let f = p
                    .function
                    .iter()
                    .find(|f| f.id == line.function_id)
                    .unwrap();
                format!(
                    "{} {}:{}",
                    string(p, f.name),
                    string(p, f.filename),
                    line.line
                )
            })
            .collect()
    }

    fn rust_snapshot() -> Snapshot {
        let mut b = SnapshotBuilder::new(5);
        let main = b.intern_frame("src/main.rs", 3, Some("app::main")).unwrap();
        let put = b
            .intern_frame("src/cache.rs", 8, Some("app::Cache::put"))
            .unwrap();
        let put2 = b
            .intern_frame("src/cache.rs", 9, Some("app::Cache::put"))
            .unwrap();
        let leak = b.intern_traceback(&[put, main], Some(7)).unwrap();
        let other = b.intern_traceback(&[put2, main], None).unwrap();
        let top = b.intern_traceback(&[main], None).unwrap();
        b.push_trace(0, 100, leak).unwrap();
        b.push_trace(0, 50, leak).unwrap();
        b.push_trace(0, 7, other).unwrap();
        b.push_trace(3, 16, top).unwrap();
        b.push_trace(0, 16, top).unwrap();
        b.finish(Metadata {
            producer: Some("tracemalloc-rs 0.1.0".into()),
            pid: Some(42),
            command_line: Some(vec!["app".into(), "--serve".into()]),
            timestamp: Some(Timestamp {
                unix_micros: 1_700_000_000_123_456,
            }),
            ..Metadata::default()
        })
    }

    #[test]
    fn samples_locations_functions_and_strings() {
        let s = rust_snapshot();
        let p = decode(&to_bytes(&s, Encoding::Gzip).unwrap());
        assert_eq!(p.string_table[0], "");
        let types: Vec<_> = p
            .sample_type
            .iter()
            .map(|t| (string(&p, t.r#type), string(&p, t.unit)))
            .collect();
        assert_eq!(
            types,
            [("inuse_objects", "count"), ("inuse_space", "bytes")]
        );
        assert_eq!(string(&p, p.default_sample_type), "inuse_space");
        assert_eq!(p.time_nanos, 1_700_000_000_123_456_000);
        // Samples by domain, then traceback: one per (domain, traceback).
        let samples: Vec<_> = p
            .sample
            .iter()
            .map(|x| (stack(&p, x), x.value.clone(), x.label.len()))
            .collect();
        assert_eq!(
            samples,
            [
                (
                    vec![
                        "app::Cache::put src/cache.rs:8".to_owned(),
                        "app::main src/main.rs:3".to_owned()
                    ],
                    vec![2, 150],
                    0
                ),
                (
                    vec![
                        "app::Cache::put src/cache.rs:9".to_owned(),
                        "app::main src/main.rs:3".to_owned()
                    ],
                    vec![1, 7],
                    0
                ),
                (vec!["app::main src/main.rs:3".to_owned()], vec![1, 16], 0),
                (vec!["app::main src/main.rs:3".to_owned()], vec![1, 16], 1),
            ]
        );
        let label = &p.sample[3].label[0];
        assert_eq!((string(&p, label.key), label.num), ("domain", 3));
        // Two lines of one function share its Function.
        assert_eq!(p.function.len(), 2);
        assert_eq!(p.location.len(), 3);
        // Each string once.
        let mut sorted = p.string_table.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), p.string_table.len());
        let comments: Vec<_> = p.comment.iter().map(|&c| string(&p, c)).collect();
        assert_eq!(
            comments[..5],
            [
                "producer: tracemalloc-rs 0.1.0",
                "command line: app --serve",
                "pid: 42",
                "taken at: 2023-11-14T22:13:20.123456Z",
                "sampling: off (every block recorded)",
            ]
        );
        // The same snapshot gives the same bytes.
        assert_eq!(
            to_bytes(&s, Encoding::Plain).unwrap(),
            profile(&s).encode_to_vec()
        );
        assert_eq!(
            to_bytes(&s, Encoding::Plain).unwrap(),
            to_bytes(&s, Encoding::Plain).unwrap()
        );
    }

    #[test]
    fn history_adds_alloc_sample_types_and_freed_tracebacks() {
        let mut b = SnapshotBuilder::new(2);
        let keep = b.intern_frame("src/keep.rs", 1, Some("keep")).unwrap();
        let churn = b.intern_frame("src/churn.rs", 2, Some("churn")).unwrap();
        let kept = b.intern_traceback(&[keep], None).unwrap();
        let freed = b.intern_traceback(&[churn], None).unwrap();
        b.push_trace(0, 40, kept).unwrap();
        b.push_history(crate::HistoryRow {
            allocated_blocks: 2,
            allocated_bytes: 80,
            freed_blocks: 1,
            ..crate::HistoryRow::new(0, kept)
        })
        .unwrap();
        b.push_history(crate::HistoryRow {
            allocated_blocks: 1000,
            allocated_bytes: 32_000,
            freed_blocks: 1000,
            temporary_blocks: 1000,
            temporary_bytes: 32_000,
            ..crate::HistoryRow::new(0, freed)
        })
        .unwrap();
        let p = decode(&to_bytes(&b.finish(Metadata::default()), Encoding::Gzip).unwrap());
        let types: Vec<&str> = p.sample_type.iter().map(|t| string(&p, t.r#type)).collect();
        assert_eq!(
            types,
            [
                "inuse_objects",
                "inuse_space",
                "alloc_objects",
                "alloc_space"
            ]
        );
        assert_eq!(string(&p, p.default_sample_type), "inuse_space");
        let samples: Vec<(Vec<String>, Vec<i64>)> = p
            .sample
            .iter()
            .map(|s| (stack(&p, s), s.value.clone()))
            .collect();
        assert_eq!(
            samples,
            [
                (vec!["keep src/keep.rs:1".to_owned()], vec![1, 40, 2, 80]),
                (
                    vec!["churn src/churn.rs:2".to_owned()],
                    vec![0, 0, 1000, 32_000]
                ),
            ]
        );
        // Without a history, only the live types.
        let plain = decode(&to_bytes(&rust_snapshot(), Encoding::Gzip).unwrap());
        assert_eq!(plain.sample_type.len(), 2);
    }

    #[test]
    fn frames_without_function_are_named_by_their_line() {
        let s = Snapshot::from_raw_traces(
            2,
            [
                (0, 30, &[("a.py", 2), ("b.py", 4)][..], None),
                (0, 10, &[("a.py", 5), ("b.py", 4)][..], None),
            ],
        )
        .unwrap();
        let p = profile(&s);
        let stacks: Vec<_> = p.sample.iter().map(|x| stack(&p, x)).collect();
        assert_eq!(
            stacks,
            [
                ["a.py:2 a.py:2", "b.py:4 b.py:4"],
                ["a.py:5 a.py:5", "b.py:4 b.py:4"]
            ]
        );
        assert_eq!(p.function.len(), 3);
    }

    #[test]
    fn sampled_snapshots_are_scaled_like_the_statistics() {
        let mut b = SnapshotBuilder::new(1);
        let sizes = [1u64, 10, 100, 1000, 5000, 3, 77];
        for (i, &size) in sizes.iter().enumerate() {
            let frame = b.intern_frame("s.rs", i as u32 % 3 + 1, None).unwrap();
            let tb = b.intern_traceback(&[frame], None).unwrap();
            b.push_trace(0, size, tb).unwrap();
        }
        let s = b.finish(Metadata {
            sampling_rate: Some(512),
            ..Metadata::default()
        });
        let p = profile(&s);
        assert_eq!(p.period, 512);
        let total = |i: usize| p.sample.iter().map(|x| x.value[i]).sum::<i64>();
        let totals = s.totals();
        assert_eq!(total(0), totals.count as i64);
        assert_eq!(total(1), totals.size as i64);
        assert!(totals.size > sizes.iter().sum::<u64>(), "scaled up");
        // Each sample (one per line here) is its group's estimate.
        for stat in s.statistics(KeyType::Lineno, false).unwrap() {
            let line = i64::from(stat.traceback.frames[0].lineno);
            let sample = p
                .sample
                .iter()
                .find(|x| p.location[x.location_id[0] as usize - 1].line[0].line == line)
                .unwrap();
            assert_eq!(sample.value[1], stat.size as i64, "{line}");
            assert_eq!(sample.value[0], stat.count as i64, "{line}");
        }
    }

    #[test]
    fn file_names_choose_the_encoding() {
        assert!(is_pprof_path(Path::new("out/heap.pb.gz")));
        assert!(is_pprof_path(Path::new("HEAP.PB")));
        assert!(is_pprof_path(Path::new("x.pprof")));
        assert!(!is_pprof_path(Path::new("x.tmsnap")));
        assert!(!is_pprof_path(Path::new("pb")));
        assert_eq!(Encoding::for_path(Path::new("a.pb")), Encoding::Plain);
        assert_eq!(Encoding::for_path(Path::new("a.pb.gz")), Encoding::Gzip);
        assert_eq!(Encoding::for_path(Path::new("a.pprof")), Encoding::Gzip);
    }

    #[test]
    fn write_is_atomic_and_names_the_file_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = rust_snapshot();
        let path = dir.path().join("heap.pb");
        write(&s, &path).unwrap();
        let plain = std::fs::read(&path).unwrap();
        assert_eq!(
            proto::Profile::decode(plain.as_slice()).unwrap(),
            profile(&s)
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/heap.pb.gz");
        let err = write(&s, &missing).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: cannot write: ", missing.display())),
            "{err}"
        );
    }
}
