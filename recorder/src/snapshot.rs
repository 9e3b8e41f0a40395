//! Taking a snapshot: copying the live blocks consistently, symbolizing
//! their tracebacks, and building a `tracemalloc_format::Snapshot`.

use std::sync::atomic::Ordering;

use tracemalloc_format::{
    Frame, FrameId, HistoryRow, Metadata, Snapshot, SnapshotBuilder, Timestamp, Traceback,
    TracebackId,
};

use crate::Error;
use crate::stacks::STORE;
use crate::state::{self, CONTROL, EPOCH};
use crate::symbolize::{self, SymFrame};
use crate::table::{self, AllShards, Copied};
use crate::tls::untraced;

/// What wrote the snapshots.
const PRODUCER: &str = concat!("tracemalloc-rs ", env!("CARGO_PKG_VERSION"));

/// See [`crate::take_snapshot`].
pub(crate) fn take_snapshot() -> Result<Snapshot, Error> {
    crate::env::init();
    untraced(|| {
        let _control = CONTROL.lock();
        if !state::is_tracing() {
            return Err(Error::NotTracing);
        }
        // Every shard locked at once: no block can be added or removed
        // meanwhile, so the copy and the total agree exactly.
        let history = state::history_on(state::hot_config());
        let (blocks, current, rows) = {
            let mut shards = AllShards::lock();
            let frozen = crate::thread_table::freeze_all();
            let count: usize = shards.iter_mut().map(|d| d.len()).sum::<usize>() + frozen.len();
            let mut blocks = Vec::with_capacity(count);
            let mut current = frozen.current();
            frozen.copy_into(&mut blocks);
            for data in shards.iter_mut() {
                data.copy_into(&mut blocks);
                current += data.current;
            }
            // The tables' counts are kept, not counted: checked here in
            // every debug build's test.
            debug_assert_eq!(blocks.len(), count, "the tables' block counts");
            // Each traceback's history, read once here, where every
            // thread's own counters can be read (the registry is locked),
            // so that the rows agree with the tracebacks symbolized for
            // them.
            let rows = history.then(|| {
                // Memory has not fallen since its latest maximum if the
                // peak set is still to be copied: the live set is the peak
                // set.
                crate::history::capture_peak(frozen.tables());
                crate::history::read_all(STORE.count_unlocked(), frozen.tables())
            });
            (blocks, current, rows)
        };
        let (_, peak) = state::traced_memory();
        let peak = peak.max(current);
        build(&blocks, current, peak, rows)
    })
}

/// Builds the snapshot of `blocks`. The caller holds the control lock, so
/// the traceback store is not cleared meanwhile.
/// With `history` (each traceback's counters), the tracebacks with a
/// history are symbolized too (also those whose blocks were all freed), and
/// the snapshot carries their rows.
fn build(
    blocks: &[Copied],
    current: u64,
    peak: u64,
    history: Option<Vec<(u32, crate::history::Read)>>,
) -> Result<Snapshot, Error> {
    let nframe = state::nframe();
    let keep_internal = state::keep_internal();
    // The distinct tracebacks, and their raw frames.
    let tb_count = STORE.count() as usize;
    let mut used = vec![false; tb_count];
    let mut ids = Vec::new();
    for b in blocks {
        if let Some(u) = used.get_mut(b.traceback as usize)
            && !*u
        {
            *u = true;
            ids.push(b.traceback);
        }
    }
    let has_history = history.is_some();
    let rows = history.unwrap_or_default();
    for &(id, _) in &rows {
        if let Some(u) = used.get_mut(id as usize)
            && !*u
        {
            *u = true;
            ids.push(id);
        }
    }
    let mut raw: Vec<(u32, Vec<usize>, bool)> = Vec::with_capacity(ids.len());
    for &id in &ids {
        let mut frames = Vec::new();
        let complete = STORE.read(id, &mut frames);
        raw.push((id, frames, complete));
    }
    let mut addrs: Vec<usize> = raw.iter().flat_map(|(_, f, _)| f.iter().copied()).collect();
    addrs.sort_unstable();
    addrs.dedup();

    symbolize::with_resolved(addrs, |symbols| {
        let mut builder = SnapshotBuilder::new(nframe);
        builder.reserve_traces(blocks.len());
        // Per snapshot: the frame id of each resolved frame (by address),
        // and the new traceback id of each stored one.
        let mut frame_ids: std::collections::HashMap<*const SymFrame, FrameId> =
            std::collections::HashMap::new();
        let mut tb_map: Vec<Option<TracebackId>> = vec![None; tb_count];
        let mut expanded = Vec::new();
        let mut ids_buf = Vec::new();
        for (id, frames, complete) in &raw {
            let total = symbols.expand(
                frames,
                *complete,
                nframe as usize,
                keep_internal,
                &mut expanded,
            );
            ids_buf.clear();
            for f in &expanded {
                let key: *const SymFrame = *f;
                let fid = match frame_ids.get(&key) {
                    Some(&fid) => fid,
                    None => {
                        let fid = builder.intern_frame(
                            f.file
                                .as_deref()
                                .unwrap_or(tracemalloc_format::UNKNOWN_FILENAME),
                            f.line,
                            f.function.as_deref(),
                        )?;
                        frame_ids.insert(key, fid);
                        fid
                    }
                };
                ids_buf.push(fid);
            }
            let tb = builder.intern_traceback(&ids_buf, total)?;
            tb_map[*id as usize] = Some(tb);
        }
        for b in blocks {
            if let Some(Some(tb)) = tb_map.get(b.traceback as usize) {
                builder.push_trace(b.domain, b.size, *tb)?;
            }
        }
        if has_history {
            builder.set_history(crate::history::peak_timestamp());
            push_history_rows(&mut builder, &rows, &tb_map)?;
        }
        Ok(builder.finish(metadata(current, peak)))
    })
}

