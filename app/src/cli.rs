//! The headless command line: `stats`, `info` and `convert`.
//!
//! Everything here parses arguments, calls the format crate and prints; the
//! analysis itself (filters, grouping, comparison, sizes) lives in
//! `tracemalloc-format`.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracemalloc_format::dhat::DhatPoint;
use tracemalloc_format::export::{
    write_diffs_csv, write_folded, write_folded_diff, write_statistics_csv,
};
use tracemalloc_format::flame::{FlameTree, FlameWeight};
use tracemalloc_format::pipeline::{self, Others};
use tracemalloc_format::pprof;
use tracemalloc_format::{
    DomainFilter, Error as FileError, Filter, KeyType, LoadOptions, Metric, Snapshot, Statistic,
    StatisticDiff, TraceFilter, Traceback, detect_kind, format_size,
};

/// Command-line arguments of `tracemalloc-viewer`.
#[derive(Debug, Parser)]
#[command(
    name = "tracemalloc-viewer",
    version,
    about = "View and compare tracemalloc snapshots (.tmsnap files, CPython tracemalloc pickles \
             and DHAT heap profiles)",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// A headless command; without one, the viewer window opens.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Snapshot files to open in the viewer (the bundled demo when none).
    pub files: Vec<PathBuf>,
}

/// The headless commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the top allocation sites of a snapshot, or of its difference
    /// with an older one.
    Stats(StatsArgs),
    /// Print a snapshot's metadata, totals and table sizes.
    Info(InfoArgs),
    /// Convert a snapshot (e.g. a CPython pickle or a DHAT profile) to a
    /// .tmsnap file, or to a pprof heap profile (output named *.pb.gz,
    /// *.pb or *.pprof, or --to pprof).
    Convert(ConvertArgs),
}

/// How to group traces (CPython's `key_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GroupBy {
    /// By file of the most recent frame.
    Filename,
    /// By file and line of the most recent frame.
    Lineno,
    /// By whole traceback.
    Traceback,
}

impl From<GroupBy> for KeyType {
    fn from(g: GroupBy) -> KeyType {
        match g {
            GroupBy::Filename => KeyType::Filename,
            GroupBy::Lineno => KeyType::Lineno,
            GroupBy::Traceback => KeyType::Traceback,
        }
    }
}

/// What `stats` measures and ranks by. Every metric but `live` needs an
/// allocation history, which only the tracemalloc-rs recorder writes
/// (`.tmsnap` version 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum MetricArg {
    /// Blocks live at the snapshot, ranked by bytes (tracemalloc's
    /// statistics).
    #[default]
    Live,
    /// Every block allocated since tracing started, freed or not, ranked
    /// by bytes.
    Allocated,
    /// The same blocks ranked by how many: the lines that allocate most
    /// often.
    Allocations,
    /// Temporary blocks (freed by their thread before it allocated again),
    /// ranked by how many.
    Temporary,
    /// Blocks live at the peak of traced memory, ranked by bytes.
    Peak,
}

impl MetricArg {
    /// The format crate's metric.
    fn metric(self) -> Metric {
        match self {
            MetricArg::Live => Metric::Live,
            MetricArg::Allocated | MetricArg::Allocations => Metric::Allocated,
            MetricArg::Temporary => Metric::Temporary,
            MetricArg::Peak => Metric::Peak,
        }
    }

    /// Whether rows rank by blocks rather than bytes.
    fn by_count(self) -> bool {
        matches!(self, MetricArg::Allocations | MetricArg::Temporary)
    }

    /// The name on the command line.
    fn name(self) -> &'static str {
        match self {
            MetricArg::Live => "live",
            MetricArg::Allocated => "allocated",
            MetricArg::Allocations => "allocations",
            MetricArg::Temporary => "temporary",
            MetricArg::Peak => "peak",
        }
    }

    /// The words before the total in the text output; the live metric
    /// keeps tracemalloc's own.
    fn total_label(self) -> &'static str {
        match self {
            MetricArg::Live => "Total allocated size",
            MetricArg::Allocated | MetricArg::Allocations => "Total allocated since start",
            MetricArg::Temporary => "Total of temporary blocks",
            MetricArg::Peak => "Total live at the peak",
        }
    }
}

