//! The details of the selected row: its traceback, every frame with its
//! function, most recent first; and the selected frame's source, the line
//! highlighted and scrolled into view.

use egui::{Color32, RichText};
use egui_extras::syntax_highlighting::{CodeTheme, highlight};
use tracemalloc_format::{Frame, KeyType};

use crate::viewer::app::AppState;
use crate::viewer::command::Command;
use crate::viewer::source::{SourceFile, SourceState, Sources};
use crate::viewer::text;

/// The details panel.
pub fn details_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    sources: Option<&mut Sources>,
    commands: &mut Vec<Command>,
) {
    // Keep the panel's width whatever the content: a panel shrinks to what
    // it holds, and a short hint would make it narrow.
    ui.set_min_width(ui.available_width());
    ui.heading("Traceback");
    let Some(tb) = &state.table.selected else {
        ui.weak("Select a row to see its traceback and source.");
        return;
    };
    let key_type = state
        .result
        .as_ref()
        .map_or(state.spec.key_type, |r| r.view.key_type());
    if key_type != KeyType::Traceback {
        ui.weak(match key_type {
            KeyType::Filename => {
                "Grouped by file: this is the file. Double-click the row (or press Enter) to see its lines."
            }
            _ => "Grouped by line: this is the line. Double-click the row (or press Enter) to see the tracebacks that allocated here.",
        });
    }
    let selected_frame = state
        .table
        .selected_frame
        .min(tb.frames.len().saturating_sub(1));
    let frames_height = (ui.available_height() * 0.4).max(80.0);
    egui::ScrollArea::vertical()
        .id_salt("traceback_frames")
        .max_height(frames_height)
        .auto_shrink([false, true])
        .show(ui, |ui| {
            for (i, frame) in tb.frames.iter().enumerate() {
                frame_row_ui(ui, i, frame, i == selected_frame, key_type, commands);
            }
        });
    ui.separator();
    if let Some(frame) = tb.frames.get(selected_frame) {
        source_ui(ui, frame, key_type, sources, commands);
    }
}

fn frame_row_ui(
    ui: &mut egui::Ui,
    index: usize,
    frame: &Frame,
    selected: bool,
    key_type: KeyType,
    commands: &mut Vec<Command>,
) {
    let function = frame.function.as_deref().unwrap_or("");
    let location = if key_type == KeyType::Filename {
        frame.filename.to_string()
    } else {
        format!(
            "{}:{}",
            text::shorten_path(&frame.filename, 3),
            frame.lineno
        )
    };
    let label = if function.is_empty() {
        format!("#{index}  {location}")
    } else {
        format!("#{index}  {function}\n      {location}")
    };
    let response = ui
        .selectable_label(selected, RichText::new(label).monospace())
        .on_hover_text(format!("{}:{}", frame.filename, frame.lineno));
    if response.clicked() {
        commands.push(Command::SelectFrame(index));
    }
}

fn source_ui(
    ui: &mut egui::Ui,
    frame: &Frame,
    key_type: KeyType,
    sources: Option<&mut Sources>,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.strong("Source");
        if ui
            .small_button("Open in editor")
            .on_hover_text("$VISUAL or $EDITOR, else VS Code")
            .clicked()
        {
            commands.push(Command::OpenInEditor {
                file: frame.filename.to_string(),
                line: frame.lineno,
            });
        }
    });
    let Some(sources) = sources else {
        return;
    };
    match sources.get(&frame.filename) {
        SourceState::Loading => {
            ui.weak("Reading the source…");
        }
        SourceState::Missing(why) => {
            ui.weak(format!("Source not found: {} ({why}).", frame.filename));
        }
        SourceState::Found(file) => {
            ui.weak(file.path.display().to_string());
            let line = if key_type == KeyType::Filename {
                0
            } else {
                frame.lineno
            };
            code_ui(ui, &file, line);
        }
    }
}

/// The file's lines with numbers, `line` highlighted and scrolled into view
/// when it changes; only the visible lines are laid out.
fn code_ui(ui: &mut egui::Ui, file: &SourceFile, line: u32) {
    let language = file
        .path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let theme = CodeTheme::from_style(ui.style());
    let row_height = ui.text_style_height(&egui::TextStyle::Monospace) + 2.0;
    let digits = file.lines.len().max(1).to_string().len();
    // Scroll to the line once per (file, line), then let the user scroll.
    let scroll_key = egui::Id::unique("source_scrolled_to");
    let target = (file.path.clone(), line);
    let scrolled_to: Option<(std::path::PathBuf, u32)> = ui.data(|d| d.get_temp(scroll_key));
    let mut area = egui::ScrollArea::both()
        .id_salt("source_code")
        .auto_shrink([false, false]);
    if scrolled_to.as_ref() != Some(&target) && line > 0 {
        let offset = (line as f32 - 6.0).max(0.0) * (row_height + ui.spacing().item_spacing.y);
        area = area.vertical_scroll_offset(offset);
        ui.data_mut(|d| d.insert_temp(scroll_key, target));
    }
    let highlight_fill = ui.visuals().selection.bg_fill.gamma_multiply(0.5);
    area.show_rows(ui, row_height, file.lines.len(), |ui, range| {
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
        for index in range {
            let number = index as u32 + 1;
            let code = &file.lines[index];
            // A slot under the line's text, for the highlight.
            let background = ui.painter().add(egui::Shape::Noop);
            let response = ui
                .horizontal(|ui| {
                    ui.spacing_mut().item_spacing.x = 8.0;
                    ui.label(
                        RichText::new(format!("{number:>digits$}"))
                            .monospace()
                            .color(ui.visuals().weak_text_color()),
                    );
                    let job = highlight(ui.ctx(), ui.style(), &theme, code, &language);
                    ui.add(egui::Label::new(job).selectable(true));
                })
                .response;
            if number == line {
                let rect = response.rect.expand2(egui::vec2(4.0, 1.0));
                ui.painter().set(
                    background,
                    egui::Shape::rect_filled(rect, 2.0, highlight_fill),
                );
                ui.painter().rect_stroke(
                    rect,
                    2.0,
                    egui::Stroke::new(1.0, Color32::from_rgb(230, 160, 40)),
                    egui::StrokeKind::Inside,
                );
            }
        }
    });
}
