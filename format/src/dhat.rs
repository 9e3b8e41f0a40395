//! Importing DHAT heap profiles: the JSON files written by dhat-rs
//! (`dhat-heap.json`, from `dhat::Profiler::new_heap()`) and by Valgrind's
//! DHAT (`valgrind --tool=dhat`).
//!
//! A DHAT profile is not a snapshot: it aggregates, per program point (an
//! allocation stack), how many blocks and bytes were live at two moments,
//! the global peak (`t-gmax`) and the end (`t-end`), besides totals over the
//! whole run. Each of those moments *is* a snapshot, which is what this
//! module makes of it: every program point becomes as many traces as it had
//! live blocks at the chosen [`DhatPoint`], its bytes split evenly among them
//! (DHAT does not keep individual sizes), so sizes and counts add up exactly
//! to DHAT's figures.
//!
//! Frames are DHAT's strings, parsed into file, line and function:
//! `0x10a1b4: app::main (src/main.rs:12:5)` from dhat-rs, `0x1091BA: main
//! (prog.c:7)` or `0x48417B4: malloc (in /usr/lib/.../vgpreload_dhat.so)`
//! from Valgrind. Valgrind's stacks start in its replacement allocator
//! (`malloc`, `calloc`, `operator new`, ... in a `vgpreload_` object); those
//! frames are left out, so that memory is attributed to the code that asked
//! for it, as tracemalloc attributes it (dhat-rs trims its own allocator
//! frames itself).
//!
//! ```
//! use tracemalloc_format::dhat::{DhatPoint, DhatProfile};
//!
//! let json = br#"{"dhatFileVersion":2,"mode":"heap","cmd":"./prog","pid":7,
//!     "te":100,"tg":60,"tu":"instrs",
//!     "pps":[{"tb":9000,"tbk":3,"gb":9000,"gbk":3,"eb":3000,"ebk":1,"fs":[1,2]}],
//!     "ftbl":["[root]","0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_dhat-amd64-linux.so)",
//!             "0x1091BA: main (prog.c:7)"]}"#;
//! let profile = DhatProfile::parse(json)?;
//! let peak = profile.snapshot(DhatPoint::GlobalPeak)?;
//! assert_eq!((peak.totals().size, peak.totals().count), (9000, 3));
//! let end = profile.snapshot(DhatPoint::End)?;
//! assert_eq!(end.traceback(end.traces()[0].traceback).to_string(), "prog.c:7");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::Deserialize;

use crate::model::{BuildError, Metadata, Snapshot, SnapshotBuilder, UNKNOWN_FILENAME};

/// The largest number of live blocks a profile may hold at the chosen
/// point: each becomes a 16-byte trace, so this caps the snapshot's trace
/// list at 1 GiB. DHAT stores a count, not the blocks, so a tiny file can
/// claim any number; the cap keeps a corrupt or hostile file from asking
/// for more memory than any real profile needs.
pub const MAX_BLOCKS: u64 = 1 << 26;

/// How far into a file [`looks_like_dhat`] looks for the version key.
const SNIFF_BYTES: usize = 4096;

/// Which moment of a DHAT profile becomes the snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DhatPoint {
    /// `t-gmax`: when the heap was at its largest over the run (the
    /// default: what used the memory).
    #[default]
    GlobalPeak,
    /// `t-end`: when the profile was written (what was never freed).
    End,
}

impl DhatPoint {
    /// DHAT's name: `t-gmax` or `t-end`.
    pub fn as_str(self) -> &'static str {
        match self {
            DhatPoint::GlobalPeak => "t-gmax",
            DhatPoint::End => "t-end",
        }
    }
}

impl fmt::Display for DhatPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which program wrote a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhatTool {
    /// The dhat crate (`mode: "rust-heap"`).
    DhatRs,
    /// Valgrind's DHAT (`mode: "heap"`).
    Valgrind,
}

impl DhatTool {
    /// The tool's name, e.g. for the snapshot's producer.
    pub fn name(self) -> &'static str {
        match self {
            DhatTool::DhatRs => "dhat-rs",
            DhatTool::Valgrind => "Valgrind DHAT",
        }
    }
}