/// Output formats of `stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Like tracemalloc's "Top 10 lines" display.
    Text,
    /// One JSON document (docs/FORMAT.md).
    Json,
    /// One row per group (docs/FORMAT.md).
    Csv,
    /// The traceback tree as folded stacks (flamegraph.pl, inferno), in
    /// bytes; with --compare, two columns (old, new) for a differential
    /// flame graph. Grouping and --limit do not apply.
    Folded,
}

/// Which moment of a DHAT profile is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DhatPointArg {
    /// t-gmax: the blocks live at the global peak.
    Gmax,
    /// t-end: the blocks live at the end (never freed).
    End,
}

impl From<DhatPointArg> for LoadOptions {
    fn from(point: DhatPointArg) -> LoadOptions {
        LoadOptions {
            dhat_point: match point {
                DhatPointArg::Gmax => DhatPoint::GlobalPeak,
                DhatPointArg::End => DhatPoint::End,
            },
        }
    }
}

/// Arguments of `stats`.
#[derive(Debug, ClapArgs)]
pub struct StatsArgs {
    /// The snapshot (.tmsnap, CPython pickle or DHAT JSON).
    pub snapshot: PathBuf,
    /// An older snapshot to compare with.
    #[arg(long, value_name = "OLD")]
    pub compare: Option<PathBuf>,
    /// How to group traces.
    #[arg(long, value_enum, default_value_t = GroupBy::Lineno)]
    pub group_by: GroupBy,
    /// What to measure and rank by: the live blocks, or (from a recording
    /// with allocation history) what was allocated, how often, the
    /// temporary blocks, or what was live at the peak.
    #[arg(long, value_enum, default_value_t = MetricArg::Live)]
    pub metric: MetricArg,
    /// Count each block in every frame of its traceback, not only the most
    /// recent one (filename and lineno only).
    #[arg(long)]
    pub cumulative: bool,
    /// Keep traces whose file matches GLOB (Python fnmatch), on LINE if given.
    #[arg(long, value_name = "GLOB[:LINE]")]
    pub include: Vec<String>,
    /// Drop traces whose file matches GLOB, on LINE if given.
    #[arg(long, value_name = "GLOB[:LINE]")]
    pub exclude: Vec<String>,
    /// Match --include and --exclude against every frame, not only the most
    /// recent one.
    #[arg(long)]
    pub all_frames: bool,
    /// A JSON file with a list of filters (docs/FORMAT.md).
    #[arg(long, value_name = "FILTERS.json")]
    pub filters: Option<PathBuf>,
    /// At most N rows (default: 10 for text, all for JSON and CSV).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// For DHAT profiles: the blocks live at the global peak or at the end.
    #[arg(long, value_enum, default_value_t = DhatPointArg::Gmax)]
    pub dhat_point: DhatPointArg,
}

/// Arguments of `info`.
#[derive(Debug, ClapArgs)]
pub struct InfoArgs {
    /// The snapshot (.tmsnap, CPython pickle or DHAT JSON).
    pub snapshot: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// For DHAT profiles: the blocks live at the global peak or at the end.
    #[arg(long, value_enum, default_value_t = DhatPointArg::Gmax)]
    pub dhat_point: DhatPointArg,
}

/// What `convert` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConvertFormat {
    /// A .tmsnap snapshot.
    Tmsnap,
    /// A pprof heap profile (gzipped unless the file name ends in .pb), for
    /// go tool pprof, Pyroscope, Parca and speedscope.
    Pprof,
}

