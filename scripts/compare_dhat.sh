#!/usr/bin/env bash
# dhat-rs's own example programs under dhat-rs and under the recorder, and
# per allocation site what each counted: blocks/bytes allocated in all,
# live at the global peak (t-gmax) and live at the end (t-end)
# (docs/BENCHMARKS.md, "Against dhat-rs on its own examples").
#
# Copies examples/heap.rs and examples/heap-testing.rs from the dhat crate
# that Cargo.lock names, as Cargo unpacked it in its registry, into a
# temporary folder (they are not part of this repository), and builds
# them twice through the `dhat-upstream` feature of the tests crate:
# tests/src/bin/upstream/ includes each file after `use ... as dhat;`, once
# for dhat-rs and once for the recorder (tests/src/dhat_shim.rs). Each
# program runs in its own temporary folder, where it writes its profile;
# tests/examples/compare_dhat.rs prints the table.
#
# Usage: scripts/compare_dhat.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

version="$(awk '/^name = "dhat"$/ { getline; gsub(/"/, "", $3); print $3; exit }' "$root/Cargo.lock")"
if [[ -z "$version" ]]; then
    echo "compare_dhat.sh: no dhat package in Cargo.lock" >&2
    exit 1
fi
cargo fetch --manifest-path "$root/Cargo.toml" --quiet
src=""
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/dhat-"$version"; do
    if [[ -f "$dir/examples/heap.rs" ]]; then
        src="$dir"
    fi
done
if [[ -z "$src" ]]; then
    echo "compare_dhat.sh: dhat $version's sources are not in Cargo's registry" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/examples"
cp "$src/examples/heap.rs" "$src/examples/heap-testing.rs" "$work/examples/"

DHAT_UPSTREAM_EXAMPLES="$work/examples" cargo build --quiet \
    --manifest-path "$root/Cargo.toml" -p tracemalloc-tests --features dhat-upstream \
    --bin upstream_heap_dhat --bin upstream_heap_ours \
    --bin upstream_heap_testing_dhat --bin upstream_heap_testing_ours \
    --example compare_dhat

echo "dhat-rs $version, its examples from $src/examples"
for program in heap heap_testing; do
    run="$work/run-$program"
    mkdir "$run"
    # Both programs print to stdout and dhat-rs its summary to stderr: kept
    # aside, shown only if a program fails.
    for side in dhat ours; do
        if ! (cd "$run" && "$target/debug/upstream_${program}_$side" >>"$run/log" 2>&1); then
            cat "$run/log" >&2
            echo "compare_dhat.sh: upstream_${program}_$side failed" >&2
            exit 1
        fi
    done
    echo
    echo "examples/${program//_/-}.rs (blocks/bytes):"
    echo
    "$target/debug/examples/compare_dhat" "$run/dhat-heap.json" "$run/tracemalloc-heap.tmsnap"
done
