//! This crate against CPython, on pickles CPython wrote.
//!
//! `tests/data/make_fixtures.py` writes tracemalloc snapshots with CPython's
//! own `Snapshot.dump()` / `pickle.dump()` into `tests/data/cpython/`, and
//! next to each what CPython computes from it (statistics, comparisons,
//! filters, `str()` of rows). These tests load every pickle with
//! [`Snapshot::load`] and check that every number, every row order and every
//! string is the same. Where this crate deliberately differs (cumulative
//! statistics count a block once per group; see `Snapshot::statistics`),
//! the JSON also holds CPython's numbers with only that rule changed, under
//! `ours`, and those are what is compared.
//!
//! The same script writes `fnmatch_cases.json` and
//! `format_size_cases.json`, checked against [`fnmatch::fnmatch`] and
//! [`format_size`].

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use tracemalloc_format::{
    DomainFilter, Filter, KeyType, Snapshot, Statistic, StatisticDiff, TraceFilter, Traceback,
    fnmatch, format_size,
};

/// Every fixture the script writes. A fixture that goes missing, or one
/// that appears without being listed here, fails the test.
const FIXTURES: &[&str] = &[
    "basic_old",
    "domains",
    "empty",
    "filtered",
    "large_sizes",
    "odd_filenames",
    "proto2",
    "proto3",
    "proto4",
    "proto5",
    "py34_shape",
    "py34_shape_proto3",
    "py36_shape",
    "real_workload",
    "real_workload_early",
    "recursion",
    "tuple_traces",
    "unknown_frames",
];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_fixtures.py)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Loads fixtures once each, by name.
#[derive(Default)]
struct Loaded(HashMap<String, Snapshot>);

impl Loaded {
    fn get(&mut self, pickle: &str) -> &Snapshot {
        self.0.entry(pickle.to_owned()).or_insert_with(|| {
            let path = data_dir().join("cpython").join(pickle);
            Snapshot::load(&path).unwrap_or_else(|e| panic!("{e}"))
        })
    }
}

/// The one comparison helper: records a mismatch between what CPython
/// computed and what this crate computed, naming the fixture and the case
/// and showing the first differing row.
fn check(failures: &mut Vec<String>, fixture: &str, case: &str, expected: &Json, actual: &Json) {
    if expected == actual {
        return;
    }
    if let (Some(e), Some(a)) = (expected.as_object(), actual.as_object()) {
        // Report the first differing field, recursively.
        for (key, value) in e {
            let other = a.get(key).unwrap_or(&Json::Null);
            if value != other {
                return check(failures, fixture, &format!("{case}: {key}"), value, other);
            }
        }
    }
    let detail = match (expected.as_array(), actual.as_array()) {
        (Some(e), Some(a)) => {
            let i = e
                .iter()
                .zip(a)
                .position(|(x, y)| x != y)
                .unwrap_or(e.len().min(a.len()));
            format!(
                "{} rows expected, {} computed; first difference at row {i}:\n    \
                 CPython: {}\n    ours:    {}",
                e.len(),
                a.len(),
                e.get(i).map_or("(none)".to_owned(), Json::to_string),
                a.get(i).map_or("(none)".to_owned(), Json::to_string),
            )
        }
        _ => format!("CPython: {expected}\n    ours:    {actual}"),
    };
    failures.push(format!("{fixture}: {case}: {detail}"));
}

/// Frames of a key traceback, most recent first, as the JSON has them.
fn frames_json(tb: &Traceback) -> Json {
    Json::Array(
        tb.frames
            .iter()
            .map(|f| json!([&*f.filename, f.lineno]))
            .collect(),
    )
}

fn stat_rows(stats: &[Statistic]) -> Json {
    stats
        .iter()
        .map(|s| json!([s.size, s.count, frames_json(&s.traceback)]))
        .collect()
}

fn diff_rows(diffs: &[StatisticDiff]) -> Json {
    diffs
        .iter()
        .map(|d| {
            json!([
                d.size,
                d.size_diff,
                d.count,
                d.count_diff,
                frames_json(&d.traceback)
            ])
        })
        .collect()
}

fn strings<T: ToString>(rows: &[T], n: usize) -> Json {
    rows.iter().take(n).map(|r| json!(r.to_string())).collect()
}

fn key_type(case: &Json) -> (KeyType, bool) {
    let key = case["key_type"].as_str().expect("key_type");
    let key = key.parse().expect("a known key type");
    (key, case["cumulative"].as_bool().expect("cumulative"))
}

