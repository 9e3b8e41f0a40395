#!/usr/bin/env python3
"""Write the CPython tracemalloc fixtures of format/tests/cpython_fixtures.rs.

    python3 format/tests/data/make_fixtures.py

(any working directory; the script re-runs itself from its own directory
with PYTHONHASHSEED=0, so that file names and dict layouts, hence the
output, are the same on every run with the same Python). It writes:

* cpython/NAME.pickle: tracemalloc snapshots pickled by CPython itself
  (`Snapshot.dump()` or `pickle.dump(snapshot, f, protocol)`), one per
  situation the Rust reader must handle: every pickle protocol 2 to 5,
  recursion, several domains, odd file names, `<unknown>` frames, a real
  traced workload, the trace shapes of CPython 3.4-3.5 and 3.6-3.8, a
  filtered snapshot, an empty one, huge sizes, a tuple of traces.
* cpython/NAME.json: what CPython computes from that pickle (loaded back
  with `Snapshot.load`): `statistics()` for every key type and
  cumulative mode, `compare_to()` against some other fixtures,
  `filter_traces()` with several filter lists (summarised as statistics),
  and `str()` of the first rows. Where this project deliberately differs
  (cumulative statistics count a block once per group even when its
  traceback passes the same line or file several times, as in
  recursion; CPython counts every occurrence), the JSON also holds the
  numbers with only that rule changed, under "ours", computed by a small
  re-implementation of `_group_by` below that drops repeated keys within
  one trace and otherwise reuses CPython's own classes, sorting and
  `_compare_grouped_stats`.
* fnmatch_cases.json: `fnmatch.fnmatch(name, pattern)` for a few thousand
  random short patterns and names over an alphabet heavy in `*?[]!-^\\/`.
* format_size_cases.json: `tracemalloc._format_size(value, sign)` for
  boundaries, ties, negatives and huge values, both signs; each value is
  also given as the bits of its IEEE double, so that no JSON float parser
  can round it differently.

Rows are written with their key traceback most recent frame first, as
the Rust model stores tracebacks.
"""

import copyreg
import fnmatch
import gc
import io
import json
import os
import pickle
import random
import struct
import sys
import tracemalloc

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "cpython")

# ---------------------------------------------------------------------------
# Synthetic snapshots: raw traces as `_tracemalloc._get_traces()` returns
# them, (domain, size, traceback, total_nframe) with tracebacks most recent
# frame first. Tracebacks are shared tuples, as the C code shares them.


def tb(*frames):
    return tuple(frames)


A1 = ("/app/a.py", 1)
A2 = ("/app/a.py", 2)
A5 = ("/app/a.py", 5)
B1 = ("/app/b.py", 1)
B7 = ("/app/b.py", 7)
C3 = ("/lib/c.py", 3)
MAIN = ("/app/main.py", 10)
UNKNOWN = ("<unknown>", 0)


def basic_traces():
    t1 = tb(A2, B7, MAIN)
    t2 = tb(A5, MAIN)
    t3 = tb(B1, A1, MAIN)
    t4 = tb(C3, B7, MAIN)
    t5 = tb(UNKNOWN)
    return [
        (0, 30, t1, 3),
        (0, 30, t1, 3),
        (0, 64, t2, 2),
        (0, 1000, t3, 3),
        (0, 12, t3, 3),
        (0, 4096, t4, 7),
        (0, 4096, t4, 7),
        (0, 5, t5, 0),
        (0, 100000, tb(C3, MAIN), 2),
        (0, 33, tb(("/app/a.pyc", 9), MAIN), 2),
    ]


def basic_old_traces():
    t1 = tb(A2, B7, MAIN)
    t3 = tb(B1, A1, MAIN)
    return [
        (0, 30, t1, 3),
        (0, 900, t3, 3),
        (0, 700, tb(("/app/gone.py", 4), MAIN), 2),
        (0, 4096, tb(C3, B7, MAIN), 7),
        (0, 5, tb(UNKNOWN), 0),
    ]


