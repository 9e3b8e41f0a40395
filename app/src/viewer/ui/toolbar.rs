//! The toolbar: Back and Forward, the snapshot pickers, the grouping, the
//! switches, and the search box.

use egui::ComboBox;
use tracemalloc_format::dhat::DhatPoint;
use tracemalloc_format::{KeyType, Metric};

use crate::viewer::app_state::{AppState, UiBuffers};
use crate::viewer::command::Command;
use crate::viewer::display_text;

/// The id of the search box, so Ctrl+F can focus it.
pub fn search_id() -> egui::Id {
    egui::Id::unique("source_search")
}

/// Back, Forward, "Snapshot", "compared to", "Show" (the metric, for
/// snapshots with an allocation history), "Group by", "Cumulative",
/// "Hide Rust std frames".
pub fn toolbar_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    ui.horizontal_wrapped(|ui| {
        // The snapshot pickers give up width to the metric picker, so the
        // toolbar stays one row at 1280 pixels (app/tests/layout.rs); the
        // snapshot's full name is in the Snapshots panel too.
        let others = if shows_metric_picker(state) {
            TOOLBAR_WITH_METRIC
        } else {
            TOOLBAR_WITHOUT_METRIC
        };
        let picker_width =
            ((ui.available_width() - others) / 2.0).clamp(MIN_PICKER_WIDTH, MAX_PICKER_WIDTH);
        if ui
            .add_enabled(state.history.can_go_back(), egui::Button::new("Back"))
            .on_hover_text("Back to the previous grouping and filters (Alt+Left)")
            .clicked()
        {
            commands.push(Command::Back);
        }
        if ui
            .add_enabled(state.history.can_go_forward(), egui::Button::new("Forward"))
            .on_hover_text("Forward again (Alt+Right)")
            .clicked()
        {
            commands.push(Command::Forward);
        }
        ui.separator();
        snapshot_pickers_ui(ui, state, picker_width, commands);
        ui.separator();
        if metric_picker_ui(ui, state, commands) {
            ui.separator();
        }
        group_by_ui(ui, state, commands);
    });
}

/// The widest a snapshot picker gets.
const MAX_PICKER_WIDTH: f32 = 210.0;
/// The narrowest: the start of a file name still reads (the whole name
/// is in the Snapshots panel and the picker's list).
const MIN_PICKER_WIDTH: f32 = 90.0;
/// About the width of the toolbar's row without its two snapshot pickers,
/// when the metric picker is shown: what the pickers leave to the rest.
const TOOLBAR_WITH_METRIC: f32 = 1064.0;
/// The same without the metric picker.
const TOOLBAR_WITHOUT_METRIC: f32 = 720.0;

fn snapshot_pickers_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    width: f32,
    commands: &mut Vec<Command>,
) {
    let snapshots = state.session.snapshots();
    let millis = state.session.needs_millis();
    let current_name = state
        .current_snapshot()
        .map_or_else(|| "none".to_owned(), |s| s.name());
    let label = ui.label("Snapshot");
    ComboBox::from_id_salt("snapshot_picker")
        .selected_text(current_name)
        .width(width)
        .truncate()
        .show_ui(ui, |ui| {
            for snapshot in snapshots {
                if ui
                    .selectable_label(state.current == Some(snapshot.id), snapshot.label(millis))
                    .clicked()
                {
                    commands.push(Command::SelectSnapshot(snapshot.id));
                }
            }
        })
        .response
        .labelled_by(label.id);
    let compare_name = state
        .compare_snapshot()
        .map_or_else(|| "none".to_owned(), |s| s.name());
    let label = ui.label("compared to");
    ComboBox::from_id_salt("compare_picker")
        .selected_text(compare_name)
        .width(width)
        .truncate()
        .show_ui(ui, |ui| {
            if ui
                .selectable_label(state.compare.is_none(), "none")
                .clicked()
            {
                commands.push(Command::CompareTo(None));
            }
            for snapshot in snapshots.iter().filter(|s| Some(s.id) != state.current) {
                if ui
                    .selectable_label(state.compare == Some(snapshot.id), snapshot.label(millis))
                    .clicked()
                {
                    commands.push(Command::CompareTo(Some(snapshot.id)));
                }
            }
        })
        .response
        .labelled_by(label.id);
}

