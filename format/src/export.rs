//! Exports: a table ([`View`]) as CSV, and a traceback tree
//! ([`FlameTree`]) as folded stacks, the input of `flamegraph.pl` and
//! inferno.
//!
//! The CSV (docs/FORMAT.md, "stats CSV") is written row by row by one
//! function, from the viewer's table ([`write_csv`]) or from the command
//! line's statistics ([`write_statistics_csv`], [`write_diffs_csv`]), so a
//! table saved from the viewer and one printed by the CLI read the same.
//!
//! Folded stacks are one line per path of the tree that holds memory of
//! its own: the frames from the oldest, separated by `;`, a space, and the
//! bytes (or blocks). [`write_folded_diff`] writes two numbers per line,
//! old then new, the input of `flamegraph.pl`'s differential mode
//! (`difffolded.pl`'s output, inferno's `inferno-diff-folded`).
//!
//! ```
//! use tracemalloc_format::Snapshot;
//! use tracemalloc_format::export::write_folded;
//! use tracemalloc_format::flame::{FlameTree, FlameWeight};
//!
//! let s = Snapshot::from_raw_traces(
//!     5,
//!     [(0, 64, &[("leak.py", 9), ("main.py", 1)][..], None), (0, 8, &[("main.py", 1)][..], None)],
//! )?;
//! let mut out = Vec::new();
//! write_folded(&FlameTree::new(&s, None, FlameWeight::Bytes)?, &mut out)?;
//! assert_eq!(String::from_utf8(out)?, "main.py:1 8\nmain.py:1;leak.py:9 64\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::flame::FlameTree;
use crate::model::{Frame, FrameRef, Traceback};
use crate::rows::View;
use crate::stats::{KeyType, Statistic, StatisticDiff};

/// Quotes a CSV field when it needs it (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes the CSV header: `source,filename,lineno,function,size,count,average`,
/// and `size_diff,count_diff` when comparing.
fn write_csv_header(out: &mut dyn Write, comparing: bool) -> io::Result<()> {
    write!(out, "source,filename,lineno,function,size,count,average")?;
    if comparing {
        write!(out, ",size_diff,count_diff")?;
    }
    writeln!(out)
}

/// One group's amounts, as a CSV row writes them.
struct CsvAmounts {
    size: u64,
    count: u64,
    average: f64,
    diff: Option<(i64, i64)>,
}

/// Writes one CSV row: every frame's `file:line`, most recent first,
/// joined by ` <- `; the most recent frame's file, line and function; the
/// amounts. `source` is a buffer reused between rows.
///
/// With `functions` (traceback keys, whose frames are told apart by their
/// function too), a frame whose function is known is `file:line in
/// function`: two tracebacks that differ only in an older frame's function
/// (several functions at line 0 of one file, closures on one line) would
/// otherwise write the same source.
fn write_csv_row<'a>(
    out: &mut dyn Write,
    frames: impl Iterator<Item = FrameRef<'a>>,
    functions: bool,
    amounts: &CsvAmounts,
    source: &mut String,
) -> io::Result<()> {
    source.clear();
    let mut first = None;
    for (i, frame) in frames.enumerate() {
        if i == 0 {
            first = Some(frame);
        } else {
            source.push_str(" <- ");
        }
        // Writing to a String cannot fail.
        let _ = write!(source, "{frame}");
        if let (true, Some(function)) = (functions, frame.function) {
            let _ = write!(source, " in {function}");
        }
    }
    write!(
        out,
        "{},{},{},{},{},{},{:.1}",
        csv_field(source),
        csv_field(first.map_or("", |f| f.filename)),
        first.map_or(0, |f| f.lineno),
        csv_field(first.and_then(|f| f.function).unwrap_or("")),
        amounts.size,
        amounts.count,
        amounts.average
    )?;
    if let Some((size_diff, count_diff)) = amounts.diff {
        write!(out, ",{size_diff},{count_diff}")?;
    }
    writeln!(out)
}

/// Writes the rows `order` (indices into `view.rows()`, in the order to
/// write) as CSV (docs/FORMAT.md, "stats CSV"):
/// `source,filename,lineno,function,size,count,average`, and
/// `size_diff,count_diff` when the view compares two snapshots. The
/// source is every frame's `file:line`, most recent first, joined by
/// ` <- `, with ` in function` after each frame whose function is known
/// when the key is the traceback; filename, line and function are the most
/// recent frame's.
///
/// # Panics
/// If an index of `order` is out of range.
pub fn write_csv(view: &View, order: &[u32], out: &mut dyn Write) -> io::Result<()> {
    let comparing = view.is_comparison();
    write_csv_header(out, comparing)?;
    let mut source = String::new();
    for &index in order {
        let index = index as usize;
        let row = view.rows()[index];
        let amounts = CsvAmounts {
            size: row.size,
            count: row.count,
            average: row.average(),
            diff: comparing.then_some((row.size_diff, row.count_diff)),
        };
        let functions = view.key_type() == KeyType::Traceback;
        write_csv_row(out, view.frames(index), functions, &amounts, &mut source)?;
    }
    Ok(())
}

