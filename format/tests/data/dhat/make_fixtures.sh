#!/usr/bin/env bash
# Writes the DHAT fixtures the reader's tests open (format/src/dhat.rs):
#
#   valgrind-dhat.json   valgrind --tool=dhat on valgrind_prog.c
#   dhat-rs-heap.json    dhat-rs, make_dhat_rs/ (dhat::Profiler on the heap)
#
# Both programs make known allocations, which the tests check to the byte.
# Needs gcc, valgrind and cargo. Paths in the output are made relative
# (the program is run from this folder, Rust paths are remapped), so the
# fixtures do not depend on where the repository is.
#
# Usage: format/tests/data/dhat/make_fixtures.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$here"

gcc -g -O0 -o "$work/valgrind_prog" valgrind_prog.c
cp "$work/valgrind_prog" ./valgrind_prog
valgrind --tool=dhat --dhat-out-file="$work/valgrind-dhat.json" ./valgrind_prog
rm -f ./valgrind_prog
cat "$work/valgrind-dhat.json" >valgrind-dhat.json

# Debug build: line tables for every frame, no inlining to blur the lines.
RUSTFLAGS="--remap-path-prefix=$here/make_dhat_rs/=" \
    cargo build --manifest-path make_dhat_rs/Cargo.toml --target-dir "$work/target"
# Run from the work folder, so the recorded command line is relative too.
(cd "$work" && ./target/debug/make_dhat_rs dhat-rs-heap.json)
cat "$work/dhat-rs-heap.json" >dhat-rs-heap.json
ls -l valgrind-dhat.json dhat-rs-heap.json
