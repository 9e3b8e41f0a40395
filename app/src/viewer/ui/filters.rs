//! Filters: the quick glob box, the active filters as removable chips, and
//! the filter editor (include or exclude, glob, line, any frame, domain).

use egui::{Color32, CornerRadius, RichText, Stroke};
use tracemalloc_format::{Filter, TraceFilter};

use crate::viewer::app_state::{AppState, UiBuffers};
use crate::viewer::command::Command;
use crate::viewer::display_text;

/// The quick glob box, its buttons, and the chips.
pub fn filter_bar_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    buffers: &mut UiBuffers,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        // The search box on the right, the filters on the left.
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            super::toolbar::search_ui(ui, buffers, commands);
            ui.separator();
            ui.with_layout(
                egui::Layout::left_to_right(egui::Align::Center).with_main_wrap(true),
                |ui| {
                    filters_row_ui(ui, state, buffers, commands);
                },
            );
        });
    });
}

fn filters_row_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    buffers: &mut UiBuffers,
    commands: &mut Vec<Command>,
) {
    {
        let label = ui.label("Filter");
        let glob = ui
            .add(
                egui::TextEdit::singleline(&mut buffers.quick_glob)
                    .hint_text("file glob, e.g. */src/db/*")
                    .desired_width(200.0),
            )
            .labelled_by(label.id);
        let entered = glob.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        let pattern = buffers.quick_glob.trim().to_owned();
        let has_pattern = !pattern.is_empty();
        let include = ui
            .add_enabled(has_pattern, egui::Button::new("Include"))
            .on_hover_text("Keep only traces whose most recent frame's file matches (Enter)")
            .clicked();
        let exclude = ui
            .add_enabled(has_pattern, egui::Button::new("Exclude"))
            .on_hover_text("Drop traces whose most recent frame's file matches")
            .clicked();
        if has_pattern && (include || exclude || entered) {
            commands.push(Command::AddFilter(Filter::new(!exclude, &pattern).into()));
            buffers.quick_glob.clear();
        }
        if ui
            .button("Filters…")
            .on_hover_text("Filters by line, on any frame, by domain")
            .clicked()
        {
            buffers.show_filter_editor = true;
        }
        for (i, filter) in state.spec.filters.iter().enumerate() {
            if filter_chip_ui(ui, filter) {
                commands.push(Command::RemoveFilter(i));
            }
        }
        if state.spec.filters.len() > 1
            && ui
                .small_button("Clear filters")
                .on_hover_text("Remove every filter")
                .clicked()
        {
            commands.push(Command::ClearFilters);
        }
    }
}

/// One active filter as a chip; returns whether its remove button was
/// clicked.
fn filter_chip_ui(ui: &mut egui::Ui, filter: &TraceFilter) -> bool {
    let description = display_text::describe_filter(filter);
    let (fill, stroke) = chip_colors(ui, filter.inclusive());
    let mut remove = false;
    egui::Frame::new()
        .fill(fill)
        .stroke(Stroke::new(1.0, stroke))
        .corner_radius(CornerRadius::same(10))
        .inner_margin(egui::Margin::symmetric(8, 2))
        .show(ui, |ui| {
            ui.spacing_mut().item_spacing.x = 4.0;
            ui.label(RichText::new(&description).color(ui.visuals().strong_text_color()));
            let button = super::icon_button(ui, "×", &format!("Remove filter: {description}"));
            remove = button.clicked();
        });
    remove
}

fn chip_colors(ui: &egui::Ui, inclusive: bool) -> (Color32, Color32) {
    let dark = ui.visuals().dark_mode;
    match (inclusive, dark) {
        (true, true) => (
            Color32::from_rgb(28, 52, 82),
            Color32::from_rgb(70, 120, 190),
        ),
        (true, false) => (
            Color32::from_rgb(220, 234, 250),
            Color32::from_rgb(90, 140, 210),
        ),
        (false, true) => (
            Color32::from_rgb(78, 44, 30),
            Color32::from_rgb(190, 110, 70),
        ),
        (false, false) => (
            Color32::from_rgb(252, 228, 214),
            Color32::from_rgb(210, 120, 80),
        ),
    }
}

/// The filter editor window.
pub fn filter_editor_ui(
    ctx: &egui::Context,
    state: &AppState,
    buffers: &mut UiBuffers,
    commands: &mut Vec<Command>,
) {
    if !buffers.show_filter_editor {
        return;
    }
    let mut open = true;
    egui::Window::new("Filters")
        .open(&mut open)
        .resizable(false)
        .default_width(420.0)
        .show(ctx, |ui| {
            ui.label(
                "A trace is kept if it matches any include filter (when there is one) \
                 and no exclude filter, as in CPython's Snapshot.filter_traces. \
                 The filters apply to both snapshots.",
            );
            ui.add_space(6.0);
            if state.spec.filters.is_empty() {
                ui.weak("No filter.");
            }
            for (i, filter) in state.spec.filters.iter().enumerate() {
                ui.horizontal(|ui| {
                    let description = display_text::describe_filter(filter);
                    if ui
                        .small_button("Remove")
                        .on_hover_text(format!("Remove filter: {description}"))
                        .clicked()
                    {
                        commands.push(Command::RemoveFilter(i));
                    }
                    ui.label(description);
                });
            }
            ui.separator();
            let form = &mut buffers.filter_form;
            ui.horizontal(|ui| {
                ui.radio_value(&mut form.inclusive, true, "Include");
                ui.radio_value(&mut form.inclusive, false, "Exclude");
            });
            egui::Grid::new("filter_form")
                .num_columns(2)
                .show(ui, |ui| {
                    let label = ui.label("File glob");
                    ui.add(
                        egui::TextEdit::singleline(&mut form.pattern)
                            .hint_text("e.g. */site-packages/* (empty: domain only)")
                            .desired_width(260.0),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                    ui.checkbox(&mut form.use_lineno, "Line");
                    ui.add_enabled(
                        form.use_lineno,
                        egui::DragValue::new(&mut form.lineno).range(0..=u32::MAX),
                    )
                    .on_hover_text("Line number");
                    ui.end_row();
                    ui.checkbox(&mut form.use_domain, "Domain");
                    ui.add_enabled(
                        form.use_domain,
                        egui::DragValue::new(&mut form.domain).range(0..=u32::MAX),
                    )
                    .on_hover_text("Domain: 0 is the heap");
                    ui.end_row();
                });
            ui.checkbox(
                &mut form.all_frames,
                "Match any frame, not only the most recent",
            );
            let filter = form.to_filter();
            ui.horizontal(|ui| {
                if ui
                    .add_enabled(filter.is_ok(), egui::Button::new("Add filter"))
                    .clicked()
                    && let Ok(filter) = &filter
                {
                    commands.push(Command::AddFilter(filter.clone()));
                    buffers.filter_form.pattern.clear();
                }
                match &filter {
                    Ok(filter) => ui.weak(display_text::describe_filter(filter)),
                    Err(why) => ui.weak(*why),
                };
            });
        });
    if !open {
        buffers.show_filter_editor = false;
    }
}