/// Why a DHAT file cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DhatError {
    /// The JSON is malformed, or a field has the wrong type.
    #[error("not a valid DHAT profile: {0}")]
    Json(String),
    /// A `dhatFileVersion` this reader does not know.
    #[error("DHAT file version {0} is not supported (this reader knows version 2)")]
    Version(u64),
    /// A copy or ad hoc profile, which records events, not heap blocks.
    #[error(
        "this is a DHAT {mode:?} profile, which has no heap blocks to show: only heap profiles \
         can be opened (dhat-rs `Profiler::new_heap()`, or `valgrind --tool=dhat` without --mode)"
    )]
    NotHeap {
        /// The profile's mode.
        mode: String,
    },
    /// A program point names a frame the frame table does not have.
    #[error(
        "not a valid DHAT profile: program point {pp} refers to frame {frame}, \
         but the frame table has {len} entries"
    )]
    BadFrame {
        /// The program point's position in `pps`.
        pp: usize,
        /// The frame index.
        frame: u64,
        /// The frame table's length.
        len: usize,
    },
    /// A program point lacks the figures of the chosen point.
    #[error("not a valid DHAT profile: program point {pp} has no {point} figures ({fields})")]
    MissingPoint {
        /// The program point's position in `pps`.
        pp: usize,
        /// The point.
        point: DhatPoint,
        /// The missing fields.
        fields: &'static str,
    },
    /// Bytes in no block.
    #[error(
        "not a valid DHAT profile: program point {pp} has {bytes} bytes in 0 blocks at {point}"
    )]
    BytesWithoutBlocks {
        /// The program point's position in `pps`.
        pp: usize,
        /// Its bytes.
        bytes: u64,
        /// The point.
        point: DhatPoint,
    },
    /// More live blocks than [`MAX_BLOCKS`].
    #[error(
        "the profile claims {blocks} live blocks at {point}, more than this reader holds \
         (at most {MAX_BLOCKS})"
    )]
    TooManyBlocks {
        /// The blocks claimed so far.
        blocks: u64,
        /// The point.
        point: DhatPoint,
    },
    /// The snapshot would be too large.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Whether `bytes` look like a DHAT profile: a JSON object (after
/// whitespace and an optional byte order mark) with the `dhatFileVersion`
/// key near its start, where both dhat-rs and Valgrind write it.
pub fn looks_like_dhat(bytes: &[u8]) -> bool {
    is_json_object(bytes) && {
        let head = &bytes[..bytes.len().min(SNIFF_BYTES)];
        head.windows(17).any(|w| w == b"\"dhatFileVersion\"")
    }
}

/// Whether `bytes` start like a JSON object: `{` after whitespace and an
/// optional UTF-8 byte order mark.
pub(crate) fn is_json_object(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// A program point as DHAT writes it; the fields this reader does not use
/// (lifetimes, accesses, maxima per point) are skipped.
#[derive(Debug, Deserialize)]
struct RawPp {
    gb: Option<u64>,
    gbk: Option<u64>,
    eb: Option<u64>,
    ebk: Option<u64>,
    fs: Vec<u64>,
}

#[derive(Debug, Deserialize)]
struct RawProfile {
    #[serde(rename = "dhatFileVersion")]
    version: u64,
    mode: String,
    #[serde(default)]
    tu: Option<String>,
    #[serde(default)]
    cmd: Option<String>,
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default)]
    te: Option<u64>,
    #[serde(default)]
    tg: Option<u64>,
    pps: Vec<RawPp>,
    ftbl: Vec<String>,
}

/// One frame of a DHAT stack, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedFrame<'a> {
    /// The function, where known (DHAT writes `???` otherwise).
    pub function: Option<&'a str>,
    /// The source file, or the object file for a frame without debug
    /// information (Valgrind's `in /lib/libc.so.6`), or `<unknown>`.
    pub filename: &'a str,
    /// The line, 0 when unknown.
    pub lineno: u32,
    /// Whether `filename` is an object file (no line information).
    pub in_object: bool,
}

