//! Text for the screen: numbers with thousands separators, shortened paths,
//! one-line descriptions of filters and snapshots. Pure functions, tested
//! here; the drawing code only calls them.

use std::path::Path;

use tracemalloc_format::{
    DomainFilter, Filter, Metric, TraceFilter, format_bytes, format_bytes_diff,
};

/// How the window names a metric's numbers: the picker's entry, the
/// table's headers, the charts' and timeline's titles. Live blocks keep
/// tracemalloc's words ("Size", "Count"), so that a snapshot without
/// history looks as it always did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricText {
    /// The picker's entry: `Live`, `Allocated`, `Temporary`, `Peak`.
    pub name: &'static str,
    /// The picker's tooltip: what the metric counts.
    pub hint: &'static str,
    /// The size column's header.
    pub size: &'static str,
    /// The size difference column's header.
    pub size_diff: &'static str,
    /// The count column's header.
    pub count: &'static str,
    /// The count difference column's header.
    pub count_diff: &'static str,
    /// The size in a sentence ("Top 10 by …", a plot's title).
    pub size_phrase: &'static str,
    /// The count in a sentence.
    pub count_phrase: &'static str,
}

/// The words for `metric`'s numbers (see [`MetricText`]).
pub fn metric_text(metric: Metric) -> MetricText {
    match metric {
        Metric::Live => MetricText {
            name: "Live",
            hint: "The blocks alive when the snapshot was taken (tracemalloc's view)",
            size: "Size",
            size_diff: "Size Δ",
            count: "Count",
            count_diff: "Count Δ",
            size_phrase: "size",
            count_phrase: "count",
        },
        Metric::Allocated => MetricText {
            name: "Allocated",
            hint: "Every block allocated since tracing started, freed or not: \
                   where the program allocates most (churn)",
            size: "Bytes allocated",
            size_diff: "Allocated Δ",
            count: "Allocations",
            count_diff: "Allocations Δ",
            size_phrase: "bytes allocated",
            count_phrase: "allocations",
        },
        Metric::Temporary => MetricText {
            name: "Temporary",
            hint: "Blocks freed by their thread before it allocated anything else: \
                   allocations that could be avoided",
            size: "Temporary bytes",
            size_diff: "Temporary Δ",
            count: "Temporaries",
            count_diff: "Temporaries Δ",
            size_phrase: "temporary bytes",
            count_phrase: "temporaries",
        },
        Metric::Peak => MetricText {
            name: "Peak",
            hint: "The blocks alive at the peak of traced memory: what used the memory \
                   when it was highest",
            size: "Bytes at peak",
            size_diff: "At peak Δ",
            count: "Blocks at peak",
            count_diff: "Blocks at peak Δ",
            size_phrase: "bytes at peak",
            count_phrase: "blocks at peak",
        },
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count and its noun, singular for one: `1 block`, `1,024 blocks`.
pub fn count_of(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// A signed count with its sign and thousands separators: `+1,234`, `-5`,
/// `0`.
pub fn signed_thousands(n: i64) -> String {
    match n.cmp(&0) {
        std::cmp::Ordering::Greater => format!("+{}", thousands(n.unsigned_abs())),
        std::cmp::Ordering::Less => format!("-{}", thousands(n.unsigned_abs())),
        std::cmp::Ordering::Equal => "0".to_owned(),
    }
}

/// A size as tracemalloc prints it: `12.3 MiB`.
pub fn size(bytes: u64) -> String {
    format_bytes(bytes)
}

/// A sampled snapshot's sampling, as the status bar and the snapshot's
/// details show it: `1 per 512 KiB`, the mean distance between samples.
pub fn sampling(mean_bytes: u64) -> String {
    format!("1 per {}", size(mean_bytes))
}

/// What a sampled snapshot's figures are, for the hover text of its
/// sampling.
pub const SAMPLING_HELP: &str = "Sampled tracing: a block of s bytes was traced with probability \
     1 - exp(-s / mean). Sizes and counts are estimates: each traced block stands for \
     1 / probability blocks like it. The traces counted are the sampled ones.";

/// A size difference with its sign: `+1.2 MiB`, `-30 B`.
pub fn size_diff(bytes: i64) -> String {
    format_bytes_diff(bytes)
}

/// `text` (a path, maybe followed by `:line`) in at most `max_chars`
/// characters, elided in the middle: the file name and what follows it
/// are what tell rows apart, so they stay whole, and whole directories
/// are left out between the path's start and its end, those nearest the
/// file kept first: `recorder/examples/leaky_service/src/cache.rs:8` in 30
/// characters is `…/leaky_service/src/cache.rs:8`, in 29
/// `recorder/…/src/cache.rs:8`. When not even `…/` and the file name fit,
/// the text's end is kept: `…ache.rs:8`.
pub fn elide_middle(text: &str, max_chars: usize) -> String {
    let len = text.chars().count();
    if len <= max_chars {
        return text.to_owned();
    }
    if max_chars == 0 {
        return String::new();
    }
    let name_start = text.rfind(['/', '\\']).map_or(0, |i| i + 1);
    let (dir, name) = text.split_at(name_start);
    let name_len = name.chars().count();
    let ellipsis = "…/";
    if dir.is_empty() || name_len + ellipsis.chars().count() > max_chars {
        let keep = max_chars - 1;
        let tail: String = text.chars().skip(len - keep).collect();
        return format!("…{tail}");
    }
    // Directories with their separators, e.g. `recorder/`, `examples/`.
    let components: Vec<&str> = dir.split_inclusive(['/', '\\']).collect();
    let mut budget = max_chars - name_len - ellipsis.chars().count();
    let mut back = components.len();
    while back > 0 {
        let width = components[back - 1].chars().count();
        if width > budget {
            break;
        }
        budget -= width;
        back -= 1;
    }
    // The first directory too, if it still fits and is neither the root
    // nor an ellipsis already (a path shortened by `shorten_path`).
    let first = components[0];
    let front = if back > 0
        && first.len() > 1
        && !first.starts_with('…')
        && first.chars().count() <= budget
    {
        first
    } else {
        ""
    };
    let back = components[back..].concat();
    format!("{front}{ellipsis}{back}{name}")
}

/// The last `keep` components of a path, with `…/` in front when some were
/// left out: `/home/me/app/src/db/pool.rs` becomes `…/src/db/pool.rs`.
/// Both separators count, so Windows paths shorten too.
pub fn shorten_path(path: &str, keep: usize) -> String {
    let keep = keep.max(1);
    let separators: Vec<usize> = path
        .char_indices()
        .filter(|&(_, c)| c == '/' || c == '\\')
        .map(|(i, _)| i)
        .collect();
    // Components after the last `keep` separators; an absolute path's
    // leading separator does not make an extra component.
    if separators.len() < keep || (separators.len() == keep && separators[0] == 0) {
        return path.to_owned();
    }
    let cut = separators[separators.len() - keep];
    format!("…{}", &path[cut..])
}

/// The last component of a path (either separator): `pool.rs` for
/// `/app/src/db/pool.rs`.
pub fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Escapes a file name for a CPython `fnmatch` pattern, so that a filter
/// made from a file matches that file only: `*`, `?` and `[` become
/// `[*]`, `[?]` and `[[]`.
pub fn escape_glob(filename: &str) -> String {
    let mut out = String::with_capacity(filename.len());
    for c in filename.chars() {
        match c {
            '*' | '?' | '[' => {
                out.push('[');
                out.push(c);
                out.push(']');
            }
            c => out.push(c),
        }
    }
    out
}

/// A filter in one line, as its chip shows it: `include */db/*`,
/// `exclude a.rs:12 (any frame, domain 1)`, `exclude domain 2`.
pub fn describe_filter(filter: &TraceFilter) -> String {
    match filter {
        TraceFilter::Filter(Filter {
            inclusive,
            filename_pattern,
            lineno,
            all_frames,
            domain,
        }) => {
            let mut text = format!(
                "{} {filename_pattern}",
                if *inclusive { "include" } else { "exclude" }
            );
            if let Some(line) = lineno {
                text.push_str(&format!(":{line}"));
            }
            let mut extras = Vec::new();
            if *all_frames {
                extras.push("any frame".to_owned());
            }
            if let Some(domain) = domain {
                extras.push(format!("domain {domain}"));
            }
            if !extras.is_empty() {
                text.push_str(&format!(" ({})", extras.join(", ")));
            }
            text
        }
        TraceFilter::Domain(DomainFilter { inclusive, domain }) => format!(
            "{} domain {domain}",
            if *inclusive { "include" } else { "exclude" }
        ),
    }
}

/// The file name of a path, or the whole path when it has none.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// A percentage with one decimal: `12.3 %`; tiny shares show as `<0.1 %`
/// rather than a misleading `0.0 %`.
pub fn percent(fraction: f64) -> String {
    let pct = fraction * 100.0;
    if pct > 0.0 && pct < 0.05 {
        "<0.1 %".to_owned()
    } else {
        format!("{pct:.1} %")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_its_own_words_and_live_keeps_tracemallocs() {
        let live = metric_text(Metric::Live);
        assert_eq!((live.size, live.count), ("Size", "Count"));
        let mut names: Vec<&str> = Vec::new();
        for metric in Metric::ALL {
            let t = metric_text(metric);
            // Headers differ from the picker's entries, so that a label
            // names one thing on screen.
            for header in [t.size, t.size_diff, t.count, t.count_diff] {
                assert!(Metric::ALL.iter().all(|&m| metric_text(m).name != header));
            }
            names.extend([t.name, t.size, t.count]);
        }
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
    }

    #[test]
    fn paths_are_elided_in_the_middle() {
        let path = "recorder/examples/leaky_service/src/cache.rs:8";
        let cases: &[(usize, &str)] = &[
            (100, path),
            (46, path),
            (45, "…/examples/leaky_service/src/cache.rs:8"),
            (39, "…/examples/leaky_service/src/cache.rs:8"),
            (38, "…/leaky_service/src/cache.rs:8"),
            (30, "…/leaky_service/src/cache.rs:8"),
            (29, "recorder/…/src/cache.rs:8"),
            (24, "…/src/cache.rs:8"),
            (16, "…/src/cache.rs:8"),
            (15, "…/cache.rs:8"),
            (12, "…/cache.rs:8"),
            (11, "…cache.rs:8"),
            (10, "…ache.rs:8"),
            (3, "…:8"),
            (1, "…"),
            (0, ""),
        ];
        for &(max, expected) in cases {
            let elided = elide_middle(path, max);
            assert_eq!(elided, expected, "in {max} characters");
            assert!(elided.chars().count() <= max, "{elided} in {max}");
        }
        // The root of an absolute path is not kept as a first directory.
        assert_eq!(
            elide_middle("/rustc/0123/library/alloc/src/vec/mod.rs:2430", 30),
            "…/alloc/src/vec/mod.rs:2430"
        );
        // A path already shortened keeps one ellipsis.
        assert_eq!(
            elide_middle("…/alloc/src/raw_vec.rs:480", 20),
            "…/src/raw_vec.rs:480"
        );
        assert_eq!(
            elide_middle("…/alloc/src/raw_vec.rs:480", 18),
            "…/raw_vec.rs:480"
        );
        // Windows separators, and a name without a directory.
        assert_eq!(
            elide_middle(r"C:\app\src\db\pool.rs:3", 16),
            r"…/db\pool.rs:3"
        );
        assert_eq!(
            elide_middle("a_very_long_module_name.py:12", 10),
            "…ame.py:12"
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(signed_thousands(1234), "+1,234");
        assert_eq!(signed_thousands(-5), "-5");
        assert_eq!(signed_thousands(0), "0");
        assert_eq!(signed_thousands(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count_of(1, "block", "blocks"), "1 block");
        assert_eq!(count_of(0, "block", "blocks"), "0 blocks");
        assert_eq!(count_of(1024, "row", "rows"), "1,024 rows");
    }

    #[test]
    fn paths_keep_their_last_components() {
        assert_eq!(
            shorten_path("/home/me/app/src/db/pool.rs", 3),
            "…/src/db/pool.rs"
        );
        assert_eq!(shorten_path("/src/db/pool.rs", 3), "/src/db/pool.rs");
        assert_eq!(shorten_path("src/db/pool.rs", 3), "src/db/pool.rs");
        assert_eq!(shorten_path("a/src/db/pool.rs", 3), "…/src/db/pool.rs");
        assert_eq!(shorten_path("pool.rs", 3), "pool.rs");
        assert_eq!(shorten_path(r"C:\app\src\db\pool.rs", 2), r"…\db\pool.rs");
        assert_eq!(
            shorten_path("<frozen importlib._bootstrap>", 3),
            "<frozen importlib._bootstrap>"
        );
        assert_eq!(base_name("/a/b/pool.rs"), "pool.rs");
        assert_eq!(base_name(r"C:\a\pool.rs"), "pool.rs");
        assert_eq!(base_name("pool.rs"), "pool.rs");
    }

    #[test]
    fn globs_escape_their_special_characters() {
        assert_eq!(escape_glob("/a/b.rs"), "/a/b.rs");
        assert_eq!(escape_glob("x[1]*?.py"), "x[[]1][*][?].py");
        // The escaped pattern matches the file, and only it.
        let filter = Filter::new(true, &escape_glob("x[1]*.py"));
        assert!(filter.matches(0, &[("x[1]*.py", 1)]));
        assert!(!filter.matches(0, &[("x1abc.py", 1)]));
    }

    #[test]
    fn filters_read_as_one_line() {
        let f = |f: Filter| describe_filter(&f.into());
        assert_eq!(f(Filter::new(true, "*/db/*")), "include */db/*");
        assert_eq!(
            f(Filter::new(false, "a.rs")
                .with_lineno(12)
                .with_all_frames(true)
                .with_domain(1)),
            "exclude a.rs:12 (any frame, domain 1)"
        );
        assert_eq!(
            describe_filter(
                &DomainFilter {
                    inclusive: false,
                    domain: 2
                }
                .into()
            ),
            "exclude domain 2"
        );
    }

    #[test]
    fn percentages() {
        assert_eq!(percent(0.123), "12.3 %");
        assert_eq!(percent(0.0), "0.0 %");
        assert_eq!(percent(0.0001), "<0.1 %");
        assert_eq!(percent(1.0), "100.0 %");
    }
}
