#!/usr/bin/env python3
"""Side-by-side benchmark of two builds of the recorder (docs/BENCHMARKS.md).

Runs the untraced workload and each variant of two `bench_workload`
binaries (an old tree's and a new one's) in turn, ROUNDS times, and prints
the median CPU time (user + system, from the kernel's accounting of the
child) of each, its ratio to the untraced run, and the new/old ratio. On a
shared, noisy machine, alternating the two binaries within each round is
what makes their figures comparable.

Usage:
  scripts/bench_ab.py ROUNDS OLD_EXAMPLES_DIR NEW_EXAMPLES_DIR \
      [VARIANT ...]

A VARIANT is `old:MODE`, `new:MODE` or `both:MODE`, MODE being an argument
of `bench_workload` (`off`, `trace:1`, `trace:16:history`, ...); the
default is the issue's set: off, trace:1, trace:16, trace:1:history,
trace:16:history and sampled:16:524288, for both. The untraced program is
NEW_EXAMPLES_DIR/bench_workload_system. One thread throughout.
"""

import os
import statistics
import subprocess
import sys

DEFAULT = [
    "both:off",
    "both:trace:1",
    "both:trace:16",
    "both:trace:1:history",
    "both:trace:16:history",
    "both:sampled:16:524288",
]


def cpu_time(cmd):
    """Runs `cmd` and returns its CPU time in seconds."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"{cmd} failed with status {status}")
    return usage.ru_utime + usage.ru_stime


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds, old_dir, new_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    variants = sys.argv[4:] or DEFAULT
    runs = [("untraced", [os.path.join(new_dir, "bench_workload_system"), "1"])]
    for v in variants:
        which, mode = v.split(":", 1)
        for side, d in (("old", old_dir), ("new", new_dir)):
            if which in (side, "both"):
                runs.append((f"{side} {mode}", [os.path.join(d, "bench_workload"), mode, "1"]))
    times = {}
    for r in range(rounds):
        for name, cmd in runs:
            times.setdefault(name, []).append(cpu_time(cmd))
        print(f"round {r + 1} of {rounds} done", file=sys.stderr)
    med = {name: statistics.median(t) for name, t in times.items()}
    base = med["untraced"]
    print(f"Medians of {rounds} alternating runs, CPU time, 1 thread.\n")
    print("| variant | old (s) | old ratio | new (s) | new ratio | new / old |")
    print("|---|---|---|---|---|---|")
    print(f"| untraced | | | {base:.3f} | 1.00x | |")
    for v in variants:
        mode = v.split(":", 1)[1]
        old, new = med.get(f"old {mode}"), med.get(f"new {mode}")
        cells = []
        for m in (old, new):
            cells += [f"{m:.3f}", f"{m / base:.2f}x"] if m else ["", ""]
        ratio = f"{new / old:.3f}" if old and new else ""
        print(f"| {mode} | {' | '.join(cells)} | {ratio} |")


if __name__ == "__main__":
    main()
