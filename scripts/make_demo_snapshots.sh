#!/usr/bin/env bash
# Makes the viewer's bundled demo snapshots, app/demo/leaky_service-01.tmsnap
# to -05.tmsnap, by running the recorder's leaky_service example.
#
# The example is built in release mode with line tables (the workspace's
# release profile) and frame pointers, in a target directory of its own so
# that the path remapping below does not invalidate other builds. Paths in
# the debug info are made relative to the repository root
# (recorder/examples/leaky_service.rs), so the demo does not carry this
# machine's directory names and the viewer finds the source from a checkout.
#
# Usage: scripts/make_demo_snapshots.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}/demo-snapshots"
out="$root/app/demo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# RUSTFLAGS replaces .cargo/config.toml's flags, so frame pointers are
# repeated here.
RUSTFLAGS="-C force-frame-pointers=yes --remap-path-prefix=$root/=" \
    cargo build --manifest-path "$root/Cargo.toml" --release -p tracemalloc \
    --example leaky_service --target-dir "$target"

"$target/release/examples/leaky_service" --out "$work" --snapshots 5

mkdir -p "$out"
for n in 01 02 03 04 05; do
    cp "$work/leaky_service-$n.tmsnap" "$out/leaky_service-$n.tmsnap"
done
ls -l "$out"/leaky_service-*.tmsnap