def recursion_traces():
    # fib() recursing: the same frame several times in one traceback, and
    # the same file at several lines.
    fib = ("/app/fib.py", 4)
    fib_call = ("/app/fib.py", 9)
    rec = tb(fib, fib, fib, fib_call, MAIN)
    rec2 = tb(fib, fib_call, fib, fib_call, MAIN)
    return [
        (0, 100, rec, 5),
        (0, 50, rec, 5),
        (0, 70, rec2, 5),
        (0, 10, tb(fib, MAIN), 2),
        (0, 1, tb(A1, MAIN), 2),
    ]


def domain_traces():
    return [
        (0, 10, tb(A1), 1),
        (1, 20, tb(A1), 1),
        (2, 40, tb(A2, B1), 2),
        (42, 80, tb(B1), 1),
        (2**32 - 1, 160, tb(A1), 1),
        (1, 5, tb(B7, A2), 2),
    ]


ODD_NAMES = [
    "/app/with space.py",
    "/app/it's \"quoted\".py",
    "/app/[brackets].py",
    "/app/star*name?.py",
    "/app/new\nline.py",
    "/app/emoji-\U0001F600.py",
    "/app/" + "very_long_" * 60 + ".py",
    "C:\\windows\\style.py",
    "/app/caf\u00e9/\u4e2d\u6587.py",
    "relative.pyc",
    "",
]


def odd_traces():
    traces = []
    for i, name in enumerate(ODD_NAMES):
        traces.append((0, 10 * (i + 1), tb((name, i + 1), ("/app/x.py", 1)), 2))
    return traces


def unknown_traces():
    # Blocks allocated with no Python frame get `<unknown>:0` alone; the
    # others mix it in, which CPython never does but may happen in
    # snapshots built by hand.
    return [
        (0, 64, tb(UNKNOWN), 1),
        (0, 32, tb(UNKNOWN), 1),
        (1, 8, tb(UNKNOWN), 1),
        (0, 16, tb(UNKNOWN, A1), 2),
        (0, 4, tb(A1, UNKNOWN), 2),
    ]


def large_traces():
    # Sizes past 2**31 and 2**32 (LONG1 in the pickle), one near 2**63;
    # the total stays below 2**63 as the Rust model requires.
    sizes = [2**31, 2**31 + 1, 2**32, 2**32 + 7, 2**40 + 3, 2**62 + 12345, 2**61 + 99]
    traces = [(0, s, tb(("/app/big.py", i + 1)), 1) for i, s in enumerate(sizes)]
    traces.append((0, 2**31 - 1, tb(("/app/big.py", 1)), 1))
    traces.append((0, 255, tb(("/app/big.py", 1)), 1))
    traces.append((0, 256, tb(("/app/big.py", 2)), 1))
    traces.append((0, 65536, tb(("/app/big.py", 2)), 1))
    assert sum(s for _, s, _, _ in traces) < 2**63
    return traces


# ---------------------------------------------------------------------------
# A real workload, traced by tracemalloc itself. Its code gets the file name
# "workload.py"; the frames of this script are "make_fixtures.py" because
# the script runs itself under that name.

WORKLOAD = '''
class Node:
    def __init__(self, value, children):
        self.value = value
        self.children = children


def build(depth, width):
    if depth == 0:
        return Node("leaf-%d" % width, [])
    return Node(depth, [build(depth - 1, w) for w in range(width)])


def words(n):
    return ["word%05d" % i for i in range(n)]


def table(n):
    return {i: (i, str(i) * 3) for i in range(n)}


def recurse(n, acc):
    if n == 0:
        acc.append(bytearray(64))
        return acc
    acc.append([n] * n)
    return recurse(n - 1, acc)


KEEP = []


def run(step):
    KEEP.append(build(3, 3))
    KEEP.append(words(40 * step))
    KEEP.append(table(25 * step))
    KEEP.append(recurse(6 + step, []))
'''


