//! The flame graph: the shown snapshot's traceback tree as an icicle (the
//! oldest frames on top, the allocating frames at the bottom of each
//! tower), widths in bytes or blocks. Click a frame to zoom on it (its
//! callers stay above, full width), click an ancestor or "Reset zoom" to go
//! back out. When comparing, widths are the shown snapshot's and colours
//! the growth since the compared one: a leak is a red tower.
//!
//! Drawing is proportional to what is visible: `FlameTree::layout` skips
//! every subtree narrower than a pixel, and only the rows in view are
//! painted.

use egui::{Align2, Color32, FontId, Rect, RichText, Sense, Stroke, pos2, vec2};
use tracemalloc_format::Metric;
use tracemalloc_format::flame::{FlameMatches, FlameSpan, FlameTree, FlameWeight};

use super::{growth_color, shrink_color};
use crate::viewer::app_state::{AppState, UiBuffers};
use crate::viewer::command::Command;
use crate::viewer::display_text;

/// Height of one row (one depth) of the graph.
const ROW_HEIGHT: f32 = 20.0;

/// What the graph says under itself when there is room.
const HOW_TO: &str = "Callers above, the frames that allocate below; widths are memory. \
                      Hover a frame for its sizes, click it to zoom in, click a caller \
                      (or Reset zoom) to zoom out.";

/// Narrowest frame that gets a label, in points.
const LABEL_MIN_WIDTH: f32 = 30.0;

/// The id of the flame graph's search box.
pub fn search_id() -> egui::Id {
    egui::Id::unique("flame_search")
}

/// The whole flame graph tab: its controls, then the graph.
pub fn flame_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    buffers: &mut UiBuffers,
    commands: &mut Vec<Command>,
) {
    let flame = state.result.as_ref().and_then(|r| r.flame.as_ref());
    let tree = flame.map(|f| &*f.tree);
    let matches = flame.and_then(|f| f.matches.as_deref());
    let focus = tree.map_or(0, |tree| {
        state
            .flame
            .zoom
            .as_ref()
            .and_then(|path| tree.find(path))
            .unwrap_or(0)
    });
    controls_ui(ui, state, buffers, tree, focus, matches, commands);
    ui.separator();
    let Some(tree) = tree else {
        ui.add_space(24.0);
        ui.vertical_centered(|ui| {
            ui.spinner();
            ui.weak("Building the traceback tree…");
        });
        return;
    };
    if tree.is_empty() {
        ui.add_space(24.0);
        ui.vertical_centered(|ui| ui.label("No allocation matches the filters."));
        return;
    }
    let old_name = state.compare_snapshot().map(|s| s.name());
    egui::ScrollArea::vertical()
        .id_salt("flame_graph")
        .auto_shrink([false, false])
        .show(ui, |ui| {
            graph_ui(ui, tree, focus, matches, old_name.as_deref(), commands);
        });
}

/// Width, search, zoom and what is shown.
fn controls_ui(
    ui: &mut egui::Ui,
    state: &AppState,
    buffers: &mut UiBuffers,
    tree: Option<&FlameTree>,
    focus: usize,
    matches: Option<&FlameMatches>,
    commands: &mut Vec<Command>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.label("Width");
        for (weight, name, hint) in [
            (
                FlameWeight::Bytes,
                "Bytes",
                "Frame widths by bytes allocated",
            ),
            (
                FlameWeight::Blocks,
                "Blocks",
                "Frame widths by number of blocks",
            ),
        ] {
            if ui
                .selectable_label(state.settings.flame_weight == weight, name)
                .on_hover_text(hint)
                .clicked()
                && state.settings.flame_weight != weight
            {
                commands.push(Command::SetFlameWeight(weight));
            }
        }
        ui.separator();
        let label = ui.label("Highlight");
        let response = ui
            .add(
                egui::TextEdit::singleline(&mut buffers.flame_search)
                    .id(search_id())
                    .hint_text("function or file:line")
                    .desired_width(200.0),
            )
            .labelled_by(label.id);
        if response.changed() {
            commands.push(Command::SetFlameSearch(buffers.flame_search.clone()));
        }
        if let (Some(tree), Some(m)) = (tree, matches) {
            let frames = if m.nodes == 1 {
                "1 frame matches".to_owned()
            } else {
                format!("{} frames match", display_text::thousands(m.nodes as u64))
            };
            ui.label(format!(
                "{frames}: {} ({})",
                display_text::size(m.total.size),
                display_text::percent(fraction(m.total.size, tree.total().size))
            ));
        }
        ui.separator();
        if ui
            .add_enabled(focus != 0, egui::Button::new("Reset zoom"))
            .on_hover_text("Show the whole tree again")
            .clicked()
        {
            commands.push(Command::FlameZoom(None));
        }
        if let Some(tree) = tree {
            let total = tree.total();
            if focus == 0 {
                // The tree holds the request's metric: name it unless it
                // is tracemalloc's live blocks.
                let metric = match state.result.as_ref().map(|r| r.request.metric) {
                    Some(m) if m != Metric::Live => {
                        format!(" ({})", display_text::metric_text(m).size_phrase)
                    }
                    _ => String::new(),
                };
                ui.label(format!(
                    "All{metric}: {} in {} blocks",
                    display_text::size(total.size),
                    display_text::thousands(total.count)
                ));
            } else {
                let node = tree.node(focus);
                ui.label(format!(
                    "Zoomed on {} — {} ({} of all)",
                    tree.label(focus),
                    display_text::size(node.total.size),
                    display_text::percent(fraction(node.total.size, total.size))
                ));
            }
            if tree.is_comparison() {
                ui.separator();
                legend_ui(ui, state);
            }
        }
    });
}

