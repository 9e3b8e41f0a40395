//! Reader for CPython `tracemalloc` snapshot pickles: the files written by
//! `tracemalloc.Snapshot.dump()` or `pickle.dump(snapshot, f, protocol)`
//! with pickle protocols 2 to 5, from Python 3.4 to 3.14.
//!
//! # What such a pickle holds
//!
//! Verified in CPython's sources (`Lib/tracemalloc.py` as of 3.4/3.5, of
//! 3.6-3.8 and of today; `trace_to_pyobject` in `Modules/_tracemalloc.c`,
//! later `Python/tracemalloc.c`), by disassembling with `pickletools` what
//! CPython 3.11 writes with each protocol, and by `tracemalloc.start()`'s
//! own range check:
//!
//! * A `tracemalloc.Snapshot` object whose `__dict__` is
//!   `{'traces': <_Traces>, 'traceback_limit': int}` (in any order: dicts
//!   were unordered before 3.6). `traceback_limit` is
//!   `get_traceback_limit()`, which `tracemalloc.start()` keeps in 1..=65535.
//! * A `tracemalloc._Traces` object whose `__dict__` is `{'_traces': list}`.
//!   `take_snapshot()` and `filter_traces()` make a list; the constructor
//!   accepts any sequence, so a tuple is read too.
//! * Each trace is the tuple `_tracemalloc._get_traces()` made (its
//!   `trace_to_pyobject`): `(size, traceback)` in 3.4 and 3.5,
//!   `(domain, size, traceback)` from 3.6 to 3.8, and
//!   `(domain, size, traceback, total_nframe)` from 3.9 on. Domain 0 stands
//!   for the 3.4/3.5 shape, which had no domains.
//! * A traceback is a tuple of `(filename, lineno)` frames, most recent
//!   first, in every version (the `Traceback` class reverses it); the C code
//!   hands out one tuple per distinct traceback, so the pickler memoizes it
//!   and repeats it with `BINGET`. Line numbers are never negative (the C
//!   code stores 0 for an unknown line).
//! * Objects are created with `NEWOBJ` (class and empty arguments) and
//!   filled with `BUILD`. `copyreg.__newobj__`, `copyreg._reconstructor` and
//!   `builtins.object` appear only in protocol 0 and 1 pickles, which are
//!   refused. Python 3.4 and 3.5 pickled plain objects with `NEWOBJ_EX`
//!   (empty arguments and keywords) under protocol 4, since their
//!   `object.__reduce_ex__(4)` always used `copyreg.__newobj_ex__`; that
//!   is accepted too. (That last fact is from memory of CPython's
//!   `Objects/typeobject.c`, not re-verified; accepting it costs nothing.)
//!
//! # Why a small interpreter and not a crate
//!
//! A generic unpickler (`serde-pickle`, or the Python one) builds a tree of
//! dynamically typed values and only then lets the caller look at it: for a
//! million traces that is millions of small allocations, far slower than
//! the ~20 ms per file the CLI needs, and it accepts any global its caller
//! does not think to forbid. This reader instead executes only the ~35
//! opcodes a snapshot pickle uses, in one pass, with `Copy` values of
//! eight bytes that point into arenas. A global other than
//! `tracemalloc.Snapshot` and `tracemalloc._Traces`, and every opcode that
//! would call something (`REDUCE`, `INST`, `OBJ`, `EXT*`, persistent ids,
//! buffers), is an error naming it: nothing in the file is ever executed.
//!
//! # Compared with `pickle.load`
//!
//! Bytes after `STOP` are ignored, as `pickle.load` (hence
//! `Snapshot.load`) ignores them. This reader is stricter in one way:
//! `STOP` must leave exactly one value on the stack and no open `MARK`,
//! which every pickle CPython writes satisfies and a corrupt one often
//! does not. Objects are filled by `BUILD` with the state dict as it is at
//! the end of the pickle rather than when `BUILD` runs; the two differ only
//! for a pickle that mutates a dict after using it as state, which no
//! pickler writes.
//!
//! # Untrusted input
//!
//! Every length is checked against the remaining input before anything is
//! allocated; marks are limited to [`MAX_MARK_DEPTH`] nested levels, the
//! stack to [`MAX_STACK`] values, containers to [`MAX_CONTAINERS`] and
//! memo entries stored out of order to 65536; data of 4 GiB or more is
//! refused. Nothing recurses: the pickle is executed with explicit stacks
//! and the result is read at a fixed depth, so deep nesting and cycles
//! through the memo (a list containing itself) are just values with the
//! wrong shape. Every stored value costs at least one byte of input, so
//! memory is linear in the file size: about twice the file for CPython's
//! pickles (the snapshot itself is a bit more than the file), at worst a
//! few tens of bytes per byte for a stream of one-byte opcodes that each
//! make a tuple.

mod machine;
mod memo;
mod opcodes;
#[cfg(test)]
mod tests;

use crate::model::{BuildError, Snapshot};

/// More nested `MARK`s than this are refused. A snapshot needs four: the
/// `SETITEMS` of the snapshot's dict, the `APPENDS` of the trace list, a
/// trace tuple and a traceback tuple.
pub const MAX_MARK_DEPTH: usize = 64;

