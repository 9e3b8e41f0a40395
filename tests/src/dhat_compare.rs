//! Per allocation site, what dhat-rs counted against what the recorder
//! counted for the same program: the blocks and bytes allocated in all,
//! live at the global peak (DHAT's t-gmax) and live at the end (t-end).
//!
//! A site is the user's line that allocated: the most recent frame of the
//! backtrace that is neither the standard library's nor a profiler's
//! (`tracemalloc_format::trim::classify_frame`, the rule the recorder and
//! the viewer trim by), named by its file's name and line (`heap.rs:9`).
//! dhat-rs shortens paths to their last three components and the recorder
//! keeps them whole, so only the file name is compared.
//!
//! On the recorder's side the totals are the allocation history's
//! allocated blocks and bytes, the peak its peak blocks and bytes, and the
//! end the snapshot's live traces.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use tracemalloc_format::dhat::{DhatTool, parse_frame};
use tracemalloc_format::trim::{FrameClass, classify_frame};
use tracemalloc_format::{FrameRef, KeyType, Snapshot};

/// What went wrong reading a profile.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The DHAT file is not JSON of the expected shape.
    #[error("not a dhat-rs heap profile: {0}")]
    Json(#[from] serde_json::Error),
    /// A program point names a frame past the frame table.
    #[error("program point {pp} names frame {frame}, but the frame table has {len}")]
    BadFrame {
        /// The program point's index.
        pp: usize,
        /// The frame index it names.
        frame: usize,
        /// The frame table's length.
        len: usize,
    },
    /// The snapshot was recorded without allocation history.
    #[error("the snapshot has no allocation history (Config::history)")]
    NoHistory,
    /// The snapshot's statistics could not be computed.
    #[error("the snapshot's statistics: {0}")]
    Analysis(String),
}

/// The counts of one site. Each pair is `(blocks, bytes)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SiteCounts {
    /// Blocks and bytes allocated in all.
    pub total: (u64, u64),
    /// Blocks and bytes live at the global peak.
    pub peak: (u64, u64),
    /// Blocks and bytes live at the end.
    pub end: (u64, u64),
}

impl SiteCounts {
    /// Whether every count is 0.
    pub fn is_empty(&self) -> bool {
        *self == SiteCounts::default()
    }
}

/// Sites by name (`file.rs:line`), sorted by name.
pub type Sites = BTreeMap<String, SiteCounts>;

/// The name of the site a backtrace (most recent frame first) belongs to:
/// its first user frame, or `(no user frame)`.
fn site_of<'a>(frames: impl IntoIterator<Item = FrameRef<'a>>) -> String {
    frames
        .into_iter()
        .find(|f| classify_frame(*f) == FrameClass::User)
        .map_or_else(
            || "(no user frame)".to_owned(),
            |f| {
                let name = f.filename.rsplit(['/', '\\']).next().unwrap_or(f.filename);
                format!("{name}:{}", f.lineno)
            },
        )
}

/// A program point of a dhat-rs heap profile, with the fields compared.
#[derive(Deserialize)]
struct RawPp {
    tb: u64,
    tbk: u64,
    gb: u64,
    gbk: u64,
    eb: u64,
    ebk: u64,
    fs: Vec<usize>,
}

/// The parts of a dhat-rs heap profile that are compared.
#[derive(Deserialize)]
struct RawProfile {
    pps: Vec<RawPp>,
    ftbl: Vec<String>,
}

/// Adds `(blocks, bytes)` to a pair.
fn add(pair: &mut (u64, u64), blocks: u64, bytes: u64) {
    pair.0 += blocks;
    pair.1 += bytes;
}

/// The sites of a dhat-rs heap profile (`dhat-heap.json`): its program
/// points' `tbk`/`tb`, `gbk`/`gb` and `ebk`/`eb`, summed per site.
pub fn dhat_sites(json: &[u8]) -> Result<Sites, CompareError> {
    let raw: RawProfile = serde_json::from_slice(json)?;
    let mut sites = Sites::new();
    for (pp, point) in raw.pps.iter().enumerate() {
        let mut frames = Vec::with_capacity(point.fs.len());
        for &index in &point.fs {
            let text = raw.ftbl.get(index).ok_or(CompareError::BadFrame {
                pp,
                frame: index,
                len: raw.ftbl.len(),
            })?;
            if text == "[root]" {
                continue;
            }
            let parsed = parse_frame(text, DhatTool::DhatRs);
            frames.push(FrameRef {
                filename: parsed.filename,
                lineno: parsed.lineno,
                function: parsed.function,
            });
        }
        let site = sites.entry(site_of(frames)).or_default();
        add(&mut site.total, point.tbk, point.tb);
        add(&mut site.peak, point.gbk, point.gb);
        add(&mut site.end, point.ebk, point.eb);
    }
    Ok(sites)
}