def real_snapshots():
    """Two snapshots of the workload (after one and two steps), each with
    its traces in a canonical order: `_get_traces()` lists them in the
    order of a hash table keyed by address, which differs between runs.
    The trace and traceback tuples are CPython's own."""
    namespace = {}
    exec(compile(WORKLOAD, "workload.py", "exec"), namespace)
    gc.collect()
    gc.disable()
    tracemalloc.start(25)
    namespace["run"](1)
    early = tracemalloc.take_snapshot()
    namespace["run"](2)
    late = tracemalloc.take_snapshot()
    tracemalloc.stop()
    gc.enable()

    def canonical(snapshot):
        # Keep only the workload's blocks (and those of this script's
        # frames around it), so the fixture does not depend on what the
        # interpreter happened to allocate meanwhile.
        traces = [t for t in snapshot.traces._traces
                  if any(f[0] == "workload.py" for f in t[2])]
        traces.sort(key=lambda t: (t[2], t[1], t[0], t[3]))
        return tracemalloc.Snapshot(traces, snapshot.traceback_limit)

    return canonical(early), canonical(late)


# ---------------------------------------------------------------------------
# Writing pickles.


def dump(snapshot, name, protocol=None):
    """`Snapshot.dump()` (highest protocol) or `pickle.dump` with a
    protocol."""
    path = os.path.join(OUT, name)
    if protocol is None:
        snapshot.dump(path)
    else:
        with open(path, "wb") as f:
            pickle.dump(snapshot, f, protocol)
    return path


class Py34Pickler(pickle._Pickler):
    """Pickles as CPython 3.4 and 3.5 did with protocol 4: their
    `object.__reduce_ex__(4)` always returned `copyreg.__newobj_ex__`
    (class, empty args, empty kwargs), so objects were created with
    NEWOBJ_EX instead of NEWOBJ. The pure-Python pickler writes exactly
    what the C one writes for this."""

    def reducer_override(self, obj):
        if type(obj) in (tracemalloc.Snapshot, tracemalloc._Traces):
            return (copyreg.__newobj_ex__, (type(obj), (), {}), obj.__dict__)
        return NotImplemented


def dump_py34(snapshot, name):
    buffer = io.BytesIO()
    Py34Pickler(buffer, 4).dump(snapshot)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


# ---------------------------------------------------------------------------
# What CPython computes.

KEY_CASES = [
    ("lineno", False),
    ("filename", False),
    ("traceback", False),
    ("lineno", True),
    ("filename", True),
]

STR_ROWS = 10


def frames_of(traceback):
    """A Traceback's frames, most recent first, as [filename, lineno]."""
    return [[f.filename, f.lineno] for f in reversed(tuple(traceback))]


def stat_rows(stats):
    return [[s.size, s.count, frames_of(s.traceback)] for s in stats]


def diff_rows(diffs):
    return [[d.size, d.size_diff, d.count, d.count_diff, frames_of(d.traceback)]
            for d in diffs]


def group_by_ours(snapshot, key_type, cumulative):
    """`Snapshot._group_by` with this project's one change: in cumulative
    mode a trace adds to each group once, however many of its frames fall
    in the group."""
    if not cumulative:
        return snapshot._group_by(key_type, cumulative)
    stats = {}
    for domain, size, trace_traceback, total_nframe in snapshot.traces._traces:
        seen = set()
        for frame in trace_traceback:
            key = frame if key_type == "lineno" else (frame[0], 0)
            if key in seen:
                continue
            seen.add(key)
            traceback = tracemalloc.Traceback((key,))
            stat = stats.get(traceback)
            if stat is None:
                stats[traceback] = tracemalloc.Statistic(traceback, size, 1)
            else:
                stat.size += size
                stat.count += 1
    return stats


def statistics_ours(snapshot, key_type, cumulative):
    stats = list(group_by_ours(snapshot, key_type, cumulative).values())
    stats.sort(reverse=True, key=tracemalloc.Statistic._sort_key)
    return stats


def compare_ours(new, old, key_type, cumulative):
    diffs = tracemalloc._compare_grouped_stats(
        group_by_ours(old, key_type, cumulative),
        group_by_ours(new, key_type, cumulative))
    diffs.sort(reverse=True, key=tracemalloc.StatisticDiff._sort_key)
    return diffs