/// Arguments of `convert`.
#[derive(Debug, ClapArgs)]
pub struct ConvertArgs {
    /// The snapshot to read (.tmsnap, CPython pickle or DHAT JSON).
    pub input: PathBuf,
    /// The file to write (replaced atomically): .tmsnap, or pprof when it
    /// ends in .pb.gz, .pb or .pprof.
    pub output: PathBuf,
    /// The output format, whatever the output's name.
    #[arg(long, value_enum)]
    pub to: Option<ConvertFormat>,
    /// For DHAT profiles: the blocks live at the global peak or at the end.
    #[arg(long, value_enum, default_value_t = DhatPointArg::Gmax)]
    pub dhat_point: DhatPointArg,
}

/// Runs a headless command, writing to `out`.
pub fn run(command: &Command, out: &mut dyn Write) -> Result<()> {
    match command {
        Command::Stats(args) => stats(args, out),
        Command::Info(args) => info(args, out),
        Command::Convert(args) => convert(args, out),
    }
}

/// Set by [`main`]: the process ends when the command returns, so large
/// data need not be freed (see `stats`). Commands run through [`run`], as
/// the in-process tests do, free everything.
static PROCESS_EXITS: AtomicBool = AtomicBool::new(false);

/// Runs a headless command on stdout and returns the process exit code:
/// 0 on success, 2 with one line on stderr on any error. A closed stdout
/// (e.g. piping into `head`) is not an error. Only for a process that exits
/// right after: large data are left for the operating system to reclaim.
pub fn main(command: &Command) -> i32 {
    PROCESS_EXITS.store(true, Ordering::Relaxed);
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let result =
        run(command, &mut out).and_then(|()| out.flush().context("cannot write to stdout"));
    match result {
        Ok(()) => 0,
        Err(err) if is_broken_pipe(&err) => 0,
        Err(err) => {
            eprintln!("tracemalloc-viewer: {err:#}");
            2
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Loads a snapshot; the error names the file.
fn load(path: &Path, options: &LoadOptions) -> Result<Snapshot> {
    Ok(Snapshot::load_with(path, options)?)
}

/// Parses `GLOB[:LINE]`: a trailing `:digits` is a line number; anything
/// else is part of the glob (so `C:*` stays a glob).
pub fn parse_glob_line(spec: &str) -> Result<(String, Option<u32>)> {
    if let Some((glob, line)) = spec.rsplit_once(':')
        && !line.is_empty()
        && line.bytes().all(|b| b.is_ascii_digit())
    {
        let line: u32 = line
            .parse()
            .with_context(|| format!("line number {line:?} in {spec:?} is too large"))?;
        if glob.is_empty() {
            bail!("{spec:?} has a line number but no file pattern");
        }
        return Ok((glob.to_owned(), Some(line)));
    }
    if spec.is_empty() {
        bail!("an empty file pattern matches nothing");
    }
    Ok((spec.to_owned(), None))
}

/// One item of a `--filters` file: a `Filter` or a `DomainFilter`. Absent
/// keys take CPython's defaults.
#[derive(Debug, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum FilterSpec {
    File {
        inclusive: bool,
        filename_pattern: String,
        #[serde(default)]
        lineno: Option<u32>,
        #[serde(default)]
        all_frames: bool,
        #[serde(default)]
        domain: Option<u32>,
    },
    Domain {
        inclusive: bool,
        domain: u32,
    },
}

/// Reads a `--filters` JSON file.
pub fn read_filters_file(path: &Path) -> Result<Vec<TraceFilter>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    let specs: Vec<serde_json::Value> = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a JSON array of filters", path.display()))?;
    specs
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let spec: FilterSpec = serde_json::from_value(value).map_err(|_| {
                anyhow::anyhow!(
                    "{}: filter {i} is neither {{\"inclusive\": bool, \"filename_pattern\": str, ...}} \
                     nor {{\"inclusive\": bool, \"domain\": int}}",
                    path.display()
                )
            })?;
            Ok(match spec {
                FilterSpec::File {
                    inclusive,
                    filename_pattern,
                    lineno,
                    all_frames,
                    domain,
                } => TraceFilter::Filter(Filter {
                    lineno,
                    all_frames,
                    domain,
                    ..Filter::new(inclusive, &filename_pattern)
                }),
                FilterSpec::Domain { inclusive, domain } => TraceFilter::Domain(DomainFilter { inclusive, domain }),
            })
        })
        .collect()
}

