#!/usr/bin/env bash
# What one snapshot costs a real program: ripgrep (a ~36 MB binary with line
# tables) searching a large tree, run side by side
#   untraced   the traced build with TRACEMALLOC unset (allocator installed, off)
#   traced     TRACEMALLOC=$NFRAME, no snapshot
#   snapshot   TRACEMALLOC=$NFRAME and TRACEMALLOC_SNAPSHOT (one snapshot at exit)
# and prints the median wall time and peak RSS (`/usr/bin/time`) of each, over
# RUNS interleaved rounds. The snapshot's cost is `snapshot - traced`.
#
# usage: scripts/bench_snapshot_ripgrep.sh RIPGREP_SRC [SEARCH_DIR]
#   RIPGREP_SRC  a ripgrep source tree, e.g. the crates.io package that
#                `cargo fetch` leaves in ~/.cargo/registry/src/*/ripgrep-14.1.1
#   SEARCH_DIR   what rg searches (default: ~/.cargo/registry/src)
# environment: RUNS (default 7), NFRAME (default 16), PATTERN (default
# 'fn\s+\w+'), WORK (default /tmp/tracemalloc-rg-bench), TRACEMALLOC_REPO
# (the recorder to build against, default this checkout).
#
# It copies ripgrep to $WORK, adds the recorder as a path dependency and a
# `#[global_allocator]`, and builds ripgrep's release profile (debug = 1,
# line tables) with frame pointers, as the README recommends (RUSTFLAGS
# overrides). Only crates are downloaded (by cargo).
set -euo pipefail

src=${1:?usage: $0 RIPGREP_SRC [SEARCH_DIR]}
search=${2:-$HOME/.cargo/registry/src}
runs=${RUNS:-7}
nframe=${NFRAME:-16}
pattern=${PATTERN:-'fn\s+\w+'}
work=${WORK:-/tmp/tracemalloc-rg-bench}
repo=${TRACEMALLOC_REPO:-$(cd "$(dirname "$0")/.." && pwd)}

rm -rf "$work/rg"
mkdir -p "$work"
cp -r "$src" "$work/rg"
# The crates.io package's manifest is normalized: dependencies are tables.
cat >> "$work/rg/Cargo.toml" <<TOML

[dependencies.tracemalloc]
path = "$repo/recorder"

[workspace]
TOML
cat >> "$work/rg/crates/core/main.rs" <<'RS'

#[cfg(not(all(target_env = "musl", target_pointer_width = "64")))]
#[global_allocator]
static TRACEMALLOC_ALLOC: tracemalloc::TracingAllocator<std::alloc::System> =
    tracemalloc::TracingAllocator::system();
RS
(cd "$work/rg" && RUSTFLAGS=${RUSTFLAGS:--C force-frame-pointers=yes} \
    CARGO_TARGET_DIR="$work/target" cargo build --release --quiet)
rg="$work/target/release/rg"
ls -l "$rg"

run() { # mode -> "seconds max_rss_kb"; rg's stderr goes to $work/stderr.txt
    local mode=$1 out=$work/time.txt
    case $mode in
    untraced) env -u TRACEMALLOC -u TRACEMALLOC_SNAPSHOT /usr/bin/time -f '%e %M' -o "$out" \
        "$rg" -c --no-messages "$pattern" "$search" >/dev/null 2>>"$work/stderr.txt" || true ;;
    traced) env -u TRACEMALLOC_SNAPSHOT TRACEMALLOC=$nframe /usr/bin/time -f '%e %M' -o "$out" \
        "$rg" -c --no-messages "$pattern" "$search" >/dev/null 2>>"$work/stderr.txt" || true ;;
    snapshot) rm -f "$work/exit.tmsnap"
        TRACEMALLOC=$nframe TRACEMALLOC_SNAPSHOT=$work/exit.tmsnap /usr/bin/time -f '%e %M' -o "$out" \
        "$rg" -c --no-messages "$pattern" "$search" >/dev/null 2>>"$work/stderr.txt" || true
        test -s "$work/exit.tmsnap" || { echo "no snapshot written" >&2; exit 1; } ;;
    esac
    tail -n 1 "$out"
}

modes=(untraced traced snapshot)
rm -f "$work/stderr.txt"
run untraced >/dev/null # warm the page cache
for ((i = 0; i < runs; i++)); do
    for m in "${modes[@]}"; do
        echo "$m $(run "$m")" >>"$work/results.$$"
    done
done
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-9s %10s %12s\n' mode wall_s max_rss_MB
for m in "${modes[@]}"; do
    t=$(awk -v m="$m" '$1==m {print $2}' "$work/results.$$" | median)
    k=$(awk -v m="$m" '$1==m {print $3}' "$work/results.$$" | median)
    printf '%-9s %10.3f %12.1f\n' "$m" "$t" "$(echo "$k / 1024" | bc -l)"
done
echo "raw: $work/results.$$"
