//! The metric picker ("Show: Live Allocated Temporary Peak"), driven by
//! label as a user would: on a snapshot with an allocation history every
//! metric reorders the table, the charts, the flame graph, the annotated
//! source and the status line; on a CPython pickle or a version 1 file the
//! picker is not there; compared with a snapshot without history, the
//! history metrics are disabled and the numbers stay live ones.

mod support;

use std::path::{Path, PathBuf};

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use tracemalloc_format::Metric;
use tracemalloc_viewer::viewer::export::ExportKind;
use tracemalloc_viewer::viewer::{Command, ViewerApp};

use support::{settle, viewer, write_history_snapshot};

fn click(harness: &mut Harness<'static, ViewerApp>, label: &str) {
    harness.get_by_label(label).click();
    settle(harness);
}

/// The table's first row as (source, bytes, blocks), and the metric it
/// was computed for.
fn top_row(harness: &Harness<'static, ViewerApp>) -> (Metric, String, u64, u64) {
    let result = harness
        .state()
        .state
        .result
        .as_ref()
        .expect("a result is shown");
    let first = result.order[0] as usize;
    let row = result.view.rows()[first];
    (
        result.view.metric(),
        result.view.source_text(first),
        row.size,
        row.count,
    )
}

/// The status bar's summary line (`Lines: 3 — Total …`).
fn summary(harness: &Harness<'static, ViewerApp>) -> String {
    let node = harness
        .query_by(|n| {
            n.role() == Role::Label && n.value().is_some_and(|v| v.starts_with("Lines: "))
        })
        .expect("the status bar shows a summary");
    node.accesskit_node().value().unwrap_or_default()
}

/// The history snapshot with the source of `src/parse.rs` beside it, so
/// that the details panel can annotate it.
fn history_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = write_history_snapshot(dir.path());
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).expect("a writable temporary folder");
    let parse_rs: String = (1..=12).map(|n| format!("// line {n}\n")).collect();
    std::fs::write(src.join("parse.rs"), parse_rs).expect("a writable temporary folder");
    (dir, path)
}

fn cpython_pickle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format/tests/data/cpython/basic_old.pickle")
}

fn golden_v1() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../format/tests/data/golden-v1.tmsnap")
}

#[test]
fn each_metric_puts_its_own_line_on_top() {
    let (_dir, path) = history_dir();
    let mut harness = viewer(vec![path]);
    harness.get_by_label("Show");
    // Live blocks, as tracemalloc: the one kept block tops the table.
    assert_eq!(
        top_row(&harness),
        (Metric::Live, "src/keep.rs:3".to_owned(), 100, 1)
    );
    harness.get_by_label("Size ▼");
    harness.get_by_label("Count");
    assert_eq!(summary(&harness), "Lines: 1 — Total: 100 B");

    // Allocated: the thousand 16-byte temporaries of parse.rs are the churn.
    click(&mut harness, "Allocated");
    assert_eq!(
        top_row(&harness),
        (Metric::Allocated, "src/parse.rs:9".to_owned(), 16_000, 1000)
    );
    harness.get_by_label("Bytes allocated ▼");
    harness.get_by_label("Allocations");
    harness.get_by_label("Top 10 by bytes allocated");
    harness.get_by_label("Top 10 by allocations");
    assert!(
        !harness
            .query_all_by_label("1,000")
            .collect::<Vec<_>>()
            .is_empty()
    );
    assert_eq!(
        summary(&harness),
        "Lines: 3 — Total bytes allocated: 19.8 KiB"
    );

    // Temporary: only parse.rs made temporaries; no row of zeros for the
    // others.
    click(&mut harness, "Temporary");
    assert_eq!(
        top_row(&harness),
        (Metric::Temporary, "src/parse.rs:9".to_owned(), 16_000, 1000)
    );
    harness.get_by_label("Temporary bytes ▼");
    assert_eq!(
        summary(&harness),
        "Lines: 1 — Total temporary bytes: 15.6 KiB"
    );

    // Peak: the 4 KiB spike, freed before the snapshot, was live at the
    // peak.
    click(&mut harness, "Peak");
    assert_eq!(
        top_row(&harness),
        (Metric::Peak, "src/spike.rs:5".to_owned(), 4096, 1)
    );
    harness.get_by_label("Bytes at peak ▼");
    harness.get_by_label("Blocks at peak");

    // The metric is a step of the exploration: Back and Forward restore it.
    click(&mut harness, "Back");
    assert_eq!(top_row(&harness).0, Metric::Temporary);
    click(&mut harness, "Forward");
    assert_eq!(top_row(&harness).0, Metric::Peak);

    click(&mut harness, "Live");
    assert_eq!(
        top_row(&harness),
        (Metric::Live, "src/keep.rs:3".to_owned(), 100, 1)
    );
}

