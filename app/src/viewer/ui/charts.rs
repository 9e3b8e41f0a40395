//! The charts: the top groups by size difference and by count difference
//! (by size and count without a comparison) as horizontal bars, growth and
//! shrinkage in their colours, each labelled with its source. Clicking a
//! bar selects its row.

use std::ops::RangeInclusive;

use egui::Align2;
use egui_plot::{Bar, BarChart, Plot, PlotPoint, Text};
use tracemalloc_format::rows::View;

use super::table::source_cell_text;
use super::{growth_color, shrink_color};
use crate::viewer::app_state::AppState;
use crate::viewer::command::Command;
use crate::viewer::display_text;

/// Characters of a bar's label before `…`: a traceback's text can be long.
const LABEL_CHARS: usize = 72;

/// `text`, cut to `max` characters with `…` when longer.
fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Whether an axis label of `label_px` points centred on `value` stays
/// inside a plot `plot_px` points wide showing `range`: the two charts sit
/// side by side, so a label reaching past one's edge runs into the other's
/// (`+1953 KiB` into `0`).
fn axis_label_fits(value: f64, range: &RangeInclusive<f64>, label_px: f32, plot_px: f32) -> bool {
    let span = range.end() - range.start();
    if span <= 0.0 || plot_px <= 0.0 {
        return true;
    }
    let half = f64::from(label_px) / 2.0 * span / f64::from(plot_px);
    value - half >= *range.start() && value + half <= *range.end()
}

/// What one chart shows.
#[derive(Clone, Copy)]
enum Measure {
    Size,
    Count,
}

/// Both charts, side by side.
pub fn charts_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    let Some(result) = &state.result else {
        return;
    };
    let view = &result.view;
    let comparing = view.is_comparison();
    let n = state.settings.chart_top_n;
    let text = display_text::metric_text(view.metric());
    let (size, count) = (text.size_phrase, text.count_phrase);
    let (size_title, count_title) = if comparing {
        (
            format!("Top {n} by {size} Δ"),
            format!("Top {n} by {count} Δ"),
        )
    } else {
        (format!("Top {n} by {size}"), format!("Top {n} by {count}"))
    };
    // The selected row's bar is outlined.
    let selected = result
        .selected_position
        .and_then(|p| result.order.get(p).copied());
    ui.columns(2, |columns| {
        let size = Chart {
            top: &result.top_size,
            measure: Measure::Size,
            title: &size_title,
            selected,
        };
        chart_ui(&mut columns[0], view, &size, commands);
        let count = Chart {
            top: &result.top_count,
            measure: Measure::Count,
            title: &count_title,
            selected,
        };
        chart_ui(&mut columns[1], view, &count, commands);
    });
}

/// One chart's data.
struct Chart<'a> {
    /// Its rows, largest first.
    top: &'a [u32],
    measure: Measure,
    title: &'a str,
    /// The selected row, if any.
    selected: Option<u32>,
}

