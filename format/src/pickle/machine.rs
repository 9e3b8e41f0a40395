//! The opcode interpreter: one pass over the bytes, a `match` per opcode,
//! values that are `Copy` and eight bytes long.
//!
//! Values are small: integers that fit `i32` inline, everything else an
//! index into an arena of this machine (strings are ranges of the input,
//! never copied until a filename is interned). The memo (see `memo.rs`)
//! stores the million trace tuples of a large pickle as bits.
//!
//! Trace tuples are recognised as soon as they are built: a tuple shaped
//! like `(domain, size, traceback, total_nframe)` (or one of the older
//! shapes) whose fields are in range becomes a [`Trace`] record right
//! away, its traceback interned once per traceback tuple. Frames
//! `(filename, lineno)` are interned the same way. A pickle of a million
//! traces thus never holds a million generic tuples. A tuple that does not
//! convert stays a generic tuple; if it turns out to be a trace after all,
//! the final walk converts it again with the same code, which then reports
//! exactly what is wrong with it. The cost of recognising early is that a
//! pickle holding trace-shaped tuples outside its trace list would leave
//! unused entries in the tables, which no analysis looks at (they have no
//! trace).
//!
//! Three shortcuts make the common case fast, each an exact stand-in for
//! executing the same opcodes one by one:
//!
//! * [`Machine::fast_traces`] recognises the byte pattern of a trace tuple
//!   whose traceback is already interned (nearly every trace) and commits
//!   it in one step, falling back to the general path at the first
//!   difference;
//! * once a traceback tuple is interned, its memo entry is rewritten as a
//!   [`Value::Traceback`], so each later `BINGET` yields the traceback id
//!   directly;
//! * a list records a run of consecutive converted traces as a range
//!   ([`List`]), so the trace list costs nothing, and the converted traces
//!   become the snapshot's without a copy.

use std::borrow::Cow;
use std::fmt;

use rustc_hash::FxHashMap;

use super::memo::{MAX_OUT_OF_ORDER, Memo};
use super::opcodes::{self as op};
use super::{MAX_CONTAINERS, MAX_MARK_DEPTH, MAX_STACK, PickleError};
use crate::model::{
    BuildError, FrameId, Metadata, Snapshot, SnapshotBuilder, StringId, Trace, TracebackId,
};

/// Decodes a pickled snapshot; see the module documentation.
pub(super) fn decode(data: &[u8]) -> Result<Snapshot, PickleError> {
    if !super::has_pickle_header(data) {
        return Err(PickleError::OldProtocol);
    }
    // Every value, memo entry and arena item takes at least one byte of
    // input, so below 4 GiB every count fits the `u32` indexes. A real
    // snapshot that large would hold some 250 million traces.
    if u32::try_from(data.len()).is_err() {
        return Err(PickleError::TooLarge {
            len: data.len() as u64,
        });
    }
    let mut machine = Machine::new(data);
    let top = machine.run()?;
    machine.finish(top)
}

/// One of the two classes a snapshot pickle may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Class {
    Snapshot,
    Traces,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Snapshot => "tracemalloc.Snapshot",
            Class::Traces => "tracemalloc._Traces",
        }
    }
}

/// The shape of a trace tuple, which tells which CPython versions wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    /// `(size, traceback)`: CPython 3.4 and 3.5.
    SizeTraceback,
    /// `(domain, size, traceback)`: CPython 3.6 to 3.8.
    Domain,
    /// `(domain, size, traceback, total_nframe)`: CPython 3.9 and later.
    TotalNframe,
}

impl Shape {
    fn producer(self) -> &'static str {
        match self {
            Shape::SizeTraceback => "CPython 3.4-3.5 tracemalloc",
            Shape::Domain => "CPython 3.6-3.8 tracemalloc",
            Shape::TotalNframe => "CPython 3.9+ tracemalloc",
        }
    }

    fn arity(self) -> usize {
        match self {
            Shape::SizeTraceback => 2,
            Shape::Domain => 3,
            Shape::TotalNframe => 4,
        }
    }
}

/// A value on the stack, in the memo or inside a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Value {
    /// An integer that fits `i32` (what `BININT*` push).
    Int(i32),
    /// A larger integer, in [`Machine::big_ints`].
    BigInt(u32),
    /// An integer beyond `i128`, which no field of a snapshot accepts.
    HugeInt,
    /// A string, in [`Machine::strs`].
    Str(u32),
    /// A tuple, in [`Machine::tuples`].
    Tuple(u32),
    /// A list, in [`Machine::lists`].
    List(u32),
    /// A dict, in [`Machine::dicts`].
    Dict(u32),
    /// One of the allowed classes.
    Global(Class),
    /// An instance of an allowed class, in [`Machine::objects`].
    Object(u32),
    /// A `(filename, lineno)` tuple, already interned.
    Frame(FrameId),
    /// A trace tuple, already converted, in [`Machine::traces`].
    Trace(u32, Shape),
    /// A traceback tuple, already interned with this `total_nframe`
    /// (encoded by [`encode_total`]). The memo entry of a traceback tuple
    /// becomes one once the tuple is interned, so that each later `BINGET`
    /// of it yields the traceback without another lookup.
    Traceback { total: u16, id: TracebackId },
}

/// `total_nframe` as stored in [`Value::Traceback`]: 0 for none, `n + 1`
/// for `n`; `None` when it does not fit (CPython's never reach 65535).
fn encode_total(total_nframe: Option<u32>) -> Option<u16> {
    match total_nframe {
        None => Some(0),
        Some(n) => u16::try_from(n).ok()?.checked_add(1),
    }
}

// The hot loop copies values around by the million; keep them one word.
const _: () = assert!(size_of::<Value>() == 8);

/// A string of the pickle: a range of the input, validated as UTF-8 (with
/// Python's `surrogatepass`), interned into the snapshot on first use as a
/// filename.
#[derive(Clone, Copy, Debug)]
struct StrEntry {
    /// Offsets in the input, which is smaller than 4 GiB.
    start: u32,
    end: u32,
    id: Option<StringId>,
}

impl StrEntry {
    fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A tuple: its items are `items[start..start + len]`.
#[derive(Clone, Copy, Debug)]
struct TupleEntry {
    start: u32,
    len: u32,
}

/// A list. Appending a trace that directly follows the list's last trace
/// (in conversion order) only extends `run`, so the list of a million
/// traces CPython writes costs two integers instead of eight megabytes.
#[derive(Clone, Debug, Default)]
struct List {
    /// `traces[start..start + len]`, all of one shape: the list's first
    /// items.
    run: Option<TraceRun>,
    /// The items after the run.
    rest: Vec<Value>,
}

#[derive(Clone, Copy, Debug)]
struct TraceRun {
    start: u32,
    len: u32,
    shape: Shape,
}

impl List {
    fn extend(&mut self, items: &[Value]) {
        let mut taken = 0;
        if self.rest.is_empty() {
            if self.run.is_none()
                && let Some(&Value::Trace(start, shape)) = items.first()
            {
                self.run = Some(TraceRun {
                    start,
                    len: 0,
                    shape,
                });
            }
            if let Some(run) = &mut self.run {
                // The items that continue the run, compared a word at a
                // time: the run's indexes are below `u32::MAX`.
                let mut next = run.start + run.len;
                for &item in items {
                    if item != Value::Trace(next, run.shape) || next == u32::MAX {
                        break;
                    }
                    next += 1;
                    taken += 1;
                }
                run.len = next - run.start;
            }
        }
        self.rest.extend_from_slice(&items[taken..]);
    }