/// The filters of a `stats` command line, in the order given: `--filters`
/// file first, then `--include`, then `--exclude`.
pub fn collect_filters(args: &StatsArgs) -> Result<Vec<TraceFilter>> {
    let mut filters = match &args.filters {
        Some(path) => read_filters_file(path)?,
        None => Vec::new(),
    };
    for (inclusive, specs) in [(true, &args.include), (false, &args.exclude)] {
        for spec in specs {
            let (glob, lineno) = parse_glob_line(spec)?;
            filters.push(TraceFilter::Filter(Filter {
                lineno,
                all_frames: args.all_frames,
                ..Filter::new(inclusive, &glob)
            }));
        }
    }
    Ok(filters)
}

/// Rows of `stats`: plain statistics, or differences when comparing.
enum Rows {
    Plain(Vec<Statistic>),
    Diff(Vec<StatisticDiff>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Plain(r) => r.len(),
            Rows::Diff(r) => r.len(),
        }
    }
}

/// Sum of a filtered snapshot's traces, with the difference to the filtered
/// old one when comparing. Summed over traces, not rows, so that cumulative
/// mode does not count a block twice.
struct Total {
    size: u64,
    count: u64,
    diff: Option<(i64, i64)>,
}

fn stats(args: &StatsArgs, out: &mut dyn Write) -> Result<()> {
    let key: KeyType = args.group_by.into();
    if args.cumulative && key == KeyType::Traceback {
        bail!("--cumulative works with --group-by filename or lineno, not traceback");
    }
    let filters = collect_filters(args)?;
    let options = LoadOptions::from(args.dhat_point);
    // The two files are independent: load them side by side.
    let (new, old) = std::thread::scope(|s| {
        let old = args
            .compare
            .as_deref()
            .map(|path| s.spawn(move || load(path, &options)));
        let new = load(&args.snapshot, &options);
        let old = old.map(|handle| {
            handle
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("loading the old snapshot crashed")))
        });
        (new, old.transpose())
    });
    // The format crate's pipeline, as the viewer's: the command line keeps
    // every frame (it shows a snapshot as recorded), then filters; without
    // filters the snapshots are used as loaded.
    let prepared = |snapshot: Snapshot| -> Result<Arc<Snapshot>> {
        Ok(pipeline::prepare(&Arc::new(snapshot), false, &filters)?)
    };
    let metric = args.metric.metric();
    // A history metric of a snapshot without history is refused, naming
    // the file, rather than shown as a list of zeros.
    let has_history = |snapshot: &Snapshot, path: &Path| -> Result<()> {
        if metric.needs_history() && snapshot.history().is_none() {
            bail!(
                "{}: --metric {} needs an allocation history, which this snapshot does not have \
                 (CPython's tracemalloc, DHAT files and .tmsnap version 1 record only the live blocks)",
                path.display(),
                args.metric.name()
            );
        }
        Ok(())
    };
    let new = new?;
    has_history(&new, &args.snapshot)?;
    let old = old?;
    if let (Some(old), Some(path)) = (&old, &args.compare) {
        has_history(old, path)?;
    }
    let new = prepared(new)?;
    let old = old.map(prepared).transpose()?;
    if args.format == OutputFormat::Folded {
        return write_folded_stacks(out, &new, old.as_deref(), args.metric);
    }

    let totals = new.totals_by(metric)?;
    let old_totals = old.as_ref().map(|o| o.totals_by(metric)).transpose()?;
    let total = Total {
        size: totals.size,
        count: totals.count,
        diff: old_totals.map(|o| totals.diff(&o)),
    };
    let rows = match &old {
        None => {
            let mut stats = new.statistics_by(metric, key, args.cumulative)?;
            if args.metric.by_count() {
                stats.sort_by(Statistic::cmp_by_count);
            }
            Rows::Plain(stats)
        }
        Some(old) => {
            let mut diffs = new.compare_to_by(old, metric, key, args.cumulative)?;
            if args.metric.by_count() {
                diffs.sort_by(StatisticDiff::cmp_by_count);
            }
            Rows::Diff(diffs)
        }
    };
    let limit = match (args.limit, args.format) {
        (Some(limit), _) => limit,
        (None, OutputFormat::Text) => 10,
        (None, _) => usize::MAX,
    };
    let written = match args.format {
        OutputFormat::Text => write_text(out, key, args, &rows, &total, limit),
        OutputFormat::Json => write_json(out, key, args, &rows, &total, limit),
        OutputFormat::Csv => write_csv(out, key, &rows, limit),
        OutputFormat::Folded => unreachable!("written above"),
    };
    if PROCESS_EXITS.load(Ordering::Relaxed) {
        // The process exits right after this command. Handing two large
        // snapshots back to the allocator block by block (and unmapping
        // their arenas) costs more than the comparison itself, and the
        // operating system reclaims the memory at exit anyway.
        std::mem::forget((new, old, rows));
    }
    written
}

