//! Trace filters with CPython's semantics: `tracemalloc.Filter`,
//! `tracemalloc.DomainFilter` and `Snapshot.filter_traces`.

use serde::{Deserialize, Serialize};

use crate::fnmatch::{Pattern, normalize_filename};
use crate::model::{Snapshot, StringId, Tables, TracebackId};

/// CPython's `tracemalloc.Filter`: keeps (inclusive) or drops (exclusive)
/// traces by the filename and line of their most recent frame, or of any
/// frame with `all_frames`, optionally restricted to one domain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Filter {
    /// Include (`true`) or exclude (`false`) what matches.
    pub inclusive: bool,
    /// A Python `fnmatch` pattern; a `.pyc` suffix counts as `.py`.
    pub filename_pattern: String,
    /// Only this line, or any line.
    #[serde(default)]
    pub lineno: Option<u32>,
    /// Match any frame of the traceback instead of the most recent one.
    #[serde(default)]
    pub all_frames: bool,
    /// Only traces of this domain, or of any domain.
    #[serde(default)]
    pub domain: Option<u32>,
}

impl Filter {
    /// A filter on the most recent frame, any line, any domain (CPython's
    /// defaults), with the pattern normalised as CPython does.
    pub fn new(inclusive: bool, filename_pattern: &str) -> Filter {
        Filter {
            inclusive,
            filename_pattern: normalize_filename(filename_pattern).to_owned(),
            lineno: None,
            all_frames: false,
            domain: None,
        }
    }

    /// The same filter restricted to one line.
    pub fn with_lineno(mut self, lineno: u32) -> Filter {
        self.lineno = Some(lineno);
        self
    }

    /// The same filter matching any frame.
    pub fn with_all_frames(mut self, all_frames: bool) -> Filter {
        self.all_frames = all_frames;
        self
    }

    /// The same filter restricted to one domain.
    pub fn with_domain(mut self, domain: u32) -> Filter {
        self.domain = Some(domain);
        self
    }

    /// Whether a trace of this domain and traceback passes the filter
    /// (CPython's `Filter._match`); compiles the pattern each call, so for
    /// many traces use [`Snapshot::filter_traces`].
    pub fn matches(&self, domain: u32, frames: &[(&str, u32)]) -> bool {
        let compiled = CompiledFilter::new(self);
        let res = compiled.match_traceback(frames.iter().map(|&(f, l)| (f, l)));
        compiled.combine_domain(res, domain)
    }
}

/// CPython's `tracemalloc.DomainFilter`: keeps or drops the traces of one
/// domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DomainFilter {
    /// Include (`true`) or exclude (`false`) the domain.
    pub inclusive: bool,
    /// The domain.
    pub domain: u32,
}

impl DomainFilter {
    /// Whether a trace of this domain passes (`DomainFilter._match`).
    pub fn matches(&self, domain: u32) -> bool {
        (domain == self.domain) == self.inclusive
    }
}

/// Either kind of filter, as `Snapshot.filter_traces` accepts a list of both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TraceFilter {
    /// A filename (and line, domain) filter.
    Filter(Filter),
    /// A domain filter.
    Domain(DomainFilter),
}

impl TraceFilter {
    /// Whether the filter includes (as opposed to excludes) what it matches.
    pub fn inclusive(&self) -> bool {
        match self {
            TraceFilter::Filter(f) => f.inclusive,
            TraceFilter::Domain(d) => d.inclusive,
        }
    }
}

impl From<Filter> for TraceFilter {
    fn from(f: Filter) -> TraceFilter {
        TraceFilter::Filter(f)
    }
}

impl From<DomainFilter> for TraceFilter {
    fn from(f: DomainFilter) -> TraceFilter {
        TraceFilter::Domain(f)
    }
}

struct CompiledFilter<'a> {
    filter: &'a Filter,
    pattern: Pattern,
}

impl<'a> CompiledFilter<'a> {
    fn new(filter: &'a Filter) -> CompiledFilter<'a> {
        // CPython normalises the pattern in the constructor; doing it here too
        // makes filters built as struct literals behave the same.
        let pattern = Pattern::new(normalize_filename(&filter.filename_pattern));
        CompiledFilter { filter, pattern }
    }

    /// `Filter._match_frame_impl`.
    fn match_frame_impl(&self, filename: &str, lineno: u32) -> bool {
        self.pattern.matches(normalize_filename(filename))
            && self.filter.lineno.is_none_or(|l| l == lineno)
    }

    /// `Filter._match_traceback`, frames most recent first.
    fn match_traceback<'f>(&self, mut frames: impl Iterator<Item = (&'f str, u32)>) -> bool {
        let inclusive = self.filter.inclusive;
        if self.filter.all_frames {
            if frames.any(|(f, l)| self.match_frame_impl(f, l)) {
                inclusive
            } else {
                !inclusive
            }
        } else {
            // Snapshots never hold an empty traceback (the builder stores
            // `<unknown>:0` instead), so this only guards direct callers.
            match frames.next() {
                Some((f, l)) => self.match_frame_impl(f, l) == inclusive,
                None => !inclusive,
            }
        }
    }

    /// The domain part of `Filter._match`.
    fn combine_domain(&self, res: bool, domain: u32) -> bool {
        match self.filter.domain {
            None => res,
            Some(d) if self.filter.inclusive => res && domain == d,
            Some(d) => res || domain != d,
        }
    }
}

