//! The timeline tab: every open snapshot's total size and block count over
//! time, the selected group's own series drawn over them, and the groups
//! ranked by how steadily they grew (the usual signature of a leak), each
//! with a sparkline. Clicking a ranked group selects it in the table;
//! clicking the plots shows the nearest snapshot.

use egui::{Color32, Layout, RichText, Sense, Stroke, pos2, vec2};
use egui_extras::{Column, TableBuilder};
use egui_plot::{Corner, Legend, Line, LineStyle, Plot, PlotPoint, PlotPoints, Points, VLine};
use tracemalloc_format::KeyType;
use tracemalloc_format::timeline::{Growth, Timeline};

use super::growth_color;
use crate::viewer::app::AppState;
use crate::viewer::command::Command;
use crate::viewer::session::SnapshotId;
use crate::viewer::text;
use crate::viewer::timeline::TimelineResult;

/// Path components kept in the ranking's group column.
const PATH_COMPONENTS: usize = 3;

/// The timeline tab.
pub fn timeline_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    if let Some(error) = &state.timeline_error {
        ui.colored_label(growth_color(ui), error);
    }
    let Some(result) = &state.timeline else {
        ui.add_space(16.0);
        ui.vertical_centered(|ui| {
            ui.spinner();
            ui.weak(progress_text(state));
        });
        return;
    };
    let timeline = &*result.timeline;
    let selected = state
        .table
        .selected
        .as_ref()
        .and_then(|tb| timeline.find(tb));
    let size = ui.available_size();
    let plots_width = (size.x * 0.56).max(260.0);
    ui.horizontal_top(|ui| {
        ui.allocate_ui_with_layout(
            vec2(plots_width, size.y),
            Layout::top_down(egui::Align::Min),
            |ui| plots_ui(ui, state, result, selected, commands),
        );
        ui.separator();
        ui.allocate_ui_with_layout(
            vec2(ui.available_width(), size.y),
            Layout::top_down(egui::Align::Min),
            |ui| ranking_ui(ui, state, timeline, selected, commands),
        );
    });
}

/// "Timeline: grouping 12 of 50 snapshots…".
fn progress_text(state: &AppState) -> String {
    match state.timeline_progress {
        Some((done, total)) => format!("Timeline: grouping {done} of {total} snapshots…"),
        None => "Timeline: waiting…".to_owned(),
    }
}

/// The x position of each snapshot: seconds after the first when every
/// time is known, else its position (1, 2, 3, ...).
fn positions(timeline: &Timeline) -> (Vec<f64>, bool) {
    match timeline.seconds() {
        Some(seconds) => (seconds, true),
        None => ((1..=timeline.len()).map(|i| i as f64).collect(), false),
    }
}

/// An x axis value: `+90 s`, `+12 min`, `+2.5 h`, or `#3`.
pub fn x_label(value: f64, seconds: bool) -> String {
    if !seconds {
        return format!("#{}", value.round() as i64);
    }
    let abs = value.abs();
    let sign = if value < 0.0 { "-" } else { "+" };
    if abs < 120.0 {
        format!("{sign}{} s", trim_float(abs))
    } else if abs < 7200.0 {
        format!("{sign}{} min", trim_float(abs / 60.0))
    } else {
        format!("{sign}{} h", trim_float(abs / 3600.0))
    }
}