/// The sites of a snapshot recorded with allocation history.
pub fn our_sites(snapshot: &Snapshot) -> Result<Sites, CompareError> {
    let history = snapshot.history().ok_or(CompareError::NoHistory)?;
    let mut sites = Sites::new();
    for row in history.rows() {
        let traceback = snapshot.traceback(row.traceback);
        let frames = traceback.frames.iter().map(|f| FrameRef {
            filename: &f.filename,
            lineno: f.lineno,
            function: f.function.as_deref(),
        });
        let site = sites.entry(site_of(frames)).or_default();
        add(&mut site.total, row.allocated_blocks, row.allocated_bytes);
        add(&mut site.peak, row.peak_blocks, row.peak_bytes);
    }
    let live = snapshot
        .statistics(KeyType::Traceback, false)
        .map_err(|e| CompareError::Analysis(e.to_string()))?;
    for group in live {
        let frames = group.traceback.frames.iter().map(|f| FrameRef {
            filename: &f.filename,
            lineno: f.lineno,
            function: f.function.as_deref(),
        });
        add(
            &mut sites.entry(site_of(frames)).or_default().end,
            group.count,
            group.size,
        );
    }
    Ok(sites)
}

/// The two profiles' sites side by side, as a Markdown table: one row per
/// site either profile has counts for, sorted by name; each column
/// `blocks/bytes` under dhat-rs, then under the recorder, with `≠` where
/// they differ.
pub fn table(dhat: &Sites, ours: &Sites) -> String {
    let mut out = String::from(
        "| site | total, dhat-rs | total, ours | t-gmax, dhat-rs | t-gmax, ours | t-end, dhat-rs | t-end, ours |\n\
         |---|--:|--:|--:|--:|--:|--:|\n",
    );
    let names: std::collections::BTreeSet<&String> = dhat.keys().chain(ours.keys()).collect();
    let pair = |p: (u64, u64)| format!("{}/{}", p.0, p.1);
    for name in names {
        let d = dhat.get(name).copied().unwrap_or_default();
        let o = ours.get(name).copied().unwrap_or_default();
        if d.is_empty() && o.is_empty() {
            continue;
        }
        let mark = |a: (u64, u64), b: (u64, u64)| if a == b { "" } else { " ≠" };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {name} | {} | {}{} | {} | {}{} | {} | {}{} |",
            pair(d.total),
            pair(o.total),
            mark(d.total, o.total),
            pair(d.peak),
            pair(o.peak),
            mark(d.peak, o.peak),
            pair(d.end),
            pair(o.end),
            mark(d.end, o.end),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_is_the_first_user_frame_by_file_name_and_line() {
        let json = br#"{"pps":[
            {"tb":600,"tbk":2,"gb":400,"gbk":1,"eb":0,"ebk":0,"fs":[1,2,3]},
            {"tb":10,"tbk":10,"gb":0,"gbk":0,"eb":0,"ebk":0,"fs":[4]},
            {"tb":5,"tbk":1,"gb":5,"gbk":1,"eb":5,"ebk":1,"fs":[2,4]}],
            "ftbl":["[root]",
              "0x1: alloc::raw_vec::RawVec<T,A>::grow_one (src/raw_vec/mod.rs:10:5)",
              "0x2: <u8 as alloc::vec::spec_from_elem::SpecFromElem>::from_elem (src/vec/spec_from_elem.rs:50:5)",
              "0x3: demo::main (tests/src/demo.rs:39:22)",
              "0x4: demo::other (src/deep/other.rs:7:9)"]}"#;
        let sites = dhat_sites(json).unwrap();
        let names: Vec<&str> = sites.keys().map(String::as_str).collect();
        assert_eq!(names, ["demo.rs:39", "other.rs:7"]);
        assert_eq!(
            sites["demo.rs:39"],
            SiteCounts {
                total: (2, 600),
                peak: (1, 400),
                end: (0, 0)
            }
        );
        // Two program points of one site add up.
        assert_eq!(sites["other.rs:7"].total, (11, 15));
        assert_eq!(sites["other.rs:7"].end, (1, 5));
    }

    #[test]
    fn a_frame_past_the_table_is_an_error() {
        let json = br#"{"pps":[{"tb":1,"tbk":1,"gb":0,"gbk":0,"eb":0,"ebk":0,"fs":[3]}],"ftbl":["[root]"]}"#;
        assert!(matches!(
            dhat_sites(json),
            Err(CompareError::BadFrame {
                pp: 0,
                frame: 3,
                len: 1
            })
        ));
    }

    #[test]
    fn the_table_marks_the_columns_that_differ() {
        let mut dhat = Sites::new();
        let mut ours = Sites::new();
        let same = SiteCounts {
            total: (1, 8),
            peak: (1, 8),
            end: (0, 0),
        };
        dhat.insert("a.rs:1".into(), same);
        ours.insert("a.rs:1".into(), same);
        dhat.insert(
            "b.rs:2".into(),
            SiteCounts {
                total: (2, 600),
                ..SiteCounts::default()
            },
        );
        let table = table(&dhat, &ours);
        assert!(
            table.contains("| a.rs:1 | 1/8 | 1/8 | 1/8 | 1/8 | 0/0 | 0/0 |\n"),
            "{table}"
        );
        assert!(
            table.contains("| b.rs:2 | 2/600 | 0/0 ≠ | 0/0 | 0/0 | 0/0 | 0/0 |\n"),
            "{table}"
        );
    }
}
