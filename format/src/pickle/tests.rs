//! Unit tests of the pickle reader: what CPython writes, every shape and
//! protocol, and hostile input (forbidden globals and opcodes, huge
//! lengths, bad memo ids, cycles, deep nesting, every truncation).

use std::collections::HashMap;

use super::opcodes as op;
use super::{MAX_CONTAINERS, MAX_MARK_DEPTH, MAX_STACK, PickleError, decode};
use crate::model::{Frame, Snapshot};

/// A trace as a test writes it; `i128` so that out-of-range values can be
/// written too. `domain: None` writes the 3.4-3.5 shape `(size,
/// traceback)`, `total: None` (with a domain) the 3.6-3.8 shape.
#[derive(Clone, Debug)]
struct Raw {
    domain: Option<i128>,
    size: i128,
    frames: Vec<(&'static str, i128)>,
    total: Option<i128>,
}

fn raw(domain: i128, size: i128, frames: &[(&'static str, i128)], total: i128) -> Raw {
    Raw {
        domain: Some(domain),
        size,
        frames: frames.to_vec(),
        total: Some(total),
    }
}

/// Writes pickles opcode by opcode, memoizing as CPython's pickler does
/// (strings and tracebacks by content, which is how CPython shares them).
struct Enc {
    out: Vec<u8>,
    protocol: u8,
    memo: u32,
    strs: HashMap<String, u32>,
    tracebacks: HashMap<Vec<(&'static str, i128)>, u32>,
    /// Put a zero-length `FRAME` inside every trace tuple, which changes
    /// nothing but keeps the reader off its fast path.
    frame_noise: bool,
}

impl Enc {
    fn new(protocol: u8) -> Enc {
        Enc {
            out: vec![op::PROTO, protocol],
            protocol,
            memo: 0,
            strs: HashMap::new(),
            tracebacks: HashMap::new(),
            frame_noise: false,
        }
    }

    fn op(&mut self, code: u8) -> &mut Enc {
        self.out.push(code);
        self
    }

    fn raw(&mut self, bytes: &[u8]) -> &mut Enc {
        self.out.extend_from_slice(bytes);
        self
    }

    fn noise(&mut self) {
        if self.frame_noise {
            self.out.push(op::FRAME);
            self.out.extend_from_slice(&0u64.to_le_bytes());
        }
    }

    fn memoize(&mut self) -> u32 {
        let id = self.memo;
        self.memo += 1;
        if self.protocol >= 4 {
            self.out.push(op::MEMOIZE);
        } else if let Ok(small) = u8::try_from(id) {
            self.out.extend_from_slice(&[op::BINPUT, small]);
        } else {
            self.out.push(op::LONG_BINPUT);
            self.out.extend_from_slice(&id.to_le_bytes());
        }
        id
    }

    fn get(&mut self, id: u32) -> &mut Enc {
        match u8::try_from(id) {
            Ok(small) => self.raw(&[op::BINGET, small]),
            Err(_) => {
                self.out.push(op::LONG_BINGET);
                self.raw(&id.to_le_bytes())
            }
        }
    }

    /// An integer as CPython writes it.
    fn int(&mut self, v: i128) -> &mut Enc {
        if let Ok(b) = u8::try_from(v) {
            self.raw(&[op::BININT1, b])
        } else if let Ok(w) = u16::try_from(v) {
            self.out.push(op::BININT2);
            self.raw(&w.to_le_bytes())
        } else if let Ok(i) = i32::try_from(v) {
            self.out.push(op::BININT);
            self.raw(&i.to_le_bytes())
        } else {
            // Minimal two's complement, as `pickle.encode_long`.
            let bytes = v.to_le_bytes();
            let mut n = 16;
            while n > 1
                && ((bytes[n - 1] == 0 && bytes[n - 2] & 0x80 == 0)
                    || (bytes[n - 1] == 0xff && bytes[n - 2] & 0x80 != 0))
            {
                n -= 1;
            }
            self.raw(&[op::LONG1, n as u8]).raw(&bytes[..n])
        }
    }

    fn str(&mut self, s: &str) -> &mut Enc {
        if let Some(&id) = self.strs.get(s) {
            return self.get(id);
        }
        self.str_bytes(s.as_bytes());
        let id = self.memoize();
        self.strs.insert(s.to_owned(), id);
        self
    }

    fn str_bytes(&mut self, bytes: &[u8]) -> &mut Enc {
        match u8::try_from(bytes.len()) {
            Ok(n) if self.protocol >= 4 => self.raw(&[op::SHORT_BINUNICODE, n]),
            _ => {
                self.out.push(op::BINUNICODE);
                self.raw(&(bytes.len() as u32).to_le_bytes())
            }
        };
        self.raw(bytes)
    }

    fn global(&mut self, module: &str, name: &str) -> &mut Enc {
        if self.protocol >= 4 {
            self.str(module).str(name).op(op::STACK_GLOBAL);
        } else {
            self.op(op::GLOBAL).raw(module.as_bytes()).raw(b"\n");
            self.raw(name.as_bytes()).raw(b"\n");
        }
        self.memoize();
        self
    }

    /// A tuple of the `n` values just written.
    fn tuple(&mut self, n: usize) -> &mut Enc {
        match n {
            0 => self.op(op::EMPTY_TUPLE),
            1 => self.op(op::TUPLE1),
            2 => self.op(op::TUPLE2),
            3 => self.op(op::TUPLE3),
            _ => self.op(op::TUPLE),
        }
    }

    fn traceback(&mut self, frames: &[(&'static str, i128)]) {
        if let Some(&id) = self.tracebacks.get(frames) {
            self.get(id);
            return;
        }
        if frames.len() > 3 {
            self.op(op::MARK);
        }
        for &(file, line) in frames {
            self.str(file).int(line).op(op::TUPLE2);
            self.memoize();
        }
        self.tuple(frames.len());
        let id = self.memoize();
        self.tracebacks.insert(frames.to_vec(), id);
    }

    fn trace(&mut self, t: &Raw) {
        let n = 2 + usize::from(t.domain.is_some()) + usize::from(t.total.is_some());
        if n > 3 {
            self.op(op::MARK);
        }
        if let Some(d) = t.domain {
            self.int(d);
            self.noise();
        }
        self.int(t.size);
        self.noise();
        self.traceback(&t.frames);
        self.noise();
        if let Some(total) = t.total {
            self.int(total);
        }
        self.tuple(n);
        self.memoize();
    }

    /// Everything of a snapshot pickle before the traces.
    fn header(&mut self, class: &str) -> &mut Enc {
        self.global("tracemalloc", class)
            .op(op::EMPTY_TUPLE)
            .op(op::NEWOBJ);
        self.memoize();
        self.op(op::EMPTY_DICT);
        self.memoize();
        self
    }

    /// A whole snapshot, laid out as CPython's pickler lays it out.
    fn snapshot(mut self, traces: &[Raw], limit: i128) -> Vec<u8> {
        self.header("Snapshot").op(op::MARK).str("traces");
        self.header("_Traces").str("_traces").op(op::EMPTY_LIST);
        self.memoize();
        self.traces(traces);
        self.op(op::SETITEM).op(op::BUILD);
        self.str("traceback_limit").int(limit);
        self.op(op::SETITEMS).op(op::BUILD).op(op::STOP);
        self.out
    }

    /// List items in batches of 1000, as `Pickler._batch_appends`.
    fn traces(&mut self, traces: &[Raw]) {
        for batch in traces.chunks(1000) {
            if batch.len() == 1 {
                self.trace(&batch[0]);
                self.op(op::APPEND);
            } else {
                self.op(op::MARK);
                for t in batch {
                    self.trace(t);
                }
                self.op(op::APPENDS);
            }
        }
    }
}

fn pickle(protocol: u8, traces: &[Raw], limit: i128) -> Vec<u8> {
    Enc::new(protocol).snapshot(traces, limit)
}

fn err(bytes: &[u8]) -> PickleError {
    match decode(bytes) {
        Ok(s) => panic!("decoded {} traces, expected an error", s.traces().len()),
        Err(e) => e,
    }
}

fn message(bytes: &[u8]) -> String {
    err(bytes).to_string()
}

/// The traces of a snapshot as (domain, size, frames, total_nframe).
fn rows(s: &Snapshot) -> Vec<(u32, u64, Vec<Frame>, Option<u32>)> {
    s.traces()
        .iter()
        .map(|t| {
            let tb = s.traceback(t.traceback);
            (t.domain, t.size, tb.frames, tb.total_nframe)
        })
        .collect()
}

fn sample() -> Vec<Raw> {
    let tb1: &[(&str, i128)] = &[("a.py", 2), ("b.py", 7), ("main.py", 10)];
    let tb2: &[(&str, i128)] = &[("a.py", 5), ("main.py", 10), ("x.py", 1), ("y.py", 1)];
    vec![
        raw(0, 30, tb1, 3),
        raw(0, 64, tb2, 9),
        raw(1, 30, tb1, 3),
        raw(0, 100_000, &[("<unknown>", 0)], 0),
        raw(2, 7, tb2, 9),
    ]
}

fn frames(list: &[(&str, u32)]) -> Vec<Frame> {
    list.iter().map(|&(f, l)| Frame::new(f, l)).collect()
}

#[test]
fn decodes_every_protocol_like_cpython_writes_it() {
    for protocol in 2..=5 {
        let s = decode(&pickle(protocol, &sample(), 25)).unwrap();
        assert_eq!(s.traceback_limit(), 25);
        assert_eq!(
            s.metadata().producer.as_deref(),
            Some(format!("CPython 3.9+ tracemalloc (pickle protocol {protocol})").as_str())
        );
        assert_eq!(s.metadata().format_version, None);
        assert_eq!(s.metadata().pid, None);
        let rows = rows(&s);
        assert_eq!(rows.len(), 5);
        let tb1 = frames(&[("a.py", 2), ("b.py", 7), ("main.py", 10)]);
        assert_eq!(rows[0], (0, 30, tb1.clone(), Some(3)));
        assert_eq!(rows[2], (1, 30, tb1, Some(3)));
        assert_eq!(rows[3], (0, 100_000, frames(&[("<unknown>", 0)]), Some(0)));
        assert_eq!(rows[4].3, Some(9));
        // Each distinct string, frame and traceback is stored once.
        let tables = s.tables();
        assert_eq!(tables.traceback_count(), 3, "protocol {protocol}");
        assert_eq!(tables.frame_count(), 7);
        assert_eq!(
            tables.string_count(),
            6,
            "no key or class name in the table"
        );
    }
}

#[test]
fn reads_the_trace_shapes_of_every_cpython_version() {
    let mut old = sample();
    for t in &mut old {
        t.total = None;
    }
    let s = decode(&pickle(4, &old, 5)).unwrap();
    assert_eq!(
        s.metadata().producer.as_deref(),
        Some("CPython 3.6-3.8 tracemalloc (pickle protocol 4)")
    );
    assert_eq!(rows(&s)[2].0, 1, "domains are kept");
    assert!(rows(&s).iter().all(|r| r.3.is_none()));

    for t in &mut old {
        t.domain = None;
    }
    for protocol in [3, 4] {
        let s = decode(&pickle(protocol, &old, 5)).unwrap();
        assert_eq!(
            s.metadata().producer.as_deref(),
            Some(format!("CPython 3.4-3.5 tracemalloc (pickle protocol {protocol})").as_str())
        );
        let rows = rows(&s);
        assert!(rows.iter().all(|r| r.0 == 0 && r.3.is_none()));
        assert_eq!(rows[1].1, 64);
    }
}

#[test]
fn the_fast_path_and_the_general_path_agree() {
    let mut traces = sample();
    // A traceback seen with two totals: two tracebacks of the same frames.
    traces.push(raw(0, 9, &[("a.py", 2), ("b.py", 7), ("main.py", 10)], 4));
    traces.push(raw(0, 10, &[("a.py", 2), ("b.py", 7), ("main.py", 10)], 3));
    let traces: Vec<Raw> = traces.iter().cycle().take(3001).cloned().collect();
    for protocol in [2, 5] {
        let fast = decode(&pickle(protocol, &traces, 9)).unwrap();
        let mut enc = Enc::new(protocol);
        enc.frame_noise = true;
        let general = decode(&enc.snapshot(&traces, 9)).unwrap();
        assert_eq!(rows(&fast), rows(&general));
        assert_eq!(rows(&fast).len(), 3001);
        assert_eq!(fast.tables().traceback_count(), 4);
        assert_eq!(general.tables().traceback_count(), 4);
    }
}

#[test]
fn appends_in_batches_and_single_appends_keep_the_order() {
    let traces: Vec<Raw> = (0..2001)
        .map(|i| raw(0, i, &[("f.py", i % 7)], 1))
        .collect();
    let s = decode(&pickle(4, &traces, 1)).unwrap();
    let sizes: Vec<u64> = s.traces().iter().map(|t| t.size).collect();
    assert_eq!(sizes, (0..2001).collect::<Vec<u64>>());
}

#[test]
fn a_tuple_of_traces_reads_like_a_list() {
    let mut enc = Enc::new(4);
    enc.header("Snapshot").op(op::MARK).str("traces");
    enc.header("_Traces").str("_traces").op(op::MARK);
    for t in &sample() {
        enc.trace(t);
    }
    enc.op(op::TUPLE);
    enc.memoize();
    enc.op(op::SETITEM)
        .op(op::BUILD)
        .str("traceback_limit")
        .int(3);
    enc.op(op::SETITEMS).op(op::BUILD).op(op::STOP);
    let s = decode(&enc.out).unwrap();
    assert_eq!(rows(&s), rows(&decode(&pickle(4, &sample(), 3)).unwrap()));
}

#[test]
fn an_empty_snapshot_says_only_cpython() {
    let s = decode(&pickle(5, &[], 1)).unwrap();
    assert!(s.traces().is_empty());
    assert_eq!(
        s.metadata().producer.as_deref(),
        Some("CPython tracemalloc (pickle protocol 5)")
    );
}

#[test]
fn large_integers_in_every_encoding() {
    // They add up to exactly i64::MAX, the most a snapshot may hold.
    let sizes = [
        (1i128 << 31),
        (1 << 32) + 5,
        (1 << 62) + 1,
        i64::MAX as i128 - (1 << 62) - (1 << 32) - (1 << 31) - 6,
    ];
    let traces: Vec<Raw> = sizes
        .iter()
        .map(|&s| raw(0, s, &[("a.py", 1)], 1))
        .collect();
    let s = decode(&pickle(4, &traces, 1)).unwrap();
    let got: Vec<u64> = s.traces().iter().map(|t| t.size).collect();
    assert_eq!(got, sizes.map(|s| s as u64));

    // u64::MAX alone, written by LONG1 and by LONG4 with padding bytes.
    let one = |enc_size: &dyn Fn(&mut Enc)| {
        let mut enc = Enc::new(4);
        enc.header("Snapshot").op(op::MARK).str("traces");
        enc.header("_Traces").str("_traces").op(op::EMPTY_LIST);
        enc.memoize();
        enc.op(op::MARK).int(0);
        enc_size(&mut enc);
        enc.traceback(&[("a.py", 1)]);
        enc.int(1).op(op::TUPLE).op(op::APPEND);
        enc.op(op::SETITEM)
            .op(op::BUILD)
            .str("traceback_limit")
            .int(1);
        enc.op(op::SETITEMS).op(op::BUILD).op(op::STOP);
        enc.out
    };
    let long1 = one(&|e| {
        e.raw(&[op::LONG1, 9])
            .raw(&u64::MAX.to_le_bytes())
            .raw(&[0]);
    });
    let mut long4_bytes = u64::MAX.to_le_bytes().to_vec();
    long4_bytes.extend_from_slice(&[0; 30]);
    let long4 = one(&|e| {
        e.raw(&[op::LONG4])
            .raw(&38i32.to_le_bytes())
            .raw(&long4_bytes);
    });
    // Only one trace, so the 2^63 total limit is the builder's to enforce.
    for bytes in [&long1, &long4] {
        assert_eq!(
            message(bytes),
            "the traces add up to more than 2^63 - 1 bytes"
        );
    }
    let long4_neg = one(&|e| {
        e.raw(&[op::LONG4])
            .raw(&20i32.to_le_bytes())
            .raw(&[0xff; 20]);
    });
    assert_eq!(
        message(&long4_neg),
        "not a tracemalloc snapshot: trace 0: its size -1 is out of range 0..=18446744073709551615"
    );
    let huge = one(&|e| {
        e.raw(&[op::LONG1, 17]).raw(&[0; 16]).raw(&[1]);
    });
    assert!(
        message(&huge).contains("its size is an integer wider than 128 bits"),
        "{}",
        message(&huge)
    );
}

#[test]
fn numbers_out_of_range_name_their_field() {
    let cases: [(Raw, &str); 5] = [
        (
            raw(0, -5, &[("a.py", 1)], 1),
            "trace 0: its size -5 is out of range 0..=18446744073709551615",
        ),
        (
            raw(-1, 5, &[("a.py", 1)], 1),
            "trace 0: its domain -1 is out of range 0..=4294967295",
        ),
        (
            raw(1 << 32, 5, &[("a.py", 1)], 1),
            "trace 0: its domain 4294967296 is out of range 0..=4294967295",
        ),
        (
            raw(0, 5, &[("a.py", 1)], -2),
            "trace 0: its total_nframe -2 is out of range 0..=4294967295",
        ),
        (
            raw(0, 5, &[("a.py", 1), ("b.py", -3)], 2),
            "trace 0: the lineno of frame 1 of its traceback -3 is out of range 0..=4294967295",
        ),
    ];
    for (trace, expected) in cases {
        let bytes = pickle(4, &[raw(0, 1, &[("ok.py", 1)], 1), trace.clone()], 1);
        let expected = expected.replace("trace 0", "trace 1");
        assert_eq!(
            message(&bytes),
            format!("not a tracemalloc snapshot: {expected}")
        );
    }
    // A negative traceback limit: CPython's start() refuses it, so a
    // snapshot never has one.
    assert_eq!(
        message(&pickle(4, &sample(), -1)),
        "not a tracemalloc snapshot: Snapshot.traceback_limit -1 is out of range 0..=4294967295"
    );
}

/// Writes a list holding one hand-made item, in a valid snapshot.
fn with_trace_item(item: impl Fn(&mut Enc)) -> Vec<u8> {
    let mut enc = Enc::new(4);
    enc.header("Snapshot").op(op::MARK).str("traces");
    enc.header("_Traces").str("_traces").op(op::EMPTY_LIST);
    enc.memoize();
    item(&mut enc);
    enc.op(op::APPEND);
    enc.op(op::SETITEM)
        .op(op::BUILD)
        .str("traceback_limit")
        .int(1);
    enc.op(op::SETITEMS).op(op::BUILD).op(op::STOP);
    enc.out
}

#[test]
fn wrong_shapes_are_named() {
    let five = with_trace_item(|e| {
        e.op(op::MARK).int(0).int(1);
        e.traceback(&[("a.py", 1)]);
        e.int(1).int(9).op(op::TUPLE);
    });
    assert!(
        message(&five).contains("trace 0: it has 5 items; CPython writes"),
        "{}",
        message(&five)
    );

    let string_lineno = with_trace_item(|e| {
        e.op(op::MARK).int(0).int(1);
        e.str("a.py").str("12").op(op::TUPLE2).op(op::TUPLE1);
        e.int(1).op(op::TUPLE);
    });
    assert_eq!(
        message(&string_lineno),
        "not a tracemalloc snapshot: trace 0: the lineno of frame 0 of its traceback is a str, \
         expected an int"
    );

    let int_filename = with_trace_item(|e| {
        e.op(op::MARK).int(0).int(1);
        e.int(3).int(12).op(op::TUPLE2).op(op::TUPLE1);
        e.int(1).op(op::TUPLE);
    });
    assert!(message(&int_filename).contains("the filename of frame 0 of its traceback is an int"));

    let three_item_frame = with_trace_item(|e| {
        e.op(op::MARK).int(0).int(1);
        e.str("a.py").int(1).int(2).op(op::TUPLE3).op(op::TUPLE1);
        e.int(1).op(op::TUPLE);
    });
    assert!(message(&three_item_frame).contains("frame 0 of its traceback has 3 items"));

    let list_traceback = with_trace_item(|e| {
        e.op(op::MARK)
            .int(0)
            .int(1)
            .op(op::EMPTY_LIST)
            .int(1)
            .op(op::TUPLE);
    });
    assert!(message(&list_traceback).contains("its traceback is a list, expected a tuple"));

    let str_trace = with_trace_item(|e| {
        e.str("trace");
    });
    assert_eq!(
        message(&str_trace),
        "not a tracemalloc snapshot: trace 0: it is a str, expected a tuple"
    );
}

#[test]
fn mixed_trace_shapes_are_refused() {
    let mut traces = sample();
    traces[3].total = None;
    assert_eq!(
        message(&pickle(4, &traces, 1)),
        "not a tracemalloc snapshot: trace 3 has 3 items but trace 0 has 4; \
         CPython never mixes trace shapes"
    );
}

#[test]
fn an_empty_traceback_becomes_unknown() {
    let s = decode(&pickle(4, &[raw(0, 8, &[], 0)], 1)).unwrap();
    assert_eq!(rows(&s)[0].2, frames(&[("<unknown>", 0)]));
}

#[test]
fn globals_other_than_the_two_classes_are_refused() {
    // GLOBAL + REDUCE, as a protocol 2 exploit writes it.
    let mut enc = Enc::new(2);
    enc.op(op::GLOBAL).raw(b"os\nsystem\n");
    enc.str_bytes(b"echo pwned")
        .op(op::TUPLE1)
        .op(op::REDUCE)
        .op(op::STOP);
    let e = err(&enc.out);
    assert!(
        matches!(e, PickleError::ForbiddenGlobal { offset: 2, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "not a tracemalloc snapshot: the pickle references os.system (GLOBAL at byte 2)"
    );

    // STACK_GLOBAL, protocol 4.
    let mut enc = Enc::new(4);
    enc.str("os").str("system").op(op::STACK_GLOBAL);
    enc.str("echo pwned")
        .op(op::TUPLE1)
        .op(op::REDUCE)
        .op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "not a tracemalloc snapshot: the pickle references os.system (STACK_GLOBAL at byte 16)"
    );

    for (module, name) in [
        ("builtins", "eval"),
        ("copyreg", "_reconstructor"),
        ("copyreg", "__newobj__"),
        ("builtins", "object"),
        ("tracemalloc", "take_snapshot"),
        ("tracemalloc", "Snapshot.load"),
        ("Tracemalloc", "Snapshot"),
    ] {
        let mut enc = Enc::new(3);
        enc.global(module, name).op(op::STOP);
        assert!(
            message(&enc.out).contains(&format!("references {module}.{name} (GLOBAL")),
            "{}",
            message(&enc.out)
        );
    }
    // Hostile names are shortened and escaped in the message.
    let mut enc = Enc::new(4);
    enc.str(&"x".repeat(500))
        .str("a\nb\u{7}")
        .op(op::STACK_GLOBAL)
        .op(op::STOP);
    let m = message(&enc.out);
    assert!(
        m.contains(&format!("{}….a\\nb\\u{{7}}", "x".repeat(100))),
        "{m}"
    );
}

#[test]
fn nothing_is_ever_called() {
    // REDUCE on an allowed class.
    let mut enc = Enc::new(4);
    enc.global("tracemalloc", "Snapshot")
        .op(op::EMPTY_TUPLE)
        .op(op::REDUCE)
        .op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "not a tracemalloc snapshot: REDUCE at byte 30 would call tracemalloc.Snapshot; \
         snapshot pickles never call anything"
    );
    // NEWOBJ with arguments, NEWOBJ_EX with keywords.
    let mut enc = Enc::new(4);
    enc.global("tracemalloc", "_Traces")
        .int(1)
        .op(op::TUPLE1)
        .op(op::NEWOBJ)
        .op(op::STOP);
    assert!(message(&enc.out).contains("would call tracemalloc._Traces.__new__ with arguments"));
    let mut enc = Enc::new(4);
    enc.global("tracemalloc", "_Traces")
        .op(op::EMPTY_TUPLE)
        .op(op::EMPTY_DICT);
    enc.str("k")
        .int(1)
        .op(op::SETITEM)
        .op(op::NEWOBJ_EX)
        .op(op::STOP);
    assert!(message(&enc.out).contains("__new__ with arguments"));
    // NEWOBJ of something that is not a class.
    let mut enc = Enc::new(4);
    enc.str("x").op(op::EMPTY_TUPLE).op(op::NEWOBJ).op(op::STOP);
    assert!(message(&enc.out).contains("NEWOBJ needs a class, got a str"));
}

#[test]
fn newobj_ex_with_empty_arguments_reads_like_newobj() {
    // How CPython 3.4 and 3.5 pickled objects with protocol 4.
    let newobj = pickle(4, &sample(), 2);
    let mut ex = Vec::new();
    let mut i = 0;
    while i < newobj.len() {
        if newobj[i..].starts_with(&[op::EMPTY_TUPLE, op::NEWOBJ]) {
            ex.extend_from_slice(&[op::EMPTY_TUPLE, op::EMPTY_DICT, op::NEWOBJ_EX]);
            i += 2;
        } else {
            ex.push(newobj[i]);
            i += 1;
        }
    }
    assert_ne!(ex, newobj);
    assert_eq!(rows(&decode(&ex).unwrap()), rows(&decode(&newobj).unwrap()));
}

#[test]
fn opcodes_a_snapshot_never_contains_are_named() {
    for (code, name) in [
        (b'i', "INST"),
        (b'o', "OBJ"),
        (0x82, "EXT1"),
        (0x83, "EXT2"),
        (0x84, "EXT4"),
        (b'P', "PERSID"),
        (b'Q', "BINPERSID"),
        (0x97, "NEXT_BUFFER"),
        (0x98, "READONLY_BUFFER"),
        (b'N', "NONE"),
        (b'C', "SHORT_BINBYTES"),
        (b'd', "DICT"),
        (b'I', "INT"),
        (b'g', "GET"),
    ] {
        let mut enc = Enc::new(5);
        enc.op(code).raw(b"1\n1\n").op(op::STOP);
        let e = err(&enc.out);
        assert!(
            matches!(e, PickleError::UnsupportedOpcode { offset: 2, .. }),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "not a tracemalloc snapshot: the pickle uses opcode {name} (0x{code:02x}) at \
                 byte 2, which tracemalloc snapshots never contain"
            )
        );
    }
    assert_eq!(
        message(&[op::PROTO, 4, 0xff]),
        "corrupt pickle at byte 2: unknown opcode 0xff"
    );
    // REDUCE on anything that is not an allowed class is just refused.
    assert!(matches!(
        err(&[op::PROTO, 4, op::EMPTY_TUPLE, op::EMPTY_TUPLE, op::REDUCE]),
        PickleError::UnsupportedOpcode { name: "REDUCE", .. }
    ));
}

#[test]
fn old_and_future_protocols_are_refused_clearly() {
    let protocol0 = b"(dp0\nS'a'\np1\nI1\ns.";
    assert_eq!(
        message(protocol0),
        "pickle protocol 0/1 is not supported; tracemalloc uses protocol 2 or later \
         (the data does not start with the PROTO opcode 0x80)"
    );
    assert!(matches!(err(b""), PickleError::OldProtocol));
    assert!(matches!(
        err(&[op::PROTO, 1, op::STOP]),
        PickleError::OldProtocol
    ));
    assert_eq!(
        message(&[op::PROTO, 6, op::STOP]),
        "pickle protocol 6 is not supported; this reader reads protocols 2 to 5"
    );
}

#[test]
fn declared_lengths_are_checked_before_anything_is_allocated() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            [
                &[op::PROTO, 4, op::BINUNICODE8][..],
                &(1u64 << 62).to_le_bytes(),
                b"abc",
            ]
            .concat(),
            "truncated pickle: BINUNICODE8 at byte 2 needs 4611686018427387904 bytes, but only 3 remain",
        ),
        (
            [
                &[op::PROTO, 4, op::BINUNICODE8][..],
                &u64::MAX.to_le_bytes(),
            ]
            .concat(),
            "truncated pickle: BINUNICODE8 at byte 2 needs 18446744073709551615 bytes, but only 0 remain",
        ),
        (
            [
                &[op::PROTO, 2, op::BINUNICODE][..],
                &u32::MAX.to_le_bytes(),
                b"x",
            ]
            .concat(),
            "truncated pickle: BINUNICODE at byte 2 needs 4294967295 bytes, but only 1 remain",
        ),
        (
            [&[op::PROTO, 2, op::LONG4][..], &i32::MAX.to_le_bytes()].concat(),
            "truncated pickle: LONG4 at byte 2 needs 2147483647 bytes, but only 0 remain",
        ),
        (
            [
                &[op::PROTO, 4, op::FRAME][..],
                &(1u64 << 63).to_le_bytes(),
                b"K\x01.",
            ]
            .concat(),
            "truncated pickle: FRAME at byte 2 needs 9223372036854775808 bytes, but only 3 remain",
        ),
        (
            [&[op::PROTO, 2, op::LONG4][..], &(-5i32).to_le_bytes()].concat(),
            "corrupt pickle at byte 2: LONG4 with negative length -5",
        ),
        (
            vec![op::PROTO, 4, op::SHORT_BINUNICODE, 200, b'a'],
            "truncated pickle: SHORT_BINUNICODE at byte 2 needs 200 bytes, but only 1 remain",
        ),
        (
            [&[op::PROTO, 3, op::GLOBAL][..], b"os\nsys"].concat(),
            "truncated pickle: GLOBAL at byte 2 needs 4 bytes, but only 3 remain",
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(message(&bytes), expected);
    }
}

#[test]
fn memo_ids_are_checked_and_never_allocate_by_value() {
    let mut enc = Enc::new(4);
    enc.op(op::EMPTY_LIST).get(99).op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "corrupt pickle at byte 3: memo index 99 was never stored"
    );
    // A huge id is stored and fetched without a huge memo.
    let mut enc = Enc::new(4);
    enc.str("v")
        .raw(&[op::LONG_BINPUT])
        .raw(&4_000_000_000u32.to_le_bytes());
    enc.op(op::POP)
        .raw(&[op::LONG_BINGET])
        .raw(&4_000_000_000u32.to_le_bytes());
    enc.raw(&[op::LONG_BINGET])
        .raw(&3_999_999_999u32.to_le_bytes());
    assert_eq!(
        message(&enc.out),
        "corrupt pickle at byte 17: memo index 3999999999 was never stored"
    );
    // After an id out of order every MEMOIZE is out of order (it stores at
    // the number of entries, as CPython does); they are limited.
    let mut enc = Enc::new(4);
    enc.str("v")
        .raw(&[op::LONG_BINPUT])
        .raw(&4_000_000_000u32.to_le_bytes());
    enc.raw(&vec![op::MEMOIZE; 100_000]);
    assert!(
        message(&enc.out).ends_with(
            "more than 65536 memo entries stored out of order (CPython numbers them from 0 up)"
        ),
        "{}",
        message(&enc.out)
    );
    // A whole snapshot whose traceback is memoized far past the others.
    let mut enc = Enc::new(2);
    enc.header("Snapshot").op(op::MARK).str("traces");
    enc.header("_Traces").str("_traces").op(op::EMPTY_LIST);
    enc.memoize();
    enc.op(op::MARK);
    for size in [10, 20] {
        enc.op(op::MARK).int(0).int(size);
        if size == 10 {
            enc.str("a.py").int(1).op(op::TUPLE2).op(op::TUPLE1);
            enc.raw(&[op::LONG_BINPUT])
                .raw(&3_000_000_000u32.to_le_bytes());
        } else {
            enc.raw(&[op::LONG_BINGET])
                .raw(&3_000_000_000u32.to_le_bytes());
        }
        enc.int(1).op(op::TUPLE);
    }
    enc.op(op::APPENDS)
        .op(op::SETITEM)
        .op(op::BUILD)
        .str("traceback_limit")
        .int(1);
    enc.op(op::SETITEMS).op(op::BUILD).op(op::STOP);
    let s = decode(&enc.out).unwrap();
    assert_eq!(s.traces().len(), 2);
    assert_eq!(s.tables().traceback_count(), 1);
}

#[test]
fn cycles_through_the_memo_are_just_wrong_shapes() {
    // The trace list contains itself: `l = []; l.append(l)`.
    let mut enc = Enc::new(4);
    enc.header("Snapshot").op(op::MARK).str("traces");
    enc.header("_Traces").str("_traces").op(op::EMPTY_LIST);
    let list = enc.memoize();
    enc.get(list).op(op::APPEND);
    enc.op(op::SETITEM)
        .op(op::BUILD)
        .str("traceback_limit")
        .int(1);
    enc.op(op::SETITEMS).op(op::BUILD).op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "not a tracemalloc snapshot: trace 0: it is a list, expected a tuple"
    );
    // The snapshot's traces are the snapshot itself.
    let mut enc = Enc::new(4);
    enc.header("Snapshot").op(op::MARK).str("traces").get(3);
    enc.str("traceback_limit")
        .int(1)
        .op(op::SETITEMS)
        .op(op::BUILD)
        .op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "not a tracemalloc snapshot: Snapshot.traces is a tracemalloc.Snapshot object, \
         expected a tracemalloc._Traces object"
    );
}