def statistics_case(snapshot, key_type, cumulative):
    stats = snapshot.statistics(key_type, cumulative)
    case = {
        "key_type": key_type,
        "cumulative": cumulative,
        "rows": stat_rows(stats),
        "str": [str(s) for s in stats[:STR_ROWS]],
    }
    ours = statistics_ours(snapshot, key_type, cumulative)
    if stat_rows(ours) != case["rows"]:
        case["ours"] = stat_rows(ours)
        case["ours_str"] = [str(s) for s in ours[:STR_ROWS]]
    return case


def compare_case(new, old, old_name, key_type, cumulative):
    diffs = new.compare_to(old, key_type, cumulative)
    case = {
        "old": old_name,
        "key_type": key_type,
        "cumulative": cumulative,
        "rows": diff_rows(diffs),
        "str": [str(d) for d in diffs[:STR_ROWS]],
    }
    ours = compare_ours(new, old, key_type, cumulative)
    if diff_rows(ours) != case["rows"]:
        case["ours"] = diff_rows(ours)
        case["ours_str"] = [str(d) for d in ours[:STR_ROWS]]
    return case


def filter_json(f):
    if isinstance(f, tracemalloc.DomainFilter):
        return {"kind": "domain", "inclusive": f.inclusive, "domain": f.domain}
    return {"kind": "filter", "inclusive": f.inclusive,
            "pattern": f.filename_pattern, "lineno": f.lineno,
            "all_frames": f.all_frames, "domain": f.domain}


F = tracemalloc.Filter
D = tracemalloc.DomainFilter

FILTER_LISTS = [
    [],
    [F(True, "/app/a.py")],
    [F(True, "*a.py")],
    [F(False, "<unknown>")],
    [F(True, "*b*", all_frames=True)],
    [F(False, "*b*", all_frames=True)],
    [F(True, "/app/a.py", lineno=2)],
    [F(False, "*", lineno=1)],
    [F(True, "*", domain=1)],
    [F(False, "*", domain=0)],
    [F(False, "/app/b.py", domain=2)],
    [D(True, 1)],
    [D(False, 0)],
    [F(True, "/app/a*"), F(True, "*main*"), F(False, "*", lineno=5)],
    [F(True, "*.pyc")],
    [F(True, "/app/[a-b].py"), D(False, 42)],
    [F(True, "*[[]*")],
    [F(True, "*\n*")],
    [F(True, "workload.py", all_frames=True), F(False, "*", lineno=27)],
    [F(True, "*make_fixtures*", all_frames=False)],
]


def filter_case(snapshot, filters):
    filtered = snapshot.filter_traces(filters)
    stats = filtered.statistics("lineno")
    return {
        "filters": [filter_json(f) for f in filters],
        "traces": len(filtered.traces),
        "total_size": sum(t.size for t in filtered.traces),
        "lineno_rows": stat_rows(stats),
    }


def as_current(snapshot):
    """The snapshot with 4-tuple traces, so that this Python can compute
    statistics of the older shapes (their numbers do not depend on
    total_nframe, and domain is 0 where there was none)."""
    raw = []
    for trace in snapshot.traces._traces:
        if len(trace) == 2:
            raw.append((0, trace[0], trace[1], None))
        elif len(trace) == 3:
            raw.append(trace + (None,))
        else:
            raw.append(trace)
    return tracemalloc.Snapshot(raw, snapshot.traceback_limit)


def producer(snapshot, protocol):
    shapes = {len(t) for t in snapshot.traces._traces}
    assert len(shapes) <= 1, shapes
    name = {2: "CPython 3.4-3.5 tracemalloc", 3: "CPython 3.6-3.8 tracemalloc",
            4: "CPython 3.9+ tracemalloc"}.get(shapes.pop() if shapes else None,
                                               "CPython tracemalloc")
    return "%s (pickle protocol %d)" % (name, protocol)