    fn len(&self) -> usize {
        self.run.map_or(0, |r| r.len as usize) + self.rest.len()
    }

    /// Every item, the run expanded.
    fn values(&self) -> Vec<Value> {
        let mut values = Vec::with_capacity(self.len());
        if let Some(run) = self.run {
            values.extend((run.start..run.start + run.len).map(|k| Value::Trace(k, run.shape)));
        }
        values.extend_from_slice(&self.rest);
        values
    }
}

/// An instance of `Snapshot` or `_Traces`, with the state `BUILD` gave it.
#[derive(Clone, Copy, Debug)]
struct Object {
    class: Class,
    state: Option<Value>,
}

/// Why an integer field was refused.
#[derive(Clone, Copy, Debug)]
enum IntIssue {
    NotInt(&'static str),
    /// Out of the field's range (`None`: wider than 128 bits).
    OutOfRange(Option<i128>),
}

/// Why a trace could not be converted. Cheap to make and to drop, since the
/// eager conversion of trace-shaped tuples makes and drops it on failure;
/// only the final walk formats it.
#[derive(Clone, Copy, Debug)]
enum Problem {
    NotTuple(&'static str),
    Arity(usize),
    Field {
        field: &'static str,
        max: u64,
        issue: IntIssue,
    },
    Traceback(&'static str),
    FrameNotTuple {
        frame: usize,
        kind: &'static str,
    },
    FrameArity {
        frame: usize,
        len: usize,
    },
    Filename {
        frame: usize,
        kind: &'static str,
    },
    Lineno {
        frame: usize,
        issue: IntIssue,
    },
    Build(BuildError),
}

fn fmt_int_issue(
    f: &mut fmt::Formatter<'_>,
    what: fmt::Arguments<'_>,
    max: u64,
    issue: IntIssue,
) -> fmt::Result {
    match issue {
        IntIssue::NotInt(kind) => write!(f, "{what} is {kind}, expected an int"),
        IntIssue::OutOfRange(Some(n)) => write!(f, "{what} {n} is out of range 0..={max}"),
        IntIssue::OutOfRange(None) => {
            write!(
                f,
                "{what} is an integer wider than 128 bits (at most {max})"
            )
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Problem::NotTuple(kind) => write!(f, "it is {kind}, expected a tuple"),
            Problem::Arity(n) => write!(
                f,
                "it has {n} items; CPython writes (size, traceback), (domain, size, traceback) \
                 or (domain, size, traceback, total_nframe)"
            ),
            Problem::Field { field, max, issue } => {
                fmt_int_issue(f, format_args!("its {field}"), max, issue)
            }
            Problem::Traceback(kind) => {
                write!(f, "its traceback is {kind}, expected a tuple of frames")
            }
            Problem::FrameNotTuple { frame, kind } => write!(
                f,
                "frame {frame} of its traceback is {kind}, expected a (filename, lineno) tuple"
            ),
            Problem::FrameArity { frame, len } => write!(
                f,
                "frame {frame} of its traceback has {len} items, expected (filename, lineno)"
            ),
            Problem::Filename { frame, kind } => write!(
                f,
                "the filename of frame {frame} of its traceback is {kind}, expected a str"
            ),
            Problem::Lineno { frame, issue } => fmt_int_issue(
                f,
                format_args!("the lineno of frame {frame} of its traceback"),
                u64::from(u32::MAX),
                issue,
            ),
            Problem::Build(e) => e.fmt(f),
        }
    }
}

/// What went wrong interning a frame, before the caller adds its position.
enum FrameIssue {
    Lineno(IntIssue),
    Build(BuildError),
}

struct Machine<'a> {
    data: &'a [u8],
    /// Offset of the next byte to read.
    pos: usize,
    /// The protocol of the first `PROTO` opcode.
    protocol: u8,
    stack: Vec<Value>,
    /// Stack lengths at each open `MARK`; the last one is the fence below
    /// which no opcode may pop, as in CPython's unpickler.
    marks: Vec<usize>,
    memo: Memo,
    big_ints: Vec<i128>,
    strs: Vec<StrEntry>,
    tuples: Vec<TupleEntry>,
    /// The traceback each tuple was last interned as, with the
    /// `total_nframe` it was interned with (a traceback's identity includes
    /// it). A map, since few tuples are tracebacks, and the fast path reads
    /// interned tracebacks from the memo instead.
    tb_cache: FxHashMap<u32, (TracebackId, Option<u32>)>,
    /// The items of every tuple, back to back.
    items: Vec<Value>,
    lists: Vec<List>,
    dicts: Vec<Vec<(Value, Value)>>,
    objects: Vec<Object>,
    traces: Vec<Trace>,
    builder: SnapshotBuilder,
    frame_scratch: Vec<FrameId>,
}

/// Tuple 0 is the empty tuple, shared by every `EMPTY_TUPLE`.
const EMPTY_TUPLE: Value = Value::Tuple(0);

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Machine<'a> {
        Machine {
            data,
            pos: 0,
            protocol: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::default(),
            big_ints: Vec::new(),
            strs: Vec::new(),
            tuples: vec![TupleEntry { start: 0, len: 0 }],
            tb_cache: FxHashMap::default(),
            items: Vec::new(),
            lists: Vec::new(),
            dicts: Vec::new(),
            objects: Vec::new(),
            traces: Vec::new(),
            builder: SnapshotBuilder::new(0),
            frame_scratch: Vec::new(),
        }
    }