/// `--format folded`: the filtered traceback tree of the metric, in bytes
/// (in blocks for the metrics ranked by count), or both snapshots' as
/// differential folded stacks (old, new).
fn write_folded_stacks(
    out: &mut dyn Write,
    new: &Snapshot,
    old: Option<&Snapshot>,
    metric: MetricArg,
) -> Result<()> {
    let weight = if metric.by_count() {
        FlameWeight::Blocks
    } else {
        FlameWeight::Bytes
    };
    let new_tree = FlameTree::new_by(new, None, metric.metric(), weight)?;
    match old {
        None => write_folded(&new_tree, out)?,
        Some(old) => {
            let old_tree = FlameTree::new_by(old, None, metric.metric(), weight)?;
            write_folded_diff(&old_tree, &new_tree, out)?;
        }
    }
    Ok(())
}

fn key_noun(key: KeyType) -> &'static str {
    match key {
        KeyType::Filename => "files",
        KeyType::Lineno => "lines",
        KeyType::Traceback => "tracebacks",
    }
}

/// Text output, as tracemalloc's documentation prints a top list: a
/// header, one CPython `str(stat)` line per group (followed by its frames
/// for tracebacks), what the limit left out, and the total.
fn write_text(
    out: &mut dyn Write,
    key: KeyType,
    args: &StatsArgs,
    rows: &Rows,
    total: &Total,
    limit: usize,
) -> Result<()> {
    let cumulative = args.cumulative;
    let shown = rows.len().min(limit);
    let what = match rows {
        Rows::Plain(_) => key_noun(key),
        Rows::Diff(_) => "differences",
    };
    let mode = if cumulative { " (cumulative)" } else { "" };
    // The live metric keeps tracemalloc's header; the others say what the
    // sizes and counts are.
    let by = match args.metric {
        MetricArg::Live => String::new(),
        metric => format!(" by {}", metric.name()),
    };
    writeln!(out, "[ Top {shown} {what}{by}{mode} ]")?;
    let mut sources = SourceLines::default();
    let mut print_traceback = |out: &mut dyn Write, tb: &Traceback| -> Result<()> {
        if key == KeyType::Traceback {
            for line in tb.format(None, false, |f, l| sources.line(f, l)) {
                writeln!(out, "{line}")?;
            }
        }
        Ok(())
    };
    match rows {
        Rows::Plain(stats) => {
            for (i, stat) in stats.iter().take(limit).enumerate() {
                writeln!(out, "#{}: {stat}", i + 1)?;
                print_traceback(out, &stat.traceback)?;
            }
            let others = Others::of_statistics(stats, shown);
            if others.rows > 0 && !cumulative {
                writeln!(
                    out,
                    "{} other: size={}, count={}",
                    others.rows,
                    format_size(others.size as f64, false),
                    others.count
                )?;
            }
        }
        Rows::Diff(diffs) => {
            for (i, diff) in diffs.iter().take(limit).enumerate() {
                writeln!(out, "#{}: {diff}", i + 1)?;
                print_traceback(out, &diff.traceback)?;
            }
            let others = Others::of_diffs(diffs, shown);
            if others.rows > 0 && !cumulative {
                writeln!(
                    out,
                    "{} other: {}",
                    others.rows,
                    format_size(others.size_diff as f64, true)
                )?;
            }
        }
    }
    let label = args.metric.total_label();
    match total.diff {
        None => writeln!(
            out,
            "{label}: {} in {} blocks",
            format_size(total.size as f64, false),
            total.count
        )?,
        Some((size_diff, count_diff)) => writeln!(
            out,
            "{label}: {} ({}) in {} blocks ({count_diff:+})",
            format_size(total.size as f64, false),
            format_size(size_diff as f64, true),
            total.count
        )?,
    }
    Ok(())
}