def describe(name, compare_with=(), filters=False):
    """The JSON of fixture NAME.pickle, computed from the file itself."""
    path = os.path.join(OUT, name + ".pickle")
    with open(path, "rb") as f:
        protocol = f.read(2)[1]
    loaded = tracemalloc.Snapshot.load(path)
    current = as_current(loaded)
    data = {
        "pickle": name + ".pickle",
        "producer": producer(loaded, protocol),
        "traceback_limit": loaded.traceback_limit,
        "traces": len(current.traces),
        "total_size": sum(t.size for t in current.traces),
        "first_traces": [
            {"domain": t[0], "size": t[1], "frames": [list(f) for f in t[2]],
             "total_nframe": t[3]}
            for t in current.traces._traces[:5]
        ],
        "statistics": [statistics_case(current, k, c) for k, c in KEY_CASES],
        "compare_to": [],
        "filters": [],
    }
    for old_name in compare_with:
        old = as_current(tracemalloc.Snapshot.load(
            os.path.join(OUT, old_name + ".pickle")))
        for key_type, cumulative in KEY_CASES:
            data["compare_to"].append(
                compare_case(current, old, old_name + ".pickle", key_type, cumulative))
    if filters:
        data["filters"] = [filter_case(current, fl) for fl in FILTER_LISTS]
    with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, indent=0, sort_keys=True)
        f.write("\n")
    return data


# ---------------------------------------------------------------------------
# fnmatch and _format_size.

PATTERN_ALPHABET = "**??[[]]!!--^\\/a b c ."
NAME_ALPHABET = "abc ./-\\[]^!*?"


def fnmatch_cases():
    rng = random.Random(1)
    cases = []
    seen = set()
    while len(cases) < 2500:
        pattern = "".join(rng.choice(PATTERN_ALPHABET)
                          for _ in range(rng.randint(0, 7)))
        names = ["".join(rng.choice(NAME_ALPHABET) for _ in range(rng.randint(0, 6)))
                 for _ in range(2)]
        # A name built from the pattern, to get matches as well.
        names.append("".join(rng.choice("abc") if c in "*?[]!^-" else c
                             for c in pattern))
        for name in names:
            if (name, pattern) in seen:
                continue
            seen.add((name, pattern))
            try:
                expected = fnmatch.fnmatch(name, pattern)
            except Exception:
                continue
            cases.append([name, pattern, expected])
    return cases


def f64_bits(value):
    return struct.unpack("<Q", struct.pack("<d", float(value)))[0]


def format_size_cases():
    values = set()
    # Every small integer and half-integer (ties of "%.0f" round to even).
    for i in range(0, 260):
        values.update([i, i + 0.5, -i, -i - 0.5])
    # Around each unit's boundaries: 100 (switch to one decimal), 10 * 1024
    # (switch to the next unit), and the ties of "%.1f".
    for unit in range(0, 6):
        scale = 1024 ** unit
        for base in (1, 9.95, 10, 99.94, 99.95, 99.96, 100, 1023.5, 10239.5, 10240):
            for delta in (-1, -0.5, -0.05, 0, 0.05, 0.5, 1):
                v = base * scale + delta
                values.update([v, -v])
        values.update([scale * 100 - 1, scale * 10 * 1024 - 1, scale * 10 * 1024])
    rng = random.Random(2)
    for _ in range(400):
        # Sizes of every magnitude, and averages (size / count).
        values.add(rng.randint(0, 2**63 - 1) >> rng.randint(0, 62))
        values.add(rng.randint(1, 10**7) / rng.randint(1, 1000))
    values.update([2**53, 2**53 + 1, 2**62, 2**63 - 1, -(2**63), 1e15, 1e18, 1e30, -0.0,
                   0.05, 0.15, 0.25, 1.25, 2.5, 3.5, 102348.8, 102338.56])
    cases = []
    for v in sorted(values, key=lambda x: (float(x), repr(x))):
        cases.append([repr(v), f64_bits(v),
                      tracemalloc._format_size(v, False),
                      tracemalloc._format_size(v, True)])
    # The float of the value is what the Rust function takes: check the
    # result does not depend on whether Python had an int or that float.
    for value, bits, unsigned, signed in cases:
        f = struct.unpack("<d", struct.pack("<Q", bits))[0]
        assert tracemalloc._format_size(f, False) == unsigned, value
        assert tracemalloc._format_size(f, True) == signed, value
    return cases