/// More values than this on the stack at once are refused. CPython's
/// pickler appends list items in batches of 1000, and a traceback has at
/// most 65535 frames, so a snapshot never comes close.
pub const MAX_STACK: usize = 1 << 20;

/// More lists, dicts and `tracemalloc` objects than this (together) are
/// refused. A snapshot has one list, at most four dicts and two objects;
/// each costs tens of bytes of memory for one byte of input.
pub const MAX_CONTAINERS: usize = 1_000;

/// Why a pickle could not be read as a tracemalloc snapshot.
///
/// Messages name the problem and, where it lies in the opcode stream, the
/// byte offset of the opcode, so that `pickletools.dis` can show it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    /// The data does not start with the `PROTO` opcode, which protocols 0
    /// and 1 do not write.
    #[error(
        "pickle protocol 0/1 is not supported; tracemalloc uses protocol 2 or later \
         (the data does not start with the PROTO opcode 0x80)"
    )]
    OldProtocol,
    /// A `PROTO` opcode names a protocol outside 2 to 5.
    #[error("pickle protocol {protocol} is not supported; this reader reads protocols 2 to 5")]
    UnsupportedProtocol {
        /// The protocol number.
        protocol: u8,
    },
    /// The data ends inside an opcode's argument, or a declared length runs
    /// past the end of the data.
    #[error(
        "truncated pickle: {opcode} at byte {offset} needs {needed} bytes, \
         but only {available} remain"
    )]
    Truncated {
        /// Offset of the opcode.
        offset: u64,
        /// The opcode's name.
        opcode: &'static str,
        /// Bytes the opcode's argument declares or needs.
        needed: u64,
        /// Bytes left after the opcode.
        available: u64,
    },
    /// The data ends before the `STOP` opcode.
    #[error("truncated pickle: the data ends at byte {len} without the STOP opcode")]
    MissingStop {
        /// Length of the data.
        len: u64,
    },
    /// The pickle names a global other than `tracemalloc.Snapshot` and
    /// `tracemalloc._Traces`.
    #[error(
        "not a tracemalloc snapshot: the pickle references {global} ({opcode} at byte {offset})"
    )]
    ForbiddenGlobal {
        /// Offset of the opcode.
        offset: u64,
        /// `GLOBAL` or `STACK_GLOBAL`.
        opcode: &'static str,
        /// `module.name`, shortened if very long.
        global: String,
    },
    /// An opcode that a snapshot pickle never contains (most of them would
    /// call or look up something).
    #[error(
        "not a tracemalloc snapshot: the pickle uses opcode {name} (0x{opcode:02x}) at byte {offset}, \
         which tracemalloc snapshots never contain"
    )]
    UnsupportedOpcode {
        /// Offset of the opcode.
        offset: u64,
        /// The opcode byte.
        opcode: u8,
        /// Its name.
        name: &'static str,
    },
    /// `REDUCE` would call one of the allowed classes, which a snapshot
    /// pickle never does.
    #[error(
        "not a tracemalloc snapshot: REDUCE at byte {offset} would call {callable}; \
         snapshot pickles never call anything"
    )]
    Call {
        /// Offset of the opcode.
        offset: u64,
        /// What would have been called.
        callable: String,
    },
    /// The opcode stream is malformed: an unknown opcode, a memo index that
    /// was never stored, a stack underflow, invalid UTF-8...
    #[error("corrupt pickle at byte {offset}: {message}")]
    Corrupt {
        /// Offset of the opcode.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// The pickle nests, stacks or builds more than any snapshot needs (see
    /// [`MAX_MARK_DEPTH`], [`MAX_STACK`] and [`MAX_CONTAINERS`]).
    #[error("pickle too complex for a tracemalloc snapshot at byte {offset}: {message}")]
    TooComplex {
        /// Offset of the opcode.
        offset: u64,
        /// Which limit was hit.
        message: String,
    },
    /// The pickle is well formed but does not hold a tracemalloc snapshot:
    /// another object, a missing attribute, a trace of the wrong shape, a
    /// number out of range.
    #[error("not a tracemalloc snapshot: {0}")]
    Shape(String),
    /// The data is 4 GiB or more, which no snapshot needs.
    #[error("pickle of {len} bytes is too large: this reader reads pickles below 4 GiB")]
    TooLarge {
        /// Length of the data.
        len: u64,
    },
    /// The snapshot is too large to hold.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// Whether `bytes` start like a pickle of protocol 2 or later (with the
/// `PROTO` opcode).
pub fn has_pickle_header(bytes: &[u8]) -> bool {
    bytes.first() == Some(&opcodes::PROTO)
}

/// Decodes a pickled `tracemalloc.Snapshot` (see the module documentation
/// for what is accepted).
///
/// The snapshot's metadata says which CPython versions write its trace
/// shape, e.g. `CPython 3.9+ tracemalloc (pickle protocol 5)`; every other
/// field is `None`, since CPython's pickles record nothing else.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, PickleError> {
    machine::decode(bytes)
}
