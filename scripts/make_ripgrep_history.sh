#!/usr/bin/env bash
# Records app/demo/ripgrep-history.tmsnap: a real program's allocation
# history, the input of the README's metric screenshots and of
# app/tests/ripgrep_history.rs. It builds ripgrep with the recorder as its
# global allocator (scripts/lib/traced_ripgrep.sh, shared with
# scripts/bench_snapshot_ripgrep.sh: ripgrep's release profile, line
# tables, frame pointers) and runs
#   TRACEMALLOC=16 TRACEMALLOC_HISTORY=1 TRACEMALLOC_SNAPSHOT=OUT \
#       rg -c 'fn\s+\w+' SEARCH_DIR
# once, with its output discarded. The source paths in the snapshot are
# where cargo unpacked ripgrep's crates on this machine (e.g.
# ~/.cargo/registry/src/index.crates.io-*/ignore-0.4.23/src/dir.rs).
#
# usage: scripts/make_ripgrep_history.sh RIPGREP_SRC [SEARCH_DIR [OUT]]
#   RIPGREP_SRC  a ripgrep source tree, e.g. the crates.io package that
#                `cargo fetch` leaves in ~/.cargo/registry/src/*/ripgrep-14.1.1
#   SEARCH_DIR   what rg searches (default: ~/.cargo/registry/src)
#   OUT          the snapshot (default: app/demo/ripgrep-history.tmsnap)
# environment: NFRAME (default 16), PATTERN (default 'fn\s+\w+'), WORK
# (default /tmp/tracemalloc-rg-history), TRACEMALLOC_REPO (the recorder to
# build against, default this checkout), RUSTFLAGS (default
# -C force-frame-pointers=yes).
set -euo pipefail

repo=${TRACEMALLOC_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
src=${1:?usage: $0 RIPGREP_SRC [SEARCH_DIR [OUT]]}
search=${2:-$HOME/.cargo/registry/src}
out=${3:-$repo/app/demo/ripgrep-history.tmsnap}
nframe=${NFRAME:-16}
pattern=${PATTERN:-'fn\s+\w+'}
work=${WORK:-/tmp/tracemalloc-rg-history}

# shellcheck source=lib/traced_ripgrep.sh
source "$(dirname "$0")/lib/traced_ripgrep.sh"
build_traced_ripgrep "$src" "$work" "$repo"
rg="$work/target/release/rg"

# Written beside the destination first, so a failed run leaves the
# committed file as it was.
rm -f "$out.tmp"
TRACEMALLOC=$nframe TRACEMALLOC_HISTORY=1 TRACEMALLOC_SNAPSHOT="$out.tmp" \
    "$rg" -c --no-messages "$pattern" "$search" >/dev/null || {
    # rg exits with 1 when nothing matched; anything else is a failure.
    status=$?
    [ "$status" = 1 ] || { echo "rg failed with status $status" >&2; exit 1; }
}
test -s "$out.tmp" || { echo "no snapshot written" >&2; exit 1; }
mv "$out.tmp" "$out"
ls -l "$out"