#[test]
fn deep_nesting_is_refused_or_harmless() {
    // 100,000 MARKs.
    let mut bytes = vec![op::PROTO, 4];
    bytes.extend(std::iter::repeat_n(op::MARK, 100_000));
    let e = err(&bytes);
    assert_eq!(
        e.to_string(),
        format!(
            "pickle too complex for a tracemalloc snapshot at byte {}: more than \
             {MAX_MARK_DEPTH} nested MARKs (a snapshot needs 4)",
            2 + MAX_MARK_DEPTH
        )
    );
    // 100,000 nested tuples: a chain, read without recursion.
    let mut bytes = vec![op::PROTO, 4, op::EMPTY_TUPLE];
    bytes.extend(std::iter::repeat_n(op::TUPLE1, 100_000));
    bytes.push(op::STOP);
    assert_eq!(
        message(&bytes),
        "not a tracemalloc snapshot: the pickled object is a tuple, \
         expected a tracemalloc.Snapshot object"
    );
    // Nested lists (as many as the container limit allows) as the only
    // trace.
    let nested = with_trace_item(|e| {
        e.raw(&vec![op::EMPTY_LIST; MAX_CONTAINERS - 10]);
        e.raw(&vec![op::APPEND; MAX_CONTAINERS - 11]);
    });
    assert_eq!(
        message(&nested),
        "not a tracemalloc snapshot: trace 0: it is a list, expected a tuple"
    );
    // More lists than any snapshot has.
    let mut bytes = vec![op::PROTO, 4];
    bytes.extend(std::iter::repeat_n(op::EMPTY_LIST, 2 * MAX_CONTAINERS));
    assert_eq!(
        message(&bytes),
        format!(
            "pickle too complex for a tracemalloc snapshot at byte {}: more than \
             {MAX_CONTAINERS} lists, dicts and objects (a snapshot has 5)",
            2 + MAX_CONTAINERS
        )
    );
    // More values than the stack limit.
    let mut bytes = vec![op::PROTO, 4];
    bytes.extend(std::iter::repeat_n(op::EMPTY_TUPLE, MAX_STACK + 1));
    assert!(matches!(err(&bytes), PickleError::TooComplex { .. }));
}