    /// Executes opcodes up to `STOP` and returns the pickled object.
    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            let at = self.pos;
            let Some(&code) = self.data.get(at) else {
                return Err(PickleError::MissingStop {
                    len: self.data.len() as u64,
                });
            };
            if matches!(code, op::MARK | op::BININT1 | op::BININT2 | op::BININT)
                && self.fast_traces(at)
            {
                continue;
            }
            self.pos = at + 1;
            match code {
                op::MARK => {
                    if self.marks.len() >= MAX_MARK_DEPTH {
                        return Err(PickleError::TooComplex {
                            offset: at as u64,
                            message: format!(
                                "more than {MAX_MARK_DEPTH} nested MARKs (a snapshot needs 4)"
                            ),
                        });
                    }
                    self.marks.push(self.stack.len());
                }
                op::BININT1 => {
                    let [b] = self.arg::<1>(at, code)?;
                    self.push(Value::Int(i32::from(b)), at)?;
                }
                op::BININT2 => {
                    let v = u16::from_le_bytes(self.arg::<2>(at, code)?);
                    self.push(Value::Int(i32::from(v)), at)?;
                }
                op::BININT => {
                    let v = i32::from_le_bytes(self.arg::<4>(at, code)?);
                    self.push(Value::Int(v), at)?;
                }
                op::LONG1 => {
                    let [n] = self.arg::<1>(at, code)?;
                    let (start, end) = self.take(u64::from(n), at, code)?;
                    let v = self.long(start, end);
                    self.push(v, at)?;
                }
                op::LONG4 => {
                    let n = i32::from_le_bytes(self.arg::<4>(at, code)?);
                    let n = u64::try_from(n)
                        .map_err(|_| corrupt(at, format!("LONG4 with negative length {n}")))?;
                    let (start, end) = self.take(n, at, code)?;
                    let v = self.long(start, end);
                    self.push(v, at)?;
                }
                op::SHORT_BINUNICODE => {
                    let [n] = self.arg::<1>(at, code)?;
                    self.string(u64::from(n), at, code)?;
                }
                op::BINUNICODE => {
                    let n = u32::from_le_bytes(self.arg::<4>(at, code)?);
                    self.string(u64::from(n), at, code)?;
                }
                op::BINUNICODE8 => {
                    let n = u64::from_le_bytes(self.arg::<8>(at, code)?);
                    self.string(n, at, code)?;
                }
                op::EMPTY_TUPLE => self.push(EMPTY_TUPLE, at)?,
                op::TUPLE1 | op::TUPLE2 | op::TUPLE3 => {
                    let n = usize::from(code - op::TUPLE1 + 1);
                    if self.stack.len() < self.fence() + n {
                        return Err(underflow(at, code));
                    }
                    let v = self.make_tuple(self.stack.len() - n, at)?;
                    self.push(v, at)?;
                }
                op::TUPLE => {
                    let mark = self.pop_mark(at, code)?;
                    let v = self.make_tuple(mark, at)?;
                    self.push(v, at)?;
                }
                op::EMPTY_LIST => {
                    self.check_containers(at)?;
                    let id = index_u32(self.lists.len(), at)?;
                    self.lists.push(List::default());
                    self.push(Value::List(id), at)?;
                }
                op::EMPTY_DICT => {
                    self.check_containers(at)?;
                    let id = index_u32(self.dicts.len(), at)?;
                    self.dicts.push(Vec::new());
                    self.push(Value::Dict(id), at)?;
                }
                op::APPEND => {
                    let v = self.pop(at, code)?;
                    let list = self.top_list(self.stack.len(), at, code)?;
                    self.lists[list].extend(&[v]);
                }
                op::APPENDS => {
                    let mark = self.pop_mark(at, code)?;
                    let list = self.top_list(mark, at, code)?;
                    self.lists[list].extend(&self.stack[mark..]);
                    self.stack.truncate(mark);
                }
                op::SETITEM => {
                    let value = self.pop(at, code)?;
                    let key = self.pop(at, code)?;
                    let dict = self.top_dict(self.stack.len(), at, code)?;
                    self.dicts[dict].push((key, value));
                }
                op::SETITEMS => {
                    let mark = self.pop_mark(at, code)?;
                    if !(self.stack.len() - mark).is_multiple_of(2) {
                        return Err(corrupt(
                            at,
                            format!(
                                "SETITEMS with an odd number of items ({})",
                                self.stack.len() - mark
                            ),
                        ));
                    }
                    let dict = self.top_dict(mark, at, code)?;
                    let pairs = self.stack[mark..].chunks_exact(2).map(|kv| (kv[0], kv[1]));
                    self.dicts[dict].extend(pairs);
                    self.stack.truncate(mark);
                }
                op::MEMOIZE => {
                    let v = self.top(at, code)?;
                    self.memo_put(self.memo.next_id(), v, at)?;
                }
                op::BINPUT => {
                    let [i] = self.arg::<1>(at, code)?;
                    let v = self.top(at, code)?;
                    self.memo_put(usize::from(i), v, at)?;
                }
                op::LONG_BINPUT => {
                    let i = u32::from_le_bytes(self.arg::<4>(at, code)?);
                    let v = self.top(at, code)?;
                    self.memo_put(i as usize, v, at)?;
                }
                op::BINGET => {
                    let [i] = self.arg::<1>(at, code)?;
                    let v = self.memo_get(usize::from(i), at)?;
                    self.push(v, at)?;
                }
                op::LONG_BINGET => {
                    let i = u32::from_le_bytes(self.arg::<4>(at, code)?);
                    let v = self.memo_get(i as usize, at)?;
                    self.push(v, at)?;
                }
                op::POP => {
                    // As in CPython: with nothing above the fence, POP
                    // discards the mark itself.
                    if self.stack.len() > self.fence() {
                        self.stack.pop();
                    } else if self.marks.pop().is_none() {
                        return Err(underflow(at, code));
                    }
                }
                op::POP_MARK => {
                    let mark = self.pop_mark(at, code)?;
                    self.stack.truncate(mark);
                }
                op::GLOBAL => {
                    let module = self.line(at, code)?;
                    let name = self.line(at, code)?;
                    let v = self.global(module, name, at, code)?;
                    self.push(v, at)?;
                }
                op::STACK_GLOBAL => {
                    let name = self.pop(at, code)?;
                    let module = self.pop(at, code)?;
                    let (Some(module), Some(name)) = (self.str_bytes(module), self.str_bytes(name))
                    else {
                        return Err(corrupt(
                            at,
                            format!(
                                "STACK_GLOBAL needs a module and a name as strings, got {} and {}",
                                self.kind(module),
                                self.kind(name)
                            ),
                        ));
                    };
                    let v = self.global(module, name, at, code)?;
                    self.push(v, at)?;
                }
                op::NEWOBJ => {
                    let args = self.pop(at, code)?;
                    let class = self.pop(at, code)?;
                    let v = self.new_object(class, args, None, at, code)?;
                    self.push(v, at)?;
                }
                op::NEWOBJ_EX => {
                    let kwargs = self.pop(at, code)?;
                    let args = self.pop(at, code)?;
                    let class = self.pop(at, code)?;
                    let v = self.new_object(class, args, Some(kwargs), at, code)?;
                    self.push(v, at)?;
                }
                op::BUILD => {
                    let state = self.pop(at, code)?;
                    let target = self.top(at, code)?;
                    self.build(target, state, at)?;
                }
                op::PROTO => {
                    let [protocol] = self.arg::<1>(at, code)?;
                    match protocol {
                        0 | 1 => return Err(PickleError::OldProtocol),
                        2..=5 => {}
                        _ => return Err(PickleError::UnsupportedProtocol { protocol }),
                    }
                    if at == 0 {
                        self.protocol = protocol;
                    }
                }
                op::FRAME => {
                    // Framing only groups opcodes for buffered reading; the
                    // whole pickle is in memory, so the frames are ignored,
                    // but a frame longer than the data means truncation.
                    let n = u64::from_le_bytes(self.arg::<8>(at, code)?);
                    self.check_len(n, at, code)?;
                }
                op::STOP => {
                    if self.stack.len() != 1 || !self.marks.is_empty() {
                        return Err(corrupt(
                            at,
                            format!(
                                "STOP with {} values and {} marks on the stack \
                                 (a pickle ends with exactly one value)",
                                self.stack.len(),
                                self.marks.len()
                            ),
                        ));
                    }
                    return self.pop(at, code);
                }
                op::REDUCE => {
                    let callable = self
                        .stack
                        .len()
                        .checked_sub(2)
                        .and_then(|i| self.stack.get(i).copied());
                    return Err(match callable {
                        Some(Value::Global(class)) => PickleError::Call {
                            offset: at as u64,
                            callable: class.name().to_owned(),
                        },
                        _ => unsupported(at, code),
                    });
                }
                _ => return Err(unsupported(at, code)),
            }
        }
    }

    /// The fast path for the opcodes of trace tuples, which are nearly all
    /// of a snapshot pickle: `MARK int int get int TUPLE` (3.9+), `int int
    /// get TUPLE3` (3.6-3.8) or `int get TUPLE2` (3.4-3.5), where the ints
    /// are small and non-negative and `get` fetches a traceback tuple
    /// already interned with this `total_nframe`, each followed by
    /// `MEMOIZE`. While the bytes at `at` are exactly that, this does what
    /// executing them one by one would do, a trace at a time, and returns
    /// whether it did anything; at the first difference it stops, changing
    /// nothing of that trace, and the general path executes it (and
    /// reports any problem). Traces come in runs (of up to 1000, between
    /// `MARK` and `APPENDS`), so this loops here rather than in `run`.
    #[inline]
    fn fast_traces(&mut self, at: usize) -> bool {
        let data = self.data;
        let mut pos = at;
        while let Some(next) = self.fast_trace(&data[pos..]) {
            pos = data.len() - next.len();
        }
        self.pos = pos;
        pos != at
    }

    /// One trace of [`fast_traces`](Self::fast_traces): the bytes after
    /// it if it took the fast path.
    #[inline(always)]
    fn fast_trace<'b>(&mut self, bytes: &'b [u8]) -> Option<&'b [u8]> {
        // Whatever the shape, the general path would push at most four
        // values and one mark; leave the limits to it.
        if self.stack.len() + 4 >= MAX_STACK || self.marks.len() >= MAX_MARK_DEPTH {
            return None;
        }
        let parsed = parse_trace(bytes)?;
        let traceback = self.memo_traceback(parsed.memo_id, parsed.total_nframe)?;
        let id = u32::try_from(self.traces.len()).ok()?;
        self.traces.push(Trace {
            domain: parsed.domain,
            size: u64::from(parsed.size),
            traceback,
        });
        self.stack.push(Value::Trace(id, parsed.shape));
        match parsed.rest {
            [op::MEMOIZE, after @ ..] if self.memo.memoize_trace(id, parsed.shape) => Some(after),
            rest => Some(rest),
        }
    }

    /// The traceback that memo entry `memo_id` holds, if it is a traceback
    /// tuple already interned (with `total_nframe` or, on a second try,
    /// with another). Rewrites the entry as a [`Value::Traceback`] so that
    /// the next fetch finds the id in the entry itself.
    #[inline(always)]
    fn memo_traceback(&mut self, memo_id: usize, total_nframe: Option<u32>) -> Option<TracebackId> {
        let encoded = encode_total(total_nframe)?;
        let id = match self.memo.get(memo_id)? {
            Value::Traceback { total, id } if total == encoded => return Some(id),
            Value::Traceback { id, .. } => self.reintern(id, total_nframe).ok()?,
            // The empty tuple is left alone: as a traceback it becomes
            // `<unknown>:0`, which would change its length for other uses.
            Value::Tuple(t) if t != 0 => self.cached_traceback(t, total_nframe)?,
            _ => return None,
        };
        self.memo
            .replace(memo_id, Value::Traceback { total: encoded, id });
        Some(id)
    }

    // ----- reading the input -----

    /// The `N` bytes of an opcode's fixed-size argument.
    #[inline]
    fn arg<const N: usize>(&mut self, at: usize, code: u8) -> Result<[u8; N], PickleError> {
        match self.data[self.pos..].first_chunk::<N>() {
            Some(bytes) => {
                self.pos += N;
                Ok(*bytes)
            }
            None => Err(self.truncated(N as u64, at, code)),
        }
    }

    fn check_len(&self, n: u64, at: usize, code: u8) -> Result<(), PickleError> {
        if n <= (self.data.len() - self.pos) as u64 {
            Ok(())
        } else {
            Err(self.truncated(n, at, code))
        }
    }

    /// The range of the next `n` bytes, checked against the input before
    /// anything trusts `n`.
    #[inline]
    fn take(&mut self, n: u64, at: usize, code: u8) -> Result<(usize, usize), PickleError> {
        self.check_len(n, at, code)?;
        // `n` fits the remaining input, hence `usize`.
        let start = self.pos;
        self.pos += n as usize;
        Ok((start, self.pos))
    }

    fn truncated(&self, needed: u64, at: usize, code: u8) -> PickleError {
        PickleError::Truncated {
            offset: at as u64,
            opcode: op::name(code).unwrap_or("?"),
            needed,
            available: (self.data.len() - self.pos) as u64,
        }
    }

    /// A newline-terminated argument (of `GLOBAL`), without the newline.
    fn line(&mut self, at: usize, code: u8) -> Result<&'a [u8], PickleError> {
        let data: &'a [u8] = self.data;
        let rest = &data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(n) => {
                self.pos += n + 1;
                Ok(&rest[..n])
            }
            None => Err(PickleError::Truncated {
                offset: at as u64,
                opcode: op::name(code).unwrap_or("?"),
                needed: rest.len() as u64 + 1,
                available: rest.len() as u64,
            }),
        }
    }

    fn string(&mut self, n: u64, at: usize, code: u8) -> Result<(), PickleError> {
        let (start, end) = self.take(n, at, code)?;
        let bytes = &self.data[start..end];
        if std::str::from_utf8(bytes).is_err() && decode_surrogatepass(bytes).is_none() {
            return Err(corrupt(at, "a string that is not valid UTF-8".to_owned()));
        }
        let id = index_u32(self.strs.len(), at)?;
        // The input is smaller than 4 GiB (checked first), so offsets fit.
        self.strs.push(StrEntry {
            start: start as u32,
            end: end as u32,
            id: None,
        });
        self.push(Value::Str(id), at)
    }

    /// A `LONG1`/`LONG4` integer: little-endian two's complement.
    fn long(&mut self, start: usize, end: usize) -> Value {
        let bytes = &self.data[start..end];
        let Some(&last) = bytes.last() else {
            return Value::Int(0);
        };
        let fill = if last & 0x80 != 0 { 0xff } else { 0 };
        // Bytes past the sixteenth must all be sign extension for the value
        // to fit i128 (and the sixteenth must carry the same sign).
        let (low, high) = bytes.split_at(bytes.len().min(16));
        if !high.iter().all(|&b| b == fill) || (!high.is_empty() && (low[15] ^ fill) & 0x80 != 0) {
            return Value::HugeInt;
        }
        let mut buf = [fill; 16];
        buf[..low.len()].copy_from_slice(low);
        let n = i128::from_le_bytes(buf);
        match i32::try_from(n) {
            Ok(small) => Value::Int(small),
            Err(_) => match u32::try_from(self.big_ints.len()) {
                Ok(id) => {
                    self.big_ints.push(n);
                    Value::BigInt(id)
                }
                // Four billion big integers cannot come from a real file;
                // treat the excess as out of range for any field.
                Err(_) => Value::HugeInt,
            },
        }
    }

    // ----- the stack and the memo -----

    #[inline]
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    /// Refuses more lists, dicts and objects than [`MAX_CONTAINERS`]: each
    /// costs tens of bytes for one byte of input, and a snapshot has five.
    fn check_containers(&self, at: usize) -> Result<(), PickleError> {
        if self.lists.len() + self.dicts.len() + self.objects.len() < MAX_CONTAINERS {
            Ok(())
        } else {
            Err(PickleError::TooComplex {
                offset: at as u64,
                message: format!(
                    "more than {MAX_CONTAINERS} lists, dicts and objects (a snapshot has 5)"
                ),
            })
        }
    }

    #[inline]
    fn push(&mut self, v: Value, at: usize) -> Result<(), PickleError> {
        if self.stack.len() >= MAX_STACK {
            return Err(PickleError::TooComplex {
                offset: at as u64,
                message: format!("more than {MAX_STACK} values on the stack"),
            });
        }
        self.stack.push(v);
        Ok(())
    }

    #[inline]
    fn pop(&mut self, at: usize, code: u8) -> Result<Value, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(at, code));
        }
        self.stack.pop().ok_or_else(|| underflow(at, code))
    }

    #[inline]
    fn top(&self, at: usize, code: u8) -> Result<Value, PickleError> {
        if self.stack.len() <= self.fence() {
            return Err(underflow(at, code));
        }
        self.stack
            .last()
            .copied()
            .ok_or_else(|| underflow(at, code))
    }

    fn pop_mark(&mut self, at: usize, code: u8) -> Result<usize, PickleError> {
        self.marks.pop().ok_or_else(|| {
            corrupt(
                at,
                format!("{} without a MARK", op::name(code).unwrap_or("?")),
            )
        })
    }

    /// The container just below stack position `end` (the items of
    /// `APPENDS`/`SETITEMS` start at `end`), which must be above the fence.
    fn container_below(&self, end: usize, at: usize, code: u8) -> Result<Value, PickleError> {
        if end <= self.fence() {
            return Err(underflow(at, code));
        }
        self.stack
            .get(end - 1)
            .copied()
            .ok_or_else(|| underflow(at, code))
    }

    fn top_list(&self, end: usize, at: usize, code: u8) -> Result<usize, PickleError> {
        match self.container_below(end, at, code)? {
            Value::List(l) => Ok(l as usize),
            other => Err(corrupt(
                at,
                format!(
                    "{} adds to {}, not a list",
                    op::name(code).unwrap_or("?"),
                    self.kind(other)
                ),
            )),
        }
    }

    fn top_dict(&self, end: usize, at: usize, code: u8) -> Result<usize, PickleError> {
        match self.container_below(end, at, code)? {
            Value::Dict(d) => Ok(d as usize),
            other => Err(corrupt(
                at,
                format!(
                    "{} sets items of {}, not a dict",
                    op::name(code).unwrap_or("?"),
                    self.kind(other)
                ),
            )),
        }
    }

    #[inline]
    fn memo_put(&mut self, id: usize, v: Value, at: usize) -> Result<(), PickleError> {
        if self.memo.put(id, v) {
            Ok(())
        } else {
            Err(PickleError::TooComplex {
                offset: at as u64,
                message: format!(
                    "more than {MAX_OUT_OF_ORDER} memo entries stored out of order \
                     (CPython numbers them from 0 up)"
                ),
            })
        }
    }

    #[inline]
    fn memo_get(&self, id: usize, at: usize) -> Result<Value, PickleError> {
        self.memo
            .get(id)
            .ok_or_else(|| corrupt(at, format!("memo index {id} was never stored")))
    }

    // ----- objects -----

    fn global(
        &self,
        module: &[u8],
        name: &[u8],
        at: usize,
        code: u8,
    ) -> Result<Value, PickleError> {
        match (module, name) {
            (b"tracemalloc", b"Snapshot") => Ok(Value::Global(Class::Snapshot)),
            (b"tracemalloc", b"_Traces") => Ok(Value::Global(Class::Traces)),
            _ => Err(PickleError::ForbiddenGlobal {
                offset: at as u64,
                opcode: op::name(code).unwrap_or("?"),
                global: format!("{}.{}", printable(module), printable(name)),
            }),
        }
    }

    /// `NEWOBJ` and `NEWOBJ_EX`: `cls.__new__(cls)`, which for the two
    /// allowed classes is `object.__new__` and runs no code. Arguments are
    /// refused: a snapshot pickle passes none.
    fn new_object(
        &mut self,
        class: Value,
        args: Value,
        kwargs: Option<Value>,
        at: usize,
        code: u8,
    ) -> Result<Value, PickleError> {
        let opcode = op::name(code).unwrap_or("?");
        let Value::Global(class) = class else {
            return Err(corrupt(
                at,
                format!("{opcode} needs a class, got {}", self.kind(class)),
            ));
        };
        let no_args = self.tuple_len(args) == Some(0);
        let no_kwargs = match kwargs {
            None => true,
            Some(Value::Dict(d)) => self.dicts[d as usize].is_empty(),
            Some(_) => false,
        };
        if !no_args || !no_kwargs {
            return Err(PickleError::Call {
                offset: at as u64,
                callable: format!("{}.__new__ with arguments", class.name()),
            });
        }
        self.check_containers(at)?;
        let id = index_u32(self.objects.len(), at)?;
        self.objects.push(Object { class, state: None });
        Ok(Value::Object(id))
    }

    /// `BUILD`: sets an object's state (its `__dict__`, checked later).
    fn build(&mut self, target: Value, state: Value, at: usize) -> Result<(), PickleError> {
        let Value::Object(o) = target else {
            return Err(corrupt(
                at,
                format!(
                    "BUILD sets the state of {}; a snapshot pickle only builds tracemalloc objects",
                    self.kind(target)
                ),
            ));
        };
        let object = &mut self.objects[o as usize];
        if object.state.is_some() {
            return Err(corrupt(
                at,
                format!("BUILD sets the state of a {} twice", object.class.name()),
            ));
        }
        object.state = Some(state);
        Ok(())
    }

    /// Makes a tuple of `stack[start..]` and removes those items. A tuple
    /// that converts to a trace or a frame becomes one right away (see the
    /// module documentation); any other is stored as a generic tuple.
    fn make_tuple(&mut self, start: usize, at: usize) -> Result<Value, PickleError> {
        let n = self.stack.len() - start;
        let converted = match self.stack[start..] {
            [Value::Str(s), lineno] => self.frame(s, lineno).ok().map(Value::Frame),
            [
                Value::Int(_) | Value::BigInt(_),
                Value::Tuple(_) | Value::Traceback { .. },
            ]
            | [
                Value::Int(_) | Value::BigInt(_),
                Value::Int(_) | Value::BigInt(_),
                Value::Tuple(_) | Value::Traceback { .. },
            ]
            | [
                Value::Int(_) | Value::BigInt(_),
                Value::Int(_) | Value::BigInt(_),
                Value::Tuple(_) | Value::Traceback { .. },
                Value::Int(_) | Value::BigInt(_),
            ] => {
                let mut fields = [EMPTY_TUPLE; 4];
                fields[..n].copy_from_slice(&self.stack[start..]);
                match self.trace(&fields[..n]) {
                    Ok((trace, shape)) => {
                        let id = index_u32(self.traces.len(), at)?;
                        self.traces.push(trace);
                        Some(Value::Trace(id, shape))
                    }
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let v = match converted {
            Some(v) => v,
            None if n == 0 => EMPTY_TUPLE,
            None => {
                let id = index_u32(self.tuples.len(), at)?;
                let first = index_u32(self.items.len(), at)?;
                let len = index_u32(n, at)?;
                index_u32(self.items.len() + n, at)?;
                self.items.extend_from_slice(&self.stack[start..]);
                self.tuples.push(TupleEntry { start: first, len });
                Value::Tuple(id)
            }
        };
        self.stack.truncate(start);
        Ok(v)
    }

    // ----- conversion to the snapshot model -----

    /// Interns the frame `(filename, lineno)`.
    fn frame(&mut self, filename: u32, lineno: Value) -> Result<FrameId, FrameIssue> {
        let lineno = self
            .unsigned(lineno, u64::from(u32::MAX))
            .map_err(FrameIssue::Lineno)? as u32;
        let name = self.string_id(filename).map_err(FrameIssue::Build)?;
        self.builder
            .intern_frame_ids(name, lineno, None)
            .map_err(FrameIssue::Build)
    }

    fn string_id(&mut self, s: u32) -> Result<StringId, BuildError> {
        let entry = self.strs[s as usize];
        if let Some(id) = entry.id {
            return Ok(id);
        }
        let text = decode_str(&self.data[entry.range()]);
        let id = self.builder.intern_str(&text)?;
        self.strs[s as usize].id = Some(id);
        Ok(id)
    }

    /// Converts the fields of a trace tuple.
    fn trace(&mut self, fields: &[Value]) -> Result<(Trace, Shape), Problem> {
        let (shape, domain, size, traceback, total_nframe) = match *fields {
            [size, tb] => (Shape::SizeTraceback, None, size, tb, None),
            [domain, size, tb] => (Shape::Domain, Some(domain), size, tb, None),
            [domain, size, tb, n] => (Shape::TotalNframe, Some(domain), size, tb, Some(n)),
            _ => return Err(Problem::Arity(fields.len())),
        };
        let field = |field, max| move |issue| Problem::Field { field, max, issue };
        let u32_max = u64::from(u32::MAX);
        let domain = match domain {
            Some(d) => self
                .unsigned(d, u32_max)
                .map_err(field("domain", u32_max))? as u32,
            None => 0,
        };
        let size = self
            .unsigned(size, u64::MAX)
            .map_err(field("size", u64::MAX))?;
        let total_nframe = match total_nframe {
            Some(n) => Some(
                self.unsigned(n, u32_max)
                    .map_err(field("total_nframe", u32_max))? as u32,
            ),
            None => None,
        };
        let traceback = match traceback {
            Value::Tuple(tb) => self.traceback(tb, total_nframe)?,
            Value::Traceback { total, id } if Some(total) == encode_total(total_nframe) => id,
            Value::Traceback { id, .. } => self.reintern(id, total_nframe)?,
            other => return Err(Problem::Traceback(self.kind(other))),
        };
        let trace = Trace {
            domain,
            size,
            traceback,
        };
        Ok((trace, shape))
    }

    /// The traceback tuple `t` was interned as, if it was with this
    /// `total_nframe`.
    #[inline]
    fn cached_traceback(&self, t: u32, total_nframe: Option<u32>) -> Option<TracebackId> {
        match self.tb_cache.get(&t) {
            Some(&(id, total)) if total == total_nframe => Some(id),
            _ => None,
        }
    }

    /// Interns a traceback tuple, once per tuple (and `total_nframe`).
    fn traceback(&mut self, t: u32, total_nframe: Option<u32>) -> Result<TracebackId, Problem> {
        if let Some(id) = self.cached_traceback(t, total_nframe) {
            return Ok(id);
        }
        let entry = self.tuples[t as usize];
        let mut frames = std::mem::take(&mut self.frame_scratch);
        frames.clear();
        let result = self.collect_frames(entry, &mut frames).and_then(|()| {
            self.builder
                .intern_traceback(&frames, total_nframe)
                .map_err(Problem::Build)
        });
        self.frame_scratch = frames;
        let id = result?;
        self.tb_cache.insert(t, (id, total_nframe));
        Ok(id)
    }

    /// The traceback with the frames of traceback `id` and `total_nframe`.
    fn reintern(
        &mut self,
        id: TracebackId,
        total_nframe: Option<u32>,
    ) -> Result<TracebackId, Problem> {
        let mut frames = std::mem::take(&mut self.frame_scratch);
        frames.clear();
        frames.extend_from_slice(self.builder.tables().traceback_frames(id));
        let result = self.builder.intern_traceback(&frames, total_nframe);
        self.frame_scratch = frames;
        result.map_err(Problem::Build)
    }

    fn collect_frames(
        &mut self,
        entry: TupleEntry,
        frames: &mut Vec<FrameId>,
    ) -> Result<(), Problem> {
        for i in 0..entry.len as usize {
            let item = self.items[entry.start as usize + i];
            let frame = match item {
                Value::Frame(f) => f,
                Value::Tuple(ft) => {
                    // A frame the eager conversion refused: find out why.
                    let fe = self.tuples[ft as usize];
                    if fe.len != 2 {
                        return Err(Problem::FrameArity {
                            frame: i,
                            len: fe.len as usize,
                        });
                    }
                    let filename = self.items[fe.start as usize];
                    let lineno = self.items[fe.start as usize + 1];
                    let Value::Str(s) = filename else {
                        return Err(Problem::Filename {
                            frame: i,
                            kind: self.kind(filename),
                        });
                    };
                    self.frame(s, lineno).map_err(|e| match e {
                        FrameIssue::Lineno(issue) => Problem::Lineno { frame: i, issue },
                        FrameIssue::Build(e) => Problem::Build(e),
                    })?
                }
                Value::Trace(_, shape) => {
                    return Err(Problem::FrameArity {
                        frame: i,
                        len: shape.arity(),
                    });
                }
                Value::Traceback { id, .. } => {
                    return Err(Problem::FrameArity {
                        frame: i,
                        len: self.builder.tables().traceback_frames(id).len(),
                    });
                }
                other => {
                    return Err(Problem::FrameNotTuple {
                        frame: i,
                        kind: self.kind(other),
                    });
                }
            };
            frames.push(frame);
        }
        Ok(())
    }

    /// An integer in `0..=max`.
    #[inline]
    fn unsigned(&self, v: Value, max: u64) -> Result<u64, IntIssue> {
        let n = match v {
            Value::Int(i) => i128::from(i),
            Value::BigInt(b) => self.big_ints[b as usize],
            Value::HugeInt => return Err(IntIssue::OutOfRange(None)),
            other => return Err(IntIssue::NotInt(self.kind(other))),
        };
        u64::try_from(n)
            .ok()
            .filter(|&u| u <= max)
            .ok_or(IntIssue::OutOfRange(Some(n)))
    }

    fn tuple_len(&self, v: Value) -> Option<usize> {
        match v {
            Value::Tuple(t) => Some(self.tuples[t as usize].len as usize),
            Value::Traceback { id, .. } => Some(self.builder.tables().traceback_frames(id).len()),
            _ => None,
        }
    }

    fn str_bytes(&self, v: Value) -> Option<&'a [u8]> {
        let data: &'a [u8] = self.data;
        match v {
            Value::Str(s) => Some(&data[self.strs[s as usize].range()]),
            _ => None,
        }
    }

    /// What a value is, for messages.
    fn kind(&self, v: Value) -> &'static str {
        match v {
            Value::Int(_) | Value::BigInt(_) | Value::HugeInt => "an int",
            Value::Str(_) => "a str",
            Value::Tuple(_) | Value::Frame(_) | Value::Trace(..) | Value::Traceback { .. } => {
                "a tuple"
            }
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(Class::Snapshot) => "the class tracemalloc.Snapshot",
            Value::Global(Class::Traces) => "the class tracemalloc._Traces",
            Value::Object(o) => match self.objects[o as usize].class {
                Class::Snapshot => "a tracemalloc.Snapshot object",
                Class::Traces => "a tracemalloc._Traces object",
            },
        }
    }

    /// The `__dict__` of an object of `class`, as key/value pairs.
    fn object_dict(
        &self,
        v: Value,
        class: Class,
        what: &str,
    ) -> Result<&[(Value, Value)], PickleError> {
        let object = match v {
            Value::Object(o) if self.objects[o as usize].class == class => self.objects[o as usize],
            other => {
                return Err(PickleError::Shape(format!(
                    "{what} is {}, expected a {} object",
                    self.kind(other),
                    class.name()
                )));
            }
        };
        match object.state {
            Some(Value::Dict(d)) => Ok(&self.dicts[d as usize]),
            Some(other) => Err(PickleError::Shape(format!(
                "the state of {what} is {}, expected a dict of attributes",
                self.kind(other)
            ))),
            None => Err(PickleError::Shape(format!(
                "{what} has no attributes (no BUILD opcode)"
            ))),
        }
    }

    /// The value of attribute `name` in an object's `__dict__`; the last one
    /// wins, as when Python fills a dict.
    fn attribute(&self, dict: &[(Value, Value)], name: &str) -> Option<Value> {
        dict.iter()
            .rev()
            .find(|(k, _)| self.str_bytes(*k) == Some(name.as_bytes()))
            .map(|&(_, v)| v)
    }

    /// Reads the snapshot out of the pickled object and builds it.
    fn finish(mut self, top: Value) -> Result<Snapshot, PickleError> {
        let snapshot = self.object_dict(top, Class::Snapshot, "the pickled object")?;
        let traces = self.attribute(snapshot, "traces").ok_or_else(|| {
            PickleError::Shape("the Snapshot has no 'traces' attribute".to_owned())
        })?;
        let limit = self.attribute(snapshot, "traceback_limit").ok_or_else(|| {
            PickleError::Shape("the Snapshot has no 'traceback_limit' attribute".to_owned())
        })?;
        let traces_dict = self.object_dict(traces, Class::Traces, "Snapshot.traces")?;
        let list = self.attribute(traces_dict, "_traces").ok_or_else(|| {
            PickleError::Shape("Snapshot.traces has no '_traces' attribute".to_owned())
        })?;
        let limit = self.unsigned(limit, u64::from(u32::MAX)).map_err(|issue| {
            let mut message = String::new();
            let _ = fmt::write(
                &mut message,
                format_args!("{}", IntField("Snapshot.traceback_limit", issue)),
            );
            PickleError::Shape(message)
        })? as u32;
        self.builder.set_traceback_limit(limit);

        let (traces, shape) = self.collect_traces(list)?;
        self.builder.extend_traces(traces)?;
        let producer = match shape {
            Some(shape) => shape.producer(),
            None => "CPython tracemalloc",
        };
        let metadata = Metadata {
            producer: Some(format!("{producer} (pickle protocol {})", self.protocol)),
            ..Metadata::default()
        };
        Ok(self.builder.finish(metadata))
    }
}

