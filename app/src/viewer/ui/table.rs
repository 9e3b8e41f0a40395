//! The table: one row per group, only the visible rows laid out
//! (egui_extras' virtual rows), sortable by any column.

use egui::text::LayoutJob;
use egui::{Align, Color32, Layout, RichText, Sense, TextFormat};
use egui_extras::{Column, TableBuilder};
use tracemalloc_format::rows::{SortColumn, View};
use tracemalloc_format::{FrameRef, KeyType, Metric};

use super::{diff_color, growth_color};
use crate::viewer::app_state::AppState;
use crate::viewer::command::Command;
use crate::viewer::display_text;
use crate::viewer::source::{SourceState, Sources};

/// Path components kept in the Source column.
const PATH_COMPONENTS: usize = 3;

/// Frames shown in a traceback row before `← …`.
const ROW_FRAMES: usize = 8;

/// The columns, in order, with their headers; the Δ columns only when
/// comparing. The size and count headers name the metric they show
/// ("Bytes allocated", "Allocations"), live blocks keep "Size" and "Count".
fn columns(comparing: bool, metric: Metric) -> Vec<(SortColumn, &'static str, &'static str)> {
    let text = display_text::metric_text(metric);
    let live = metric == Metric::Live;
    let mut columns = vec![
        (
            SortColumn::Source,
            "Source",
            "File, line or traceback (most recent frame first)",
        ),
        (
            SortColumn::Size,
            text.size,
            if live {
                "Total size of the group's blocks"
            } else {
                text.hint
            },
        ),
    ];
    if comparing {
        columns.push((
            SortColumn::SizeDiff,
            text.size_diff,
            "Size difference to the compared snapshot",
        ));
    }
    columns.push((
        SortColumn::Count,
        text.count,
        if live { "Number of blocks" } else { text.hint },
    ));
    if comparing {
        columns.push((
            SortColumn::CountDiff,
            text.count_diff,
            "Block count difference",
        ));
    }
    columns.push((SortColumn::AverageSize, "Item size", "Average block size"));
    columns.push((
        SortColumn::PercentOfTotal,
        "% Total",
        "Share of the snapshot's total size",
    ));
    columns
}

/// The widest text a number column usually shows, in monospace characters:
/// sizes have at most four digits before their unit (`99.9 KiB`,
/// `1023 KiB`), differences a sign more, counts a few thousands
/// (`123,456`), shares `100.0 %`. Longer numbers are cut on the left, and
/// the columns can be widened by hand.
fn number_chars(column: SortColumn) -> f32 {
    match column {
        SortColumn::Size | SortColumn::AverageSize => 8.0,
        SortColumn::SizeDiff => 9.0,
        SortColumn::Count | SortColumn::CountDiff | SortColumn::PercentOfTotal => 7.0,
        SortColumn::Source => 0.0,
    }
}

/// A number column's width: its widest usual number or its header (with a
/// sort arrow), whichever is wider, and the cell's margins. Measured from
/// the fonts, so that the columns need what they show at any font size, and
/// the Source column keeps the rest.
fn number_column_width(ui: &egui::Ui, column: SortColumn, name: &str) -> f32 {
    let mono = egui::TextStyle::Monospace.resolve(ui.style());
    let body = egui::TextStyle::Body.resolve(ui.style());
    let color = ui.visuals().text_color();
    let (digit, header) = ui.fonts_mut(|f| {
        let digit = f.glyph_width(&mono, '0');
        let header = f.layout_no_wrap(format!("{name} ▼"), body, color).size().x;
        (digit, header)
    });
    let margins = ui.spacing().item_spacing.x + 4.0;
    (number_chars(column) * digit).max(header).ceil() + margins
}

/// A row's Source cell as it is shown: the path shortened to its last
/// components, the line, and for traceback rows the frames joined by `←`.
pub fn source_cell_text(view: &View, row: usize) -> String {
    let mut out = String::new();
    let key_type = view.key_type();
    let frames = view.frames(row);
    let total = frames.len();
    for (i, frame) in frames.enumerate() {
        if i == ROW_FRAMES {
            out.push_str(" ← …");
            break;
        }
        if i > 0 {
            out.push_str(" ← ");
        }
        match key_type {
            KeyType::Filename => {
                out.push_str(&display_text::shorten_path(frame.filename, PATH_COMPONENTS))
            }
            KeyType::Lineno => {
                out.push_str(&display_text::shorten_path(frame.filename, PATH_COMPONENTS));
                out.push_str(&format!(":{}", frame.lineno));
            }
            // Only the file names: a traceback has many frames to show.
            KeyType::Traceback => {
                out.push_str(display_text::base_name(frame.filename));
                out.push_str(&format!(":{}", frame.lineno));
            }
        }
    }
    if total == 0 {
        out.push('?');
    }
    out
}