/// The expected rows and strings of a case: ours where we deliberately
/// differ from CPython, CPython's otherwise.
/// Checks `actual` rows (as `to_json` gives them) and their `str()` text
/// against a case's expected rows and strings.
fn check_rows<T: ToString>(
    failures: &mut Vec<String>,
    fixture: &str,
    label: &str,
    case: &Json,
    actual: &[T],
    to_json: impl Fn(&[T]) -> Json,
) {
    let (rows, strs) = expected_rows(case);
    check(failures, fixture, label, rows, &to_json(actual));
    let n = strs.as_array().map_or(0, Vec::len);
    check(
        failures,
        fixture,
        &format!("str of {label}"),
        strs,
        &strings(actual, n),
    );
}

fn expected_rows(case: &Json) -> (&Json, &Json) {
    match case.get("ours") {
        Some(ours) => (ours, &case["ours_str"]),
        None => (&case["rows"], &case["str"]),
    }
}

fn filter_of(json: &Json) -> TraceFilter {
    let inclusive = json["inclusive"].as_bool().expect("inclusive");
    let domain = json["domain"]
        .as_u64()
        .map(|d| u32::try_from(d).expect("u32 domain"));
    match json["kind"].as_str() {
        Some("domain") => DomainFilter {
            inclusive,
            domain: domain.expect("a domain filter has a domain"),
        }
        .into(),
        _ => {
            let mut f = Filter::new(inclusive, json["pattern"].as_str().expect("pattern"))
                .with_all_frames(json["all_frames"].as_bool().expect("all_frames"));
            if let Some(lineno) = json["lineno"].as_u64() {
                f = f.with_lineno(u32::try_from(lineno).expect("u32 lineno"));
            }
            if let Some(domain) = domain {
                f = f.with_domain(domain);
            }
            f.into()
        }
    }
}

fn check_fixture(name: &str, loaded: &mut Loaded, failures: &mut Vec<String>) {
    let expected = read_json(&data_dir().join("cpython").join(format!("{name}.json")));
    let pickle = expected["pickle"].as_str().expect("pickle");
    let snapshot = loaded.get(pickle).clone();
    let fixture = pickle;

    let meta = json!({
        "producer": snapshot.metadata().producer,
        "traceback_limit": snapshot.traceback_limit(),
        "traces": snapshot.traces().len(),
        "total_size": snapshot.total_size(),
    });
    let expected_meta = json!({
        "producer": expected["producer"],
        "traceback_limit": expected["traceback_limit"],
        "traces": expected["traces"],
        "total_size": expected["total_size"],
    });
    check(failures, fixture, "metadata", &expected_meta, &meta);
    assert_eq!(snapshot.metadata().format_version, None, "{fixture}");

    let first: Json = snapshot
        .traces()
        .iter()
        .take(5)
        .map(|t| {
            let tb = snapshot.traceback(t.traceback);
            json!({
                "domain": t.domain,
                "size": t.size,
                "frames": frames_json(&tb),
                "total_nframe": tb.total_nframe,
            })
        })
        .collect();
    check(
        failures,
        fixture,
        "first traces",
        &expected["first_traces"],
        &first,
    );

    for case in expected["statistics"].as_array().expect("statistics") {
        let (key, cumulative) = key_type(case);
        let label = format!("statistics({key}, cumulative={cumulative})");
        let stats = snapshot.statistics(key, cumulative).expect("statistics");
        check_rows(failures, fixture, &label, case, &stats, stat_rows);
    }

    for case in expected["compare_to"].as_array().expect("compare_to") {
        let (key, cumulative) = key_type(case);
        let old_name = case["old"].as_str().expect("old");
        let old = loaded.get(old_name).clone();
        let label = format!("compare_to({old_name}, {key}, cumulative={cumulative})");
        let diffs = snapshot
            .compare_to(&old, key, cumulative)
            .expect("compare_to");
        check_rows(failures, fixture, &label, case, &diffs, diff_rows);
    }

    for case in expected["filters"].as_array().expect("filters") {
        let filters: Vec<TraceFilter> = case["filters"]
            .as_array()
            .expect("filter list")
            .iter()
            .map(filter_of)
            .collect();
        let label = format!("filter_traces({})", case["filters"]);
        let filtered = snapshot.filter_traces(&filters);
        let stats = filtered
            .statistics(KeyType::Lineno, false)
            .expect("statistics");
        let actual = json!({
            "traces": filtered.traces().len(),
            "total_size": filtered.total_size(),
            "lineno_rows": stat_rows(&stats),
        });
        let expected = json!({
            "traces": case["traces"],
            "total_size": case["total_size"],
            "lineno_rows": case["lineno_rows"],
        });
        check(failures, fixture, &label, &expected, &actual);
    }
}