# ---------------------------------------------------------------------------


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        os.remove(os.path.join(OUT, old))

    basic = tracemalloc.Snapshot(basic_traces(), 5)
    for protocol in (2, 3, 4, 5):
        dump(basic, "proto%d.pickle" % protocol, protocol)
    dump(tracemalloc.Snapshot(basic_old_traces(), 5), "basic_old.pickle")
    dump(tracemalloc.Snapshot(recursion_traces(), 10), "recursion.pickle")
    dump(tracemalloc.Snapshot(domain_traces(), 3), "domains.pickle")
    dump(tracemalloc.Snapshot(odd_traces(), 2), "odd_filenames.pickle")
    dump(tracemalloc.Snapshot(unknown_traces(), 2), "unknown_frames.pickle")
    dump(tracemalloc.Snapshot(large_traces(), 1), "large_sizes.pickle")
    dump(tracemalloc.Snapshot([], 1), "empty.pickle")
    dump(tracemalloc.Snapshot(tuple(basic_traces()), 5), "tuple_traces.pickle")
    # filter_traces builds the new `_traces` list itself.
    dump(basic.filter_traces([F(True, "/app/*"), F(False, "*", lineno=5)]),
         "filtered.pickle")
    # CPython 3.6-3.8: (domain, size, traceback), Snapshot.dump() with
    # protocol 4 (3.6, 3.7) or 5 (3.8). Their Snapshot and _Traces had the
    # same attributes as today's, so a Snapshot of 3-tuples pickles exactly
    # as theirs did.
    py36 = [(d, s, t) for d, s, t, _ in basic_traces() + domain_traces()]
    dump(tracemalloc.Snapshot(py36, 5), "py36_shape.pickle", 4)
    # CPython 3.4-3.5: (size, traceback), no domains; dump() used protocol
    # 4 with NEWOBJ_EX (see Py34Pickler), pickle.dump(.., 3) NEWOBJ.
    py34 = [(s, t) for d, s, t, _ in basic_traces()]
    dump_py34(tracemalloc.Snapshot(py34, 5), "py34_shape.pickle")
    dump(tracemalloc.Snapshot(py34, 5), "py34_shape_proto3.pickle", 3)
    early, late = real_snapshots()
    dump(early, "real_workload_early.pickle")
    dump(late, "real_workload.pickle")

    for protocol in (2, 3, 4, 5):
        describe("proto%d" % protocol, compare_with=["basic_old"] if protocol == 5 else [],
                 filters=protocol == 4)
    describe("basic_old")
    describe("recursion", compare_with=["proto4"], filters=True)
    describe("domains", compare_with=["proto4"], filters=True)
    describe("odd_filenames", filters=True)
    describe("unknown_frames", compare_with=["proto4"])
    describe("large_sizes", compare_with=["empty"])
    describe("empty", compare_with=["proto4"])
    describe("tuple_traces")
    describe("filtered", compare_with=["proto4"])
    describe("py36_shape", compare_with=["proto4"])
    describe("py34_shape")
    describe("py34_shape_proto3")
    describe("real_workload_early")
    describe("real_workload", compare_with=["real_workload_early"], filters=True)

    write_lines(os.path.join(HERE, "fnmatch_cases.json"), fnmatch_cases())
    write_lines(os.path.join(HERE, "format_size_cases.json"), format_size_cases())


def write_lines(path, cases):
    """A JSON list with one case per line."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("[\n")
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]\n")


if __name__ == "__main__":
    # Run as "make_fixtures.py" from this directory with a fixed hash seed,
    # so that this script's frames and every dict are the same each time.
    if sys.argv[0] != "make_fixtures.py" or os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        os.chdir(HERE)
        os.execve(sys.executable, [sys.executable, "make_fixtures.py"], env)
    main()
