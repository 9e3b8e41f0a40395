//! Support for the end-to-end tests of tests/tests/: dhat-rs's API over
//! either profiler ([`dhat_shim`]) and the per-line comparison of their
//! profiles ([`dhat_compare`]).

pub mod dhat_compare;
pub mod dhat_shim;
