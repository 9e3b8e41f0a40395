//! Drawing. Every function here reads the state, draws, and pushes
//! [`Command`]s; none changes the state (rerun's `*_ui` convention).

pub mod charts;
pub mod details;
pub mod filters;
pub mod flame;
pub mod snapshots;
pub mod status;
pub mod table;
pub mod timeline_panel;
pub mod toolbar;

use egui::{Color32, RichText};

use super::app_state::{AppState, UiBuffers};
use super::command::Command;
use super::export::ExportKind;
use super::source::Sources;
use super::state::{BottomTab, CentralTab};

/// Colour of growth (more memory: the thing to look at).
pub fn growth_color(ui: &egui::Ui) -> Color32 {
    if ui.visuals().dark_mode {
        Color32::from_rgb(255, 125, 100)
    } else {
        Color32::from_rgb(190, 45, 25)
    }
}

/// Colour of shrinkage.
pub fn shrink_color(ui: &egui::Ui) -> Color32 {
    if ui.visuals().dark_mode {
        Color32::from_rgb(110, 205, 130)
    } else {
        Color32::from_rgb(25, 130, 60)
    }
}

/// The colour of a difference: growth, shrinkage, or none for zero.
pub fn diff_color(ui: &egui::Ui, diff: i64) -> Option<Color32> {
    match diff.signum() {
        1 => Some(growth_color(ui)),
        -1 => Some(shrink_color(ui)),
        _ => None,
    }
}

/// Asks to open `file` at `line` in the user's editor when `button` (an
/// "Open in editor" button) is clicked, and says on hover which editor.
pub fn open_in_editor_on_click(
    button: egui::Response,
    file: &str,
    line: u32,
    commands: &mut Vec<Command>,
) {
    if button
        .on_hover_text("$VISUAL or $EDITOR, else VS Code")
        .clicked()
    {
        commands.push(Command::OpenInEditor {
            file: file.to_owned(),
            line,
        });
    }
}

/// A small frameless button showing `icon`, known to screen readers (and
/// the UI tests) by `name`, which its tooltip also says.
pub fn icon_button(ui: &mut egui::Ui, icon: &str, name: &str) -> egui::Response {
    let response = ui
        .add(egui::Button::new(icon).frame(false).small())
        .on_hover_text(name);
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, name));
    response
}

/// The whole window.
pub fn viewer_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    buffers: &mut UiBuffers,
    mut sources: Option<&mut Sources>,
    commands: &mut Vec<Command>,
) {
    egui::Panel::top("menu_bar").show(ui, |ui| menu_bar_ui(ui, state, commands));
    egui::Panel::top("toolbar").show(ui, |ui| {
        toolbar::toolbar_ui(ui, state, commands);
        filters::filter_bar_ui(ui, state, buffers, commands);
    });
    egui::Panel::bottom("status_bar").show(ui, |ui| status::status_bar_ui(ui, state, commands));
    // The side panels start at a share of the window, so that the table
    // keeps room for every column at 1280x800 and up (the panels then
    // remember the widths the user gives them).
    let window = ui.available_width();
    egui::Panel::left("snapshots")
        .resizable(true)
        .default_size((0.14 * window).clamp(180.0, 270.0))
        .size_range(180.0..=600.0)
        .show(ui, |ui| snapshots::snapshots_ui(ui, state, commands));
    if state.settings.show_details {
        egui::Panel::right("details")
            .resizable(true)
            .default_size((0.33 * window).clamp(240.0, 560.0))
            .size_range(240.0..=1200.0)
            .show(ui, |ui| {
                details::details_ui(ui, state, sources.as_deref_mut(), commands);
            });
    }
    if state.settings.show_charts && state.result.is_some() {
        egui::Panel::bottom("charts")
            .resizable(true)
            .default_size(250.0)
            .size_range(120.0..=900.0)
            .show(ui, |ui| {
                ui.set_min_height(ui.available_height());
                let tab = if state.timeline_available() {
                    bottom_tabs_ui(ui, state, commands);
                    state.bottom_tab
                } else {
                    BottomTab::Charts
                };
                match tab {
                    BottomTab::Charts => charts::charts_ui(ui, state, commands),
                    BottomTab::Timeline => timeline_panel::timeline_ui(ui, state, commands),
                }
            });
    }
    egui::CentralPanel::default().show(ui, |ui| {
        if state.result.is_some() {
            central_tabs_ui(ui, state, commands);
        }
        match state.central_tab {
            CentralTab::Flamegraph if state.result.is_some() => {
                flame::flame_ui(ui, state, buffers, commands);
            }
            _ => table::table_ui(ui, state, sources, commands),
        }
    });
    filters::filter_editor_ui(ui.ctx(), state, buffers, commands);
    shortcuts_window_ui(ui.ctx(), state, commands);
    drop_overlay_ui(ui.ctx());
}