/// Writes rows keyed by owned tracebacks (the command line's lists).
fn write_traceback_rows<'a>(
    out: &mut dyn Write,
    key_type: KeyType,
    comparing: bool,
    rows: impl Iterator<Item = (&'a Traceback, CsvAmounts)>,
) -> io::Result<()> {
    write_csv_header(out, comparing)?;
    let functions = key_type == KeyType::Traceback;
    let mut source = String::new();
    for (traceback, amounts) in rows {
        let frames = traceback.frames.iter().map(Frame::as_ref);
        write_csv_row(out, frames, functions, &amounts, &mut source)?;
    }
    Ok(())
}

/// Writes statistics ([`Snapshot::statistics`](crate::Snapshot::statistics))
/// grouped by `key_type` as CSV, in the same columns as [`write_csv`].
pub fn write_statistics_csv(
    stats: &[Statistic],
    key_type: KeyType,
    out: &mut dyn Write,
) -> io::Result<()> {
    let rows = stats.iter().map(|s| {
        let amounts = CsvAmounts {
            size: s.size,
            count: s.count,
            average: s.average(),
            diff: None,
        };
        (&s.traceback, amounts)
    });
    write_traceback_rows(out, key_type, false, rows)
}

/// Writes differences
/// ([`Snapshot::compare_to`](crate::Snapshot::compare_to)) grouped by
/// `key_type` as CSV, in the same columns as [`write_csv`] of a comparison.
pub fn write_diffs_csv(
    diffs: &[StatisticDiff],
    key_type: KeyType,
    out: &mut dyn Write,
) -> io::Result<()> {
    let rows = diffs.iter().map(|d| {
        let amounts = CsvAmounts {
            size: d.size,
            count: d.count,
            average: d.average(),
            diff: Some((d.size_diff, d.count_diff)),
        };
        (&d.traceback, amounts)
    });
    write_traceback_rows(out, key_type, true, rows)
}

/// A frame's name in folded stacks: `function (file:line)`, or `file:line`
/// where the function is unknown (CPython). `;` separates frames there, so
/// one inside a name (Rust's `[u8; 4]`) becomes `,`; line breaks become
/// spaces.
pub fn folded_frame_name(frame: FrameRef<'_>) -> String {
    let name = match frame.function {
        Some(function) => format!("{function} ({}:{})", frame.filename, frame.lineno),
        None => format!("{}:{}", frame.filename, frame.lineno),
    };
    name.replace(';', ",").replace(['\n', '\r'], " ")
}

/// Every path of the tree with memory of its own, as folded text, with
/// that memory (in the tree's weight), sorted by text.
fn folded_lines(tree: &FlameTree) -> Vec<(String, u64)> {
    let own = tree.self_values();
    let mut lines = Vec::new();
    // The text of the path to the node at each depth.
    let mut prefix_len: Vec<usize> = vec![0; tree.max_depth() as usize + 1];
    let mut path = String::new();
    for (index, &value) in own.iter().enumerate().skip(1) {
        let depth = tree.node(index).depth as usize;
        path.truncate(prefix_len[depth - 1]);
        if depth > 1 {
            path.push(';');
        }
        if let Some(frame) = tree.frame(index) {
            path.push_str(&folded_frame_name(frame));
        }
        prefix_len[depth] = path.len();
        if value > 0 {
            lines.push((path.clone(), value));
        }
    }
    lines.sort();
    lines
}

/// Writes the tree as folded stacks: `frame;frame;frame value` per path
/// with memory of its own, oldest frame first, sorted by text.
pub fn write_folded(tree: &FlameTree, out: &mut dyn Write) -> io::Result<()> {
    for (path, value) in folded_lines(tree) {
        writeln!(out, "{path} {value}")?;
    }
    Ok(())
}