/// A row as text, tab-separated as the table shows it (Ctrl+C, "Copy row").
pub fn row_text(view: &View, row: usize) -> String {
    let r = view.rows()[row];
    let mut fields = vec![view.source_text(row), display_text::size(r.size)];
    if view.is_comparison() {
        fields.push(display_text::size_diff(r.size_diff));
    }
    fields.push(display_text::thousands(r.count));
    if view.is_comparison() {
        fields.push(display_text::signed_thousands(r.count_diff));
    }
    fields.push(tracemalloc_format::format_size(r.average(), false));
    fields.push(display_text::percent(view.fraction_of_total(row)));
    fields.join("\t")
}

/// A traceback as text, most recent frame first, with function names and,
/// where the source has been read, the line's code: the format crate's
/// `Traceback::format`, as the command line prints it, under Python's
/// header.
pub fn traceback_text(view: &View, row: usize, mut sources: Option<&mut Sources>) -> String {
    let mut out = String::from("Traceback (most recent call first):\n");
    let lines = view.traceback(row).format(None, true, |filename, lineno| {
        match sources.as_deref_mut()?.get(filename) {
            SourceState::Found(file) => file.line(lineno).map(str::to_owned),
            _ => None,
        }
    });
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The table, or what to do when there is nothing to show.
pub fn table_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    mut sources: Option<&mut Sources>,
    commands: &mut Vec<Command>,
) {
    let Some(result) = &state.result else {
        empty_ui(ui, state, commands);
        return;
    };
    if let Some(error) = &state.analysis_error {
        ui.colored_label(growth_color(ui), error);
    }
    let view = &result.view;
    let order = &result.order;
    if order.is_empty() {
        ui.add_space(24.0);
        ui.vertical_centered(|ui| {
            if state.table.search.trim().is_empty() {
                ui.label("No allocation matches the filters.");
            } else {
                ui.label(format!(
                    "No source contains “{}”.",
                    state.table.search.trim()
                ));
            }
        });
        return;
    }
    let comparing = view.is_comparison();
    let sort = result.request.sort;
    let columns = columns(comparing, view.metric());
    let selected = state.selected_position();
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    let widths: Vec<f32> = columns[1..]
        .iter()
        .map(|&(column, name, _)| number_column_width(ui, column, name))
        .collect();
    let mut builder = TableBuilder::new(ui)
        // One memory of column widths per metric: a resizable table keeps
        // the widths it first had, and the history metrics' headers
        // ("Bytes allocated") are wider than "Size".
        .id_salt(("groups", view.metric()))
        .striped(true)
        .resizable(true)
        .sense(Sense::click())
        .cell_layout(Layout::left_to_right(Align::Center))
        .min_scrolled_height(0.0)
        // Not resizable: the Source column takes whatever the numbers leave,
        // also when the window or a panel changes size.
        .column(
            Column::remainder()
                .at_least(160.0)
                .clip(true)
                .resizable(false),
        );
    for &width in &widths {
        builder = builder.column(Column::initial(width).at_least(width * 0.75).clip(true));
    }
    if state.table.scroll_to_selected
        && let Some(position) = selected
    {
        // Once: the scroll area animates there by itself, and the user
        // must be free to scroll away afterwards.
        builder = builder.scroll_to_row(position, None);
        commands.push(Command::ScrolledToSelected);
    }
    builder
        .header(row_height + 4.0, |mut header| {
            for &(column, name, hint) in &columns {
                header.col(|ui| {
                    let arrow = if sort.column == column {
                        if sort.descending { " ▼" } else { " ▲" }
                    } else {
                        ""
                    };
                    let layout = if column == SortColumn::Source {
                        Layout::left_to_right(Align::Center)
                    } else {
                        Layout::right_to_left(Align::Center)
                    };
                    ui.with_layout(layout, |ui| {
                        let button =
                            egui::Button::new(RichText::new(format!("{name}{arrow}")).strong())
                                .frame(false);
                        if ui
                            .add(button)
                            .on_hover_text(format!("{hint}. Click to sort."))
                            .clicked()
                        {
                            commands.push(Command::SortBy(column));
                        }
                    });
                });
            }
        })
        .body(|body| {
            body.rows(row_height, order.len(), |mut row| {
                let position = row.index();
                let index = order[position] as usize;
                let r = view.rows()[index];
                row.set_selected(selected == Some(position));
                for &(column, _, _) in &columns {
                    row.col(|ui| {
                        ui.style_mut().interaction.selectable_labels = false;
                        match column {
                            SortColumn::Source => {
                                source_cell_ui(ui, view, index, sources.as_deref_mut());
                            }
                            SortColumn::Size => number_ui(ui, display_text::size(r.size), None),
                            SortColumn::SizeDiff => number_ui(
                                ui,
                                display_text::size_diff(r.size_diff),
                                diff_color(ui, r.size_diff),
                            ),
                            SortColumn::Count => {
                                number_ui(ui, display_text::thousands(r.count), None)
                            }
                            SortColumn::CountDiff => number_ui(
                                ui,
                                display_text::signed_thousands(r.count_diff),
                                diff_color(ui, r.count_diff),
                            ),
                            SortColumn::AverageSize => number_ui(
                                ui,
                                tracemalloc_format::format_size(r.average(), false),
                                None,
                            ),
                            SortColumn::PercentOfTotal => {
                                percent_ui(ui, view.fraction_of_total(index));
                            }
                        }
                    });
                }
                let response = row.response();
                if response.clicked() || response.secondary_clicked() {
                    commands.push(Command::SelectRow(position));
                }
                if response.double_clicked() {
                    commands.push(Command::DrillDown(position));
                }
                response.context_menu(|ui| row_menu_ui(ui, view, index, position, commands));
            });
        });
}

