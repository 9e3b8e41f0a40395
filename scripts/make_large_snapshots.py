#!/usr/bin/env python3
"""Write two large CPython tracemalloc snapshots for benchmarks.

    python3 scripts/make_large_snapshots.py [OUT_DIR] [--traces N]

writes OUT_DIR/old.pickle and OUT_DIR/new.pickle (default OUT_DIR:
target/large, default N: 1,000,000 traces each), pickled by CPython's own
`tracemalloc.Snapshot.dump()`. The snapshots look like a real program's:
about 30,000 distinct tracebacks of 1 to 10 frames over 12,000 call sites
in 400 files (outer frames shared the most, as in real call stacks), a few
domains, block sizes from a skewed distribution, and between the two
snapshots some sites grow (a leak), some shrink and some appear or vanish.

The output depends only on the arguments (fixed random seed), so benchmark
figures from different machines are measured on the same files.
"""

import argparse
import os
import random
import sys
import tracemalloc


def make_tracebacks(rng, count, sites):
    """`count` distinct tracebacks (most recent frame first) of 1 to 10
    frames. Like real call stacks they share frames: outer frames (the main
    loop, a dispatcher) come from a few popular call sites, inner frames
    from the whole pool."""
    tracebacks = []
    seen = set()
    while len(tracebacks) < count:
        depth = rng.randint(1, 10)
        oldest_first = []
        for level in range(depth):
            # Level 0 is the outermost frame: its pool is the smallest.
            pool = min(len(sites), 50 * (level + 1) ** 3)
            if rng.random() < 0.5:
                index = rng.randrange(pool)
            else:
                index = int(rng.paretovariate(1.2) * 7) % pool
            # A new tuple per frame, as CPython's traceback_to_pyobject()
            # makes: the pickle then memoizes strings, not frames.
            filename, lineno = sites[index]
            oldest_first.append((filename, lineno))
        frames = tuple(reversed(oldest_first))
        if frames in seen:
            continue
        seen.add(frames)
        tracebacks.append(frames)
    return tracebacks


def make_sites(rng):
    """12,000 call sites (file, line) over 400 files, plus CPython's
    pseudo-files."""
    files = [f"/srv/app/pkg{i // 40}/module_{i}.py" for i in range(400)]
    sites = [(f, rng.randint(1, 2000)) for f in files for _ in range(30)]
    sites += [("<frozen importlib._bootstrap>", 241), ("<unknown>", 0)]
    rng.shuffle(sites)
    return sites


def block_size(rng):
    # Mostly small objects, a tail of large buffers, as in real heaps.
    r = rng.random()
    if r < 0.7:
        return rng.randint(16, 128)
    if r < 0.95:
        return rng.randint(129, 4096)
    return rng.randint(4097, 1 << 20)


def build(rng, tracebacks, n, growth):
    """n traces; `growth` maps a traceback index to extra weight."""
    weights = [1.0 + growth.get(i, 0.0) for i in range(len(tracebacks))]
    # random.choices with cum_weights is much faster than per-call weights.
    cum = []
    total = 0.0
    for w in weights:
        total += w
        cum.append(total)
    picks = rng.choices(range(len(tracebacks)), cum_weights=cum, k=n)
    traces = []
    for i in picks:
        frames = tracebacks[i]
        domain = 0 if i % 50 else (i % 3) + 1
        traces.append((domain, block_size(rng), frames, len(frames) + (i % 4)))
    return traces


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="target/large")
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--tracebacks", type=int, default=30_000)
    args = parser.parse_args()

    rng = random.Random(20261123)
    sites = make_sites(rng)
    tracebacks = make_tracebacks(rng, args.tracebacks, sites)
    os.makedirs(args.out_dir, exist_ok=True)

    old = build(rng, tracebacks, args.traces, {})
    # The new snapshot: 200 sites leak (much heavier), 200 shrink, and the
    # last 1% of tracebacks only exist in the new one.
    growth = {i: 20.0 for i in range(0, 200)}
    growth.update({i: -0.9 for i in range(200, 400)})
    new_tbs = tracebacks[: len(tracebacks) * 99 // 100]
    new_tbs += make_tracebacks(random.Random(7), len(tracebacks) // 100, sites)
    new = build(rng, new_tbs, args.traces, growth)

    for name, traces in (("old", old), ("new", new)):
        path = os.path.join(args.out_dir, f"{name}.pickle")
        tracemalloc.Snapshot(traces, 10).dump(path)
        print(f"wrote {path}: {len(traces)} traces, "
              f"{os.path.getsize(path) / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