impl Machine<'_> {
    /// The items of a tuple value (a traceback's as frames).
    fn tuple_items(&self, v: Value) -> Vec<Value> {
        match v {
            Value::Tuple(t) => {
                let e = self.tuples[t as usize];
                self.items[e.start as usize..(e.start + e.len) as usize].to_vec()
            }
            Value::Traceback { id, .. } => self
                .builder
                .tables()
                .traceback_frames(id)
                .iter()
                .map(|&f| Value::Frame(f))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The traces of the trace list, in order, and their shape.
    fn collect_traces(&mut self, list: Value) -> Result<(Vec<Trace>, Option<Shape>), PickleError> {
        let items: Vec<Value> = match list {
            Value::List(l) => {
                let list = std::mem::take(&mut self.lists[l as usize]);
                match list.run {
                    // What CPython writes: the list holds the traces in the
                    // order they were converted, so the converted traces
                    // are the answer, without a copy when nothing else was
                    // converted first.
                    Some(run) if list.rest.is_empty() => {
                        let mut traces = std::mem::take(&mut self.traces);
                        let range = run.start as usize..(run.start + run.len) as usize;
                        if range.start == 0 {
                            traces.truncate(range.end);
                        } else {
                            traces = traces[range].to_vec();
                        }
                        return Ok((traces, Some(run.shape)));
                    }
                    _ => list.values(),
                }
            }
            Value::Tuple(_) | Value::Traceback { .. } => self.tuple_items(list),
            other => {
                return Err(PickleError::Shape(format!(
                    "Snapshot.traces._traces is {}, expected a list of traces",
                    self.kind(other)
                )));
            }
        };
        let mut traces = Vec::with_capacity(items.len());
        let mut shape = None;
        for (i, &item) in items.iter().enumerate() {
            let (trace, item_shape) = match item {
                Value::Trace(t, s) => (self.traces[t as usize], s),
                Value::Tuple(_) | Value::Traceback { .. } => {
                    let fields = self.tuple_items(item);
                    let converted = if fields.len() <= 4 {
                        self.trace(&fields)
                    } else {
                        Err(Problem::Arity(fields.len()))
                    };
                    converted.map_err(|p| PickleError::Shape(format!("trace {i}: {p}")))?
                }
                // A frame (str, int) read as a (size, traceback) trace.
                Value::Frame(_) => {
                    let p = Problem::Field {
                        field: "size",
                        max: u64::MAX,
                        issue: IntIssue::NotInt("a str"),
                    };
                    return Err(PickleError::Shape(format!("trace {i}: {p}")));
                }
                other => {
                    let p = Problem::NotTuple(self.kind(other));
                    return Err(PickleError::Shape(format!("trace {i}: {p}")));
                }
            };
            match shape {
                None => shape = Some(item_shape),
                Some(first) if first != item_shape => {
                    return Err(PickleError::Shape(format!(
                        "trace {i} has {} items but trace 0 has {}; CPython never mixes trace shapes",
                        item_shape.arity(),
                        first.arity()
                    )));
                }
                Some(_) => {}
            }
            traces.push(trace);
        }
        Ok((traces, shape))
    }
}

/// Formats an integer field's problem without a trace context.
struct IntField(&'static str, IntIssue);

impl fmt::Display for IntField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_int_issue(f, format_args!("{}", self.0), u64::from(u32::MAX), self.1)
    }
}

