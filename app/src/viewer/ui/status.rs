//! The status bar, like tracemallocqt's: `Lines: 1,234 — Total: 12.3 MiB
//! (+1.2 MiB)`, the traces, the traceback limit, the sampling of a sampled
//! snapshot; loading progress with Cancel; messages.

use egui::{Layout, RichText};
use tracemalloc_format::{KeyType, Metric};

use super::{diff_color, growth_color};
use crate::viewer::analysis::Timings;
use crate::viewer::app_state::AppState;
use crate::viewer::command::Command;
use crate::viewer::display_text;

/// The status line's summary of a result, e.g.
/// `Lines: 1,234 — Total: 12.3 MiB (+1.2 MiB)`; a history metric names
/// its total (`Total bytes allocated: 40 MiB`).
pub fn summary(
    key_type: KeyType,
    metric: Metric,
    rows: usize,
    size: u64,
    size_diff: Option<i64>,
) -> String {
    let noun = match key_type {
        KeyType::Filename => "Files",
        KeyType::Lineno => "Lines",
        KeyType::Traceback => "Tracebacks",
    };
    let total = match metric {
        Metric::Live => String::new(),
        other => format!(" {}", display_text::metric_text(other).size_phrase),
    };
    let mut out = format!(
        "{noun}: {} — Total{total}: {}",
        display_text::thousands(rows as u64),
        display_text::size(size)
    );
    if let Some(diff) = size_diff {
        out.push_str(&format!(" ({})", display_text::size_diff(diff)));
    }
    out
}

fn timings_text(t: &Timings) -> String {
    let ms = |d: std::time::Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    format!(
        "Last update: {} (hide frames {}, filter {}, group {}, join {}, sort {}, search {}, charts {}); \
         cached stages take no time",
        ms(t.total),
        ms(t.trim),
        ms(t.filter),
        ms(t.group),
        ms(t.join),
        ms(t.sort),
        ms(t.search),
        ms(t.charts)
    )
}

/// The status bar.
pub fn status_bar_ui(ui: &mut egui::Ui, state: &AppState, commands: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        if let Some(result) = &state.result {
            let view = &result.view;
            let size_diff = view
                .old_total()
                .map(|old| view.total().size as i64 - old.size as i64);
            ui.label(summary(
                view.key_type(),
                view.metric(),
                view.len(),
                view.total().size,
                size_diff,
            ))
            .on_hover_text(timings_text(&result.timings));
            ui.separator();
            // A sampled snapshot's sizes and counts are estimates, but its
            // traces are the sampled blocks themselves: say so, so that
            // `Traces: 242` beside an estimated 420 blocks is not read as
            // a contradiction.
            let sampling = state
                .current_snapshot()
                .and_then(|current| current.snapshot.metadata().sampling_rate);
            let traces_noun = if sampling.is_some() {
                "Sampled traces"
            } else {
                "Traces"
            };
            let mut traces = RichText::new(format!(
                "{traces_noun}: {}",
                display_text::thousands(view.trace_count() as u64)
            ));
            if let Some(old) = view.old_trace_count() {
                let diff = view.trace_count() as i64 - old as i64;
                traces = RichText::new(format!(
                    "{traces_noun}: {} ({})",
                    display_text::thousands(view.trace_count() as u64),
                    display_text::signed_thousands(diff)
                ));
                if let Some(color) = diff_color(ui, diff) {
                    traces = traces.color(color);
                }
            }
            ui.label(traces);
            if let Some(current) = state.current_snapshot() {
                ui.separator();
                ui.label(format!(
                    "Traceback limit: {}",
                    current.snapshot.traceback_limit()
                ));
            }
            if let Some(mean) = sampling {
                ui.separator();
                ui.label(format!("Sampled: {}", display_text::sampling(mean)))
                    .on_hover_text(display_text::SAMPLING_HELP);
            }
            if result.order.len() != view.len() {
                ui.separator();
                ui.label(format!(
                    "Showing {} of {}",
                    display_text::thousands(result.order.len() as u64),
                    display_text::thousands(view.len() as u64)
                ));
            }
        }
        ui.with_layout(Layout::right_to_left(egui::Align::Center), |ui| {
            for job in state.loader.jobs() {
                if ui.button("Cancel").on_hover_text("Stop loading").clicked() {
                    commands.push(Command::CancelLoading);
                }
                let bar = match job.fraction() {
                    Some(f) => egui::ProgressBar::new(f).show_percentage(),
                    None => egui::ProgressBar::new(0.0).animate(true),
                };
                ui.add(bar.desired_width(160.0));
                ui.label(job.phase());
            }
            if state.analysis_pending {
                ui.weak("Updating…");
            }
            if let Some((done, total)) = state.timeline_progress {
                ui.weak(format!("Timeline: {done} of {total} snapshots…"));
            }
            if state.exporting {
                ui.weak("Exporting…");
            }
            if state.waiting_for_dialog {
                ui.weak("Waiting for the file dialog…");
            }
            if let Some(message) = &state.message {
                if message.is_error {
                    ui.colored_label(growth_color(ui), &message.text);
                } else {
                    ui.weak(&message.text);
                }
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_read_like_tracemallocqt() {
        assert_eq!(
            summary(
                KeyType::Lineno,
                Metric::Live,
                1234,
                12_897_485,
                Some(12_897_485)
            ),
            "Lines: 1,234 — Total: 12.3 MiB (+12.3 MiB)"
        );
        assert_eq!(
            summary(KeyType::Filename, Metric::Live, 3, 10, None),
            "Files: 3 — Total: 10 B"
        );
        assert_eq!(
            summary(KeyType::Lineno, Metric::Allocated, 3, 20_296, None),
            "Lines: 3 — Total bytes allocated: 19.8 KiB"
        );
        assert_eq!(
            summary(KeyType::Traceback, Metric::Live, 0, 0, Some(-30)),
            "Tracebacks: 0 — Total: 0 B (-30 B)"
        );
    }
}