/// Writes two trees (an old and a new snapshot's) as differential folded
/// stacks: `frame;frame old new` for every path with memory of its own in
/// either, sorted by text.
pub fn write_folded_diff(old: &FlameTree, new: &FlameTree, out: &mut dyn Write) -> io::Result<()> {
    let mut merged: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (path, value) in folded_lines(old) {
        merged.entry(path).or_default().0 += value;
    }
    for (path, value) in folded_lines(new) {
        merged.entry(path).or_default().1 += value;
    }
    for (path, (old, new)) in merged {
        writeln!(out, "{path} {old} {new}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flame::FlameWeight;
    use crate::rows::Grouping;
    use crate::{KeyType, Metadata, Snapshot, SnapshotBuilder};

    fn snapshot(leak: u64) -> Snapshot {
        let mut b = SnapshotBuilder::new(5);
        let main = b.intern_frame("src/main.rs", 3, Some("app::main")).unwrap();
        let put = b
            .intern_frame("src/cache.rs", 8, Some("<app::Cache as Put<[u8; 4]>>::put"))
            .unwrap();
        let cfg = b.intern_frame("a,b.py", 1, None).unwrap();
        let leak_tb = b.intern_traceback(&[put, main], None).unwrap();
        let main_tb = b.intern_traceback(&[main], None).unwrap();
        let cfg_tb = b.intern_traceback(&[cfg], None).unwrap();
        b.push_trace(0, leak, leak_tb).unwrap();
        b.push_trace(0, 16, main_tb).unwrap();
        b.push_trace(0, 3, cfg_tb).unwrap();
        b.finish(Metadata::default())
    }

    #[test]
    fn csv_has_the_clis_columns() {
        let new = snapshot(100);
        let view = View::plain(&Grouping::new(&new, KeyType::Traceback, false).unwrap());
        let order: Vec<u32> = (0..view.len() as u32).collect();
        let mut out = Vec::new();
        write_csv(&view, &order, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "source,filename,lineno,function,size,count,average\n\
             src/cache.rs:8 in <app::Cache as Put<[u8; 4]>>::put <- src/main.rs:3 in app::main,\
             src/cache.rs,8,<app::Cache as Put<[u8; 4]>>::put,100,1,100.0\n\
             src/main.rs:3 in app::main,src/main.rs,3,app::main,16,1,16.0\n\
             \"a,b.py:1\",\"a,b.py\",1,,3,1,3.0\n"
        );
        let old = snapshot(40);
        let view = View::compare(
            &Grouping::new(&new, KeyType::Filename, false).unwrap(),
            &Grouping::new(&old, KeyType::Filename, false).unwrap(),
        );
        let mut out = Vec::new();
        write_csv(&view, &[0], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "source,filename,lineno,function,size,count,average,size_diff,count_diff\n\
             src/cache.rs:0,src/cache.rs,0,,100,1,100.0,60,0\n"
        );
    }

    #[test]
    fn csv_fields_are_quoted_when_they_need_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    /// The command line writes statistics, the viewer a view: the same
    /// groups in the same order give the same bytes.
    #[test]
    fn statistics_and_views_write_the_same_csv() {
        let new = snapshot(100);
        let old = snapshot(40);
        for key_type in [KeyType::Filename, KeyType::Lineno, KeyType::Traceback] {
            let stats = new.statistics(key_type, false).unwrap();
            let mut from_stats = Vec::new();
            write_statistics_csv(&stats, key_type, &mut from_stats).unwrap();
            let view = View::plain(&Grouping::new(&new, key_type, false).unwrap());
            let order: Vec<u32> = stats
                .iter()
                .map(|s| view.position_of(&s.traceback).unwrap() as u32)
                .collect();
            let mut from_view = Vec::new();
            write_csv(&view, &order, &mut from_view).unwrap();
            assert_eq!(
                String::from_utf8(from_stats).unwrap(),
                String::from_utf8(from_view).unwrap()
            );

            let diffs = new.compare_to(&old, key_type, false).unwrap();
            let mut from_diffs = Vec::new();
            write_diffs_csv(&diffs, key_type, &mut from_diffs).unwrap();
            let view = View::compare(
                &Grouping::new(&new, key_type, false).unwrap(),
                &Grouping::new(&old, key_type, false).unwrap(),
            );
            let order: Vec<u32> = diffs
                .iter()
                .map(|d| view.position_of(&d.traceback).unwrap() as u32)
                .collect();
            let mut from_view = Vec::new();
            write_csv(&view, &order, &mut from_view).unwrap();
            let text = String::from_utf8(from_diffs).unwrap();
            assert!(text.contains(",60,0\n"), "{text}");
            assert_eq!(text, String::from_utf8(from_view).unwrap());
        }
    }

    #[test]
    fn folded_stacks_for_flamegraph_pl() {
        let tree = FlameTree::new(&snapshot(100), None, FlameWeight::Bytes).unwrap();
        let mut out = Vec::new();
        write_folded(&tree, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b.py:1 3\n\
             app::main (src/main.rs:3) 16\n\
             app::main (src/main.rs:3);<app::Cache as Put<[u8, 4]>>::put (src/cache.rs:8) 100\n"
        );
        let old = FlameTree::new(&snapshot(40), None, FlameWeight::Bytes).unwrap();
        let gone = Snapshot::from_raw_traces(1, [(0, 5, &[("x.py", 2)][..], None)]).unwrap();
        let gone = FlameTree::new(&gone, None, FlameWeight::Bytes).unwrap();
        let mut out = Vec::new();
        write_folded_diff(&gone, &old, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b.py:1 0 3\n\
             app::main (src/main.rs:3) 0 16\n\
             app::main (src/main.rs:3);<app::Cache as Put<[u8, 4]>>::put (src/cache.rs:8) 0 40\n\
             x.py:2 5 0\n"
        );
        let blocks = FlameTree::new(&snapshot(100), None, FlameWeight::Blocks).unwrap();
        let mut out = Vec::new();
        write_folded(&blocks, &mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with("(src/cache.rs:8) 1\n")
        );
    }
}