/// A trace tuple recognised by [`parse_trace`].
struct ParsedTrace<'a> {
    shape: Shape,
    domain: u32,
    size: u32,
    memo_id: usize,
    total_nframe: Option<u32>,
    /// The bytes after the tuple opcode.
    rest: &'a [u8],
}

/// Recognises the opcodes of one trace tuple at the start of `bytes`:
/// `MARK int int get int TUPLE`, `int int get TUPLE3` or `int get TUPLE2`,
/// with small non-negative ints and a memo fetch.
#[inline(always)]
fn parse_trace(bytes: &[u8]) -> Option<ParsedTrace<'_>> {
    if let [op::MARK, rest @ ..] = bytes {
        let (domain, rest) = small_int(rest)?;
        let (size, rest) = small_int(rest)?;
        let (memo_id, rest) = memo_ref(rest)?;
        let (total, rest) = small_int(rest)?;
        let [op::TUPLE, rest @ ..] = rest else {
            return None;
        };
        return Some(ParsedTrace {
            shape: Shape::TotalNframe,
            domain,
            size,
            memo_id,
            total_nframe: Some(total),
            rest,
        });
    }
    let (first, rest) = small_int(bytes)?;
    if let Some((memo_id, after)) = memo_ref(rest) {
        let [op::TUPLE2, rest @ ..] = after else {
            return None;
        };
        return Some(ParsedTrace {
            shape: Shape::SizeTraceback,
            domain: 0,
            size: first,
            memo_id,
            total_nframe: None,
            rest,
        });
    }
    let (size, rest) = small_int(rest)?;
    let (memo_id, rest) = memo_ref(rest)?;
    let [op::TUPLE3, rest @ ..] = rest else {
        return None;
    };
    Some(ParsedTrace {
        shape: Shape::Domain,
        domain: first,
        size,
        memo_id,
        total_nframe: None,
        rest,
    })
}