/// Parses one of DHAT's frame strings (see the module documentation).
/// Strings of another shape become a frame of unknown file whose function
/// is the whole string, so nothing is lost.
pub fn parse_frame(text: &str, tool: DhatTool) -> ParsedFrame<'_> {
    let text = text.trim();
    // `0x1234: rest`: the address is of no use once symbolized.
    let rest = match text.split_once(": ") {
        Some((address, rest)) if address.starts_with("0x") => rest,
        _ => text,
    };
    let Some((function, location)) = split_location(rest) else {
        return unknown(rest);
    };
    if let Some(object) = location.strip_prefix("in ") {
        return ParsedFrame {
            function: known(function),
            filename: object.trim(),
            lineno: 0,
            in_object: true,
        };
    }
    // dhat-rs writes `file:line:column`, Valgrind `file:line`.
    let numbers = match tool {
        DhatTool::DhatRs => 2,
        DhatTool::Valgrind => 1,
    };
    let mut file = location;
    let mut lineno = 0;
    for i in 0..numbers {
        let Some((head, tail)) = file.rsplit_once(':') else {
            return unknown(function);
        };
        if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_digit()) {
            return ParsedFrame {
                function: known(function),
                filename: known(location).unwrap_or(UNKNOWN_FILENAME),
                lineno: 0,
                in_object: false,
            };
        }
        // The last number read is the line: `file:LINE:col`.
        if i == numbers - 1 {
            lineno = tail.parse().unwrap_or(0);
        }
        file = head;
    }
    ParsedFrame {
        function: known(function),
        filename: known(file).unwrap_or(UNKNOWN_FILENAME),
        lineno,
        in_object: false,
    }
}

/// A frame whose location is not understood: the text is the function.
fn unknown(function: &str) -> ParsedFrame<'_> {
    ParsedFrame {
        function: known(function),
        filename: UNKNOWN_FILENAME,
        lineno: 0,
        in_object: false,
    }
}

/// `None` for DHAT's `???` (and empty names).
fn known(name: &str) -> Option<&str> {
    let name = name.trim();
    (!name.is_empty() && name != "???").then_some(name)
}