#[test]
fn stack_discipline_is_enforced() {
    let cases: &[(&[u8], &str)] = &[
        (
            &[op::PROTO, 4, op::TUPLE2, op::STOP],
            "corrupt pickle at byte 2: TUPLE2 needs more values",
        ),
        (
            &[op::PROTO, 4, op::TUPLE, op::STOP],
            "corrupt pickle at byte 2: TUPLE without a MARK",
        ),
        (
            &[op::PROTO, 4, op::EMPTY_LIST, op::MARK, op::APPEND],
            "corrupt pickle at byte 4: APPEND needs more values",
        ),
        (
            &[op::PROTO, 4, op::MARK, op::EMPTY_LIST, op::APPENDS],
            "corrupt pickle at byte 4: APPENDS needs more values",
        ),
        (
            &[op::PROTO, 4, op::EMPTY_TUPLE, op::MARK, op::APPENDS],
            "corrupt pickle at byte 4: APPENDS adds to a tuple, not a list",
        ),
        (
            &[
                op::PROTO,
                4,
                op::EMPTY_DICT,
                op::MARK,
                op::EMPTY_TUPLE,
                op::SETITEMS,
            ],
            "corrupt pickle at byte 5: SETITEMS with an odd number of items (1)",
        ),
        (
            &[
                op::PROTO,
                4,
                op::EMPTY_LIST,
                op::EMPTY_TUPLE,
                op::EMPTY_TUPLE,
                op::SETITEM,
            ],
            "corrupt pickle at byte 5: SETITEM sets items of a list, not a dict",
        ),
        (
            &[op::PROTO, 4, op::EMPTY_LIST, op::EMPTY_DICT, op::BUILD],
            "corrupt pickle at byte 4: BUILD sets the state of a list",
        ),
        (
            &[op::PROTO, 4, op::MEMOIZE],
            "corrupt pickle at byte 2: MEMOIZE needs more values",
        ),
        (
            &[op::PROTO, 4, op::POP],
            "corrupt pickle at byte 2: POP needs more values",
        ),
        (
            &[op::PROTO, 4, op::EMPTY_TUPLE, op::EMPTY_TUPLE, op::STOP],
            "corrupt pickle at byte 4: STOP with 2 values and 0 marks",
        ),
        (
            &[op::PROTO, 4, op::MARK, op::EMPTY_TUPLE, op::STOP],
            "corrupt pickle at byte 4: STOP with 1 values and 1 marks",
        ),
        (
            &[op::PROTO, 4, op::EMPTY_TUPLE],
            "truncated pickle: the data ends at byte 3 without the STOP opcode",
        ),
    ];
    for &(bytes, expected) in cases {
        let m = message(bytes);
        assert!(m.starts_with(expected), "{m}\nexpected: {expected}");
    }
    // POP with nothing above the mark discards the mark; POP_MARK discards
    // everything above it. Both leave a valid snapshot here.
    let base = pickle(4, &sample(), 3);
    let mut noisy = base[..base.len() - 1].to_vec();
    noisy.extend_from_slice(&[op::MARK, op::POP, op::MARK, op::EMPTY_LIST, op::EMPTY_TUPLE]);
    noisy.extend_from_slice(&[op::POP_MARK, op::EMPTY_DICT, op::POP, op::STOP]);
    assert_eq!(
        rows(&decode(&noisy).unwrap()),
        rows(&decode(&base).unwrap())
    );
}