/// "Show: Live Allocated Temporary Peak", beside "Group by". Hidden when
/// no shown snapshot has an allocation history (a CPython pickle, a
/// version 1 file: the window looks as it always did); when one of two
/// compared snapshots lacks it, the history metrics are disabled and say
/// why. Returns whether it drew anything.
fn metric_picker_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) -> bool {
    if !shows_metric_picker(state) {
        return false;
    }
    let unavailable = state.metric_unavailable_reason();
    let shown = state.effective_metric();
    ui.label("Show");
    for metric in Metric::ALL {
        let text = display_text::metric_text(metric);
        let enabled = unavailable.is_none() || !metric.needs_history();
        let response = ui
            .add_enabled(
                enabled,
                egui::Button::selectable(shown == metric, text.name),
            )
            .on_hover_text(text.hint);
        let response = match unavailable {
            Some(reason) => response.on_disabled_hover_text(reason),
            None => response,
        };
        if response.clicked() && shown != metric {
            commands.push(Command::SetMetric(metric));
        }
    }
    true
}

/// Whether a shown snapshot has an allocation history, so the metric
/// picker is drawn.
fn shows_metric_picker(state: &AppState) -> bool {
    [state.current_snapshot(), state.compare_snapshot()]
        .into_iter()
        .flatten()
        .any(|s| s.snapshot.history().is_some())
}

fn group_by_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    ui.label("Group by");
    for (key_type, name, hint) in [
        (
            KeyType::Filename,
            "Filename",
            "One row per file (of the most recent frame)",
        ),
        (
            KeyType::Lineno,
            "Line",
            "One row per line (of the most recent frame)",
        ),
        (KeyType::Traceback, "Traceback", "One row per traceback"),
    ] {
        if ui
            .selectable_label(state.spec.key_type == key_type, name)
            .on_hover_text(hint)
            .clicked()
            && state.spec.key_type != key_type
        {
            commands.push(Command::SetKeyType(key_type));
        }
    }
    let per_frame = state.spec.key_type != KeyType::Traceback;
    let mut cumulative = state.spec.cumulative && per_frame;
    let response = ui
        .add_enabled(
            per_frame,
            egui::Checkbox::new(&mut cumulative, "Cumulative"),
        )
        .on_hover_text(
            "Count each block in every frame of its traceback, not only in the most recent one",
        )
        .on_disabled_hover_text(
            "Cumulative needs one frame per row: group by Filename or Line \
             (a traceback row already holds every frame)",
        );
    if response.changed() {
        commands.push(Command::SetCumulative(cumulative));
    }
    if state.session.has_dhat() {
        ui.separator();
        ui.label("DHAT at");
        for (point, hint) in [
            (
                DhatPoint::GlobalPeak,
                "The blocks live at the global peak of the heap (what used the memory)",
            ),
            (
                DhatPoint::End,
                "The blocks live when the profile was written (what was never freed)",
            ),
        ] {
            if ui
                .selectable_label(state.settings.dhat_point() == point, point.as_str())
                .on_hover_text(hint)
                .clicked()
                && state.settings.dhat_point() != point
            {
                commands.push(Command::SetDhatPoint(point));
            }
        }
    }
    if state.has_hideable_frames() {
        let mut hide = state.settings.hide_std_frames;
        if ui
            .checkbox(&mut hide, "Hide Rust std frames")
            .on_hover_text(
                "Leave the Rust standard library's and the recorder's frames out of the \
                 tracebacks, so that memory is attributed to your code as in a default recording",
            )
            .changed()
        {
            commands.push(Command::SetHideStdFrames(hide));
        }
    }
}

/// The search box, Ctrl+F.
pub fn search_ui(ui: &mut egui::Ui, buffers: &mut UiBuffers, commands: &mut Vec<Command>) {
    if !buffers.search.is_empty() && super::icon_button(ui, "×", "Clear the search").clicked() {
        commands.push(Command::SetSearch(String::new()));
    }
    let response = ui.add(
        egui::TextEdit::singleline(&mut buffers.search)
            .id(search_id())
            .hint_text("substring of the Source column (Ctrl+F)")
            .desired_width(240.0),
    );
    // Right to left: the label lands before the box.
    let label = ui.label("Search");
    let response = response.labelled_by(label.id);
    if buffers.focus_search {
        buffers.focus_search = false;
        response.request_focus();
    }
    if response.changed() {
        commands.push(Command::SetSearch(buffers.search.clone()));
    }
}
