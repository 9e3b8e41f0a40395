//! The timeline tab: every open snapshot's total size and block count over
//! time, the selected group's own series drawn over them, and the groups
//! ranked by how steadily they grew (the usual signature of a leak), each
//! with a sparkline. Clicking a ranked group selects it in the table;
//! clicking the plots shows the nearest snapshot.

use egui::{Color32, Layout, RichText, Sense, Stroke, pos2, vec2};
use egui_extras::{Column, TableBuilder};
use egui_plot::{Corner, Legend, Line, LineStyle, Plot, PlotPoint, PlotPoints, Points, VLine};
use tracemalloc_format::timeline::{Growth, Timeline};
use tracemalloc_format::{KeyType, Metric};

use super::growth_color;
use crate::viewer::app_state::AppState;
use crate::viewer::command::Command;
use crate::viewer::display_text;
use crate::viewer::session::SnapshotId;
use crate::viewer::timeline_service::TimelineResult;

/// Path components kept in the ranking's group column.
const PATH_COMPONENTS: usize = 3;

/// The narrowest the growth ranking gets without its rate column: the
/// group's name (at least 120 points), the trend, growth and grew columns,
/// and the spacing between them.
const RANKING_MIN_WIDTH: f32 = 420.0;

/// Below this width the ranking shows files by their names alone.
const NARROW_RANKING_WIDTH: f32 = 640.0;

/// The rate column's width, shown only when the ranking has room for it.
const RATE_WIDTH: f32 = 112.0;

/// The shortest plot that shows a legend, in points.
const LEGEND_MIN_PLOT_HEIGHT: f32 = 80.0;

/// Longest group name in the plots' legend, in characters: a traceback
/// group's whole text would cover the plot.
const LEGEND_CHARS: usize = 40;

/// `text` cut to `max` characters, ending with `…` when cut.
fn elide_end(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text[at..].chars().nth(1).is_some() => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

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
    // The plots take half the width, but leave the ranking the room its
    // columns need: a table wider than its place would push the panel's
    // layout around from one frame to the next.
    let plots_width = (size.x * 0.5).min(size.x - RANKING_MIN_WIDTH).max(200.0);
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

/// A unit of time for the x axis and the growth rates, chosen once per
/// timeline from its whole span, so that every tick of an axis is in the
/// same unit and none reads `+0 s` when the snapshots are milliseconds
/// apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Milliseconds: spans under two seconds.
    Millis,
    /// Seconds: spans under two minutes.
    Seconds,
    /// Minutes: spans under two hours.
    Minutes,
    /// Hours.
    Hours,
}

impl TimeUnit {
    /// The unit for a timeline spanning `span` seconds.
    pub fn for_span(span: f64) -> TimeUnit {
        let span = span.abs();
        if span < 2.0 {
            TimeUnit::Millis
        } else if span < 120.0 {
            TimeUnit::Seconds
        } else if span < 7200.0 {
            TimeUnit::Minutes
        } else {
            TimeUnit::Hours
        }
    }

    /// Seconds in one unit.
    fn seconds(self) -> f64 {
        match self {
            TimeUnit::Millis => 0.001,
            TimeUnit::Seconds => 1.0,
            TimeUnit::Minutes => 60.0,
            TimeUnit::Hours => 3600.0,
        }
    }

    /// Seconds instead of milliseconds, for rates.
    fn max_seconds(self) -> TimeUnit {
        match self {
            TimeUnit::Millis => TimeUnit::Seconds,
            other => other,
        }
    }

    /// The unit's symbol.
    fn symbol(self) -> &'static str {
        match self {
            TimeUnit::Millis => "ms",
            TimeUnit::Seconds => "s",
            TimeUnit::Minutes => "min",
            TimeUnit::Hours => "h",
        }
    }
}

/// An x axis value in `unit`: `+90 s`, `+12 min`, `+2.5 h`, `+24 ms`, or
/// the snapshot's position `#3` when times are unknown (`unit` is `None`).
pub fn x_label(value: f64, unit: Option<TimeUnit>) -> String {
    let Some(unit) = unit else {
        return format!("#{}", value.round() as i64);
    };
    let sign = if value < 0.0 { "-" } else { "+" };
    format!(
        "{sign}{} {}",
        trim_float(value.abs() / unit.seconds()),
        unit.symbol()
    )
}