#[test]
fn objects_are_built_once_with_the_attributes_of_a_snapshot() {
    let mut enc = Enc::new(4);
    enc.header("Snapshot")
        .op(op::BUILD)
        .op(op::EMPTY_DICT)
        .op(op::BUILD);
    enc.op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "corrupt pickle at byte 36: BUILD sets the state of a tracemalloc.Snapshot twice"
    );

    let mut enc = Enc::new(4);
    enc.global("tracemalloc", "Snapshot")
        .op(op::EMPTY_TUPLE)
        .op(op::NEWOBJ)
        .op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "not a tracemalloc snapshot: the pickled object has no attributes (no BUILD opcode)"
    );
    let mut enc = Enc::new(4);
    enc.header("Snapshot")
        .str("traceback_limit")
        .int(1)
        .op(op::SETITEM)
        .op(op::BUILD);
    enc.op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "not a tracemalloc snapshot: the Snapshot has no 'traces' attribute"
    );
    let mut enc = Enc::new(4);
    enc.op(op::EMPTY_DICT).op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "not a tracemalloc snapshot: the pickled object is a dict, expected a tracemalloc.Snapshot object"
    );
}

#[test]
fn the_same_trace_twice_counts_twice_as_in_cpython() {
    // `Snapshot([t, t], 1)`: the second is a BINGET of the first.
    let mut enc = Enc::new(4);
    enc.header("Snapshot").op(op::MARK).str("traces");
    enc.header("_Traces").str("_traces").op(op::EMPTY_LIST);
    enc.memoize();
    enc.op(op::MARK);
    enc.trace(&raw(0, 5, &[("a.py", 1)], 1));
    let id = enc.memo - 1;
    enc.get(id).op(op::APPENDS);
    enc.op(op::SETITEM)
        .op(op::BUILD)
        .str("traceback_limit")
        .int(1);
    enc.op(op::SETITEMS).op(op::BUILD).op(op::STOP);
    let s = decode(&enc.out).unwrap();
    assert_eq!(s.traces().len(), 2);
    assert_eq!(s.total_size(), 10);
}