/// Source lines for traceback display, read once per file (the equivalent
/// of Python's `linecache`); files that cannot be read give no line.
#[derive(Default)]
struct SourceLines {
    files: std::collections::HashMap<String, Option<Vec<String>>>,
}

impl SourceLines {
    fn line(&mut self, filename: &str, lineno: u32) -> Option<String> {
        let lines = self.files.entry(filename.to_owned()).or_insert_with(|| {
            std::fs::read_to_string(filename)
                .ok()
                .map(|text| text.lines().map(str::to_owned).collect())
        });
        let index = usize::try_from(lineno).ok()?.checked_sub(1)?;
        lines.as_ref()?.get(index).cloned()
    }
}

/// A frame as the JSON output writes it.
#[derive(Serialize)]
struct FrameJson<'a> {
    filename: &'a str,
    lineno: u32,
    function: Option<&'a str>,
}

/// A traceback's frames, serialized straight from the snapshot's frames
/// without building an intermediate JSON tree.
struct FramesJson<'a>(&'a Traceback);

impl Serialize for FramesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.frames.iter().map(|frame| FrameJson {
            filename: &frame.filename,
            lineno: frame.lineno,
            function: frame.function.as_deref(),
        }))
    }
}

/// One row of the JSON output, or its `total` (which has no frames); the
/// diff fields only when comparing.
#[derive(Serialize)]
struct RowJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    frames: Option<FramesJson<'a>>,
    size: u64,
    count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_diff: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count_diff: Option<i64>,
}

/// The rows, streamed one by one: on a million-row traceback grouping a
/// JSON tree of maps would cost more than the analysis itself.
struct RowsJson<'a> {
    rows: &'a Rows,
    limit: usize,
}

impl Serialize for RowsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.rows {
            Rows::Plain(stats) => {
                serializer.collect_seq(stats.iter().take(self.limit).map(|s| RowJson {
                    frames: Some(FramesJson(&s.traceback)),
                    size: s.size,
                    count: s.count,
                    size_diff: None,
                    count_diff: None,
                }))
            }
            Rows::Diff(diffs) => {
                serializer.collect_seq(diffs.iter().take(self.limit).map(|d| RowJson {
                    frames: Some(FramesJson(&d.traceback)),
                    size: d.size,
                    count: d.count,
                    size_diff: Some(d.size_diff),
                    count_diff: Some(d.count_diff),
                }))
            }
        }
    }
}

/// The whole JSON document (docs/FORMAT.md, "stats JSON").
#[derive(Serialize)]
struct StatsJson<'a> {
    group_by: &'static str,
    metric: &'static str,
    cumulative: bool,
    total: RowJson<'a>,
    stats: RowsJson<'a>,
}