/// A tab button: selected when `on`; `name` is what screen readers (and
/// the UI tests) know it by.
fn tab_ui(ui: &mut egui::Ui, on: bool, name: &str, hint: &str) -> bool {
    ui.selectable_label(on, RichText::new(name).strong())
        .on_hover_text(hint)
        .clicked()
        && !on
}

/// "Table | Flame graph" over the central panel.
fn central_tabs_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        for (tab, name, hint) in [
            (CentralTab::Table, "Table", "One row per group, sortable"),
            (
                CentralTab::Flamegraph,
                "Flame graph",
                "The traceback tree: width is memory; when comparing, colour is growth",
            ),
        ] {
            if tab_ui(ui, state.central_tab == tab, name, hint) {
                commands.push(Command::ShowCentralTab(tab));
            }
        }
    });
    ui.add_space(2.0);
}

/// "Charts | Timeline" over the bottom panel.
fn bottom_tabs_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        let n = state.session.snapshots().len();
        let timeline_name = format!("Timeline ({n} snapshots)");
        for (tab, name, hint) in [
            (
                BottomTab::Charts,
                "Charts".to_owned(),
                "The top groups as bars",
            ),
            (
                BottomTab::Timeline,
                timeline_name,
                "Every snapshot's total over time, and the groups that grew most steadily",
            ),
        ] {
            if tab_ui(ui, state.bottom_tab == tab, &name, hint) {
                commands.push(Command::ShowBottomTab(tab));
            }
        }
    });
}