/// A `BININT1`, `BININT2` or non-negative `BININT` at the start of
/// `bytes`, and the bytes after it.
#[inline(always)]
fn small_int(bytes: &[u8]) -> Option<(u32, &[u8])> {
    match bytes {
        [op::BININT1, v, rest @ ..] => Some((u32::from(*v), rest)),
        [op::BININT2, a, b, rest @ ..] => Some((u32::from(u16::from_le_bytes([*a, *b])), rest)),
        [op::BININT, a, b, c, d, rest @ ..] => {
            let v = u32::try_from(i32::from_le_bytes([*a, *b, *c, *d])).ok()?;
            Some((v, rest))
        }
        _ => None,
    }
}

/// A `BINGET` or `LONG_BINGET` at the start of `bytes`: its memo id and the
/// bytes after it.
#[inline(always)]
fn memo_ref(bytes: &[u8]) -> Option<(usize, &[u8])> {
    match bytes {
        [op::BINGET, id, rest @ ..] => Some((usize::from(*id), rest)),
        [op::LONG_BINGET, a, b, c, d, rest @ ..] => {
            Some((u32::from_le_bytes([*a, *b, *c, *d]) as usize, rest))
        }
        _ => None,
    }
}

fn corrupt(at: usize, message: String) -> PickleError {
    PickleError::Corrupt {
        offset: at as u64,
        message,
    }
}