/// A growth rate in bytes per second, per the timeline's `unit`
/// (milliseconds read as seconds: a rate per millisecond is unheard of).
pub fn rate_text(bytes_per_second: f64, unit: TimeUnit) -> String {
    let unit = unit.max_seconds();
    let rate = bytes_per_second * unit.seconds();
    format!("{}/{}", display_text::size_diff(rate as i64), unit.symbol())
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
    // Two titles and the hint line below the plots, the spacing between
    // the five, and a little slack: content taller than the panel would
    // make the panel grow every frame.
    let spacing = ui.spacing().item_spacing.y;
    let text_rows = 3.0 * ui.text_style_height(&egui::TextStyle::Body) + 4.0 * spacing;
    let height = ((ui.available_height() - text_rows - 4.0) / 2.0).max(50.0);
    // Live blocks keep their usual titles; a history metric names itself.
    let (size_title, count_title) = match timeline.metric() {
        // A history metric is chosen that some snapshot of the series
        // lacks: say why the timeline does not follow it.
        Metric::Live if state.spec.metric.needs_history() => (
            "Total size (live blocks: not every snapshot has an allocation history)".to_owned(),
            "Blocks".to_owned(),
        ),
        Metric::Live => ("Total size".to_owned(), "Blocks".to_owned()),
        other => {
            let text = display_text::metric_text(other);
            (
                format!("Total {}", text.size_phrase),
                format!("Total {}", text.count_phrase),
            )
        }
    };
    for measure in [Measure::Size, Measure::Count] {
        let title = match measure {
            Measure::Size => &size_title,
            Measure::Count => &count_title,
        };
        ui.strong(title.as_str());
        if let Some(id) = plot_ui(ui, state, result, selected, measure, height) {
            commands.push(Command::SelectSnapshot(id));
        }
    }
    // One line, cut when the column is narrow: a wrapped second line would
    // not fit under the plots.
    let hint = if state.timeline_progress.is_some() {
        progress_text(state)
    } else {
        format!(
            "{} snapshots, {} groups; click a point to show that snapshot",
            timeline.len(),
            display_text::thousands(timeline.group_count() as u64)
        )
    };
    ui.add(egui::Label::new(RichText::new(hint).weak()).truncate());
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
    let unit = seconds.then(|| TimeUnit::for_span(xs.last().copied().unwrap_or(0.0)));
    let total: Vec<f64> = timeline
        .totals()
        .iter()
        .map(|t| match measure {
            Measure::Size => t.size as f64,
            Measure::Count => t.count as f64,
        })
        .collect();
    let format_y = move |v: f64| match measure {
        Measure::Size => display_text::size(v.max(0.0) as u64),
        Measure::Count => display_text::thousands(v.max(0.0) as u64),
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
                elide_end(
                    &group_cell_text(timeline, g).unwrap_or_default(),
                    LEGEND_CHARS
                )
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
    let mut plot = Plot::new(match measure {
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
    .x_axis_formatter(move |mark, _| x_label(mark.value, unit))
    .y_axis_formatter(move |mark, _| format_y(mark.value))
    .label_formatter(move |hover| match hover {
        egui_plot::HoverPosition::NearDataPoint {
            plot_name,
            position,
            ..
        } => Some(format!(
            "{plot_name}\n{}: {}",
            x_label(position.x, unit),
            format_y(position.y)
        )),
        egui_plot::HoverPosition::Elsewhere { .. } => None,
    });
    // The legend would cover a short plot entirely: the series are then
    // told apart by their colours alone.
    if height >= LEGEND_MIN_PLOT_HEIGHT {
        plot = plot.legend(Legend::default().position(Corner::LeftTop));
    }
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
            // Unnamed, so that the legend lists only the series: the
            // solid line is the shown snapshot, the dashed one the
            // compared snapshot, as in the snapshot list.
            plot_ui.add(VLine::new("", x).color(strong).width(1.0));
        }
        if let Some(x) = compare_x {
            plot_ui.add(
                VLine::new("", x)
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
    group_text(timeline, group, PATH_COMPONENTS)
}

/// [`group_cell_text`] keeping `components` components of each path.
fn group_text(timeline: &Timeline, group: u32, components: usize) -> Option<String> {
    if group as usize >= timeline.group_count() {
        return None;
    }
    let tb = timeline.traceback(group);
    let parts: Vec<String> = tb
        .frames
        .iter()
        .take(6)
        .enumerate()
        .map(|(i, f)| match timeline.key_type() {
            KeyType::Filename => path_text(&f.filename, components),
            KeyType::Lineno => format!("{}:{}", path_text(&f.filename, components), f.lineno),
            // A frame in the same file as the one before it shows only its
            // line: the ranking's column is narrow, and a traceback often
            // stays in one file for several frames.
            KeyType::Traceback if i > 0 && tb.frames[i - 1].filename == f.filename => {
                format!(":{}", f.lineno)
            }
            KeyType::Traceback => format!("{}:{}", display_text::base_name(&f.filename), f.lineno),
        })
        .collect();
    let mut out = parts.join(" ← ");
    if tb.frames.len() > 6 {
        out.push_str(" ← …");
    }
    Some(out)
}

/// A path cut to its last `components` components: the bare file name for
/// one (no `…/`, every character counts in a narrow column).
fn path_text(path: &str, components: usize) -> String {
    if components <= 1 {
        display_text::base_name(path).to_owned()
    } else {
        display_text::shorten_path(path, components)
    }
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
            display_text::thousands(ranking.len() as u64),
            display_text::thousands(timeline.group_count() as u64)
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
    let unit = timeline
        .seconds()
        .map(|s| TimeUnit::for_span(s.last().copied().unwrap_or(0.0)));
    // The rate is the first column to go when the panel is narrow: the
    // group's name matters more.
    let unit = unit.filter(|_| ui.available_width() >= RANKING_MIN_WIDTH + RATE_WIDTH);
    let with_rate = unit.is_some();
    // A narrow ranking keeps only the files' names, so that the line
    // numbers are not cut off; the tooltip has the whole path.
    let components = if ui.available_width() < NARROW_RANKING_WIDTH {
        1
    } else {
        PATH_COMPONENTS
    };
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
        builder = builder.column(Column::exact(RATE_WIDTH));
    }
    if let Some(position) = selected.and_then(|g| ranking.iter().position(|r| r.group == g)) {
        // Keep the selected group in view when the table selects it.
        if state.table.scroll_to_selected {
            // Once, as the table does (which may not be drawn: the flame
            // graph can be showing).
            builder = builder.scroll_to_row(position, None);
            commands.push(Command::ScrolledToSelected);
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
                h.col(|ui| {
                    header(
                        "Rate",
                        "Growth per unit of time, first to last snapshot",
                        ui,
                    )
                });
            }
        })
        .body(|body| {
            body.rows(row_height, ranking.len(), |mut row| {
                let growth = &ranking[row.index()];
                row.set_selected(selected == Some(growth.group));
                row.col(|ui| {
                    ui.style_mut().interaction.selectable_labels = false;
                    let label = group_text(timeline, growth.group, components).unwrap_or_default();
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
                    number_ui(
                        ui,
                        display_text::size_diff(growth.size_growth),
                        Some(accent),
                    );
                });
                row.col(|ui| number_ui(ui, grew_text(growth, intervals), None));
                if let Some(unit) = unit {
                    row.col(|ui| {
                        let rate = timeline.rate_per_second(growth).unwrap_or(0.0);
                        number_ui(ui, rate_text(rate, unit), None);
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
    fn x_labels_are_short_and_in_one_unit() {
        let s = Some(TimeUnit::Seconds);
        assert_eq!(x_label(0.0, s), "+0 s");
        assert_eq!(x_label(12.34, s), "+12.3 s");
        assert_eq!(x_label(600.0, Some(TimeUnit::Minutes)), "+10 min");
        assert_eq!(x_label(9000.0, Some(TimeUnit::Hours)), "+2.5 h");
        assert_eq!(x_label(3.0, None), "#3");
        // Snapshots 12 ms apart: every tick says something.
        let unit = TimeUnit::for_span(0.054);
        assert_eq!(unit, TimeUnit::Millis);
        assert_eq!(x_label(0.012, Some(unit)), "+12 ms");
        assert_eq!(x_label(0.0, Some(unit)), "+0 ms");
        assert_eq!(TimeUnit::for_span(300.0), TimeUnit::Minutes);
        assert_eq!(TimeUnit::for_span(60.0), TimeUnit::Seconds);
        assert_eq!(TimeUnit::for_span(3.0 * 3600.0), TimeUnit::Hours);
    }

    #[test]
    fn rates_follow_the_timeline_span() {
        assert_eq!(rate_text(4096.0 / 60.0, TimeUnit::Minutes), "+4096 B/min");
        assert_eq!(rate_text(2048.0, TimeUnit::Millis), "+2048 B/s");
        assert_eq!(rate_text(1.0, TimeUnit::Hours), "+3600 B/h");
    }

    #[test]
    fn traceback_groups_abbreviate_repeated_files() {
        let snapshot = tracemalloc_format::Snapshot::from_raw_traces(
            5,
            [(
                0,
                64,
                &[("src/a.rs", 9), ("src/a.rs", 4), ("src/main.rs", 2)][..],
                None,
            )],
        )
        .unwrap();
        let groups =
            [
                tracemalloc_format::rows::Grouping::new(&snapshot, KeyType::Traceback, false)
                    .unwrap(),
            ];
        let timeline = Timeline::new(&[(&groups[0], None)]);
        assert_eq!(
            group_cell_text(&timeline, 0).as_deref(),
            Some("a.rs:9 ← :4 ← main.rs:2")
        );
        assert_eq!(group_cell_text(&timeline, 1), None);
    }

    #[test]
    fn legend_names_are_elided() {
        assert_eq!(elide_end("src/steady.rs:3", 40), "src/steady.rs:3");
        assert_eq!(elide_end("abcdef", 4), "abc…");
        assert_eq!(elide_end("abcd", 4), "abcd");
    }

    #[test]
    fn functions_are_shortened() {
        assert_eq!(short_function("leaky::cache::Cache::put"), "Cache::put");
        assert_eq!(short_function("main"), "main");
        assert_eq!(short_function("a::b<c::d>"), "a::b<c::d>");
    }
}
