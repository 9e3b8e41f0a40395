#!/usr/bin/env bash
# Does optional zstd compression pay for itself on large .tmsnap files?
#
#   scripts/measure_compression.sh [FILE.tmsnap]
#
# Compresses a 1M-trace snapshot (default: the format crate's synthetic one,
# written by the make_synthetic example) at zstd levels 1, 3 and 9 and
# prints, for each, the size and the median of 5 compression and
# decompression times, next to the time our reader takes to decode the
# uncompressed file (`tracemalloc-viewer info`, a whole process). Needs the
# `zstd` command (Debian package `zstd`).
set -euo pipefail
cd "$(dirname "$0")/.."

file=${1:-target/large/synthetic-new.tmsnap}
if [ ! -f "$file" ]; then
    cargo run --release -q -p tracemalloc-format --example make_synthetic
fi
cargo build --release -q -p tracemalloc-viewer
viewer=${CARGO_TARGET_DIR:-target}/release/tracemalloc-viewer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Prints the median wall time in milliseconds of 5 runs of "$@".
median_ms() {
    for _ in 1 2 3 4 5; do
        local start end
        start=$(date +%s%N)
        "$@" > /dev/null
        end=$(date +%s%N)
        echo $(( (end - start) / 1000000 ))
    done | sort -n | sed -n 3p
}

size=$(stat -c %s "$file")
echo "file: $file, $size bytes"
echo "load (tracemalloc-viewer info, whole process): $(median_ms "$viewer" info "$file") ms"
printf '%-6s %12s %8s %14s %16s\n' level bytes saved compress_ms decompress_ms
for level in 1 3 9; do
    zstd -q -f "-$level" "$file" -o "$tmp/f.zst"
    zsize=$(stat -c %s "$tmp/f.zst")
    c=$(median_ms zstd -q -f "-$level" "$file" -o "$tmp/f.zst")
    d=$(median_ms zstd -q -d -c "$tmp/f.zst")
    printf '%-6s %12d %7d%% %14d %16d\n' "-$level" "$zsize" $(( 100 - 100 * zsize / size )) "$c" "$d"
done