#[test]
fn the_flame_graph_and_the_annotated_source_follow_the_metric() {
    let (dir, path) = history_dir();
    let mut harness = viewer(vec![path]);
    click(&mut harness, "Allocated");
    // The details panel annotates parse.rs with its allocations.
    click(&mut harness, "src/parse.rs:9  parse");
    harness.get_by_label("In this file (bytes allocated): 15.6 KiB in 1,000 blocks");
    let annotation = harness
        .state()
        .state
        .result
        .as_ref()
        .and_then(|r| r.annotation.clone())
        .expect("the selected line's file is annotated");
    assert_eq!(annotation.metric(), Metric::Allocated);
    let line = annotation.line(9).expect("line 9 allocated");
    assert_eq!((line.here.size, line.here.count), (16_000, 1000));

    click(&mut harness, "Flame graph");
    harness.get_by_label_contains("All (bytes allocated): 19.8 KiB in 1,003 blocks");
    let value = |harness: &Harness<'static, ViewerApp>| {
        let result = harness.state().state.result.as_ref().expect("a result");
        result.flame.as_ref().expect("the flame tree").tree.value(0)
    };
    assert_eq!(value(&harness), 20_296);
    // Its folded stacks too.
    let folded = dir.path().join("allocated.folded");
    harness.state_mut().apply(Command::Export {
        kind: ExportKind::FoldedStacks,
        path: folded.clone(),
    });
    settle(&mut harness);
    let stacks = std::fs::read_to_string(&folded).expect("the export is written");
    assert!(
        stacks.contains("main (src/main.rs:1);parse (src/parse.rs:9) 16000\n"),
        "{stacks}"
    );
    click(&mut harness, "Peak");
    assert_eq!(value(&harness), 4096 + 200 + 16);
    click(&mut harness, "Live");
    assert_eq!(value(&harness), 100);
}

#[test]
fn pickles_and_version_1_files_show_no_picker() {
    for file in [cpython_pickle(), golden_v1()] {
        let harness = viewer(vec![file.clone()]);
        let state = &harness.state().state;
        assert!(
            state.current_snapshot().is_some(),
            "{} opens",
            file.display()
        );
        assert!(state.result.is_some(), "{} is analysed", file.display());
        assert!(
            harness.query_by_label("Show").is_none(),
            "{}",
            file.display()
        );
        for name in ["Live", "Allocated", "Temporary", "Peak"] {
            assert!(
                harness.query_by_label(name).is_none(),
                "{name} for {}",
                file.display()
            );
        }
        assert_eq!(top_row(&harness).0, Metric::Live);
    }
}

#[test]
fn a_comparison_with_a_snapshot_without_history_stays_live() {
    let (_dir, path) = history_dir();
    let mut harness = viewer(vec![path]);
    click(&mut harness, "Allocated");
    assert_eq!(top_row(&harness).0, Metric::Allocated);

    // Open the version 1 golden file too: one of the two compared
    // snapshots has no history.
    harness
        .state_mut()
        .apply(Command::OpenPaths(vec![golden_v1()]));
    settle(&mut harness);
    let state = &harness.state().state;
    assert!(state.compare_snapshot().is_some(), "two snapshots compared");
    assert!(state.metric_unavailable_reason().is_some());
    // The picker stays, live only: the numbers are live ones, not zeros.
    assert_eq!(top_row(&harness).0, Metric::Live);
    let allocated = harness.get_by_role_and_label(Role::Button, "Allocated");
    assert!(allocated.accesskit_node().is_disabled());
    assert!(
        !harness
            .get_by_role_and_label(Role::Button, "Live")
            .accesskit_node()
            .is_disabled()
    );
    allocated.click();
    settle(&mut harness);
    assert_eq!(top_row(&harness).0, Metric::Live);
    // Hovering a disabled metric says why.
    harness
        .get_by_role_and_label(Role::Button, "Temporary")
        .hover();
    for _ in 0..60 {
        harness.step();
    }
    harness.get_by_label_contains(
        "one of the compared snapshots has no allocation history \
         (CPython pickles and version 1 files record only live blocks)",
    );

    // A command from elsewhere is told why.
    harness.state_mut().apply(Command::SetMetric(Metric::Peak));
    settle(&mut harness);
    let message = harness
        .state()
        .state
        .message
        .as_ref()
        .expect("a message")
        .text
        .clone();
    assert!(
        message.contains("has no allocation history") && message.contains("CPython pickles"),
        "{message}"
    );
    assert_eq!(top_row(&harness).0, Metric::Live);

    // No comparison: the history snapshot alone, and the chosen metric
    // comes back.
    harness.state_mut().apply(Command::CompareTo(None));
    settle(&mut harness);
    let state = &harness.state().state;
    assert_eq!(
        state.current_snapshot().map(|s| s.name()).as_deref(),
        Some("history.tmsnap")
    );
    assert_eq!(state.metric_unavailable_reason(), None);
    assert_eq!(
        top_row(&harness),
        (Metric::Allocated, "src/parse.rs:9".to_owned(), 16_000, 1000)
    );
}

#[test]
fn the_timeline_follows_the_metric_when_every_snapshot_has_a_history() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let first = write_history_snapshot(dir.path());
    let files: Vec<PathBuf> = (1..=3)
        .map(|n| {
            let path = dir.path().join(format!("history-{n}.tmsnap"));
            std::fs::copy(&first, &path).expect("a writable temporary folder");
            path
        })
        .collect();
    let mut harness = viewer(files);
    let timeline_metric = |harness: &Harness<'static, ViewerApp>| {
        let state = &harness.state().state;
        let timeline = state.timeline.as_ref().expect("the timeline is shown");
        (
            timeline.timeline.metric(),
            timeline.timeline.totals()[0].size,
        )
    };
    assert_eq!(timeline_metric(&harness), (Metric::Live, 100));
    harness.get_by_label("Total size");
    click(&mut harness, "Allocated");
    assert_eq!(timeline_metric(&harness), (Metric::Allocated, 20_296));
    harness.get_by_label("Total bytes allocated");
    harness.get_by_label("Total allocations");

    // A fourth snapshot without history: the timeline merges them all, so
    // it shows live blocks again and says why.
    harness
        .state_mut()
        .apply(Command::OpenPaths(vec![golden_v1()]));
    settle(&mut harness);
    assert_eq!(timeline_metric(&harness).0, Metric::Live);
    harness.get_by_label_contains("not every snapshot has an allocation history");
}