/// JSON output (docs/FORMAT.md, "stats JSON").
fn write_json(
    out: &mut dyn Write,
    key: KeyType,
    args: &StatsArgs,
    rows: &Rows,
    total: &Total,
    limit: usize,
) -> Result<()> {
    let doc = StatsJson {
        group_by: key.as_str(),
        metric: args.metric.name(),
        cumulative: args.cumulative,
        total: RowJson {
            frames: None,
            size: total.size,
            count: total.count,
            size_diff: total.diff.map(|(size_diff, _)| size_diff),
            count_diff: total.diff.map(|(_, count_diff)| count_diff),
        },
        stats: RowsJson { rows, limit },
    };
    serde_json::to_writer(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}

/// CSV output (docs/FORMAT.md, "stats CSV"), written by the format crate
/// as the viewer's File > Export writes it.
fn write_csv(out: &mut dyn Write, key: KeyType, rows: &Rows, limit: usize) -> Result<()> {
    match rows {
        Rows::Plain(stats) => write_statistics_csv(&stats[..limit.min(stats.len())], key, out)?,
        Rows::Diff(diffs) => write_diffs_csv(&diffs[..limit.min(diffs.len())], key, out)?,
    }
    Ok(())
}

fn info(args: &InfoArgs, out: &mut dyn Write) -> Result<()> {
    // Read once: the kind and the snapshot come from the same bytes.
    let path = &args.snapshot;
    let bytes = std::fs::read(path)
        .map_err(|e| FileError::new(path, tracemalloc_format::ErrorKind::Read(e)))?;
    let kind = detect_kind(&bytes).map_err(|kind| FileError::new(path, kind))?;
    let snapshot = Snapshot::from_bytes_with(&bytes, &LoadOptions::from(args.dhat_point))
        .map_err(|kind| FileError::new(path, kind))?;
    let m = snapshot.metadata();
    let tables = snapshot.tables();
    let totals = snapshot.totals();
    // Bytes and blocks per domain, sorted by domain, scaled as the total
    // is in sampled snapshots.
    let domains = snapshot.totals_by_domain();
    if args.json {
        let doc = json!({
            "file": args.snapshot.display().to_string(),
            "kind": kind.name(),
            "format_version": m.format_version,
            "producer": m.producer,
            "pid": m.pid,
            "command_line": m.command_line,
            "timestamp": m.timestamp.map(|t| t.to_string()),
            "traced_current": m.traced_current,
            "traced_peak": m.traced_peak,
            "tracemalloc_memory": m.tracemalloc_memory,
            "sampling_rate": m.sampling_rate,
            "traceback_limit": snapshot.traceback_limit(),
            "total": {"size": totals.size, "count": totals.count},
            "traces": snapshot.traces().len(),
            "tracebacks": tables.traceback_count(),
            "frames": tables.frame_count(),
            "strings": tables.string_count(),
            "domains": domains
                .iter()
                .map(|(d, t)| json!({"domain": d, "size": t.size, "count": t.count}))
                .collect::<Vec<_>>(),
            "history": snapshot.history().map(|h| {
                let t = h.total();
                json!({
                    "rows": h.rows().len(),
                    "allocated": {"size": t.allocated_bytes, "count": t.allocated_blocks},
                    "freed_blocks": t.freed_blocks,
                    "temporary": {"size": t.temporary_bytes, "count": t.temporary_blocks},
                    "peak": {"size": t.peak_bytes, "count": t.peak_blocks},
                    "peak_timestamp": h.peak_timestamp.map(|t| t.to_string()),
                })
            }),
        });
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
        return Ok(());
    }
    let opt = |v: Option<String>| v.unwrap_or_else(|| "unknown".to_owned());
    writeln!(out, "File:               {}", args.snapshot.display())?;
    writeln!(
        out,
        "Format:             {}",
        match m.format_version {
            Some(v) => format!(".tmsnap version {v}"),
            None => kind.name().to_owned(),
        }
    )?;
    writeln!(out, "Producer:           {}", opt(m.producer.clone()))?;
    writeln!(
        out,
        "Process id:         {}",
        opt(m.pid.map(|p| p.to_string()))
    )?;
    writeln!(
        out,
        "Command line:       {}",
        opt(m.command_line.as_ref().map(|c| c.join(" ")))
    )?;
    writeln!(
        out,
        "Timestamp (UTC):    {}",
        opt(m.timestamp.map(|t| t.to_string()))
    )?;
    let size = |v: Option<u64>| opt(v.map(|v| format!("{} ({v} B)", format_size(v as f64, false))));
    writeln!(out, "Traced memory:      {}", size(m.traced_current))?;
    writeln!(out, "Traced peak:        {}", size(m.traced_peak))?;
    writeln!(out, "Recorder memory:    {}", size(m.tracemalloc_memory))?;
    writeln!(
        out,
        "Sampling:           {}",
        m.sampling_rate
            .map_or("off (every block)".to_owned(), |r| format!(
                "one sample per {r} bytes on average"
            ))
    )?;
    writeln!(out, "Traceback limit:    {}", snapshot.traceback_limit())?;
    writeln!(
        out,
        "Total:              {} in {} blocks",
        format_size(totals.size as f64, false),
        totals.count
    )?;
    writeln!(out, "Traces:             {}", snapshot.traces().len())?;
    writeln!(out, "Tracebacks:         {}", tables.traceback_count())?;
    writeln!(out, "Frames:             {}", tables.frame_count())?;
    writeln!(out, "Strings:            {}", tables.string_count())?;
    for (domain, t) in &domains {
        // In the column of the lines above: `Domain 0:` padded as
        // `Traced memory:` is.
        let name = format!("Domain {domain}:");
        writeln!(
            out,
            "{name:<19} {} in {} blocks",
            format_size(t.size as f64, false),
            t.count
        )?;
    }
    let amount =
        |size: u64, count: u64| format!("{} in {count} blocks", format_size(size as f64, false));
    match snapshot.history() {
        None => writeln!(
            out,
            "History:            none (only the live blocks were recorded)"
        )?,
        Some(h) => {
            let t = h.total();
            writeln!(
                out,
                "Allocated:          {} ({} freed)",
                amount(t.allocated_bytes, t.allocated_blocks),
                t.freed_blocks
            )?;
            writeln!(
                out,
                "Temporary:          {}",
                amount(t.temporary_bytes, t.temporary_blocks)
            )?;
            writeln!(
                out,
                "At the peak:        {}{}",
                amount(t.peak_bytes, t.peak_blocks),
                h.peak_timestamp
                    .map_or(String::new(), |t| format!(" (at {t})"))
            )?;
        }
    }
    Ok(())
}

fn convert(args: &ConvertArgs, out: &mut dyn Write) -> Result<()> {
    let snapshot = load(&args.input, &LoadOptions::from(args.dhat_point))?;
    let to = args.to.unwrap_or(if pprof::is_pprof_path(&args.output) {
        ConvertFormat::Pprof
    } else {
        ConvertFormat::Tmsnap
    });
    let kind = match to {
        ConvertFormat::Pprof => {
            pprof::write(&snapshot, &args.output)?;
            match pprof::Encoding::for_path(&args.output) {
                pprof::Encoding::Gzip => "pprof, gzipped; ",
                pprof::Encoding::Plain => "pprof, plain; ",
            }
        }
        ConvertFormat::Tmsnap => {
            snapshot.dump(&args.output)?;
            ""
        }
    };
    writeln!(
        out,
        "wrote {} ({kind}{} traces, {} tracebacks)",
        args.output.display(),
        snapshot.traces().len(),
        snapshot.tables().traceback_count()
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_line_specs() {
        let ok = |spec: &str| parse_glob_line(spec).unwrap();
        assert_eq!(ok("a.py"), ("a.py".to_owned(), None));
        assert_eq!(ok("a.py:12"), ("a.py".to_owned(), Some(12)));
        assert_eq!(ok("src/*.rs:0"), ("src/*.rs".to_owned(), Some(0)));
        assert_eq!(ok("C:*"), ("C:*".to_owned(), None));
        assert_eq!(ok("a.py:"), ("a.py:".to_owned(), None));
        assert_eq!(ok("x:1:2"), ("x:1".to_owned(), Some(2)));
        assert!(parse_glob_line(":12").is_err());
        assert!(parse_glob_line("").is_err());
        assert!(
            parse_glob_line("a.py:99999999999")
                .unwrap_err()
                .to_string()
                .contains("too large")
        );
    }
}