/// The Source cell: the path's last components and the line, elided in the
/// middle to fit (the file name and `:line` always show), the function name in weak text for
/// lines when there is room, and a tooltip with the full path and the
/// source line. Screen readers (and the UI tests) hear the whole text.
fn source_cell_ui(ui: &mut egui::Ui, view: &View, row: usize, sources: Option<&mut Sources>) {
    let style = ui.style();
    let font = egui::TextStyle::Body.resolve(style);
    let (color, weak) = (ui.visuals().text_color(), ui.visuals().weak_text_color());
    let first = view.frames(row).next();
    let function = match (view.key_type(), first.and_then(|f| f.function)) {
        (KeyType::Lineno, Some(function)) => format!("  {}", short_function(function)),
        _ => String::new(),
    };
    // The path's last components and the line (the tooltip has the whole
    // path); tracebacks show the most recent frames first, so that cutting
    // their end keeps what matters.
    let text = source_cell_text(view, row);
    let full = format!("{text}{function}");
    let shown = if view.key_type() == KeyType::Traceback {
        SourceFit {
            path: text,
            function: String::new(),
        }
    } else {
        let available = ui.available_width();
        fit_source(&text, &function, available, |s| {
            ui.fonts_mut(|f| f.layout_no_wrap(s.to_owned(), font.clone(), color).size().x)
        })
    };
    let mut job = LayoutJob::default();
    job.append(&shown.path, 0.0, TextFormat::simple(font.clone(), color));
    if !shown.function.is_empty() {
        job.append(&shown.function, 0.0, TextFormat::simple(font, weak));
    }
    job.wrap.max_rows = 1;
    job.wrap.break_anywhere = true;
    let response = ui.add(egui::Label::new(job).truncate().selectable(false));
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Label, true, &full));
    if response.hovered()
        && let Some(frame) = first
    {
        let tooltip = frame_tooltip(view, row, frame, sources);
        response.on_hover_ui(|ui| {
            ui.set_max_width(640.0);
            ui.label(tooltip);
        });
    }
}

/// What a Source cell shows of a path (with its line) and a function.
#[derive(Debug, PartialEq, Eq)]
struct SourceFit {
    path: String,
    function: String,
}

/// Fits `path` and `function` in `max_width` as `width` measures text:
/// both when they fit; else the whole path and the function cut at its
/// end (the label's truncation) when the path fits alone; else the path
/// elided in the middle to fit ([`display_text::elide_middle`]), without
/// the function.
fn fit_source(
    path: &str,
    function: &str,
    max_width: f32,
    mut width: impl FnMut(&str) -> f32,
) -> SourceFit {
    let path_width = width(path);
    if path_width <= max_width {
        return SourceFit {
            path: path.to_owned(),
            function: function.to_owned(),
        };
    }
    // Start from the share of the characters that fits, then shorten one
    // character at a time: proportional fonts make the first guess close.
    let chars = path.chars().count();
    let mut n = ((chars as f32) * max_width / path_width).floor() as usize;
    loop {
        let elided = display_text::elide_middle(path, n);
        if n == 0 || width(&elided) <= max_width {
            return SourceFit {
                path: elided,
                function: String::new(),
            };
        }
        n -= 1;
    }
}