/// A number with at most one decimal, none when it is whole.
fn trim_float(v: f64) -> String {
    let rounded = (v * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

/// What one plot shows.
#[derive(Clone, Copy)]
enum Measure {
    Size,
    Count,
}

/// The two plots, one above the other, their x axes linked.
fn plots_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    result: &TimelineResult,
    selected: Option<u32>,
    commands: &mut Vec<Command>,
) {
    let timeline = &*result.timeline;
    let height = ((ui.available_height() - 48.0) / 2.0).max(50.0);
    for measure in [Measure::Size, Measure::Count] {
        let title = match measure {
            Measure::Size => "Total size",
            Measure::Count => "Blocks",
        };
        ui.strong(title);
        if let Some(id) = plot_ui(ui, state, result, selected, measure, height) {
            commands.push(Command::SelectSnapshot(id));
        }
    }
    if state.timeline_progress.is_some() {
        ui.weak(progress_text(state));
    } else {
        ui.weak(format!(
            "{} snapshots, {} groups; click a point to show that snapshot",
            timeline.len(),
            text::thousands(timeline.group_count() as u64)
        ));
    }
}

/// One plot; returns the snapshot clicked, if any.
fn plot_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    result: &TimelineResult,
    selected: Option<u32>,
    measure: Measure,
    height: f32,
) -> Option<SnapshotId> {
    let timeline = &*result.timeline;
    let (xs, seconds) = positions(timeline);
    let total: Vec<f64> = timeline
        .totals()
        .iter()
        .map(|t| match measure {
            Measure::Size => t.size as f64,
            Measure::Count => t.count as f64,
        })
        .collect();
    let format_y = move |v: f64| match measure {
        Measure::Size => text::size(v.max(0.0) as u64),
        Measure::Count => text::thousands(v.max(0.0) as u64),
    };
    let accent = growth_color(ui);
    let neutral = ui.visuals().selection.bg_fill;
    let points = |values: &[f64]| -> Vec<[f64; 2]> {
        xs.iter().zip(values).map(|(&x, &y)| [x, y]).collect()
    };
    let group_values: Option<(String, Vec<f64>)> = selected.map(|g| {
        let values = match measure {
            Measure::Size => timeline.size_series(g),
            Measure::Count => timeline.count_series(g),
        };
        (
            format!(
                "Selected: {}",
                group_cell_text(timeline, g).unwrap_or_default()
            ),
            values.iter().map(|&v| v as f64).collect(),
        )
    });
    let marker = |id: Option<SnapshotId>| {
        id.and_then(|id| result.ids.iter().position(|&i| i == id))
            .map(|i| xs[i])
    };
    let current_x = marker(state.current);
    let compare_x = marker(state.compare);
    let strong = ui.visuals().strong_text_color();
    let link = egui::Id::unique("timeline_x");
    let plot = Plot::new(match measure {
        Measure::Size => "timeline_size",
        Measure::Count => "timeline_count",
    })
    .height(height)
    .allow_zoom(false)
    .allow_drag(false)
    .allow_scroll(false)
    .allow_boxed_zoom(false)
    .allow_double_click_reset(false)
    .include_y(0.0)
    .link_axis(link, [true, false])
    .legend(Legend::default().position(Corner::LeftTop))
    .x_axis_formatter(move |mark, _| x_label(mark.value, seconds))
    .y_axis_formatter(move |mark, _| format_y(mark.value))
    .label_formatter(move |hover| match hover {
        egui_plot::HoverPosition::NearDataPoint {
            plot_name,
            position,
            ..
        } => Some(format!(
            "{plot_name}\n{}: {}",
            x_label(position.x, seconds),
            format_y(position.y)
        )),
        egui_plot::HoverPosition::Elsewhere { .. } => None,
    });
    let response = plot.show(ui, |plot_ui| {
        plot_ui.line(
            Line::new("All", PlotPoints::from(points(&total)))
                .color(neutral)
                .width(2.0),
        );
        plot_ui.add(
            Points::new("All", PlotPoints::from(points(&total)))
                .color(neutral)
                .radius(3.0),
        );
        if let Some((name, values)) = &group_values {
            plot_ui.line(
                Line::new(name.as_str(), PlotPoints::from(points(values)))
                    .color(accent)
                    .width(2.0),
            );
            plot_ui.add(
                Points::new(name.as_str(), PlotPoints::from(points(values)))
                    .color(accent)
                    .radius(3.0),
            );
        }
        if let Some(x) = current_x {
            plot_ui.add(VLine::new("shown", x).color(strong).width(1.0));
        }
        if let Some(x) = compare_x {
            plot_ui.add(
                VLine::new("compared to", x)
                    .color(strong.gamma_multiply(0.6))
                    .style(LineStyle::dashed_loose())
                    .width(1.0),
            );
        }
        if plot_ui.response().clicked() {
            plot_ui.pointer_coordinate()
        } else {
            None
        }
    });
    let clicked: PlotPoint = response.inner?;
    let nearest = xs
        .iter()
        .enumerate()
        .min_by(|a, b| {
            (a.1 - clicked.x)
                .abs()
                .total_cmp(&(b.1 - clicked.x).abs())
                .then(a.0.cmp(&b.0))
        })
        .map(|(i, _)| i)?;
    result.ids.get(nearest).copied()
}

