//! The `.tmsnap` file: magic bytes, a format version, and a MessagePack
//! body. docs/FORMAT.md specifies every field.
//!
//! The body is columnar (one array per field) rather than one record per
//! trace: it is smaller, since MessagePack stores each small integer in one
//! to three bytes, and it decodes as a few long arrays.
//!
//! Reading is defensive: the body is decoded with a nesting limit, every id
//! is checked against its table, and the snapshot is rebuilt through
//! [`SnapshotBuilder`], which re-interns everything so that a file with
//! duplicate entries still gives a snapshot with none. Serde's sequence
//! visitors preallocate at most about a megabyte whatever length a file
//! declares, and rmp-serde reads strings incrementally, so no allocation is
//! much larger than the file itself.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::model::{
    BuildError, FrameId, HistoryRow, Metadata, Snapshot, SnapshotBuilder, Tables, Timestamp,
    TracebackId,
};

/// The first eight bytes of every `.tmsnap` file. The leading 0x89 and the
/// CR LF / LF pair catch transfers that mangle binary files, as PNG's
/// signature does.
pub const MAGIC: [u8; 8] = *b"\x89TMS\r\n\x1a\n";

/// The format version this crate writes.
pub const FORMAT_VERSION: u32 = 2;

/// Size of the fixed header: magic and a little-endian `u32` version.
pub const HEADER_LEN: usize = 12;

/// Nesting deeper than this is refused. The schema itself is three levels
/// deep; the margin leaves room for fields added by later writers, which
/// this reader skips.
const MAX_DEPTH: usize = 16;

/// Why a `.tmsnap` body could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TmsnapError {
    /// The file ends inside the 12-byte header.
    #[error(
        "truncated .tmsnap header: the file has {len} bytes, the header alone needs {HEADER_LEN}"
    )]
    TruncatedHeader {
        /// Bytes in the file.
        len: usize,
    },
    /// Written by a newer tracemalloc-rs.
    #[error(
        ".tmsnap format version {found} is newer than this reader, which reads versions 1 to {FORMAT_VERSION}: \
         open it with a newer tracemalloc-rs"
    )]
    TooNew {
        /// The version in the header.
        found: u32,
    },
    /// Version 0 was never written.
    #[error("invalid .tmsnap format version 0")]
    VersionZero,
    /// The MessagePack body is malformed or does not fit the schema.
    #[error("corrupt .tmsnap body at byte {offset}: {message}")]
    Decode {
        /// File offset where decoding stopped.
        offset: u64,
        /// What the decoder found.
        message: String,
    },
    /// The body decoded but its contents are inconsistent (a dangling id,
    /// columns of different lengths, ...).
    #[error("invalid .tmsnap: {0}")]
    Invalid(String),
    /// Too large to hold as a snapshot.
    #[error("invalid .tmsnap: {0}")]
    Build(BuildError),
}