/// Splits `function (location)` at the parenthesized group that ends the
/// string, so that parentheses inside the function's name (C++'s
/// `operator new(unsigned long)`) stay in the name.
fn split_location(text: &str) -> Option<(&str, &str)> {
    let body = text.strip_suffix(')')?;
    let mut depth = 0usize;
    for (i, c) in body.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth == 0 => return Some((text[..i].trim_end(), &body[i + 1..])),
            '(' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Whether a Valgrind frame is its replacement allocator (`malloc` and
/// friends in `vgpreload_*.so`), which stands above every allocation.
fn is_valgrind_allocator(frame: &ParsedFrame<'_>) -> bool {
    frame.in_object && frame.filename.contains("vgpreload_")
}

/// A parsed DHAT heap profile, ready to become a snapshot at either point.
#[derive(Debug)]
pub struct DhatProfile {
    tool: DhatTool,
    raw: RawProfile,
}

impl DhatProfile {
    /// Parses a DHAT file's bytes. Fails on malformed JSON, an unknown
    /// version, and profiles that are not heap profiles.
    pub fn parse(bytes: &[u8]) -> Result<DhatProfile, DhatError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let raw: RawProfile =
            serde_json::from_slice(bytes).map_err(|e| DhatError::Json(e.to_string()))?;
        if raw.version != 2 {
            return Err(DhatError::Version(raw.version));
        }
        let tool = match raw.mode.as_str() {
            "rust-heap" => DhatTool::DhatRs,
            "heap" => DhatTool::Valgrind,
            _ => {
                return Err(DhatError::NotHeap {
                    mode: raw.mode.clone(),
                });
            }
        };
        for (pp, point) in raw.pps.iter().enumerate() {
            if let Some(&frame) = point.fs.iter().find(|&&f| f >= raw.ftbl.len() as u64) {
                return Err(DhatError::BadFrame {
                    pp,
                    frame,
                    len: raw.ftbl.len(),
                });
            }
        }
        Ok(DhatProfile { tool, raw })
    }

    /// Which program wrote the profile.
    pub fn tool(&self) -> DhatTool {
        self.tool
    }

    /// The profiled command line, as DHAT recorded it (arguments joined by
    /// spaces).
    pub fn command(&self) -> Option<&str> {
        self.raw.cmd.as_deref()
    }

    /// Number of program points.
    pub fn program_points(&self) -> usize {
        self.raw.pps.len()
    }

    /// A program point's bytes and blocks at `point`.
    fn amounts(&self, pp: usize, point: DhatPoint) -> Result<(u64, u64), DhatError> {
        let p = &self.raw.pps[pp];
        let (bytes, blocks, fields) = match point {
            DhatPoint::GlobalPeak => (p.gb, p.gbk, "gb, gbk"),
            DhatPoint::End => (p.eb, p.ebk, "eb, ebk"),
        };
        match (bytes, blocks) {
            (Some(bytes), Some(blocks)) => {
                if blocks == 0 && bytes > 0 {
                    return Err(DhatError::BytesWithoutBlocks { pp, bytes, point });
                }
                Ok((bytes, blocks))
            }
            _ => Err(DhatError::MissingPoint { pp, point, fields }),
        }
    }

    /// The snapshot of the blocks live at `point`.
    pub fn snapshot(&self, point: DhatPoint) -> Result<Snapshot, DhatError> {
        // Check every count before allocating anything for them.
        let mut total_blocks = 0u64;
        let mut total_bytes = 0u64;
        let mut peak_bytes = 0u64;
        for pp in 0..self.raw.pps.len() {
            let (bytes, blocks) = self.amounts(pp, point)?;
            total_blocks = total_blocks.saturating_add(blocks);
            if total_blocks > MAX_BLOCKS {
                return Err(DhatError::TooManyBlocks {
                    blocks: total_blocks,
                    point,
                });
            }
            total_bytes = total_bytes.saturating_add(bytes);
            peak_bytes = peak_bytes.saturating_add(self.raw.pps[pp].gb.unwrap_or(0));
        }
        let mut builder = SnapshotBuilder::new(1);
        builder.reserve_traces(total_blocks as usize);
        // Each distinct frame string is parsed and interned once.
        let mut frame_ids = vec![None; self.raw.ftbl.len()];
        let mut stack = Vec::new();
        let mut limit = 1u32;
        for (pp, raw_pp) in self.raw.pps.iter().enumerate() {
            let (bytes, blocks) = self.amounts(pp, point)?;
            if blocks == 0 {
                continue;
            }
            stack.clear();
            let mut above_allocator = self.tool == DhatTool::Valgrind;
            for &index in &raw_pp.fs {
                // Checked by `parse`.
                let index = index as usize;
                let text = &self.raw.ftbl[index];
                if text == "[root]" {
                    continue;
                }
                let parsed = parse_frame(text, self.tool);
                if above_allocator && is_valgrind_allocator(&parsed) {
                    continue;
                }
                above_allocator = false;
                let id = match frame_ids[index] {
                    Some(id) => id,
                    None => {
                        let id = builder.intern_frame(
                            parsed.filename,
                            parsed.lineno,
                            parsed.function,
                        )?;
                        frame_ids[index] = Some(id);
                        id
                    }
                };
                stack.push(id);
            }
            let depth = u32::try_from(stack.len()).unwrap_or(u32::MAX);
            limit = limit.max(depth);
            let traceback = builder.intern_traceback(&stack, Some(depth))?;
            // DHAT keeps no individual sizes: the bytes are split evenly,
            // the remainder one byte each over the first blocks, so that the
            // sum is exact.
            let base = bytes / blocks;
            let extra = bytes % blocks;
            for block in 0..blocks {
                builder.push_trace(0, base + u64::from(block < extra), traceback)?;
            }
        }
        builder.set_traceback_limit(limit);
        let time = match point {
            DhatPoint::GlobalPeak => self.raw.tg,
            DhatPoint::End => self.raw.te,
        };
        let unit = self.raw.tu.as_deref().unwrap_or("time units");
        let moment = match point {
            DhatPoint::GlobalPeak => "the global peak",
            DhatPoint::End => "the end",
        };
        let mut producer = format!("{} heap profile, {point}: {moment}", self.tool.name());
        match (time, self.raw.te) {
            (Some(t), Some(end)) if point == DhatPoint::GlobalPeak => {
                producer.push_str(&format!(" at {t} of {end} {unit}"));
            }
            (Some(t), _) => producer.push_str(&format!(" at {t} {unit}")),
            _ => {}
        }
        let metadata = Metadata {
            format_version: None,
            producer: Some(producer),
            pid: self.raw.pid,
            // DHAT joins the arguments with spaces: splitting them again is
            // the best that can be done (an argument with a space splits).
            command_line: self
                .raw
                .cmd
                .as_deref()
                .map(|c| c.split_whitespace().map(str::to_owned).collect()),
            timestamp: None,
            traced_current: Some(total_bytes),
            traced_peak: Some(peak_bytes),
            tracemalloc_memory: None,
            sampling_rate: None,
        };
        Ok(builder.finish(metadata))
    }
}

/// Reads a DHAT profile's bytes as the snapshot at `point`.
pub fn decode(bytes: &[u8], point: DhatPoint) -> Result<Snapshot, DhatError> {
    DhatProfile::parse(bytes)?.snapshot(point)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyType, Totals};

    /// The fixture written by Valgrind's DHAT for
    /// `tests/data/dhat/valgrind_prog.c` (see `make_fixtures.sh` there).
    const VALGRIND: &[u8] = include_bytes!("../tests/data/dhat/valgrind-dhat.json");
    /// The fixture written by dhat-rs for `tests/data/dhat/make_dhat_rs`.
    const DHAT_RS: &[u8] = include_bytes!("../tests/data/dhat/dhat-rs-heap.json");

    fn totals(bytes: &[u8], point: DhatPoint) -> Totals {
        decode(bytes, point).unwrap().totals()
    }

    #[test]
    fn frames_parse_like_each_tool_writes_them() {
        let check = |text: &str, tool, expected: (Option<&str>, &str, u32, bool)| {
            let f = parse_frame(text, tool);
            assert_eq!(
                (f.function, f.filename, f.lineno, f.in_object),
                expected,
                "{text}"
            );
        };
        use DhatTool::{DhatRs, Valgrind};
        check(
            "0x55d4a2f3e1b4: make_dhat_rs::keep (src/main.rs:20:31)",
            DhatRs,
            (Some("make_dhat_rs::keep"), "src/main.rs", 20, false),
        );
        check(
            "0x1: <alloc::vec::Vec<T> as core::clone::Clone>::clone (src/vec/mod.rs:3:9)",
            DhatRs,
            (
                Some("<alloc::vec::Vec<T> as core::clone::Clone>::clone"),
                "src/vec/mod.rs",
                3,
                false,
            ),
        );
        check("0x2: ??? (???:0:0)", DhatRs, (None, "<unknown>", 0, false));
        check(
            "0x1091BA: main (prog.c:7)",
            Valgrind,
            (Some("main"), "prog.c", 7, false),
        );
        check(
            "0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_dhat-amd64-linux.so)",
            Valgrind,
            (
                Some("malloc"),
                "/usr/libexec/valgrind/vgpreload_dhat-amd64-linux.so",
                0,
                true,
            ),
        );
        check(
            "0x4: operator new(unsigned long) (in /usr/lib/libstdc++.so.6)",
            Valgrind,
            (
                Some("operator new(unsigned long)"),
                "/usr/lib/libstdc++.so.6",
                0,
                true,
            ),
        );
        check(
            "0x5: ??? (in /lib/x86_64-linux-gnu/libc.so.6)",
            Valgrind,
            (None, "/lib/x86_64-linux-gnu/libc.so.6", 0, true),
        );
        check(
            "0x6: f (C:\\src\\a.c:12)",
            Valgrind,
            (Some("f"), "C:\\src\\a.c", 12, false),
        );
        // Shapes no tool writes lose nothing: the text is the function.
        check("[root]", Valgrind, (Some("[root]"), "<unknown>", 0, false));
        check(
            "0x7: g (weird)",
            Valgrind,
            (Some("g"), "<unknown>", 0, false),
        );
        check(
            "0x8: h (file.c:x)",
            Valgrind,
            (Some("h"), "file.c:x", 0, false),
        );
    }

    #[test]
    fn valgrind_fixture_has_the_programs_totals() {
        // valgrind_prog.c: three 1000-byte blocks leak; at the peak they are
        // live with eight 4096-byte buffers and a 16 x 64-byte table.
        assert_eq!(
            totals(VALGRIND, DhatPoint::End),
            Totals {
                size: 3000,
                count: 3
            }
        );
        assert_eq!(
            totals(VALGRIND, DhatPoint::GlobalPeak),
            Totals {
                size: 3000 + 8 * 4096 + 1024,
                count: 12
            }
        );
        let peak = decode(VALGRIND, DhatPoint::GlobalPeak).unwrap();
        let top = peak.statistics(KeyType::Lineno, false).unwrap();
        // The allocator's frames are gone: lines of the program allocate.
        let lines: Vec<String> = top.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            lines,
            [
                "valgrind_prog.c:12: size=34.9 KiB, count=11, average=3252 B",
                "valgrind_prog.c:22: size=1024 B, count=1, average=1024 B",
            ]
        );
        let tb = peak.traceback(
            peak.traces()
                .iter()
                .find(|t| t.size == 1024)
                .unwrap()
                .traceback,
        );
        let frames: Vec<String> = tb
            .frames
            .iter()
            .map(|f| format!("{} {f}", f.function.as_deref().unwrap_or("?")))
            .collect();
        assert_eq!(
            frames,
            ["build_peak valgrind_prog.c:22", "main valgrind_prog.c:37"]
        );
        let m = peak.metadata();
        assert_eq!(
            m.command_line.as_deref(),
            Some(&["./valgrind_prog".to_owned()][..])
        );
        assert!(m.pid.is_some());
        let producer = m.producer.as_deref().unwrap();
        assert!(
            producer.starts_with("Valgrind DHAT heap profile, t-gmax: the global peak at "),
            "{producer}"
        );
        assert!(producer.ends_with(" instrs"), "{producer}");
        assert_eq!(m.traced_current, Some(36_792));
        assert_eq!(m.traced_peak, Some(36_792));
    }

    #[test]
    fn dhat_rs_fixture_has_the_programs_totals() {
        // make_dhat_rs/src/main.rs: three boxed 1000-byte slices and the
        // 48-byte vector holding them are never freed; at the peak they are
        // live with eight 4096-byte vectors, the 192-byte vector holding
        // them, and a 1024-byte table.
        assert_eq!(
            totals(DHAT_RS, DhatPoint::End),
            Totals {
                size: 3048,
                count: 4
            }
        );
        assert_eq!(
            totals(DHAT_RS, DhatPoint::GlobalPeak),
            Totals {
                size: 3048 + 192 + 8 * 4096 + 1024,
                count: 14
            }
        );
        let end = decode(DHAT_RS, DhatPoint::End).unwrap();
        // dhat-rs keeps the standard library's frames (and, in this debug
        // build, its allocator's): the viewer's default trim leaves the
        // program's lines.
        assert!(end.has_untrimmed_frames());
        let trimmed = end.with_default_trim().unwrap();
        let top = trimmed.statistics(KeyType::Lineno, false).unwrap();
        let lines: Vec<(String, u64)> = top
            .iter()
            .map(|s| (s.traceback.to_string(), s.size))
            .collect();
        assert_eq!(
            lines,
            [
                ("src/main.rs:26".to_owned(), 3000),
                ("src/main.rs:24".to_owned(), 48)
            ]
        );
        let first = &top[0].traceback.frames[0];
        assert_eq!(first.function.as_deref(), Some("make_dhat_rs::keep"));
        let producer = end.metadata().producer.clone().unwrap();
        assert!(
            producer.starts_with("dhat-rs heap profile, t-end: the end at "),
            "{producer}"
        );
        assert!(producer.ends_with(" µs"), "{producer}");
    }

    #[test]
    fn detection_needs_the_version_key() {
        assert!(looks_like_dhat(VALGRIND));
        assert!(looks_like_dhat(DHAT_RS));
        assert!(looks_like_dhat(b"\xEF\xBB\xBF \n{\"dhatFileVersion\":2}"));
        assert!(!looks_like_dhat(b"{\"hello\": 1}"));
        assert!(!looks_like_dhat(b"[\"dhatFileVersion\"]"));
        assert!(!looks_like_dhat(b""));
        assert!(is_json_object(b"  {"));
    }

    #[test]
    fn malformed_profiles_are_clear_errors() {
        let err = |json: &str| {
            decode(json.as_bytes(), DhatPoint::End)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(r#"{"dhatFileVersion":2,"mode":"heap","pps":["#)
                .starts_with("not a valid DHAT profile: EOF while parsing"),
        );
        assert_eq!(
            err(r#"{"dhatFileVersion":7,"mode":"heap","pps":[],"ftbl":[]}"#),
            "DHAT file version 7 is not supported (this reader knows version 2)"
        );
        assert!(
            err(r#"{"dhatFileVersion":2,"mode":"rust-ad-hoc","pps":[],"ftbl":[]}"#)
                .starts_with("this is a DHAT \"rust-ad-hoc\" profile, which has no heap blocks")
        );
        assert_eq!(
            err(r#"{"dhatFileVersion":2,"mode":"heap","pps":[{"fs":[3]}],"ftbl":["[root]"]}"#),
            "not a valid DHAT profile: program point 0 refers to frame 3, but the frame table \
             has 1 entries"
        );
        assert_eq!(
            err(
                r#"{"dhatFileVersion":2,"mode":"heap","pps":[{"gb":1,"gbk":1,"fs":[]}],"ftbl":[]}"#
            ),
            "not a valid DHAT profile: program point 0 has no t-end figures (eb, ebk)"
        );
        assert_eq!(
            err(
                r#"{"dhatFileVersion":2,"mode":"heap","pps":[{"eb":5,"ebk":0,"fs":[]}],"ftbl":[]}"#
            ),
            "not a valid DHAT profile: program point 0 has 5 bytes in 0 blocks at t-end"
        );
        assert!(
            err(
                r#"{"dhatFileVersion":2,"mode":"heap","pps":[{"eb":-5,"ebk":1,"fs":[]}],"ftbl":[]}"#
            )
            .contains("invalid value: integer `-5`"),
        );
        assert_eq!(
            err(&format!(
                r#"{{"dhatFileVersion":2,"mode":"heap","pps":[{{"eb":0,"ebk":{},"fs":[]}}],"ftbl":[]}}"#,
                MAX_BLOCKS + 1
            )),
            format!(
                "the profile claims {} live blocks at t-end, more than this reader holds \
                 (at most {MAX_BLOCKS})",
                MAX_BLOCKS + 1
            )
        );
    }

    #[test]
    fn bytes_split_evenly_and_exactly() {
        let json = r#"{"dhatFileVersion":2,"mode":"rust-heap","te":9,
            "pps":[{"eb":10,"ebk":3,"fs":[1]},{"eb":0,"ebk":2,"fs":[]}],
            "ftbl":["[root]","0x1: a::f (src/a.rs:4:2)"]}"#;
        let s = decode(json.as_bytes(), DhatPoint::End).unwrap();
        let mut sizes: Vec<u64> = s.traces().iter().map(|t| t.size).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [0, 0, 3, 3, 4]);
        // A point without frames is `<unknown>:0`, as in CPython.
        let unknown = s.traces().iter().find(|t| t.size == 0).unwrap();
        assert_eq!(s.traceback(unknown.traceback).to_string(), "<unknown>:0");
        assert_eq!(s.traceback_limit(), 1);
        assert_eq!(
            s.metadata().producer.as_deref(),
            Some("dhat-rs heap profile, t-end: the end at 9 time units")
        );
    }

    #[test]
    fn every_prefix_of_a_fixture_fails_cleanly() {
        // A cheap stand-in for fuzzing: truncated files never panic.
        for fixture in [VALGRIND, DHAT_RS] {
            for end in (0..fixture.len()).step_by(7) {
                let _ = decode(&fixture[..end], DhatPoint::GlobalPeak);
            }
        }
    }
}
