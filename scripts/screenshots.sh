#!/usr/bin/env bash
# Takes the README's screenshots: the real viewer, in a virtual X display,
# on the bundled demo snapshots, one scripted scene per picture
# (TRACEMALLOC_VIEWER_SCENE, see app/src/viewer/screenshot_scene.rs).
# The metric-* scenes open app/demo/ripgrep-history.tmsnap, a real run of
# ripgrep recorded with its allocation history
# (scripts/make_ripgrep_history.sh); its source paths are where cargo
# unpacked ripgrep's crates when it was recorded, so the annotated source
# shows only where those files are (`cargo fetch` of ripgrep 14.1.1 puts
# them there).
#
# Needs Xvfb, xdotool and ImageMagick's `import`
# (apt-get install xvfb xdotool imagemagick) and Mesa's software OpenGL
# (libgl1-mesa-dri), which Debian installs with Xvfb.
#
# Usage: scripts/screenshots.sh [--size WIDTHxHEIGHT] [OUT_DIR] [SCENE...]
#   (default: 1600x1000, screenshots/, every scene). The README's pictures
#   are taken at 1600x1000; 1280x800 is the smallest size the layout is
#   made for, e.g. scripts/screenshots.sh --size 1280x800 /tmp/small
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size=1600x1000
if [ "${1:-}" = --size ]; then
    size="${2:?--size needs WIDTHxHEIGHT, e.g. 1280x800}"
    shift 2
fi
if ! [[ "$size" =~ ^([0-9]+)x([0-9]+)$ ]]; then
    echo "screenshots.sh: --size $size is not WIDTHxHEIGHT (e.g. 1280x800)" >&2
    exit 2
fi
width="${BASH_REMATCH[1]}"
height="${BASH_REMATCH[2]}"
out="${1:-$root/screenshots}"
shift || true
scenes=("$@")
if [ ${#scenes[@]} -eq 0 ]; then
    scenes=(compare filters traceback charts timeline growing flamegraph annotated
        metric-live metric-allocated metric-temporary metric-peak)
fi
for tool in Xvfb xdotool import; do
    command -v "$tool" >/dev/null || {
        echo "screenshots.sh: $tool is missing (apt-get install xvfb xdotool imagemagick)" >&2
        exit 1
    }
done

cargo build --manifest-path "$root/Cargo.toml" --release -p tracemalloc-viewer
bin="${CARGO_TARGET_DIR:-$root/target}/release/tracemalloc-viewer"
mkdir -p "$out"
work="$(mktemp -d)"

# A display number nobody uses.
display=:$((90 + RANDOM % 100))
Xvfb "$display" -screen 0 "${width}x${height}x24" -nolisten tcp -noreset >"$work/xvfb.log" 2>&1 &
xvfb=$!
viewer=""
cleanup() {
    [ -n "$viewer" ] && kill "$viewer" 2>/dev/null || true
    kill "$xvfb" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export DISPLAY="$display"
for _ in $(seq 50); do
    xdotool getmouselocation >/dev/null 2>&1 && break
    sleep 0.1
done

# Settings (window size, panel sizes) from a fresh folder, so every run
# looks the same; from the repository root, so the sources are found.
export XDG_DATA_HOME="$work/data"
cd "$root"

for scene in "${scenes[@]}"; do
    files=()
    case "$scene" in
    metric-*) files=("$root/app/demo/ripgrep-history.tmsnap") ;;
    esac
    TRACEMALLOC_VIEWER_SCENE=$scene "$bin" "${files[@]}" 2>"$work/$scene.log" &
    viewer=$!
    window=""
    for _ in $(seq 100); do
        window="$(xdotool search --name '^tracemalloc-viewer' 2>/dev/null | head -n1 || true)"
        [ -n "$window" ] && break
        sleep 0.1
    done
    [ -n "$window" ] || { echo "screenshots.sh: no viewer window" >&2; cat "$work/$scene.log" >&2; exit 1; }
    xdotool windowmove "$window" 0 0 windowsize "$window" "$width" "$height"
    for _ in $(seq 300); do
        grep -q "scene ready" "$work/$scene.log" && break
        sleep 0.1
    done
    grep -q "scene ready" "$work/$scene.log" || { echo "screenshots.sh: scene $scene never got ready" >&2; cat "$work/$scene.log" >&2; exit 1; }
    case "$scene" in
    charts | timeline | growing)
        # Make the bottom panel taller by dragging its top edge up, as a
        # user would (the edge is 250 pixels above the status bar).
        xdotool mousemove 700 $((height - 275)) sleep 0.3 mousedown 1 sleep 0.2 \
            mousemove 700 $((height - 420)) sleep 0.2 mousemove 700 $((height - 560)) \
            sleep 0.2 mouseup 1
        ;;
    esac
    # Let the last frame settle (tooltips, scrolling).
    sleep 1
    if [ "$scene" = flamegraph ]; then
        # Hover the leak's frame (fourth row, on the left), to show its
        # tooltip.
        xdotool mousemove 330 208
        sleep 1
    else
        # The pointer out of the way: nothing hovered.
        xdotool mousemove $((width - 3)) $((height - 3))
        sleep 0.3
    fi
    import -window root "$out/$scene.png"
    echo "wrote $out/$scene.png"
    kill "$viewer"
    wait "$viewer" 2>/dev/null || true
    viewer=""
done