/// What the colours say when comparing.
fn legend_ui(ui: &mut egui::Ui, state: &AppState) {
    let (grow, shrink) = (growth_color(ui), shrink_color(ui));
    let old = state
        .compare_snapshot()
        .map_or_else(|| "the compared snapshot".to_owned(), |s| s.name());
    ui.label(RichText::new("■ grew").color(grow));
    ui.label(RichText::new("■ shrank").color(shrink));
    ui.weak(format!("since {old}"));
}

fn fraction(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// A stable colour per name in the warm palette of flame graphs.
fn warm_color(name: &str, dark: bool) -> Color32 {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let t = |shift: u32| f32::from(((h >> shift) & 0xff) as u8) / 255.0;
    let hue = 0.01 + 0.12 * t(0);
    let saturation = 0.55 + 0.25 * t(8);
    let value = if dark {
        0.72 + 0.15 * t(16)
    } else {
        0.86 + 0.12 * t(16)
    };
    egui::ecolor::Hsva::new(hue, saturation, value, 1.0).into()
}

/// The colour of a compared frame: neutral when unchanged, towards the
/// growth or shrink colour with the size of the change.
fn diff_fill(growth: f64, ui: &egui::Ui) -> Color32 {
    let neutral = if ui.visuals().dark_mode {
        Color32::from_gray(92)
    } else {
        Color32::from_gray(205)
    };
    let target = if growth >= 0.0 {
        Color32::from_rgb(225, 60, 45)
    } else {
        Color32::from_rgb(40, 170, 90)
    };
    // The square root makes small changes visible without drowning the
    // large ones.
    let t = growth.abs().sqrt().clamp(0.0, 1.0) as f32;
    lerp_color(neutral, target, t)
}

fn lerp_color(a: Color32, b: Color32, t: f32) -> Color32 {
    let mix = |x: u8, y: u8| (f32::from(x) + (f32::from(y) - f32::from(x)) * t).round() as u8;
    Color32::from_rgb(mix(a.r(), b.r()), mix(a.g(), b.g()), mix(a.b(), b.b()))
}

/// Black or white, whichever reads better on `fill`.
fn text_on(fill: Color32) -> Color32 {
    let luma =
        0.299 * f32::from(fill.r()) + 0.587 * f32::from(fill.g()) + 0.114 * f32::from(fill.b());
    if luma > 140.0 {
        Color32::from_gray(20)
    } else {
        Color32::from_gray(245)
    }
}

/// The graph itself, and its tooltip and clicks.
fn graph_ui(
    ui: &mut egui::Ui,
    tree: &FlameTree,
    focus: usize,
    matches: Option<&FlameMatches>,
    old_name: Option<&str>,
    commands: &mut Vec<Command>,
) {
    let width = ui.available_width().max(100.0);
    let rows = tree.max_depth() as f32 + 1.0;
    let height = (rows * ROW_HEIGHT).max(ui.available_height());
    let (rect, response) = ui.allocate_exact_size(vec2(width, height), Sense::click());
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Image, true, "Flame graph"));
    // Frames narrower than half a point are not drawn (nor their callees).
    let spans = tree.layout(focus, 0.5 / f64::from(width));
    let visible = ui.clip_rect().intersect(rect);
    let painter = ui.painter_at(rect);
    let dark = ui.visuals().dark_mode;
    let font = FontId::proportional(12.0);
    let char_width = ui.fonts_mut(|f| f.glyph_width(&font, 'n')).max(1.0);
    let span_rect = |span: &FlameSpan| {
        let x = rect.left() + (span.x * f64::from(width)) as f32;
        let w = (span.width * f64::from(width)) as f32;
        let y = rect.top() + span.depth as f32 * ROW_HEIGHT;
        Rect::from_min_size(pos2(x, y), vec2(w, ROW_HEIGHT))
    };
    let searching = matches.is_some();
    let hover = response.hover_pos();
    let mut hovered: Option<(usize, Rect)> = None;
    for span in &spans {
        let r = span_rect(span);
        if r.bottom() < visible.top() || r.top() > visible.bottom() {
            continue;
        }
        let node = span.node as usize;
        let mut fill = if tree.is_comparison() {
            diff_fill(tree.growth(node), ui)
        } else {
            warm_color(&tree.label(node), dark)
        };
        if let Some(m) = matches {
            fill = if m.is_match(node) {
                Color32::from_rgb(215, 80, 215)
            } else {
                fill.gamma_multiply(0.35)
            };
        }
        // A hairline between neighbours, where there is room for it.
        let body = if r.width() > 3.0 {
            Rect::from_min_max(r.min, pos2(r.right() - 1.0, r.bottom() - 1.0))
        } else {
            Rect::from_min_max(r.min, pos2(r.right(), r.bottom() - 1.0))
        };
        painter.rect_filled(body, 2.0, fill);
        if body.width() >= LABEL_MIN_WIDTH {
            let fits = ((body.width() - 8.0) / char_width).floor().max(0.0) as usize;
            let shown = frame_label(tree, node, fits);
            if !shown.is_empty() {
                let color = if searching && !matches.is_some_and(|m| m.is_match(node)) {
                    text_on(fill).gamma_multiply(0.6)
                } else {
                    text_on(fill)
                };
                painter.with_clip_rect(body).text(
                    pos2(body.left() + 4.0, body.center().y),
                    Align2::LEFT_CENTER,
                    shown,
                    font.clone(),
                    color,
                );
            }
        }
        if hover.is_some_and(|p| r.contains(p)) {
            hovered = Some((node, body));
        }
    }
    // Under a shallow graph, a line on how to use it.
    let bottom = rect.top() + rows * ROW_HEIGHT;
    if bottom + 3.0 * ROW_HEIGHT < visible.bottom() {
        painter.text(
            pos2(rect.left() + 4.0, bottom + ROW_HEIGHT),
            Align2::LEFT_CENTER,
            HOW_TO,
            font.clone(),
            ui.visuals().weak_text_color(),
        );
    }
    let Some((node, body)) = hovered else {
        return;
    };
    painter.rect_stroke(
        body,
        2.0,
        Stroke::new(1.5, ui.visuals().strong_text_color()),
        egui::StrokeKind::Inside,
    );
    let clicked = response.clicked();
    let tip = tooltip_text(tree, node, focus, old_name);
    response.on_hover_ui_at_pointer(|ui| {
        ui.set_max_width(560.0);
        ui.label(tip);
    });
    if clicked {
        commands.push(Command::FlameZoom(
            (node != 0).then(|| tree.frames_to(node)),
        ));
    }
}