/// A filter's traceback verdicts for every traceback of a table, computed
/// once per traceback and once per filename instead of once per trace.
struct TracebackVerdicts<'a> {
    compiled: CompiledFilter<'a>,
    by_traceback: Vec<bool>,
}

impl<'a> TracebackVerdicts<'a> {
    fn new(filter: &'a Filter, tables: &Tables) -> TracebackVerdicts<'a> {
        let compiled = CompiledFilter::new(filter);
        // Pattern matching is the costly part; each filename is matched once.
        let mut filename_cache: Vec<Option<bool>> = vec![None; tables.string_count()];
        let mut filename_matches = |id: StringId| -> bool {
            *filename_cache[id.index()].get_or_insert_with(|| {
                compiled
                    .pattern
                    .matches(normalize_filename(tables.string(id)))
            })
        };
        let lineno = filter.lineno;
        let frame_impl = |frame| {
            let rec = tables.frame_record(frame);
            lineno.is_none_or(|l| l == rec.lineno) && filename_matches(rec.filename)
        };
        let mut frame_impl = frame_impl;
        let inclusive = filter.inclusive;
        let by_traceback = tables
            .traceback_ids()
            .map(|tb: TracebackId| {
                let frames = tables.traceback_frames(tb);
                if filter.all_frames {
                    frames.iter().any(|&f| frame_impl(f)) == inclusive
                } else {
                    match frames.first() {
                        Some(&f) => frame_impl(f) == inclusive,
                        None => !inclusive,
                    }
                }
            })
            .collect();
        TracebackVerdicts {
            compiled,
            by_traceback,
        }
    }

    fn matches(&self, domain: u32, traceback: TracebackId) -> bool {
        self.compiled
            .combine_domain(self.by_traceback[traceback.index()], domain)
    }
}

enum Prepared<'a> {
    Filter(TracebackVerdicts<'a>),
    Domain(DomainFilter),
}

impl Prepared<'_> {
    fn matches(&self, domain: u32, traceback: TracebackId) -> bool {
        match self {
            Prepared::Filter(v) => v.matches(domain, traceback),
            Prepared::Domain(d) => d.matches(domain),
        }
    }
}

