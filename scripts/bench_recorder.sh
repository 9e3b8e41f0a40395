#!/usr/bin/env bash
# Whole-process benchmark of the recorder (docs/BENCHMARKS.md, "Recorder").
#
# Runs the same allocation-heavy workload (recorder/examples/support/
# workload.rs, about 10 million allocation events per thread) untraced, with
# the recorder installed but off, tracing with several traceback limits,
# sampled, under dhat-rs and under heaptrack; one run of each in turn,
# ROUNDS times (default 5), and prints the median wall-clock time of each
# whole process and its ratio to the untraced run with as many threads.
#
# Usage: scripts/bench_recorder.sh [ROUNDS]
# Needs: heaptrack (Debian package `heaptrack`), python3.
set -euo pipefail

rounds="${1:-5}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"

# The workspace's .cargo/config.toml gives frame pointers; a RUSTFLAGS
# environment variable would replace it, so none is set here.
env -u RUSTFLAGS cargo build --manifest-path "$root/Cargo.toml" --release -p tracemalloc \
    --example bench_workload --example bench_workload_system --example bench_workload_dhat
bin="$target/release/examples"

variants=(
    "untraced 1|$bin/bench_workload_system 1"
    "installed, off 1|$bin/bench_workload off 1"
    "nframe=1 1|$bin/bench_workload trace:1 1"
    "nframe=8 1|$bin/bench_workload trace:8 1"
    "nframe=16 (default) 1|$bin/bench_workload trace:16 1"
    "nframe=32 1|$bin/bench_workload trace:32 1"
    "nframe=1, no block trailers 1|$bin/bench_workload trace:1:notrailers 1"
    "nframe=16, no block trailers 1|$bin/bench_workload trace:16:notrailers 1"
    "nframe=1, history 1|$bin/bench_workload trace:1:history 1"
    "nframe=16, history 1|$bin/bench_workload trace:16:history 1"
    "sampled, 512 KiB, nframe=16 1|$bin/bench_workload sampled:16:524288 1"
    "sampled, 512 KiB, nframe=16, history 1|$bin/bench_workload sampled:16:524288:history 1"
    "untraced 2|$bin/bench_workload_system 2"
    "installed, off 2|$bin/bench_workload off 2"
    "nframe=1 2|$bin/bench_workload trace:1 2"
    "nframe=16 (default) 2|$bin/bench_workload trace:16 2"
    "nframe=16, history 2|$bin/bench_workload trace:16:history 2"
    "sampled, 512 KiB, nframe=16 2|$bin/bench_workload sampled:16:524288 2"
    "dhat-rs 1|$bin/bench_workload_dhat 1"
)
if command -v heaptrack >/dev/null; then
    # --raw: record only; the analysis heaptrack would run afterwards is
    # not part of the traced program's cost.
    variants+=("heaptrack 1|heaptrack --raw $bin/bench_workload_system 1")
else
    echo "heaptrack not found (apt-get install heaptrack): skipping it" >&2
fi

# Runs happen in a scratch directory: heaptrack writes its data file into
# the current directory.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

# Each run is timed twice: wall-clock, and CPU time (user + system, from
# the kernel's accounting of the child), which is what the ratios use: on a
# shared two-core machine the wall clock also measures the neighbours.
printf '%s\n' "${variants[@]}" >"$work/.variants"
python3 - "$rounds" "$work" <<'PY'
import os, shlex, statistics, subprocess, sys, time

rounds, work = int(sys.argv[1]), sys.argv[2]
with open(os.path.join(work, ".variants")) as f:
    variants = [line.rstrip("\n").split("|", 1) for line in f if line.strip()]
wall, cpu = {}, {}
for r in range(rounds):
    for name, cmd in variants:
        start = time.monotonic()
        proc = subprocess.Popen(shlex.split(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.monotonic() - start
        if status != 0:
            sys.exit(f"{name}: {cmd} failed with status {status}")
        wall.setdefault(name, []).append(elapsed)
        cpu.setdefault(name, []).append(usage.ru_utime + usage.ru_stime)
        for f in os.listdir(work):
            if f != ".variants":
                os.remove(os.path.join(work, f))
    print(f"round {r + 1} of {rounds} done", file=sys.stderr)

def med(d, k):
    return statistics.median(d[k])

print(f"Medians of {rounds} alternating runs of each whole process.\n")
print("| variant | threads | CPU time (s) | CPU ratio to untraced | wall time (s) | wall ratio |")
print("|---|---|---|---|---|---|")
for name, _ in variants:
    label, threads = name.rsplit(" ", 1)
    base = f"untraced {threads}"
    print(f"| {label} | {threads} | {med(cpu, name):.3f} | {med(cpu, name) / med(cpu, base):.2f}x "
          f"| {med(wall, name):.3f} | {med(wall, name) / med(wall, base):.2f}x |")
PY