#[test]
fn every_fixture_matches_cpython() {
    let mut loaded = Loaded::default();
    let mut failures = Vec::new();
    for name in FIXTURES {
        check_fixture(name, &mut loaded, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} mismatches with CPython:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Every JSON in the directory is one of FIXTURES, and has its pickle.
    let on_disk: BTreeSet<String> = std::fs::read_dir(data_dir().join("cpython"))
        .expect("tests/data/cpython")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = FIXTURES
        .iter()
        .flat_map(|n| [format!("{n}.json"), format!("{n}.pickle")])
        .collect();
    assert_eq!(on_disk, listed, "fixtures on disk and FIXTURES differ");
}

/// The deliberate difference is real: on the recursion fixture CPython's
/// cumulative numbers and ours differ (so the main test, which compares
/// with ours there, would fail if we computed CPython's), and where no
/// traceback repeats a line or file they agree.
#[test]
fn recursion_fixture_shows_the_deliberate_difference() {
    let mut loaded = Loaded::default();
    let recursion = read_json(&data_dir().join("cpython/recursion.json"));
    let snapshot = loaded.get("recursion.pickle").clone();
    for case in recursion["statistics"].as_array().expect("statistics") {
        let (key, cumulative) = key_type(case);
        let ours = stat_rows(&snapshot.statistics(key, cumulative).expect("statistics"));
        if cumulative {
            let expected = case
                .get("ours")
                .expect("recursion differs in cumulative mode");
            assert_ne!(
                expected, &case["rows"],
                "{key}: ours and CPython's are the same"
            );
            assert_eq!(&ours, expected, "{key}");
            assert_ne!(ours, case["rows"], "{key}: we compute CPython's numbers");
        } else {
            assert!(case.get("ours").is_none(), "{key}");
            assert_eq!(ours, case["rows"], "{key}");
        }
    }
    // In CPython's numbers a recursive line weighs more than all memory.
    let cumulative = &recursion["statistics"][3];
    assert_eq!(cumulative["key_type"], "lineno");
    let total = recursion["total_size"].as_u64().expect("total");
    let top = cumulative["rows"][0][0].as_u64().expect("size");
    assert!(top > total, "CPython's top row {top} vs total {total}");
    assert!(cumulative["ours"][0][0].as_u64().expect("size") <= total);

    let proto4 = read_json(&data_dir().join("cpython/proto4.json"));
    for case in proto4["statistics"].as_array().expect("statistics") {
        assert!(case.get("ours").is_none(), "proto4 has no repeated frame");
    }
}

/// The two shapes of traces before 3.9 give the same analysis as the
/// current one (the fixtures hold the same blocks).
#[test]
fn older_trace_shapes_read_like_the_current_one() {
    let mut loaded = Loaded::default();
    let current = loaded.get("proto4.pickle").clone();
    for old in ["py34_shape.pickle", "py34_shape_proto3.pickle"] {
        let snapshot = loaded.get(old).clone();
        for (key, cumulative) in [(KeyType::Traceback, false), (KeyType::Lineno, true)] {
            assert_eq!(
                stat_rows(&snapshot.statistics(key, cumulative).expect("statistics")),
                stat_rows(&current.statistics(key, cumulative).expect("statistics")),
                "{old}"
            );
        }
        assert!(snapshot.traces().iter().all(|t| t.domain == 0), "{old}");
        let tb = snapshot.traceback(snapshot.traces()[0].traceback);
        assert_eq!(tb.total_nframe, None, "{old}");
    }
}

#[test]
fn fnmatch_agrees_with_python() {
    let cases = read_json(&data_dir().join("fnmatch_cases.json"));
    let cases = cases.as_array().expect("a list of cases");
    assert!(cases.len() >= 2000, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut matches = 0;
    for case in cases {
        let name = case[0].as_str().expect("name");
        let pattern = case[1].as_str().expect("pattern");
        let expected = case[2].as_bool().expect("expected");
        matches += usize::from(expected);
        if fnmatch::fnmatch(name, pattern) != expected {
            failures.push(format!(
                "fnmatch({name:?}, {pattern:?}): Python says {expected}"
            ));
        }
    }
    // The cases exercise both outcomes.
    assert!(matches > 100 && matches < cases.len() - 100, "{matches}");
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn format_size_agrees_with_python() {
    let cases = read_json(&data_dir().join("format_size_cases.json"));
    let cases = cases.as_array().expect("a list of cases");
    assert!(cases.len() >= 2000, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in cases {
        let repr = case[0].as_str().expect("repr");
        let value = f64::from_bits(case[1].as_u64().expect("bits"));
        for (sign, expected) in [(false, &case[2]), (true, &case[3])] {
            let actual = format_size(value, sign);
            if Some(actual.as_str()) != expected.as_str() {
                failures.push(format!(
                    "_format_size({repr}, {sign}): Python {expected}, ours {actual:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} results differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
