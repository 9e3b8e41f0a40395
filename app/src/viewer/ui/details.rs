//! The details of the selected row: its traceback, every frame with its
//! function, most recent first; and the selected frame's source, the line
//! highlighted and scrolled into view, every line annotated with the
//! memory allocated at it and through it (and its change when comparing),
//! in a heat colour.

use egui::{Color32, Layout, RichText};
use egui_extras::syntax_highlighting::{CodeTheme, highlight};
use tracemalloc_format::annotate::{FileAnnotation, LineAnnotation};
use tracemalloc_format::{Frame, KeyType, Metric};

use super::{diff_color, growth_color};
use crate::viewer::app_state::AppState;
use crate::viewer::command::Command;
use crate::viewer::display_text;
use crate::viewer::source::{SourceFile, SourceState, Sources};

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
        // The analysis annotates the file the request named: only show it
        // for that file.
        let annotation = state
            .result
            .as_ref()
            .and_then(|r| r.annotation.as_deref())
            .filter(|a| a.filename() == &*frame.filename);
        let gutter = Gutter {
            full: state.settings.full_source_gutter,
        };
        source_ui(ui, frame, key_type, (annotation, gutter), sources, commands);
    }
}

/// How much of the annotation gutter beside the code is shown.
#[derive(Clone, Copy, Debug)]
struct Gutter {
    /// Every column (here, blocks, Δ here, through); otherwise only the
    /// bytes allocated here, the rest in the line's tooltip, so that the
    /// code keeps the pane's width.
    full: bool,
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
            display_text::shorten_path(&frame.filename, 3),
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
    (annotation, gutter): (Option<&FileAnnotation>, Gutter),
    sources: Option<&mut Sources>,
    commands: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.strong("Source");
        super::open_in_editor_on_click(
            ui.small_button("Open in editor"),
            &frame.filename,
            frame.lineno,
            commands,
        );
    });
    if let Some(annotation) = annotation {
        ui.label(file_summary(annotation)).on_hover_text(
            "Memory allocated at this file's lines (they are the most recent frame). \
             Each line shows it; its blocks, its change when comparing, and the memory \
             allocated through it (any frame: what its calls allocated) are in the \
             line's tooltip, or in columns of their own (\"All columns\").",
        );
    }
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
            code_ui(ui, &file, line, (annotation, gutter), commands);
        }
    }
}

/// The file's total, e.g. `In this file: 360 KiB in 90 blocks (+320 KiB)`;
/// a history metric is named (`In this file (bytes allocated): …`).
pub fn file_summary(annotation: &FileAnnotation) -> String {
    let total = annotation.here_total();
    let metric = match annotation.metric() {
        Metric::Live => String::new(),
        other => format!(" ({})", display_text::metric_text(other).size_phrase),
    };
    let mut out = format!(
        "In this file{metric}: {} in {} blocks",
        display_text::size(total.size),
        display_text::thousands(total.count)
    );
    if annotation.is_comparison() {
        out.push_str(&format!(
            " ({}, {} blocks)",
            display_text::size_diff(total.size_diff),
            display_text::signed_thousands(total.count_diff)
        ));
    }
    out
}

/// What a screen reader (and the UI tests) hear for an annotated line:
/// `line 8: 360 KiB in 90 blocks here (+320 KiB); 360 KiB through`.
pub fn line_summary(lineno: u32, line: &LineAnnotation, comparing: bool) -> String {
    let mut out = format!(
        "line {lineno}: {} in {} blocks here",
        display_text::size(line.here.size),
        display_text::thousands(line.here.count)
    );
    if comparing {
        out.push_str(&format!(
            " ({})",
            display_text::size_diff(line.here.size_diff)
        ));
    }
    out.push_str(&format!(
        "; {} through",
        display_text::size(line.through.size)
    ));
    if comparing {
        out.push_str(&format!(
            " ({})",
            display_text::size_diff(line.through.size_diff)
        ));
    }
    out
}

/// Widths of the annotation columns, in monospace characters: a size
/// with its sign (`+2670 KiB`), a block count (`×15,306`).
const BYTES_CHARS: f32 = 9.5;
const BLOCKS_CHARS: f32 = 8.0;