#[test]
fn trailing_bytes_after_stop_are_ignored_like_pickle_load() {
    let mut bytes = pickle(4, &sample(), 2);
    bytes.extend_from_slice(b"\x00garbage\xff");
    assert_eq!(decode(&bytes).unwrap().traces().len(), 5);
}

#[test]
fn strings_are_decoded_like_python() {
    // A lone surrogate, as Python writes a filename that was not UTF-8 on
    // disk ("surrogatepass"); Rust strings cannot hold it.
    let s = decode(&pickle(4, &[raw(0, 1, &[("a\u{e9}b", 1)], 1)], 1)).unwrap();
    assert_eq!(rows(&s)[0].2, frames(&[("a\u{e9}b", 1)]));
    let with_surrogate = with_trace_item(|e| {
        e.op(op::MARK).int(0).int(1);
        e.str_bytes(b"a\xed\xb3\xbfb")
            .int(3)
            .op(op::TUPLE2)
            .op(op::TUPLE1);
        e.int(1).op(op::TUPLE);
    });
    let s = decode(&with_surrogate).unwrap();
    assert_eq!(rows(&s)[0].2, frames(&[("a\u{FFFD}b", 3)]));
    // Anything else that is not UTF-8 is corrupt, as for Python.
    let mut enc = Enc::new(4);
    enc.str_bytes(b"a\xffb").op(op::STOP);
    assert_eq!(
        message(&enc.out),
        "corrupt pickle at byte 2: a string that is not valid UTF-8"
    );
}