/// A ranked group as the ranking shows it: the path shortened, the line,
/// the function for lines; `None` for a group index out of range.
pub fn group_cell_text(timeline: &Timeline, group: u32) -> Option<String> {
    if group as usize >= timeline.group_count() {
        return None;
    }
    let tb = timeline.traceback(group);
    let parts: Vec<String> = tb
        .frames
        .iter()
        .take(6)
        .map(|f| match timeline.key_type() {
            KeyType::Filename => text::shorten_path(&f.filename, PATH_COMPONENTS),
            KeyType::Lineno => format!(
                "{}:{}",
                text::shorten_path(&f.filename, PATH_COMPONENTS),
                f.lineno
            ),
            KeyType::Traceback => format!("{}:{}", text::base_name(&f.filename), f.lineno),
        })
        .collect();
    let mut out = parts.join(" ← ");
    if tb.frames.len() > 6 {
        out.push_str(" ← …");
    }
    Some(out)
}

/// "4/4", "3/4".
fn grew_text(growth: &Growth, intervals: usize) -> String {
    format!("{}/{intervals}", growth.grew)
}

/// The growing groups, steadiest first.
fn ranking_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    timeline: &Timeline,
    selected: Option<u32>,
    commands: &mut Vec<Command>,
) {
    let ranking = timeline.ranking();
    let intervals = timeline.len().saturating_sub(1);
    ui.horizontal(|ui| {
        ui.strong("Growing");
        ui.weak(format!(
            "{} of {} groups grew; steadiest first",
            text::thousands(ranking.len() as u64),
            text::thousands(timeline.group_count() as u64)
        ))
        .on_hover_text(
            "Groups whose size in the last snapshot is above their size in the first, \
             ranked by the number of intervals in which they grew (a leak grows every time), \
             then by the fewest in which they shrank, then by growth. \
             Click one to select it in the table and see its series.",
        );
    });
    if ranking.is_empty() {
        ui.weak("Nothing grew from the first snapshot to the last.");
        return;
    }
    let with_rate = timeline.seconds().is_some();
    let row_height = ui.text_style_height(&egui::TextStyle::Body) + 6.0;
    let accent = growth_color(ui);
    let mut builder = TableBuilder::new(ui)
        .id_salt("growing")
        .striped(true)
        .sense(Sense::click())
        .cell_layout(Layout::left_to_right(egui::Align::Center))
        .min_scrolled_height(0.0)
        .column(Column::remainder().at_least(120.0).clip(true))
        .column(Column::exact(84.0))
        .column(Column::exact(76.0))
        .column(Column::exact(52.0));
    if with_rate {
        builder = builder.column(Column::exact(84.0));
    }
    if let Some(position) = selected.and_then(|g| ranking.iter().position(|r| r.group == g)) {
        // Keep the selected group in view when the table selects it.
        if state.table.scroll_to_selected {
            builder = builder.scroll_to_row(position, None);
        }
    }
    let header = |name: &str, hint: &str, ui: &mut egui::Ui| {
        ui.strong(name).on_hover_text(hint);
    };
    builder
        .header(row_height + 2.0, |mut h| {
            h.col(|ui| header("Group", "The group, as in the table", ui));
            h.col(|ui| header("Trend", "Its size in every snapshot", ui));
            h.col(|ui| header("Growth", "Size in the last snapshot minus the first", ui));
            h.col(|ui| {
                header(
                    "Grew",
                    "In how many intervals between consecutive snapshots it grew",
                    ui,
                )
            });
            if with_rate {
                h.col(|ui| header("Rate", "Growth per minute, first to last snapshot", ui));
            }
        })
        .body(|body| {
            body.rows(row_height, ranking.len(), |mut row| {
                let growth = &ranking[row.index()];
                row.set_selected(selected == Some(growth.group));
                row.col(|ui| {
                    ui.style_mut().interaction.selectable_labels = false;
                    let label = group_cell_text(timeline, growth.group).unwrap_or_default();
                    let tb = timeline.traceback(growth.group);
                    let function = (timeline.key_type() == KeyType::Lineno)
                        .then(|| tb.frames.first().and_then(|f| f.function.clone()))
                        .flatten();
                    ui.add(egui::Label::new(label).truncate().selectable(false))
                        .on_hover_text(timeline.source_text(growth.group));
                    if let Some(function) = function {
                        ui.weak(short_function(&function));
                    }
                });
                row.col(|ui| sparkline_ui(ui, timeline.size_series(growth.group), accent));
                row.col(|ui| {
                    number_ui(ui, text::size_diff(growth.size_growth), Some(accent));
                });
                row.col(|ui| number_ui(ui, grew_text(growth, intervals), None));
                if with_rate {
                    row.col(|ui| {
                        let rate = timeline.rate_per_second(growth).unwrap_or(0.0) * 60.0;
                        number_ui(ui, format!("{}/min", text::size_diff(rate as i64)), None);
                    });
                }
                if row.response().clicked() {
                    commands.push(Command::SelectGroup(timeline.traceback(growth.group)));
                }
            });
        });
}