/// File, View and Help.
fn menu_bar_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui
                .add(egui::Button::new("Open…").shortcut_text("Ctrl+O"))
                .clicked()
            {
                commands.push(Command::OpenDialog);
            }
            if ui
                .button("Open folder…")
                .on_hover_text(
                    "Open every snapshot of a folder (e.g. the recorder's periodic snapshots)",
                )
                .clicked()
            {
                commands.push(Command::OpenFolderDialog);
            }
            if ui.button("Open with the built-in browser…").clicked() {
                commands.push(Command::OpenBrowser);
            }
            ui.menu_button("Open recent", |ui| {
                if state.settings.recent_files.is_empty() {
                    ui.add_enabled(false, egui::Button::new("No recent files"));
                }
                for path in &state.settings.recent_files {
                    if ui
                        .button(path.display().to_string())
                        .on_hover_text("Open this file again")
                        .clicked()
                    {
                        commands.push(Command::OpenPaths(vec![path.clone()]));
                    }
                }
            });
            if ui.button("Open the demo snapshots").clicked() {
                commands.push(Command::OpenDemo);
            }
            if ui
                .add(egui::Button::new("Reload").shortcut_text("F5"))
                .on_hover_text("Read every snapshot file again")
                .clicked()
            {
                commands.push(Command::Reload);
            }
            ui.separator();
            let shown = state.result.is_some();
            if ui
                .add_enabled(shown, egui::Button::new("Export table as CSV…"))
                .on_hover_text("The table's rows in the shown order, with the CLI's CSV columns")
                .clicked()
            {
                commands.push(Command::ExportDialog(ExportKind::TableCsv));
            }
            if ui
                .add_enabled(
                    shown,
                    egui::Button::new("Export flame graph as folded stacks…"),
                )
                .on_hover_text(
                    "The traceback tree for flamegraph.pl or inferno; two columns (old, new) \
                     when comparing, for a differential flame graph",
                )
                .clicked()
            {
                commands.push(Command::ExportDialog(ExportKind::FoldedStacks));
            }
            if ui
                .add_enabled(shown, egui::Button::new("Export snapshot as pprof…"))
                .on_hover_text(
                    "The shown snapshot, filtered as shown, as a pprof heap profile for \
                     go tool pprof, Pyroscope, Parca or speedscope",
                )
                .clicked()
            {
                commands.push(Command::ExportDialog(ExportKind::Pprof));
            }
            ui.separator();
            if let Some(current) = state.current
                && ui.button("Close this snapshot").clicked()
            {
                commands.push(Command::CloseSnapshot(current));
            }
            if ui.button("Close all snapshots").clicked() {
                commands.push(Command::CloseAll);
            }
            ui.separator();
            if ui.button("Quit").clicked() {
                commands.push(Command::Quit);
            }
        });
        ui.menu_button("View", |ui| {
            let mut charts = state.settings.show_charts;
            if ui.checkbox(&mut charts, "Charts").changed() {
                commands.push(Command::ShowCharts(charts));
            }
            let mut details = state.settings.show_details;
            if ui.checkbox(&mut details, "Traceback and source").changed() {
                commands.push(Command::ShowDetails(details));
            }
            let mut top_n = state.settings.chart_top_n;
            if ui
                .add(egui::Slider::new(&mut top_n, 3..=30).text("Bars per chart"))
                .changed()
            {
                commands.push(Command::SetChartTopN(top_n));
            }
            ui.separator();
            ui.label("Theme");
            egui::widgets::global_theme_preference_buttons(ui);
        });
        ui.menu_button("Help", |ui| {
            if ui.button("Keyboard shortcuts").clicked() {
                commands.push(Command::ShowShortcuts(true));
            }
        });
    });
}

/// The keyboard shortcuts, in a window.
fn shortcuts_window_ui(ctx: &egui::Context, state: &AppState, commands: &mut Vec<Command>) {
    if !state.show_shortcuts {
        return;
    }
    let mut open = true;
    egui::Window::new("Keyboard shortcuts")
        .open(&mut open)
        .resizable(false)
        .collapsible(false)
        .show(ctx, |ui| {
            egui::Grid::new("shortcuts").striped(true).show(ui, |ui| {
                for (keys, what) in [
                    ("Ctrl+O", "Open snapshot files"),
                    ("F5", "Reload the snapshot files"),
                    ("Ctrl+F", "Search the Source column"),
                    ("Alt+Left, mouse back", "Back"),
                    ("Alt+Right, mouse forward", "Forward"),
                    ("Up, Down, Page Up/Down, Home, End", "Move the selection"),
                    (
                        "Enter, double-click",
                        "Drill down: a file's lines, a line's tracebacks",
                    ),
                    ("Ctrl+C", "Copy the selected row"),
                    (
                        "Click a frame",
                        "Flame graph: zoom on it; click a caller to zoom out",
                    ),
                ] {
                    ui.label(RichText::new(keys).monospace());
                    ui.label(what);
                    ui.end_row();
                }
            });
        });
    if !open {
        commands.push(Command::ShowShortcuts(false));
    }
}

/// A hint over the window while files are dragged over it.
fn drop_overlay_ui(ctx: &egui::Context) {
    let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
    if !hovering {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop_overlay"),
    ));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(170));
    painter.text(
        rect.center(),
        egui::Align2::CENTER_CENTER,
        "Drop snapshot files to open them",
        egui::FontId::proportional(26.0),
        Color32::WHITE,
    );
}