/// The annotation columns' widths in points, from the monospace font's
/// digit width, so that the numbers never overlap whatever the font size.
#[derive(Clone, Copy)]
struct CellWidths {
    bytes: f32,
    blocks: f32,
}

impl CellWidths {
    fn of(ui: &egui::Ui) -> CellWidths {
        let font = egui::TextStyle::Monospace.resolve(ui.style());
        let digit = ui.fonts_mut(|f| f.glyph_width(&font, '0')).max(1.0);
        CellWidths {
            bytes: (BYTES_CHARS * digit).ceil(),
            blocks: (BLOCKS_CHARS * digit).ceil(),
        }
    }
}

/// A right-aligned number in a fixed-width cell.
fn cell_ui(
    ui: &mut egui::Ui,
    width: f32,
    height: f32,
    value: String,
    color: Option<Color32>,
) -> egui::Response {
    ui.allocate_ui_with_layout(
        egui::vec2(width, height),
        Layout::right_to_left(egui::Align::Center),
        |ui| {
            let mut text = RichText::new(value).monospace();
            if let Some(color) = color {
                text = text.color(color);
            }
            ui.add(egui::Label::new(text).selectable(false))
        },
    )
    .inner
}

/// The annotation columns' header, over the code, with the button that
/// shows or hides the columns after the first.
fn annotation_header_ui(
    ui: &mut egui::Ui,
    comparing: bool,
    (widths, gutter): (CellWidths, Gutter),
    commands: &mut Vec<Command>,
) {
    let height = ui.text_style_height(&egui::TextStyle::Small) + 2.0;
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 8.0;
        let weak = ui.visuals().weak_text_color();
        let head = |ui: &mut egui::Ui, width: f32, name: &str, hint: &str| {
            ui.allocate_ui_with_layout(
                egui::vec2(width, height),
                Layout::right_to_left(egui::Align::Center),
                |ui| {
                    ui.label(RichText::new(name).small().color(weak))
                        .on_hover_text(hint);
                },
            );
        };
        head(
            ui,
            widths.bytes,
            "here",
            "Bytes allocated at the line (most recent frame)",
        );
        if gutter.full {
            head(ui, widths.blocks, "blocks", "Blocks allocated at the line");
            if comparing {
                head(
                    ui,
                    widths.bytes,
                    "Δ here",
                    "Change of the bytes allocated at the line",
                );
            }
            head(
                ui,
                widths.bytes,
                "through",
                "Bytes allocated through the line (any frame: what its calls allocated)",
            );
        }
        let (name, hint) = if gutter.full {
            (
                "Fewer columns",
                "Only the bytes allocated here: more room for the code",
            )
        } else {
            (
                "All columns",
                "Also the blocks, the change and the bytes allocated through each line \
                 (also in each line's tooltip)",
            )
        };
        if ui.small_button(name).on_hover_text(hint).clicked() {
            commands.push(Command::ShowFullSourceGutter(!gutter.full));
        }
    });
}