/// The last two path segments of a Rust function.
fn short_function(function: &str) -> String {
    let end = function.find('<').unwrap_or(function.len());
    let head = &function[..end];
    let mut parts: Vec<&str> = head.rsplitn(3, "::").collect();
    if parts.len() == 3 {
        parts.pop();
        parts.reverse();
        format!("{}{}", parts.join("::"), &function[end..])
    } else {
        function.to_owned()
    }
}

fn number_ui(ui: &mut egui::Ui, value: String, color: Option<Color32>) {
    ui.with_layout(Layout::right_to_left(egui::Align::Center), |ui| {
        let mut text = RichText::new(value).monospace();
        if let Some(color) = color {
            text = text.color(color);
        }
        ui.add(egui::Label::new(text).selectable(false));
    });
}

/// A group's sizes as a small line, scaled from 0 to its largest.
fn sparkline_ui(ui: &mut egui::Ui, values: &[u64], color: Color32) {
    let (rect, _) = ui.allocate_exact_size(vec2(76.0, 16.0), Sense::hover());
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f32;
    let n = values.len().max(2) - 1;
    let points: Vec<egui::Pos2> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            pos2(
                rect.left() + rect.width() * i as f32 / n as f32,
                rect.bottom() - rect.height() * (v as f32 / max),
            )
        })
        .collect();
    let painter = ui.painter();
    painter.line_segment(
        [rect.left_bottom(), rect.right_bottom()],
        Stroke::new(1.0, ui.visuals().weak_text_color().gamma_multiply(0.4)),
    );
    if let Some(&last) = points.last() {
        painter.add(egui::Shape::line(points, Stroke::new(1.5, color)));
        painter.circle_filled(last, 2.0, color);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_labels_are_short() {
        assert_eq!(x_label(0.0, true), "+0 s");
        assert_eq!(x_label(12.34, true), "+12.3 s");
        assert_eq!(x_label(600.0, true), "+10 min");
        assert_eq!(x_label(9000.0, true), "+2.5 h");
        assert_eq!(x_label(3.0, false), "#3");
    }

    #[test]
    fn functions_are_shortened() {
        assert_eq!(short_function("leaky::cache::Cache::put"), "Cache::put");
        assert_eq!(short_function("main"), "main");
        assert_eq!(short_function("a::b<c::d>"), "a::b<c::d>");
    }
}
