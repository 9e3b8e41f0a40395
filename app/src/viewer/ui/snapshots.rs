//! The snapshot list (by time), the files that failed to open, and what is
//! known about the shown snapshot.

use super::growth_color;
use crate::viewer::app_state::AppState;
use crate::viewer::command::Command;
use crate::viewer::display_text;
use crate::viewer::session::LoadedSnapshot;

/// The left panel.
pub fn snapshots_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    egui::ScrollArea::vertical()
        .id_salt("snapshots_panel")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            if state.session.showing_demo {
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    ui.strong("Demo");
                    ui.label(
                        "These are the bundled demo snapshots: five snapshots of the \
                         recorder's leaky_service example, taken as it leaks. \
                         Open your own with File > Open (Ctrl+O) or drop them here.",
                    );
                });
                ui.add_space(6.0);
            }
            errors_ui(ui, state, commands);
            ui.heading("Snapshots");
            folder_ui(ui, state, commands);
            if state.session.snapshots().is_empty() {
                ui.weak("None open.");
            }
            for snapshot in state.session.snapshots() {
                snapshot_entry_ui(ui, state, snapshot, commands);
            }
            if let Some(current) = state.current_snapshot() {
                ui.add_space(8.0);
                egui::CollapsingHeader::new("About this snapshot")
                    .default_open(false)
                    .show(ui, |ui| metadata_ui(ui, current));
            }
        });
}

/// The opened folder, and whether it is watched for new snapshots.
fn folder_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    let Some(folder) = &state.folder else {
        return;
    };
    ui.horizontal_wrapped(|ui| {
        ui.weak("Folder");
        ui.label(display_text::shorten_path(&folder.display().to_string(), 2))
            .on_hover_text(folder.display().to_string());
    });
    let mut watching = state.watching;
    if ui
        .checkbox(&mut watching, "Watch for new snapshots")
        .on_hover_text(
            "Open the snapshots written to this folder from now on, as they appear \
             (e.g. by the recorder's periodic writer)",
        )
        .changed()
    {
        commands.push(Command::SetWatch(watching));
    }
    ui.add_space(4.0);
}

fn errors_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    for (i, error) in state.session.errors.iter().enumerate() {
        egui::Frame::group(ui.style())
            .stroke(egui::Stroke::new(1.0, growth_color(ui)))
            .show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.colored_label(growth_color(ui), format!("Could not open {}", error.name));
                ui.label(&error.message);
                if ui.small_button("Dismiss").clicked() {
                    commands.push(Command::DismissError(i));
                }
            });
        ui.add_space(4.0);
    }
}

fn snapshot_entry_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    snapshot: &LoadedSnapshot,
    commands: &mut Vec<Command>,
) {
    let shown = state.current == Some(snapshot.id);
    let compared = state.compare == Some(snapshot.id);
    let mut details = format!(
        "{} · {} traces",
        display_text::size(snapshot.info.total.size),
        display_text::thousands(snapshot.info.traces as u64)
    );
    let millis = state.session.needs_millis();
    if let Some(time) = snapshot.time_text(millis) {
        // The time of day is what tells snapshots of one run apart.
        details.push_str(&format!(" · {}", time.get(11..).unwrap_or(&time)));
    }
    let badge = if shown {
        "  (shown)"
    } else if compared {
        "  (compared to)"
    } else {
        ""
    };
    let response = ui
        .selectable_label(shown, format!("{}{badge}\n{details}", snapshot.name()))
        .on_hover_text(format!(
            "{}\nClick to show; right-click to compare to it or close it",
            snapshot.label(millis)
        ));
    if response.clicked() {
        commands.push(Command::SelectSnapshot(snapshot.id));
    }
    response.context_menu(|ui| {
        if ui.button("Show").clicked() {
            commands.push(Command::SelectSnapshot(snapshot.id));
        }
        if !shown && ui.button("Compare to this").clicked() {
            commands.push(Command::CompareTo(Some(snapshot.id)));
        }
        if ui.button("Close").clicked() {
            commands.push(Command::CloseSnapshot(snapshot.id));
        }
    });
}

fn metadata_ui(ui: &mut egui::Ui, snapshot: &LoadedSnapshot) {
    let m = snapshot.snapshot.metadata();
    let unknown = || "unknown".to_owned();
    let size = |v: Option<u64>| v.map_or_else(unknown, display_text::size);
    egui::Grid::new("metadata").num_columns(2).show(ui, |ui| {
        let mut row = |name: &str, value: String| {
            ui.weak(name);
            ui.label(value);
            ui.end_row();
        };
        row(
            "File",
            snapshot
                .origin
                .path()
                .map_or_else(|| snapshot.name(), |p| p.display().to_string()),
        );
        row(
            "Format",
            m.format_version.map_or_else(
                || snapshot.info.kind.name().to_owned(),
                |v| format!(".tmsnap v{v}"),
            ),
        );
        row("Producer", m.producer.clone().unwrap_or_else(unknown));
        row("Process", m.pid.map_or_else(unknown, |p| p.to_string()));
        row(
            "Command",
            m.command_line
                .as_ref()
                .map_or_else(unknown, |c| c.join(" ")),
        );
        row(
            "Taken (UTC)",
            m.timestamp.map_or_else(unknown, |t| t.to_string()),
        );
        row("Traced", size(m.traced_current));
        row("Peak", size(m.traced_peak));
        row("Recorder", size(m.tracemalloc_memory));
        row(
            "Sampling",
            m.sampling_rate
                .map_or_else(|| "every block".to_owned(), display_text::sampling),
        );
        row(
            "Traceback limit",
            snapshot.snapshot.traceback_limit().to_string(),
        );
        row(
            "Tracebacks",
            display_text::thousands(snapshot.snapshot.tables().traceback_count() as u64),
        );
    });
}