impl Snapshot {
    /// A snapshot holding only the traces that pass `filters`, with
    /// CPython's rules (`Snapshot.filter_traces`): a trace is kept if it
    /// matches at least one inclusive filter (when there is any), and
    /// matches every exclusive filter (an exclusive filter "matches" a trace
    /// it does not exclude). No filter keeps every trace.
    ///
    /// The allocation history, where there is one, is filtered by the same
    /// rules. The result shares this snapshot's tables.
    pub fn filter_traces<'f>(&self, filters: &'f [TraceFilter]) -> Snapshot {
        let history_rows = || self.history.as_ref().map(|h| h.rows.clone());
        if filters.is_empty() {
            return self.with_traces(self.traces.clone(), history_rows());
        }
        let tables = &*self.tables;
        let prepare = |f: &'f TraceFilter| match f {
            TraceFilter::Filter(f) => Prepared::Filter(TracebackVerdicts::new(f, tables)),
            TraceFilter::Domain(d) => Prepared::Domain(*d),
        };
        let include: Vec<Prepared<'_>> = filters
            .iter()
            .filter(|f| f.inclusive())
            .map(prepare)
            .collect();
        let exclude: Vec<Prepared<'_>> = filters
            .iter()
            .filter(|f| !f.inclusive())
            .map(prepare)
            .collect();
        let keep = |domain: u32, traceback: TracebackId| {
            (include.is_empty() || include.iter().any(|f| f.matches(domain, traceback)))
                && exclude.iter().all(|f| f.matches(domain, traceback))
        };
        let traces = self
            .traces
            .iter()
            .filter(|t| keep(t.domain, t.traceback))
            .copied()
            .collect();
        // The history rows of a traceback pass or fail exactly as its traces
        // would, so that every metric of a filtered snapshot describes the
        // same blocks.
        let history_rows = self.history.as_ref().map(|h| {
            h.rows
                .iter()
                .filter(|r| keep(r.domain, r.traceback))
                .copied()
                .collect()
        });
        self.with_traces(traces, history_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(inclusive: bool, pattern: &str, lineno: Option<u32>, all_frames: bool) -> Filter {
        Filter {
            lineno,
            all_frames,
            ..Filter::new(inclusive, pattern)
        }
    }

    /// `TestFilters.test_filter_match_filename` and friends from CPython's
    /// test_tracemalloc.py, through the single-trace entry point.
    #[test]
    fn cpython_filter_match_filename() {
        let f = |inclusive, pattern: &str, filename: &str| {
            filter(inclusive, pattern, None, false).matches(0, &[(filename, 0)])
        };
        assert!(f(true, "abc", "abc"));
        assert!(!f(true, "abc", "12356"));
        assert!(!f(true, "abc", "<unknown>"));
        assert!(!f(false, "abc", "abc"));
        assert!(f(false, "abc", "12356"));
        assert!(f(false, "abc", "<unknown>"));

        assert!(f(true, "12356", "12356"));
        assert!(!f(false, "12356", "12356"));
        assert!(!f(true, "<unknown>", "12356"));
        assert!(f(false, "<unknown>", "12356"));
    }

    #[test]
    fn cpython_filter_match_filename_joker() {
        let fnm = |filename: &str, pattern: &str| {
            filter(true, pattern, None, false).matches(0, &[(filename, 0)])
        };
        // empty string
        assert!(!fnm("abc", ""));
        assert!(!fnm("", "abc"));
        assert!(fnm("", ""));
        assert!(fnm("", "*"));
        // no *
        assert!(fnm("abc", "abc"));
        assert!(!fnm("abc", "abcd"));
        assert!(!fnm("abc", "def"));
        // a*
        assert!(fnm("abc", "a*"));
        assert!(fnm("abc", "abc*"));
        assert!(!fnm("abc", "b*"));
        assert!(!fnm("abc", "abcd*"));
        // a*b
        assert!(fnm("abc", "a*c"));
        assert!(fnm("abcdcx", "a*cx"));
        assert!(!fnm("abb", "a*c"));
        assert!(!fnm("abcdce", "a*cx"));
        // a*b*c
        assert!(fnm("abcde", "a*c*e"));
        assert!(fnm("abcbdefeg", "a*bd*eg"));
        assert!(!fnm("abcdd", "a*c*e"));
        assert!(!fnm("abcbdefef", "a*bd*eg"));
        // a*b*c*
        assert!(fnm("abcdef", "a*b*c*"));
        assert!(fnm("abcdefg", "a*b*c*"));
        // replace .pyc suffix with .py
        assert!(fnm("a.pyc", "a.py"));
        assert!(fnm("a.py", "a.pyc"));
        // POSIX: case sensitive, "/" is a plain character.
        assert!(!fnm("aBC", "ABc"));
        assert!(!fnm("aBcDe", "Ab*dE"));
        assert!(!fnm("a.pyc", "a.PY"));
        assert!(!fnm("a.py", "a.PYC"));
        assert!(fnm("a/b", "a*b"));
        // a*b*c* with multiple stars
        assert!(fnm("abcde", "a**c**e"));
    }

    #[test]
    fn cpython_filter_match_trace() {
        let t1 = [("a.py", 2), ("b.py", 3)];
        let t2 = [("b.py", 4), ("b.py", 5)];
        let t3 = [("b.py", 1), ("<unknown>", 0)];
        let check = |f: Filter, expected: [bool; 3]| {
            assert_eq!(
                [f.matches(0, &t1), f.matches(0, &t2), f.matches(0, &t3)],
                expected,
                "{f:?}"
            );
        };
        check(filter(true, "b.py", None, true), [true, true, true]);
        check(filter(true, "b.py", None, false), [false, true, true]);
        check(filter(true, "b.py", Some(3), true), [true, false, false]);
        check(filter(true, "b.py", Some(3), false), [false, false, false]);
        check(filter(false, "b.py", None, true), [false, false, false]);
        check(filter(false, "b.py", None, false), [true, false, false]);
        check(filter(false, "b.py", Some(3), true), [false, true, true]);
        check(filter(false, "b.py", Some(3), false), [true, true, true]);
        check(filter(false, "<unknown>", None, true), [true, true, false]);
        check(filter(false, "<unknown>", None, false), [true, true, true]);
    }

    #[test]
    fn cpython_filter_match_lineno_and_domain() {
        // test_filter_attributes / Filter._match with a domain.
        let inc = Filter::new(true, "a.py").with_domain(1);
        assert!(inc.matches(1, &[("a.py", 1)]));
        assert!(!inc.matches(0, &[("a.py", 1)]));
        assert!(!inc.matches(1, &[("b.py", 1)]));
        let exc = Filter::new(false, "a.py").with_domain(1);
        // Excludes a.py only in domain 1.
        assert!(!exc.matches(1, &[("a.py", 1)]));
        assert!(exc.matches(0, &[("a.py", 1)]));
        assert!(exc.matches(1, &[("b.py", 1)]));
        let line = Filter::new(true, "a.py").with_lineno(5);
        assert!(line.matches(0, &[("a.py", 5)]));
        assert!(!line.matches(0, &[("a.py", 6)]));
        assert!(
            DomainFilter {
                inclusive: true,
                domain: 3
            }
            .matches(3)
        );
        assert!(
            !DomainFilter {
                inclusive: true,
                domain: 3
            }
            .matches(2)
        );
        assert!(
            !DomainFilter {
                inclusive: false,
                domain: 3
            }
            .matches(3)
        );
        assert!(
            DomainFilter {
                inclusive: false,
                domain: 3
            }
            .matches(2)
        );
    }

    #[test]
    fn pyc_pattern_is_normalised_at_construction() {
        assert_eq!(Filter::new(true, "x.pyc").filename_pattern, "x.py");
    }
}