fn chart_ui(ui: &mut egui::Ui, view: &View, chart: &Chart<'_>, commands: &mut Vec<Command>) {
    let Chart {
        top,
        measure,
        title,
        selected,
    } = *chart;
    ui.strong(title);
    if top.is_empty() {
        ui.weak(if view.is_comparison() {
            "Nothing changed."
        } else {
            "Nothing to show."
        });
        return;
    }
    let comparing = view.is_comparison();
    let value = |row: usize| -> f64 {
        let r = view.rows()[row];
        match (measure, comparing) {
            (Measure::Size, true) => r.size_diff as f64,
            (Measure::Size, false) => r.size as f64,
            (Measure::Count, true) => r.count_diff as f64,
            (Measure::Count, false) => r.count as f64,
        }
    };
    let format_value = move |v: f64| -> String {
        match (measure, comparing) {
            (Measure::Size, true) => display_text::size_diff(v as i64),
            (Measure::Size, false) => display_text::size(v as u64),
            (Measure::Count, true) => display_text::signed_thousands(v as i64),
            (Measure::Count, false) => display_text::thousands(v as u64),
        }
    };
    let (grow, shrink) = (growth_color(ui), shrink_color(ui));
    let neutral = ui.visuals().selection.bg_fill;
    let label_color = ui.visuals().text_color();
    let bars: Vec<Bar> = top
        .iter()
        .enumerate()
        .map(|(i, &row)| {
            let v = value(row as usize);
            let fill = match (comparing, v >= 0.0) {
                (false, _) => neutral,
                (true, true) => grow,
                (true, false) => shrink,
            };
            let bar = Bar::new(-(i as f64), v)
                .width(0.4)
                .fill(fill)
                .name(view.source_text(row as usize));
            if selected == Some(row) {
                bar.stroke(egui::Stroke::new(2.0, label_color))
            } else {
                bar
            }
        })
        .collect();
    let labels: Vec<Text> = top
        .iter()
        .enumerate()
        .map(|(i, &row)| {
            let v = value(row as usize);
            let label = format!(
                "{}   {}",
                truncate(&source_cell_text(view, row as usize), LABEL_CHARS),
                format_value(v)
            );
            // Above the bar, from its left end: the zero line for growth,
            // the bar's end for shrinkage, so no label leaves the chart.
            Text::new(
                format!("label {i}"),
                PlotPoint::new(v.min(0.0), -(i as f64) + 0.22),
                // Plot texts default to the small style: too small here.
                egui::RichText::new(label).size(12.5),
            )
            .anchor(Align2::LEFT_BOTTOM)
            .color(label_color)
        })
        .collect();
    let chart = BarChart::new(title, bars)
        .horizontal()
        .element_formatter(Box::new(move |bar, _| {
            format!("{}\n{}", bar.name, format_value(bar.value))
        }));
    // The axis labels' font (egui_plot's Body), measured by its widest
    // digit, and the plot's width, to keep edge labels inside the plot.
    let body = egui::TextStyle::Body.resolve(ui.style());
    let char_px = ui.fonts_mut(|f| f.glyph_width(&body, '0')).max(1.0);
    let plot_px = ui.available_width();
    let plot = Plot::new(title)
        .height(ui.available_height().max(60.0))
        .allow_zoom(false)
        .allow_drag(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .show_y(false)
        .show_axes([true, false])
        .show_grid([true, false])
        .include_x(0.0)
        .include_y(0.6)
        .include_y(-(top.len() as f64) + 0.4)
        .x_axis_formatter(move |mark, range| {
            let text = format_value(mark.value);
            let label_px = text.chars().count() as f32 * char_px;
            if axis_label_fits(mark.value, range, label_px, plot_px) {
                text
            } else {
                String::new()
            }
        });
    let response = plot.show(ui, |plot_ui| {
        plot_ui.bar_chart(chart);
        for label in labels {
            plot_ui.text(label);
        }
        if plot_ui.response().clicked() {
            plot_ui.pointer_coordinate()
        } else {
            None
        }
    });
    if let Some(point) = response.inner {
        let i = (-point.y).round();
        if i >= 0.0
            && let Some(&row) = top.get(i as usize)
        {
            commands.push(Command::SelectGroup(view.traceback(row as usize)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{axis_label_fits, truncate};

    #[test]
    fn axis_labels_at_the_edges_are_left_out() {
        // 0 to 2000 over 400 points: 5 units per point.
        let range = 0.0..=2000.0;
        // A 60-point label reaches 150 units either side of its mark.
        assert!(axis_label_fits(1000.0, &range, 60.0, 400.0));
        assert!(axis_label_fits(1850.0, &range, 60.0, 400.0));
        assert!(!axis_label_fits(1900.0, &range, 60.0, 400.0));
        assert!(!axis_label_fits(100.0, &range, 60.0, 400.0));
        // Nothing to measure against: shown.
        assert!(axis_label_fits(0.0, &(0.0..=0.0), 60.0, 400.0));
    }

    #[test]
    fn labels_are_cut_on_characters() {
        assert_eq!(truncate("a.rs:1", 10), "a.rs:1");
        assert_eq!(truncate("a.rs:1 ← b.rs:2", 8), "a.rs:1 ←…");
        assert_eq!(truncate("", 3), "");
    }
}