/// The last two path segments of a Rust function, e.g. `pool::grow`; other
/// names unchanged.
fn short_function(function: &str) -> &str {
    let mut cut = function.len();
    let mut seen = 0;
    // Generic arguments contain `::` too: only look before the first `<`.
    let end = function.find('<').unwrap_or(function.len());
    for (i, _) in function[..end].rmatch_indices("::") {
        seen += 1;
        cut = i + 2;
        if seen == 2 {
            break;
        }
    }
    if seen < 2 { function } else { &function[cut..] }
}

fn frame_tooltip(
    view: &View,
    row: usize,
    frame: FrameRef<'_>,
    sources: Option<&mut Sources>,
) -> String {
    let mut tip = match view.key_type() {
        KeyType::Filename => frame.filename.to_owned(),
        _ => format!("{}:{}", frame.filename, frame.lineno),
    };
    if let Some(function) = frame.function {
        tip.push_str(&format!("\nin {function}"));
    }
    if view.key_type() != KeyType::Filename
        && let Some(sources) = sources
    {
        match sources.get(frame.filename) {
            SourceState::Found(file) => {
                if let Some(line) = file.line(frame.lineno) {
                    tip.push_str(&format!("\n\n    {}", line.trim()));
                }
            }
            SourceState::Loading => tip.push_str("\n\n(reading the source…)"),
            SourceState::Missing(_) => {}
        }
    }
    if view.key_type() == KeyType::Traceback {
        let n = view.frames(row).len();
        tip.push_str(&format!("\n\n{n} frames; select the row to see them all"));
    }
    tip
}

fn number_ui(ui: &mut egui::Ui, value: String, color: Option<Color32>) {
    ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
        let mut text = RichText::new(value).monospace();
        if let Some(color) = color {
            text = text.color(color);
        }
        ui.add(egui::Label::new(text).selectable(false));
    });
}

/// `12.3 %` over a bar as long as the share.
fn percent_ui(ui: &mut egui::Ui, fraction: f64) {
    let rect = ui.max_rect().shrink2(egui::vec2(2.0, 3.0));
    let mut bar = rect;
    bar.set_width(rect.width() * fraction.clamp(0.0, 1.0) as f32);
    let color = ui.visuals().selection.bg_fill.gamma_multiply(0.55);
    ui.painter().rect_filled(bar, 2.0, color);
    number_ui(ui, display_text::percent(fraction), None);
}

/// The row's context menu.
fn row_menu_ui(
    ui: &mut egui::Ui,
    view: &View,
    row: usize,
    position: usize,
    commands: &mut Vec<Command>,
) {
    let first = view.frames(row).next();
    if ui.button("Copy row").clicked() {
        commands.push(Command::Copy(row_text(view, row)));
    }
    if let Some(frame) = first {
        let location = if view.key_type() == KeyType::Filename {
            frame.filename.to_owned()
        } else {
            format!("{}:{}", frame.filename, frame.lineno)
        };
        let label = if view.key_type() == KeyType::Filename {
            "Copy file"
        } else {
            "Copy file:line"
        };
        if ui.button(label).clicked() {
            commands.push(Command::Copy(location));
        }
    }
    if ui.button("Copy traceback").clicked() {
        commands.push(Command::Copy(traceback_text(view, row, None)));
    }
    if let Some(frame) = first {
        super::open_in_editor_on_click(
            ui.button("Open in editor"),
            frame.filename,
            frame.lineno,
            commands,
        );
        ui.separator();
        let pattern = display_text::escape_glob(frame.filename);
        if ui.button("Include this file").clicked() {
            commands.push(Command::AddFilter(
                tracemalloc_format::Filter::new(true, &pattern).into(),
            ));
        }
        if ui.button("Exclude this file").clicked() {
            commands.push(Command::AddFilter(
                tracemalloc_format::Filter::new(false, &pattern).into(),
            ));
        }
    }
    match view.key_type() {
        KeyType::Filename => {
            ui.separator();
            if ui.button("Show its lines").clicked() {
                commands.push(Command::DrillDown(position));
            }
        }
        KeyType::Lineno => {
            ui.separator();
            if ui.button("Show its tracebacks").clicked() {
                commands.push(Command::DrillDown(position));
            }
        }
        KeyType::Traceback => {}
    }
}