/// Real CPython output, from `tests/data/make_fixtures.py`.
const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../tests/data/cpython/proto2.pickle"),
    include_bytes!("../../tests/data/cpython/proto4.pickle"),
    include_bytes!("../../tests/data/cpython/py34_shape.pickle"),
    include_bytes!("../../tests/data/cpython/py36_shape.pickle"),
    include_bytes!("../../tests/data/cpython/large_sizes.pickle"),
    include_bytes!("../../tests/data/cpython/real_workload_early.pickle"),
];

#[test]
fn every_truncation_of_real_pickles_is_an_error() {
    for fixture in FIXTURES {
        assert!(decode(fixture).is_ok());
        for len in 0..fixture.len() {
            match decode(&fixture[..len]) {
                Ok(_) => panic!("a pickle cut to {len} of {} bytes decoded", fixture.len()),
                Err(
                    PickleError::OldProtocol
                    | PickleError::Truncated { .. }
                    | PickleError::MissingStop { .. },
                ) => {}
                Err(other) => panic!("cut to {len}: unexpected {other}"),
            }
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let mut errors = 0;
    let mut total = 0;
    for fixture in FIXTURES.iter().take(5) {
        for i in 0..fixture.len() {
            for value in [
                0x00,
                0xff,
                fixture[i] ^ 0x01,
                fixture[i] ^ 0x80,
                fixture[i].wrapping_add(1),
            ] {
                let mut bytes = fixture.to_vec();
                bytes[i] = value;
                total += 1;
                // Errors display without panicking too.
                if let Err(e) = decode(&bytes) {
                    assert!(!e.to_string().is_empty());
                    errors += 1;
                }
            }
        }
    }
    // Most corruptions are caught (the rest change a number or a name).
    assert!(errors * 2 > total, "{errors} errors of {total}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.pickle");
    let mut enc = Enc::new(4);
    enc.str("os")
        .str("system")
        .op(op::STACK_GLOBAL)
        .op(op::STOP);
    std::fs::write(&path, &enc.out).unwrap();
    let e = Snapshot::load(&path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: not a tracemalloc snapshot: the pickle references os.system (STACK_GLOBAL at byte 16)",
            path.display()
        )
    );
    assert!(matches!(
        e.kind,
        crate::ErrorKind::Pickle(PickleError::ForbiddenGlobal { .. })
    ));
    std::fs::write(&path, pickle(2, &sample(), 4)).unwrap();
    assert_eq!(Snapshot::load(&path).unwrap().traces().len(), 5);
}