/// What a frame says in `fits` characters: its function and where it is
/// (`render_page  server.rs:120`) when that fits, so that two frames of
/// the same function on different lines can be told apart; else the
/// function (or `file:line`) alone, cut to fit.
fn frame_label(tree: &FlameTree, node: usize, fits: usize) -> String {
    let label = tree.label(node);
    if let Some(frame) = tree.frame(node)
        && frame.function.is_some()
    {
        let long = format!(
            "{label}  {}:{}",
            display_text::base_name(frame.filename),
            frame.lineno
        );
        if long.chars().count() <= fits {
            return long;
        }
    }
    elide(&label, fits)
}

/// `text`, cut to `max` characters with `…` when longer; nothing when not
/// even two characters fit.
fn elide(text: &str, max: usize) -> String {
    if max < 2 {
        return String::new();
    }
    match text.char_indices().nth(max) {
        Some(_) => {
            let cut = text
                .char_indices()
                .nth(max - 1)
                .map_or(text.len(), |(at, _)| at);
            format!("{}…", &text[..cut])
        }
        None => text.to_owned(),
    }
}

/// A frame's tooltip: its function and location, its memory and shares,
/// what it allocates itself, and its change when comparing.
fn tooltip_text(tree: &FlameTree, node: usize, focus: usize, old_name: Option<&str>) -> String {
    let n = tree.node(node);
    let mut tip = match tree.frame(node) {
        None => "all: every traceback".to_owned(),
        Some(frame) => match frame.function {
            Some(function) => format!("{function}\n{frame}"),
            None => frame.to_string(),
        },
    };
    let total = tree.total();
    tip.push_str(&format!(
        "\n\n{} in {} — {} of all",
        display_text::size(n.total.size),
        display_text::count_of(n.total.count, "block", "blocks"),
        display_text::percent(fraction(n.total.size, total.size))
    ));
    if node != 0 {
        let parent = tree.node(n.parent as usize);
        tip.push_str(&format!(
            ", {} of its caller",
            display_text::percent(fraction(n.total.size, parent.total.size))
        ));
    }
    let own = tree.self_totals(node);
    if own.count > 0 {
        tip.push_str(&format!(
            "\nAllocated here: {} in {}",
            display_text::size(own.size),
            display_text::count_of(own.count, "block", "blocks")
        ));
    }
    if tree.is_comparison() {
        let size_diff = n.total.size as i64 - n.old_total.size as i64;
        let count_diff = n.total.count as i64 - n.old_total.count as i64;
        tip.push_str(&format!(
            "\nChange: {} ({} blocks) since {}",
            display_text::size_diff(size_diff),
            display_text::signed_thousands(count_diff),
            old_name.unwrap_or("the compared snapshot")
        ));
    }
    tip.push_str(if node == focus && node != 0 {
        "\n\nThis frame is zoomed on; click a caller above to zoom out."
    } else {
        "\n\nClick to zoom on this frame."
    });
    tip
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracemalloc_format::Snapshot;

    #[test]
    fn labels_are_elided_to_fit() {
        assert_eq!(elide("leaky::main", 20), "leaky::main");
        assert_eq!(elide("leaky::main", 6), "leaky…");
        assert_eq!(elide("leaky::main", 1), "");
        assert_eq!(elide("αβγδ", 3), "αβ…");
    }

    #[test]
    fn wide_frames_say_where_they_are() {
        let mut b = tracemalloc_format::SnapshotBuilder::new(5);
        let main = b
            .intern_frame("src/bin/main.rs", 3, Some("app::main"))
            .unwrap();
        let tb = b.intern_traceback(&[main], None).unwrap();
        b.push_trace(0, 10, tb).unwrap();
        let snapshot = b.finish(tracemalloc_format::Metadata::default());
        let tree = FlameTree::new(&snapshot, None, FlameWeight::Bytes).unwrap();
        assert_eq!(frame_label(&tree, 1, 40), "app::main  main.rs:3");
        assert_eq!(frame_label(&tree, 1, 12), "app::main");
        assert_eq!(frame_label(&tree, 1, 6), "app::…");
        assert_eq!(frame_label(&tree, 0, 40), "all");
    }

    #[test]
    fn colours_are_stable_and_readable() {
        assert_eq!(warm_color("main", true), warm_color("main", true));
        assert_ne!(warm_color("main", true), warm_color("other", true));
        assert_eq!(text_on(Color32::WHITE), Color32::from_gray(20));
        assert_eq!(text_on(Color32::BLACK), Color32::from_gray(245));
        assert_eq!(
            lerp_color(Color32::BLACK, Color32::WHITE, 0.5),
            Color32::from_gray(128)
        );
    }

    #[test]
    fn tooltips_say_size_share_and_change() {
        let new = Snapshot::from_raw_traces(
            5,
            [
                (0, 300, &[("leak.py", 9), ("main.py", 1)][..], None),
                (0, 100, &[("main.py", 1)][..], None),
            ],
        )
        .unwrap();
        let old = Snapshot::from_raw_traces(5, [(0, 100, &[("main.py", 1)][..], None)]).unwrap();
        let tree = FlameTree::new(&new, Some(&old), FlameWeight::Bytes).unwrap();
        assert_eq!(
            tooltip_text(&tree, 2, 0, Some("old.tmsnap")),
            "leak.py:9\n\n300 B in 1 block — 75.0 % of all, 75.0 % of its caller\n\
             Allocated here: 300 B in 1 block\nChange: +300 B (+1 blocks) since old.tmsnap\n\n\
             Click to zoom on this frame."
        );
    }
}