/// Adds one history row per snapshot traceback, in the order of their ids.
/// Raw tracebacks that become the same one once symbolized and trimmed
/// (two return addresses on one line, frames past the limit) add up, in
/// the counters' block units, and their sum is rounded to whole blocks.
fn push_history_rows(
    builder: &mut SnapshotBuilder,
    rows: &[(u32, crate::history::Read)],
    tb_map: &[Option<TracebackId>],
) -> Result<(), Error> {
    let mut merged: Vec<Option<(TracebackId, crate::history::Read)>> = Vec::new();
    for (id, read) in rows {
        let Some(Some(tb)) = tb_map.get(*id as usize) else {
            continue;
        };
        if merged.len() <= tb.index() {
            merged.resize(tb.index() + 1, None);
        }
        let (_, sum) = merged[tb.index()].get_or_insert_with(|| (*tb, Default::default()));
        sum.allocated_units = sum.allocated_units.saturating_add(read.allocated_units);
        sum.allocated_bytes = sum.allocated_bytes.saturating_add(read.allocated_bytes);
        sum.freed_units = sum.freed_units.saturating_add(read.freed_units);
        sum.temporary_units = sum.temporary_units.saturating_add(read.temporary_units);
        sum.temporary_bytes = sum.temporary_bytes.saturating_add(read.temporary_bytes);
        sum.peak_units = sum.peak_units.saturating_add(read.peak_units);
        sum.peak_bytes = sum.peak_bytes.saturating_add(read.peak_bytes);
    }
    for (tb, sum) in merged.into_iter().flatten() {
        let blocks = tracemalloc_format::blocks_of_units;
        builder.push_history(HistoryRow {
            allocated_blocks: blocks(sum.allocated_units),
            allocated_bytes: sum.allocated_bytes,
            freed_blocks: blocks(sum.freed_units),
            temporary_blocks: blocks(sum.temporary_units),
            temporary_bytes: sum.temporary_bytes,
            peak_blocks: blocks(sum.peak_units),
            peak_bytes: sum.peak_bytes,
            ..HistoryRow::new(0, tb)
        })?;
    }
    Ok(())
}

fn metadata(current: u64, peak: u64) -> Metadata {
    Metadata {
        format_version: Some(tracemalloc_format::tmsnap::FORMAT_VERSION),
        producer: Some(PRODUCER.to_owned()),
        pid: Some(std::process::id()),
        command_line: Some(
            std::env::args_os()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        ),
        timestamp: Some(Timestamp::now()),
        traced_current: Some(current),
        traced_peak: Some(peak),
        tracemalloc_memory: Some(state::tracemalloc_memory()),
        sampling_rate: state::sample_mean(),
    }
}

/// See [`crate::get_object_traceback`].
pub(crate) fn object_traceback(addr: usize) -> Option<Traceback> {
    untraced(|| {
        let _control = CONTROL.lock();
        let epoch = EPOCH.load(Ordering::Acquire);
        if !state::is_tracing_epoch(epoch) {
            return None;
        }
        let entry = {
            let shards = AllShards::lock();
            let frozen = crate::thread_table::freeze_all();
            let found = frozen.get(addr);
            drop(frozen);
            drop(shards);
            match found {
                Some(entry) => entry,
                None => table::shard_of(addr).data.lock().get(0, addr)?,
            }
        };
        let mut frames = Vec::new();
        let complete = STORE.read(entry.traceback, &mut frames);
        let nframe = state::nframe() as usize;
        let keep_internal = state::keep_internal();
        symbolize::with_resolved(frames.iter().copied(), |symbols| {
            let mut expanded = Vec::new();
            let total = symbols.expand(&frames, complete, nframe, keep_internal, &mut expanded);
            let mut frames: Vec<Frame> = expanded
                .iter()
                .map(|f| Frame {
                    filename: f
                        .file
                        .clone()
                        .unwrap_or_else(|| tracemalloc_format::UNKNOWN_FILENAME.into()),
                    lineno: f.line,
                    function: f.function.clone(),
                })
                .collect();
            if frames.is_empty() {
                frames.push(Frame::new(tracemalloc_format::UNKNOWN_FILENAME, 0));
            }
            Some(Traceback {
                frames,
                total_nframe: total,
            })
        })
    })
}
