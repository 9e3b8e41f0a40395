#!/usr/bin/env python3
"""Whole-process benchmark: CPython's tracemalloc against tracemalloc-viewer.

    python3 scripts/make_large_snapshots.py          # once: target/large/*.pickle
    cargo build --release -p tracemalloc-viewer
    python3 scripts/bench_cli_vs_cpython.py [--runs 7]

Times, alternating one run of each, two whole processes on the same pair of
CPython pickles:

  CPython: Snapshot.load(new), Snapshot.load(old),
           new.compare_to(old, 'lineno', cumulative=True)
  ours:    tracemalloc-viewer stats NEW --compare OLD --group-by lineno
           --cumulative --format json  (output discarded)

and prints each median, the ratio of the medians and the median of the
per-pair ratios. Before timing it checks that both give the same rows for the
non-cumulative comparison (cumulative rows differ on purpose where a
traceback repeats a line: see docs/ARCHITECTURE.md).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CPYTHON = """
import sys, tracemalloc
new = tracemalloc.Snapshot.load(sys.argv[1])
old = tracemalloc.Snapshot.load(sys.argv[2])
stats = new.compare_to(old, 'lineno', cumulative=True)
"""

CPYTHON_ROWS = """
import json, sys, tracemalloc
new = tracemalloc.Snapshot.load(sys.argv[1])
old = tracemalloc.Snapshot.load(sys.argv[2])
rows = [[s.traceback[0].filename, s.traceback[0].lineno, s.size, s.size_diff,
         s.count, s.count_diff] for s in new.compare_to(old, 'lineno')]
json.dump(rows, sys.stdout)
"""


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def check_same_rows(binary, new, old):
    ours = subprocess.run(
        [binary, "stats", new, "--compare", old, "--group-by", "lineno",
         "--format", "json"],
        check=True, capture_output=True, text=True).stdout
    ours = [[r["frames"][0]["filename"], r["frames"][0]["lineno"], r["size"],
             r["size_diff"], r["count"], r["count_diff"]]
            for r in json.loads(ours)["stats"]]
    theirs = json.loads(subprocess.run(
        [sys.executable, "-c", CPYTHON_ROWS, new, old],
        check=True, capture_output=True, text=True).stdout)
    if ours != theirs:
        sys.exit(f"rows differ from CPython's ({len(ours)} vs {len(theirs)})")
    print(f"same {len(ours)} rows as CPython for compare_to(old, 'lineno')")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dir", default="target/large")
    parser.add_argument("--bin", default="target/release/tracemalloc-viewer")
    args = parser.parse_args()
    new = os.path.join(args.dir, "new.pickle")
    old = os.path.join(args.dir, "old.pickle")
    for path in (new, old, args.bin):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: see the usage at the top of this script")

    check_same_rows(args.bin, new, old)
    ours_cmd = [args.bin, "stats", new, "--compare", old, "--group-by",
                "lineno", "--cumulative", "--format", "json"]
    cpython_cmd = [sys.executable, "-c", CPYTHON, new, old]
    # One untimed run of each warms the page cache for both.
    timed(ours_cmd)
    timed(cpython_cmd)
    cpython, ours = [], []
    for _ in range(args.runs):
        cpython.append(timed(cpython_cmd))
        ours.append(timed(ours_cmd))
    ratios = [c / o for c, o in zip(cpython, ours)]
    print(f"runs: {args.runs}, alternating")
    print(f"CPython {sys.version.split()[0]}: median {statistics.median(cpython) * 1000:.0f} ms "
          f"(min {min(cpython) * 1000:.0f}, max {max(cpython) * 1000:.0f})")
    print(f"tracemalloc-viewer: median {statistics.median(ours) * 1000:.1f} ms "
          f"(min {min(ours) * 1000:.1f}, max {max(ours) * 1000:.1f})")
    print(f"ratio of medians: {statistics.median(cpython) / statistics.median(ours):.1f}x; "
          f"median of per-pair ratios: {statistics.median(ratios):.1f}x")


if __name__ == "__main__":
    main()
