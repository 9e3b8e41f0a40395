//! Decoding CPython tracemalloc pickles.
//!
//! Reads the large pickles `scripts/make_large_snapshots.py` writes
//! (`target/large/new.pickle` and `old.pickle`, about a million traces over
//! thirty thousand tracebacks each), or the file named by
//! `TRACEMALLOC_BENCH_PICKLE`. When neither exists, it benchmarks a pickle
//! it encodes itself, opcode by opcode the way CPython's pickler writes a
//! snapshot with protocol 4, so the bench never needs Python.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tracemalloc_format::pickle;

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("pickle_decode");
    group.sample_size(20);
    for (name, bytes) in inputs() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(&name, |b| {
            b.iter(|| pickle::decode(black_box(&bytes)).expect("the bench pickle decodes"))
        });
    }
    group.finish();
}

/// The pickles to decode, by name.
fn inputs() -> Vec<(String, Vec<u8>)> {
    let mut paths: Vec<PathBuf> = Vec::new();
    if let Some(path) = std::env::var_os("TRACEMALLOC_BENCH_PICKLE") {
        paths.push(PathBuf::from(path));
    }
    let large = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/large");
    paths.push(large.join("new.pickle"));
    paths.push(large.join("old.pickle"));
    let mut inputs: Vec<(String, Vec<u8>)> = paths
        .iter()
        .filter_map(|path| {
            let bytes = std::fs::read(path).ok()?;
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some((name, bytes))
        })
        .collect();
    if inputs.is_empty() {
        eprintln!(
            "no large pickle found (run scripts/make_large_snapshots.py or set \
             TRACEMALLOC_BENCH_PICKLE); benchmarking a synthetic one"
        );
        inputs.push(("synthetic_200k".to_owned(), synthetic(200_000, 6_000)));
    }
    inputs
}

/// A protocol 4 snapshot pickle with `traces` traces over `tracebacks`
/// tracebacks of 1 to 10 frames, laid out as CPython's pickler lays it out:
/// strings, frames and tracebacks memoized on first use and repeated with
/// `BINGET`/`LONG_BINGET`, traces appended in batches of 1000.
fn synthetic(traces: usize, tracebacks: usize) -> Vec<u8> {
    let mut p = Encoder::default();
    p.out.extend_from_slice(&[0x80, 4]);
    p.global("tracemalloc", "Snapshot");
    p.op(b')'); // EMPTY_TUPLE
    p.op(0x81); // NEWOBJ
    p.memoize();
    p.op(b'}'); // EMPTY_DICT
    p.memoize();
    p.op(b'('); // MARK
    p.str("traces");
    p.global("tracemalloc", "_Traces");
    p.op(b')');
    p.op(0x81);
    p.memoize();
    p.op(b'}');
    p.memoize();
    p.str("_traces");
    p.op(b']'); // EMPTY_LIST
    p.memoize();

    // A small deterministic generator, so every run decodes the same bytes.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let files: Vec<String> = (0..800)
        .map(|i| {
            format!(
                "/usr/lib/python3.11/site-packages/pkg{}/module_{i}.py",
                i / 20
            )
        })
        .collect();
    let shapes: Vec<Vec<(usize, u64)>> = (0..tracebacks)
        .map(|_| {
            let n = 1 + next(10) as usize;
            (0..n)
                .map(|_| (next(files.len() as u64) as usize, 1 + next(3000)))
                .collect()
        })
        .collect();
    let mut file_memo: Vec<Option<u32>> = vec![None; files.len()];
    let mut tb_memo: Vec<Option<u32>> = vec![None; tracebacks];
    for batch_start in (0..traces).step_by(1000) {
        p.op(b'(');
        for _ in batch_start..traces.min(batch_start + 1000) {
            let tb = next(tracebacks as u64) as usize;
            p.op(b'(');
            p.int(if next(20) == 0 { 1 + next(5) } else { 0 });
            p.int([16, 32, 64, 100, 256, 1000, 4096, 70_000][next(8) as usize]);
            match tb_memo[tb] {
                Some(id) => p.get(id),
                None => {
                    let frames = &shapes[tb];
                    if frames.len() > 3 {
                        p.op(b'(');
                    }
                    for &(file, lineno) in frames {
                        match file_memo[file] {
                            Some(id) => p.get(id),
                            None => file_memo[file] = Some(p.str(&files[file])),
                        }
                        p.int(lineno);
                        p.op(0x86); // TUPLE2
                        p.memoize();
                    }
                    p.op(match frames.len() {
                        1 => 0x85,
                        2 => 0x86,
                        3 => 0x87,
                        _ => b't',
                    });
                    tb_memo[tb] = Some(p.memoize());
                }
            }
            p.int(shapes[tb].len() as u64);
            p.op(b't'); // TUPLE
            p.memoize();
        }
        p.op(b'e'); // APPENDS
    }
    p.op(b's'); // SETITEM
    p.op(b'b'); // BUILD
    p.str("traceback_limit");
    p.int(10);
    p.op(b'u'); // SETITEMS
    p.op(b'b'); // BUILD
    p.op(b'.'); // STOP
    p.out
}

#[derive(Default)]
struct Encoder {
    out: Vec<u8>,
    memo: u32,
}

impl Encoder {
    fn op(&mut self, op: u8) {
        self.out.push(op);
    }

    fn memoize(&mut self) -> u32 {
        self.out.push(0x94);
        self.memo += 1;
        self.memo - 1
    }

    fn str(&mut self, s: &str) -> u32 {
        self.out.push(0x8c); // SHORT_BINUNICODE
        self.out
            .push(u8::try_from(s.len()).expect("short strings only"));
        self.out.extend_from_slice(s.as_bytes());
        self.memoize()
    }

    fn global(&mut self, module: &str, name: &str) {
        self.str(module);
        self.str(name);
        self.out.push(0x93); // STACK_GLOBAL
        self.memoize();
    }

    fn get(&mut self, id: u32) {
        match u8::try_from(id) {
            Ok(small) => self.out.extend_from_slice(&[b'h', small]),
            Err(_) => {
                self.out.push(b'j');
                self.out.extend_from_slice(&id.to_le_bytes());
            }
        }
    }

    fn int(&mut self, v: u64) {
        if let Ok(b) = u8::try_from(v) {
            self.out.extend_from_slice(&[b'K', b]);
        } else if let Ok(w) = u16::try_from(v) {
            self.out.push(b'M');
            self.out.extend_from_slice(&w.to_le_bytes());
        } else if let Ok(i) = i32::try_from(v) {
            self.out.push(b'J');
            self.out.extend_from_slice(&i.to_le_bytes());
        } else {
            self.out.extend_from_slice(&[0x8a, 9]); // LONG1, 9 bytes
            self.out.extend_from_slice(&v.to_le_bytes());
            self.out.push(0);
        }
    }
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