/// The file's lines with numbers, `line` highlighted and scrolled into view
/// when it changes, each annotated with its memory when `annotation` is
/// given; only the visible lines are laid out.
fn code_ui(
    ui: &mut egui::Ui,
    file: &SourceFile,
    line: u32,
    (annotation, gutter): (Option<&FileAnnotation>, Gutter),
    commands: &mut Vec<Command>,
) {
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
    let comparing = annotation.is_some_and(FileAnnotation::is_comparison);
    let widths = CellWidths::of(ui);
    if annotation.is_some() {
        annotation_header_ui(ui, comparing, (widths, gutter), commands);
    }
    let heat_color = growth_color(ui);
    area.show_rows(ui, row_height, file.lines.len(), |ui, range| {
        ui.style_mut().wrap_mode = Some(egui::TextWrapMode::Extend);
        for index in range {
            let number = index as u32 + 1;
            let code = &file.lines[index];
            // A slot under the line's text, for the highlight.
            let background = ui.painter().add(egui::Shape::Noop);
            let memory = annotation.and_then(|a| a.line(number));
            let heat = annotation.map_or(0.0, |a| a.heat(number)) as f32;
            let response = ui
                .horizontal(|ui| {
                    ui.spacing_mut().item_spacing.x = 8.0;
                    if annotation.is_some() {
                        annotation_cells_ui(
                            ui,
                            number,
                            memory,
                            comparing,
                            (heat, heat_color),
                            (widths, row_height, gutter),
                        );
                    }
                    ui.label(
                        RichText::new(format!("{number:>digits$}"))
                            .monospace()
                            .color(ui.visuals().weak_text_color()),
                    );
                    let job = highlight(ui.ctx(), ui.style(), &theme, code, &language);
                    ui.add(egui::Label::new(job).selectable(true));
                })
                .response;
            if heat > 0.0 && number != line {
                // The whole line warms up a little, so hot lines stand out
                // when scrolling.
                let rect = response.rect.expand2(egui::vec2(4.0, 1.0));
                ui.painter().set(
                    background,
                    egui::Shape::rect_filled(rect, 2.0, heat_color.gamma_multiply(0.10 * heat)),
                );
            }
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

/// A line's annotation cells: bytes and blocks allocated here (on a heat
/// background), their change, and the bytes allocated through it; empty
/// cells for a line without memory.
fn annotation_cells_ui(
    ui: &mut egui::Ui,
    number: u32,
    memory: Option<&LineAnnotation>,
    comparing: bool,
    (heat, heat_color): (f32, Color32),
    (widths, height, gutter): (CellWidths, f32, Gutter),
) {
    let Some(m) = memory else {
        // The same (empty) cells as an annotated line, so that every line
        // number and every line of code stays in its column.
        let columns = match (gutter.full, comparing) {
            (false, _) => 0,
            (true, true) => 3,
            (true, false) => 2,
        };
        for i in 0..=columns {
            let width = if i == 1 { widths.blocks } else { widths.bytes };
            cell_ui(ui, width, height, String::new(), None);
        }
        return;
    };
    let weak = ui.visuals().weak_text_color();
    let here_text = if m.here.count > 0 || m.here.size > 0 {
        display_text::size(m.here.size)
    } else {
        String::new()
    };
    // On a hot background the number is drawn in the strongest text
    // colour, so that it stays readable however hot the line is.
    let mut here_color = None;
    if heat > 0.0 {
        // Painted first, under the number: the cell's future place.
        let at = ui.cursor().min;
        let rect = egui::Rect::from_min_size(at, egui::vec2(widths.bytes, height))
            .expand2(egui::vec2(3.0, 0.0));
        ui.painter()
            .rect_filled(rect, 2.0, heat_color.gamma_multiply(0.15 + 0.45 * heat));
        here_color = Some(ui.visuals().strong_text_color());
    }
    let here = cell_ui(ui, widths.bytes, height, here_text, here_color);
    let summary = line_summary(number, m, comparing);
    here.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &summary));
    if !gutter.full {
        here.on_hover_text(summary);
        return;
    }
    let blocks = if m.here.count > 0 {
        format!("×{}", display_text::thousands(m.here.count))
    } else {
        String::new()
    };
    cell_ui(ui, widths.blocks, height, blocks, Some(weak));
    if comparing {
        let diff = if m.here.size_diff != 0 {
            display_text::size_diff(m.here.size_diff)
        } else {
            String::new()
        };
        cell_ui(
            ui,
            widths.bytes,
            height,
            diff,
            diff_color(ui, m.here.size_diff),
        );
    }
    let through = if m.through.size > 0 || m.through.count > 0 {
        display_text::size(m.through.size)
    } else {
        String::new()
    };
    cell_ui(ui, widths.bytes, height, through, Some(weak));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemalloc_format::annotate::LineMemory;

    #[test]
    fn line_summaries_read_well() {
        let line = LineAnnotation {
            lineno: 8,
            here: LineMemory {
                size: 368_640,
                count: 90,
                size_diff: 327_680,
                count_diff: 80,
            },
            through: LineMemory {
                size: 368_640,
                count: 90,
                size_diff: 327_680,
                count_diff: 80,
            },
        };
        assert_eq!(
            line_summary(8, &line, true),
            "line 8: 360 KiB in 90 blocks here (+320 KiB); 360 KiB through (+320 KiB)"
        );
        assert_eq!(
            line_summary(8, &line, false),
            "line 8: 360 KiB in 90 blocks here; 360 KiB through"
        );
    }
}