// Not `#[from]`: that would also make the `BuildError` this error's
// `source()`, and since the message already includes it, printing the
// chain (anyhow's `{:#}`) would say it twice.
impl From<BuildError> for TmsnapError {
    fn from(err: BuildError) -> TmsnapError {
        TmsnapError::Build(err)
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct WireMetadata {
    producer: Option<String>,
    pid: Option<u32>,
    command_line: Option<Vec<String>>,
    timestamp_us: Option<i64>,
    traced_current: Option<u64>,
    traced_peak: Option<u64>,
    tracemalloc_memory: Option<u64>,
    sampling_rate: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct WireFrames {
    filename: Vec<u32>,
    lineno: Vec<u32>,
    function: Vec<Option<u32>>,
}

#[derive(Serialize, Deserialize)]
struct WireTracebacks {
    length: Vec<u32>,
    frames: Vec<u32>,
    total_nframe: Vec<Option<u32>>,
}

#[derive(Serialize, Deserialize)]
struct WireTraces {
    domain: Vec<u32>,
    size: Vec<u64>,
    traceback: Vec<u32>,
}

/// The allocation history (version 2): one entry per row.
#[derive(Serialize, Deserialize)]
struct WireHistory {
    peak_timestamp_us: Option<i64>,
    domain: Vec<u32>,
    traceback: Vec<u32>,
    allocated_blocks: Vec<u64>,
    allocated_bytes: Vec<u64>,
    freed_blocks: Vec<u64>,
    temporary_blocks: Vec<u64>,
    temporary_bytes: Vec<u64>,
    peak_blocks: Vec<u64>,
    peak_bytes: Vec<u64>,
}

/// The body of versions 1 and 2, which differ only by `history` (version 2
/// adds it, and writes it only for snapshots that have one). Field order
/// is the order written; readers match fields by name.
#[derive(Serialize, Deserialize)]
struct WireSnapshot {
    traceback_limit: u32,
    #[serde(default)]
    metadata: WireMetadata,
    strings: Vec<String>,
    frames: WireFrames,
    tracebacks: WireTracebacks,
    traces: WireTraces,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    history: Option<WireHistory>,
}

/// Whether `bytes` start with the `.tmsnap` magic.
pub fn has_magic(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Decodes a whole `.tmsnap` file.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, TmsnapError> {
    if bytes.len() < HEADER_LEN {
        return Err(TmsnapError::TruncatedHeader { len: bytes.len() });
    }
    debug_assert!(has_magic(bytes));
    let mut version = [0u8; 4];
    version.copy_from_slice(&bytes[8..12]);
    let version = u32::from_le_bytes(version);
    match version {
        0 => Err(TmsnapError::VersionZero),
        1 | 2 => decode_body(&bytes[HEADER_LEN..], version),
        found => Err(TmsnapError::TooNew { found }),
    }
}

fn decode_body(body: &[u8], version: u32) -> Result<Snapshot, TmsnapError> {
    let mut de = rmp_serde::Deserializer::new(Cursor::new(body));
    de.set_max_depth(MAX_DEPTH);
    let wire = WireSnapshot::deserialize(&mut de).map_err(|e| TmsnapError::Decode {
        offset: HEADER_LEN as u64 + de.position(),
        message: e.to_string(),
    })?;
    let trailing = body.len() as u64 - de.position();
    if trailing != 0 {
        return Err(TmsnapError::Decode {
            offset: HEADER_LEN as u64 + de.position(),
            message: format!("{trailing} unexpected bytes after the snapshot"),
        });
    }
    if version < 2 && wire.history.is_some() {
        return Err(invalid(format!(
            "a version {version} file has a history, which only version 2 and later define"
        )));
    }
    let mut snapshot = build(wire)?;
    snapshot.metadata.format_version = Some(version);
    Ok(snapshot)
}

fn invalid(message: String) -> TmsnapError {
    TmsnapError::Invalid(message)
}

fn check_len(
    what: &str,
    len: usize,
    expected_what: &str,
    expected: usize,
) -> Result<(), TmsnapError> {
    if len == expected {
        Ok(())
    } else {
        Err(invalid(format!(
            "{what} has {len} entries but {expected_what} has {expected}"
        )))
    }
}

/// Rebuilds the snapshot through the builder, checking every reference.
fn build(wire: WireSnapshot) -> Result<Snapshot, TmsnapError> {
    let WireSnapshot {
        traceback_limit,
        metadata,
        strings,
        frames,
        tracebacks,
        traces,
        history,
    } = wire;
    let mut builder = SnapshotBuilder::new(traceback_limit);

    let string_ids = strings
        .iter()
        .map(|s| builder.intern_str(s))
        .collect::<Result<Vec<_>, _>>()?;
    let string = |what: &str, i: usize, id: u32| {
        string_ids.get(id as usize).copied().ok_or_else(|| {
            invalid(format!(
                "{what}[{i}] refers to string {id} but the file has {} strings",
                string_ids.len()
            ))
        })
    };

    let n_frames = frames.filename.len();
    check_len(
        "frames.lineno",
        frames.lineno.len(),
        "frames.filename",
        n_frames,
    )?;
    check_len(
        "frames.function",
        frames.function.len(),
        "frames.filename",
        n_frames,
    )?;
    let mut frame_ids = Vec::with_capacity(n_frames);
    for i in 0..n_frames {
        let filename = string("frames.filename", i, frames.filename[i])?;
        let function = frames.function[i]
            .map(|f| string("frames.function", i, f))
            .transpose()?;
        frame_ids.push(builder.intern_frame_ids(filename, frames.lineno[i], function)?);
    }

    let n_tb = tracebacks.length.len();
    check_len(
        "tracebacks.total_nframe",
        tracebacks.total_nframe.len(),
        "tracebacks.length",
        n_tb,
    )?;
    let declared: u64 = tracebacks.length.iter().map(|&l| u64::from(l)).sum();
    if declared != tracebacks.frames.len() as u64 {
        return Err(invalid(format!(
            "tracebacks.length adds up to {declared} frames but tracebacks.frames has {}",
            tracebacks.frames.len()
        )));
    }
    let mut tb_ids: Vec<TracebackId> = Vec::with_capacity(n_tb);
    let mut scratch: Vec<FrameId> = Vec::new();
    let mut start = 0usize;
    for (i, &len) in tracebacks.length.iter().enumerate() {
        let end = start + len as usize;
        scratch.clear();
        for &f in &tracebacks.frames[start..end] {
            let id = frame_ids.get(f as usize).copied().ok_or_else(|| {
                invalid(format!(
                    "traceback {i} refers to frame {f} but the file has {n_frames} frames"
                ))
            })?;
            scratch.push(id);
        }
        tb_ids.push(builder.intern_traceback(&scratch, tracebacks.total_nframe[i])?);
        start = end;
    }

    let n_traces = traces.size.len();
    check_len(
        "traces.domain",
        traces.domain.len(),
        "traces.size",
        n_traces,
    )?;
    check_len(
        "traces.traceback",
        traces.traceback.len(),
        "traces.size",
        n_traces,
    )?;
    builder.reserve_traces(n_traces);
    for i in 0..n_traces {
        let tb = traces.traceback[i];
        let id = tb_ids.get(tb as usize).copied().ok_or_else(|| {
            invalid(format!(
                "trace {i} refers to traceback {tb} but the file has {n_tb} tracebacks"
            ))
        })?;
        builder.push_trace(traces.domain[i], traces.size[i], id)?;
    }
    if let Some(history) = history {
        build_history(&mut builder, history, &tb_ids)?;
    }

    let metadata = Metadata {
        format_version: None,
        producer: metadata.producer,
        pid: metadata.pid,
        command_line: metadata.command_line,
        timestamp: metadata
            .timestamp_us
            .map(|unix_micros| Timestamp { unix_micros }),
        traced_current: metadata.traced_current,
        traced_peak: metadata.traced_peak,
        tracemalloc_memory: metadata.tracemalloc_memory,
        sampling_rate: metadata.sampling_rate,
    };
    Ok(builder.finish(metadata))
}

fn build_history(
    builder: &mut SnapshotBuilder,
    history: WireHistory,
    tb_ids: &[TracebackId],
) -> Result<(), TmsnapError> {
    let n = history.traceback.len();
    let columns = [
        ("history.domain", history.domain.len()),
        ("history.allocated_blocks", history.allocated_blocks.len()),
        ("history.allocated_bytes", history.allocated_bytes.len()),
        ("history.freed_blocks", history.freed_blocks.len()),
        ("history.temporary_blocks", history.temporary_blocks.len()),
        ("history.temporary_bytes", history.temporary_bytes.len()),
        ("history.peak_blocks", history.peak_blocks.len()),
        ("history.peak_bytes", history.peak_bytes.len()),
    ];
    for (what, len) in columns {
        check_len(what, len, "history.traceback", n)?;
    }
    builder.set_history(
        history
            .peak_timestamp_us
            .map(|unix_micros| Timestamp { unix_micros }),
    );
    for i in 0..n {
        let tb = history.traceback[i];
        let traceback = tb_ids.get(tb as usize).copied().ok_or_else(|| {
            invalid(format!(
                "history row {i} refers to traceback {tb} but the file has {} tracebacks",
                tb_ids.len()
            ))
        })?;
        builder.push_history(HistoryRow {
            domain: history.domain[i],
            traceback,
            allocated_blocks: history.allocated_blocks[i],
            allocated_bytes: history.allocated_bytes[i],
            freed_blocks: history.freed_blocks[i],
            temporary_blocks: history.temporary_blocks[i],
            temporary_bytes: history.temporary_bytes[i],
            peak_blocks: history.peak_blocks[i],
            peak_bytes: history.peak_bytes[i],
        })?;
    }
    Ok(())
}

/// Encodes a snapshot as a `.tmsnap` file of the current version.
///
/// Only the strings, frames and tracebacks that the traces and history rows
/// use are written (a filtered snapshot shares its parent's tables),
/// renumbered densely in table order.
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let wire = to_wire(snapshot);
    let mut out = Vec::with_capacity(HEADER_LEN + 8 * snapshot.traces().len() + 1024);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    let mut ser = rmp_serde::Serializer::new(&mut out).with_struct_map();
    // Serializing plain integers, strings and options into a Vec cannot fail.
    if let Err(e) = wire.serialize(&mut ser) {
        unreachable!("serializing a snapshot into memory failed: {e}");
    }
    out
}

/// A dense renumbering of the entries a snapshot's traces use.
struct Used {
    /// New id of each old id, `u32::MAX` where unused.
    new_id: Vec<u32>,
    /// Old ids in new-id order.
    old_ids: Vec<u32>,
}

impl Used {
    fn new(len: usize) -> Used {
        Used {
            new_id: vec![u32::MAX; len],
            old_ids: Vec::new(),
        }
    }

    fn mark(&mut self, old: usize) {
        if self.new_id[old] == u32::MAX {
            self.new_id[old] = 0;
        }
    }

    /// Numbers the marked entries in table order, so that the output does
    /// not depend on trace order.
    fn number(&mut self) {
        for (old, slot) in self.new_id.iter_mut().enumerate() {
            if *slot != u32::MAX {
                *slot = self.old_ids.len() as u32;
                self.old_ids.push(old as u32);
            }
        }
    }
}

fn to_wire(snapshot: &Snapshot) -> WireSnapshot {
    let tables: &Tables = snapshot.tables();
    let mut used_tb = Used::new(tables.traceback_count());
    for t in snapshot.traces() {
        used_tb.mark(t.traceback.index());
    }
    let history_rows = snapshot.history().map_or(&[][..], |h| h.rows());
    for row in history_rows {
        used_tb.mark(row.traceback.index());
    }
    used_tb.number();
    let mut used_frames = Used::new(tables.frame_count());
    for &tb in &used_tb.old_ids {
        for f in tables.traceback_frames(TracebackId(tb)) {
            used_frames.mark(f.index());
        }
    }
    used_frames.number();
    let mut used_strings = Used::new(tables.string_count());
    for &f in &used_frames.old_ids {
        let rec = tables.frame_record(FrameId(f));
        used_strings.mark(rec.filename.index());
        if let Some(func) = rec.function {
            used_strings.mark(func.index());
        }
    }
    used_strings.number();

    let strings = used_strings
        .old_ids
        .iter()
        .map(|&s| tables.strings[s as usize].to_string())
        .collect();
    let mut frames = WireFrames {
        filename: Vec::with_capacity(used_frames.old_ids.len()),
        lineno: Vec::with_capacity(used_frames.old_ids.len()),
        function: Vec::with_capacity(used_frames.old_ids.len()),
    };
    for &f in &used_frames.old_ids {
        let rec = tables.frame_record(FrameId(f));
        frames
            .filename
            .push(used_strings.new_id[rec.filename.index()]);
        frames.lineno.push(rec.lineno);
        frames
            .function
            .push(rec.function.map(|s| used_strings.new_id[s.index()]));
    }
    let mut tracebacks = WireTracebacks {
        length: Vec::with_capacity(used_tb.old_ids.len()),
        frames: Vec::new(),
        total_nframe: Vec::with_capacity(used_tb.old_ids.len()),
    };
    for &tb in &used_tb.old_ids {
        let tb = TracebackId(tb);
        let tb_frames = tables.traceback_frames(tb);
        tracebacks.length.push(tb_frames.len() as u32);
        tracebacks
            .frames
            .extend(tb_frames.iter().map(|f| used_frames.new_id[f.index()]));
        tracebacks
            .total_nframe
            .push(tables.traceback_total_nframe(tb));
    }
    let traces = snapshot.traces();
    let traces = WireTraces {
        domain: traces.iter().map(|t| t.domain).collect(),
        size: traces.iter().map(|t| t.size).collect(),
        traceback: traces
            .iter()
            .map(|t| used_tb.new_id[t.traceback.index()])
            .collect(),
    };
    let history = snapshot.history().map(|h| {
        let column = |f: fn(&HistoryRow) -> u64| h.rows().iter().map(f).collect();
        WireHistory {
            peak_timestamp_us: h.peak_timestamp.map(|t| t.unix_micros),
            domain: h.rows().iter().map(|r| r.domain).collect(),
            traceback: h
                .rows()
                .iter()
                .map(|r| used_tb.new_id[r.traceback.index()])
                .collect(),
            allocated_blocks: column(|r| r.allocated_blocks),
            allocated_bytes: column(|r| r.allocated_bytes),
            freed_blocks: column(|r| r.freed_blocks),
            temporary_blocks: column(|r| r.temporary_blocks),
            temporary_bytes: column(|r| r.temporary_bytes),
            peak_blocks: column(|r| r.peak_blocks),
            peak_bytes: column(|r| r.peak_bytes),
        }
    });
    let m = snapshot.metadata();
    WireSnapshot {
        traceback_limit: snapshot.traceback_limit(),
        metadata: WireMetadata {
            producer: m.producer.clone(),
            pid: m.pid,
            command_line: m.command_line.clone(),
            timestamp_us: m.timestamp.map(|t| t.unix_micros),
            traced_current: m.traced_current,
            traced_peak: m.traced_peak,
            tracemalloc_memory: m.tracemalloc_memory,
            sampling_rate: m.sampling_rate,
        },
        strings,
        frames,
        tracebacks,
        traces,
        history,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Filter, KeyType};

    fn sample() -> Snapshot {
        let mut b = SnapshotBuilder::new(8);
        let f1 = b
            .intern_frame("/src/main.rs", 42, Some("app::main"))
            .unwrap();
        let f2 = b.intern_frame("/src/lib.rs", 7, None).unwrap();
        let f3 = b.intern_frame("<unknown>", 0, Some("??")).unwrap();
        let t1 = b.intern_traceback(&[f1, f2], Some(5)).unwrap();
        let t2 = b.intern_traceback(&[f3], None).unwrap();
        b.push_trace(0, 4096, t1).unwrap();
        b.push_trace(0, 1, t1).unwrap();
        b.push_trace(7, u64::from(u32::MAX) + 1, t2).unwrap();
        b.finish(Metadata {
            producer: Some("test".into()),
            pid: Some(1234),
            command_line: Some(vec!["prog".into(), "--flag".into()]),
            timestamp: Some(Timestamp {
                unix_micros: 1_795_462_860_123_456,
            }),
            traced_current: Some(4_294_971_393),
            traced_peak: Some(5_000_000_000),
            tracemalloc_memory: Some(999),
            sampling_rate: None,
            format_version: None,
        })
    }

    #[test]
    fn round_trip_keeps_everything() {
        let snap = sample();
        let bytes = encode(&snap);
        assert!(has_magic(&bytes));
        let back = decode(&bytes).unwrap();
        assert_eq!(back.traceback_limit(), 8);
        assert_eq!(
            back.metadata(),
            &Metadata {
                format_version: Some(FORMAT_VERSION),
                ..snap.metadata().clone()
            }
        );
        let traces = |s: &Snapshot| {
            s.traces()
                .iter()
                .map(|t| (t.domain, t.size, s.traceback(t.traceback)))
                .collect::<Vec<_>>()
        };
        assert_eq!(traces(&back), traces(&snap));
        assert_eq!(back.tables().string_count(), snap.tables().string_count());
    }

    /// `sample()` with a history, one of whose rows has no live trace (all
    /// its blocks were freed): its traceback must still be written.
    fn sample_with_history() -> Snapshot {
        let mut b = SnapshotBuilder::new(8);
        let f1 = b.intern_frame("/src/main.rs", 42, Some("main")).unwrap();
        let f2 = b.intern_frame("/src/tmp.rs", 9, Some("tmp")).unwrap();
        let live = b.intern_traceback(&[f1], Some(1)).unwrap();
        let freed = b.intern_traceback(&[f2, f1], Some(2)).unwrap();
        b.push_trace(0, 100, live).unwrap();
        b.set_history(Some(Timestamp { unix_micros: 7 }));
        b.push_history(HistoryRow {
            allocated_blocks: 3,
            allocated_bytes: 300,
            freed_blocks: 2,
            peak_blocks: 2,
            peak_bytes: 200,
            ..HistoryRow::new(0, live)
        })
        .unwrap();
        b.push_history(HistoryRow {
            allocated_blocks: 1000,
            allocated_bytes: 64_000,
            freed_blocks: 1000,
            temporary_blocks: 999,
            temporary_bytes: 63_936,
            peak_blocks: 1,
            peak_bytes: 64,
            ..HistoryRow::new(0, freed)
        })
        .unwrap();
        b.finish(Metadata::default())
    }

    #[test]
    fn history_round_trips_with_tracebacks_only_it_uses() {
        let snap = sample_with_history();
        let back = decode(&encode(&snap)).unwrap();
        let rows = |s: &Snapshot| {
            let h = s.history().unwrap();
            // Each row with its traceback's frames instead of its id, which
            // the file renumbers.
            let rows: Vec<_> = h
                .rows()
                .iter()
                .map(|r| {
                    let counters = HistoryRow {
                        traceback: TracebackId(0),
                        ..*r
                    };
                    (s.traceback(r.traceback), counters)
                })
                .collect();
            (h.peak_timestamp, rows)
        };
        assert_eq!(rows(&back), rows(&snap));
        assert_eq!(back.tables().traceback_count(), 2);
        // A snapshot without history stays without one, and a v2 file of it
        // has no `history` key at all.
        let plain = decode(&encode(&sample())).unwrap();
        assert!(plain.history().is_none());
    }

    #[test]
    fn version_1_files_cannot_carry_a_history() {
        let mut bytes = encode(&sample_with_history());
        bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        let err = decode(&bytes).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid .tmsnap: a version 1 file has a history, which only version 2 and later define"
        );
    }

    #[test]
    fn bad_history_rows_are_named() {
        let with_history = |history: serde_json::Value| {
            let mut json = valid_json();
            json["history"] = history;
            let mut out = MAGIC.to_vec();
            out.extend_from_slice(&2u32.to_le_bytes());
            out.extend(rmp_serde::to_vec_named(&json).unwrap());
            decode(&out).map(|s| s.history().map(|h| h.rows().len()))
        };
        let row = |traceback: u64, bytes: u64| {
            serde_json::json!({
                "peak_timestamp_us": null, "domain": [0], "traceback": [traceback],
                "allocated_blocks": [1], "allocated_bytes": [bytes], "freed_blocks": [0],
                "temporary_blocks": [0], "temporary_bytes": [0],
                "peak_blocks": [1], "peak_bytes": [bytes],
            })
        };
        assert_eq!(with_history(row(0, 10)).unwrap(), Some(1));
        let err = with_history(row(4, 10)).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid .tmsnap: history row 0 refers to traceback 4 but the file has 1 tracebacks"
        );
        let err = with_history(row(0, u64::MAX)).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid .tmsnap: a column of the allocation history adds up to more than 2^63 - 1"
        );
        let mut ragged = row(0, 10);
        ragged["peak_bytes"] = serde_json::json!([]);
        let err = with_history(ragged).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid .tmsnap: history.peak_bytes has 0 entries but history.traceback has 1"
        );
    }

    #[test]
    fn filtered_snapshots_write_only_what_they_use() {
        let snap = sample().filter_traces(&[Filter::new(true, "/src/*").into()]);
        let back = decode(&encode(&snap)).unwrap();
        assert_eq!(back.traces().len(), 2);
        // <unknown> and ?? are gone with the trace that used them.
        assert_eq!(back.tables().string_count(), 3);
        assert_eq!(back.tables().frame_count(), 2);
        assert_eq!(
            back.statistics(KeyType::Lineno, false).unwrap(),
            snap.statistics(KeyType::Lineno, false).unwrap()
        );
    }

    #[test]
    fn newer_versions_are_refused_with_a_clear_message() {
        let mut bytes = encode(&sample());
        bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
        let err = decode(&bytes).unwrap_err();
        assert!(matches!(err, TmsnapError::TooNew { found: 3 }));
        assert!(err.to_string().contains("version 3 is newer"), "{err}");
        bytes[8..12].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(decode(&bytes), Err(TmsnapError::VersionZero)));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode(&sample());
        for len in 0..bytes.len() {
            let Err(err) = decode(&bytes[..len]) else {
                panic!("a file truncated to {len} bytes decoded");
            };
            if len >= HEADER_LEN {
                assert!(matches!(err, TmsnapError::Decode { .. }), "{len}: {err}");
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = encode(&sample());
        bytes.push(0xc0);
        let err = decode(&bytes).unwrap_err().to_string();
        assert!(
            err.contains("1 unexpected bytes after the snapshot"),
            "{err}"
        );
    }

    /// Hand-written bodies, to reach the checks an honest writer never trips.
    fn body(value: serde_json::Value) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend(rmp_serde::to_vec_named(&value).unwrap());
        out
    }

    fn valid_json() -> serde_json::Value {
        serde_json::json!({
            "traceback_limit": 1,
            "strings": ["a.rs"],
            "frames": {"filename": [0], "lineno": [3], "function": [null]},
            "tracebacks": {"length": [1], "frames": [0], "total_nframe": [1]},
            "traces": {"domain": [0], "size": [10], "traceback": [0]},
        })
    }

    #[test]
    fn dangling_ids_and_ragged_columns_are_named() {
        let cases: &[(&str, serde_json::Value, &str)] = &[
            (
                "/traces/traceback/0",
                5.into(),
                "trace 0 refers to traceback 5 but the file has 1 tracebacks",
            ),
            (
                "/tracebacks/frames/0",
                9.into(),
                "traceback 0 refers to frame 9 but the file has 1 frames",
            ),
            (
                "/frames/filename/0",
                3.into(),
                "frames.filename[0] refers to string 3 but the file has 1 strings",
            ),
            (
                "/frames/function/0",
                3.into(),
                "frames.function[0] refers to string 3 but the file has 1 strings",
            ),
            (
                "/traces/domain",
                serde_json::json!([]),
                "traces.domain has 0 entries but traces.size has 1",
            ),
            (
                "/tracebacks/length/0",
                2.into(),
                "tracebacks.length adds up to 2 frames but tracebacks.frames has 1",
            ),
            (
                "/frames/lineno",
                serde_json::json!([1, 2]),
                "frames.lineno has 2 entries but frames.filename has 1",
            ),
        ];
        assert!(decode(&body(valid_json())).is_ok());
        for (pointer, value, message) in cases {
            let mut json = valid_json();
            *json.pointer_mut(pointer).unwrap() = value.clone();
            let err = decode(&body(json)).unwrap_err().to_string();
            assert_eq!(err, format!("invalid .tmsnap: {message}"), "{pointer}");
        }
    }

    #[test]
    fn wrong_types_name_the_offset() {
        let mut json = valid_json();
        json["traces"]["size"] = serde_json::json!(["ten"]);
        let err = decode(&body(json)).unwrap_err();
        let TmsnapError::Decode { offset, .. } = err else {
            panic!("{err}");
        };
        assert!(offset > HEADER_LEN as u64);
    }

    #[test]
    fn deep_nesting_in_unknown_fields_is_refused() {
        // An unknown field holding 100,000 nested one-element arrays.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.push(0x81); // map of one entry
        bytes.push(0xa1); // str of length 1
        bytes.push(b'x');
        bytes.extend(std::iter::repeat_n(0x91u8, 100_000)); // nested arrays of one
        bytes.push(0x01);
        let err = decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("depth limit"), "{err}");
    }

    #[test]
    fn huge_declared_lengths_fail_fast_without_huge_allocations() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.push(0x81);
        bytes.extend_from_slice(b"\xa7strings");
        // An array of 2^32 - 1 strings, then one string of 2^32 - 1 bytes.
        bytes.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
        bytes.extend_from_slice(&[0xdb, 0xff, 0xff, 0xff, 0xff]);
        let err = decode(&bytes).unwrap_err().to_string();
        assert!(err.starts_with("corrupt .tmsnap body at byte"), "{err}");
    }
}