fn underflow(at: usize, code: u8) -> PickleError {
    corrupt(
        at,
        format!(
            "{} needs more values than the stack holds (above the last MARK)",
            op::name(code).unwrap_or("?")
        ),
    )
}

fn unsupported(at: usize, code: u8) -> PickleError {
    match op::name(code) {
        Some(name) => PickleError::UnsupportedOpcode {
            offset: at as u64,
            opcode: code,
            name,
        },
        None => corrupt(at, format!("unknown opcode 0x{code:02x}")),
    }
}

/// An arena index as `u32`. Four billion entries would need a pickle of at
/// least four gigabytes of opcodes; refuse rather than wrap.
fn index_u32(len: usize, at: usize) -> Result<u32, PickleError> {
    u32::try_from(len).map_err(|_| PickleError::TooComplex {
        offset: at as u64,
        message: "more than 4294967295 objects".to_owned(),
    })
}

/// A string as Python decodes it (`surrogatepass`), with each lone
/// surrogate, which Rust strings cannot hold, replaced by U+FFFD. Such
/// surrogates come from filenames that were not valid UTF-8 on disk
/// (Python's `surrogateescape`), so the replacement marks the one
/// undecodable byte of the original name.
fn decode_str(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(
            decode_surrogatepass(bytes)
                .unwrap_or_else(|| String::from_utf8_lossy(bytes).into_owned()),
        ),
    }
}

/// Decodes UTF-8 that may contain encoded surrogates (`ED A0..BF 80..BF`,
/// what Python's `surrogatepass` writes), replacing each by U+FFFD; `None`
/// if the bytes are invalid in any other way.
fn decode_surrogatepass(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return Some(out);
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(valid).ok()?);
                match after {
                    [0xed, 0xa0..=0xbf, 0x80..=0xbf, tail @ ..] => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        rest = tail;
                    }
                    _ => return None,
                }
            }
        }
    }
}

/// A module or class name for a message: invalid UTF-8 replaced, control
/// characters escaped, and at most 100 characters.
fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 100;
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