/// No result yet: loading, or nothing open.
fn empty_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    ui.add_space(48.0);
    ui.vertical_centered(|ui| {
        if state.loader.is_busy() {
            ui.heading("Loading…");
        } else if state.analysis_pending {
            ui.heading("Analysing…");
        } else if state.session.snapshots().is_empty() {
            ui.heading("No snapshot open");
            ui.add_space(8.0);
            ui.label("Open .tmsnap files or CPython tracemalloc pickles, or drop them here.");
            ui.add_space(8.0);
            if ui.button("Open…").clicked() {
                commands.push(Command::OpenDialog);
            }
            if ui.button("Open the demo snapshots").clicked() {
                commands.push(Command::OpenDemo);
            }
        } else if let Some(error) = &state.analysis_error {
            ui.colored_label(growth_color(ui), error);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_cells_keep_the_file_and_line_first() {
        // Every character 7 points wide.
        let width = |s: &str| 7.0 * s.chars().count() as f32;
        let path = "recorder/examples/leaky_service/src/cache.rs:8";
        let fit = |chars: f32| fit_source(path, "  Cache::put", 7.0 * chars, width);
        // Room for both.
        assert_eq!(
            fit(60.0),
            SourceFit {
                path: path.to_owned(),
                function: "  Cache::put".to_owned()
            }
        );
        // Room for the path: the function is cut by the label.
        assert_eq!(fit(50.0).path, path);
        assert_eq!(fit(50.0).function, "  Cache::put");
        // Less: the path is elided in the middle, the function dropped.
        assert_eq!(
            fit(30.5),
            SourceFit {
                path: "…/leaky_service/src/cache.rs:8".to_owned(),
                function: String::new()
            }
        );
        assert_eq!(fit(12.0).path, "…/cache.rs:8");
        assert_eq!(fit(0.0).path, "");
    }
    use tracemalloc_format::Snapshot;
    use tracemalloc_format::rows::Grouping;

    fn view(key_type: KeyType, frames: &[(&str, u32)]) -> View {
        let s = Snapshot::from_raw_traces(20, [(0, 1536, frames, None)]).unwrap();
        View::plain(&Grouping::new(&s, key_type, false).unwrap())
    }

    #[test]
    fn source_cells_shorten_paths() {
        let frames = [
            ("/home/me/app/src/db/pool.rs", 42),
            ("/home/me/app/src/main.rs", 7),
        ];
        assert_eq!(
            source_cell_text(&view(KeyType::Filename, &frames), 0),
            "…/src/db/pool.rs"
        );
        assert_eq!(
            source_cell_text(&view(KeyType::Lineno, &frames), 0),
            "…/src/db/pool.rs:42"
        );
        assert_eq!(
            source_cell_text(&view(KeyType::Traceback, &frames), 0),
            "pool.rs:42 ← main.rs:7"
        );
        let deep: Vec<(&str, u32)> = (0..12).map(|i| ("a.rs", i)).collect();
        let text = source_cell_text(&view(KeyType::Traceback, &deep), 0);
        assert!(text.ends_with("a.rs:7 ← …"), "{text}");
    }

    #[test]
    fn rows_copy_as_tab_separated_text() {
        let v = view(KeyType::Lineno, &[("/a/b.rs", 3)]);
        assert_eq!(row_text(&v, 0), "/a/b.rs:3\t1536 B\t1\t1536 B\t100.0 %");
        assert_eq!(
            traceback_text(&v, 0, None),
            "Traceback (most recent call first):\n  File \"/a/b.rs\", line 3\n"
        );
    }

    #[test]
    fn functions_keep_their_last_two_segments() {
        assert_eq!(short_function("app::db::pool::grow"), "pool::grow");
        assert_eq!(short_function("grow"), "grow");
        assert_eq!(short_function("pool::grow"), "pool::grow");
        assert_eq!(
            short_function("<alloc::vec::Vec<T> as core::clone::Clone>::clone"),
            "<alloc::vec::Vec<T> as core::clone::Clone>::clone"
        );
        assert_eq!(short_function("a::b::c<d::e>"), "b::c<d::e>");
    }
}
